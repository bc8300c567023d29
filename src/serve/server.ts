/**
 * `nvidia-runtime serve [--socket PATH] [--idle-exit SECONDS]`: the optional warm-path service (docs/warm-path.md).
 * It answers the launcher's requests over a unix socket with exactly what the cold path (src/runtime/main.ts) would
 * do: the same argv parsing, config, runc lookup and planCreate, with the config, runc lookup, host snapshot and CDI
 * registry kept between requests (caches.ts). It never writes config.json: the launcher does, after its own checks.
 * Every error, every call it does not handle and any doubt is a `cold` answer, so the cold path speaks.
 */
import { chmodSync, lstatSync, mkdirSync, rmSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../log/logger.js';
import { SERVE_MAX_MESSAGE_BYTES, SERVE_SOCKET, statIdentity } from '../launcher-contract.js';
import { parseRuncArgv } from '../runtime/argv.js';
import { planCreate } from '../runtime/plan.js';
import { serveCaches, type ConfigEnv, type ServeCaches } from './caches.js';
import { formatAnswer, parseRequest, requestComplete, type ServeAnswer, type ServeRequest } from './protocol.js';

/** A request not complete within this long is closed unanswered (the launcher gave up long before). */
export const REQUEST_TIMEOUT_MS = 3000;

const here = dirname(fileURLToPath(import.meta.url));
/** dist/bin, as src/runtime/main.ts names it (this module is dist/serve/server.js, or bundled into dist/runtime). */
const binDir = join(here, '..', 'bin');

export interface AnswerDeps {
  caches: ServeCaches;
  /** Absolute path of nvidia-runtime-hook (the cold path's `join(binDir, 'nvidia-runtime-hook')`). */
  hookPath: string;
  /** Our own executable, never chosen as runc (the cold path's `join(binDir, 'nvidia-runtime')`). */
  self: string;
}

const cold = (reason: string): ServeAnswer => ({ kind: 'cold', reason });
const message = (e: unknown): string =>
  e && typeof e === 'object' && 'userMessage' in e && typeof (e as { userMessage: unknown }).userMessage === 'function'
    ? (e as { userMessage(): string }).userMessage()
    : e instanceof Error ? e.message : String(e);

/**
 * What the cold path would do for this request, as an answer: `write` (planCreate's new text, the spec's path and
 * its identity when read), `runc` (nothing to change), `cold` (anything else). Never throws.
 */
export function answerRequest(req: ServeRequest, deps: AnswerDeps): ServeAnswer {
  try {
    if (!isAbsolute(req.cwd)) return cold('the cwd is not absolute');
    const env: ConfigEnv = {};
    if (req.path !== undefined) env.PATH = req.path;
    if (req.configPath !== undefined) env.NVIDIA_CTK_CONFIG_FILE_PATH = req.configPath;
    const args = parseRuncArgv(req.args, req.cwd);
    if (!args.intercept || !args.bundle) return cold('not a create/run the runtime intercepts');
    const config = deps.caches.config.get(env);
    const runtime = deps.caches.runc.get(config.runtime.runtimes, env.PATH, deps.self);
    const specPath = resolve(args.bundle, 'config.json');
    // The launcher replaces only <bundle>/config.json (it never sends --config).
    if (args.configPath !== undefined && resolve(args.bundle, args.configPath) !== specPath) return cold('--config is the cold path\'s');
    const before = statIdentity(specPath);
    if (before === undefined || before === '-') return cold('config.json cannot be stat\'ed');
    const plan = planCreate(args.bundle, config, {
      loadInventory: (driverRoot) => deps.caches.inventory.get(driverRoot),
      hookPath: deps.hookPath,
      loadCdiRegistry: (specDirs) => deps.caches.cdi.get(specDirs),
    }, args.configPath);
    if (plan.specFile.path !== specPath) return cold('the spec is not the bundle\'s config.json');
    if (statIdentity(specPath) !== before) return cold('config.json changed while it was planned');
    // The cold path's log, line for line (src/runtime/main.ts), only when this answer is final.
    const logger = createLogger({ file: config.runtime.debug, level: config.runtime.logLevel });
    try {
      for (const w of config.warnings) logger.warn(w);
      logger.info(`${args.verb} ${args.containerId ?? ''}: ${plan.request.gpu ? `granted ${plan.granted}` : 'not a GPU container'}`, {
        reasons: plan.request.reasons,
      });
    } finally {
      logger.close();
    }
    if (plan.newText === undefined) return { kind: 'runc', runc: runtime.path };
    return { kind: 'write', runc: runtime.path, file: specPath, identity: before, text: Buffer.from(plan.newText, 'utf8') };
  } catch (e) {
    return cold(message(e));
  }
}

// ---- the service ----------------------------------------------------------------------------------------------

interface PeerAddon {
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
}
/** The socket's fd (libuv's handle; not in Node's typings). */
type WithHandle = { _handle?: { fd?: number } };

export interface ServeOptions {
  socket: string;
  /** Exit after this many seconds without a request; undefined: never. */
  idleExitSeconds?: number;
}

/** argv after `serve`; a usage problem is a string. */
export function parseServeArgs(argv: readonly string[]): ServeOptions | string {
  const opts: ServeOptions = { socket: SERVE_SOCKET };
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    const m = /^--(socket|idle-exit)(?:=(.*))?$/.exec(word);
    if (!m) return `unknown argument ${JSON.stringify(word)} (usage: nvidia-runtime serve [--socket PATH] [--idle-exit SECONDS])`;
    const value = m[2] ?? argv[++i];
    if (value === undefined) return `--${m[1]} needs a value`;
    if (m[1] === 'socket') {
      if (!isAbsolute(value)) return `--socket must be an absolute path (got ${JSON.stringify(value)})`;
      opts.socket = value;
    } else {
      if (!/^\d+$/.test(value) || Number(value) <= 0) return `--idle-exit must be a positive number of seconds (got ${JSON.stringify(value)})`;
      opts.idleExitSeconds = Number(value);
    }
  }
  return opts;
}

const say = (line: string): void => {
  try {
    writeSync(2, `nvidia-runtime serve: ${line}\n`);
  } catch {
    // no stderr: nothing to tell
  }
};

/** Systemd socket activation: exactly one fd (3), for this very process. */
function activatedFd(env: NodeJS.ProcessEnv): number | undefined {
  if (env.LISTEN_FDS === '1' && env.LISTEN_PID === String(process.pid)) return 3;
  return undefined;
}

/** Is something answering on `path`? (a live service must not lose its socket to a second one) */
function listening(path: string): Promise<boolean> {
  return new Promise((ok) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      ok(true);
    });
    s.once('error', () => ok(false));
  });
}

/** Creates the socket's directory (0755) when missing and removes a stale socket; a string says why not. */
async function prepareSocketPath(path: string): Promise<string | undefined> {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  } catch (e) {
    return `cannot create ${dirname(path)}: ${message(e)}`;
  }
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return undefined;
  }
  if (!st.isSocket()) return `${path} exists and is not a socket: refusing to remove it`;
  if (await listening(path)) return `another service is listening on ${path}`;
  rmSync(path, { force: true });
  return undefined;
}

export interface RunningService {
  server: Server;
  close(): Promise<void>;
}

/** Starts the service; resolves once it listens. */
export async function startService(opts: ServeOptions, env: NodeJS.ProcessEnv = process.env): Promise<RunningService> {
  const addon = createRequire(import.meta.url)('../../build/Release/nvidia_runtime.node') as PeerAddon;
  const euid = process.geteuid?.() ?? 0;
  const deps: AnswerDeps = { caches: serveCaches(), hookPath: join(binDir, 'nvidia-runtime-hook'), self: join(binDir, 'nvidia-runtime') };
  const fd = activatedFd(env);
  const sockets = new Set<Socket>();
  let idleTimer: NodeJS.Timeout | undefined;
  let closing = false;

  const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      armIdle();
    });
    socket.on('error', () => socket.destroy());
    disarmIdle();
    let uid: number | undefined;
    try {
      const sfd = (socket as unknown as WithHandle)._handle?.fd;
      uid = typeof sfd === 'number' && sfd >= 0 ? addon.peerCredentials(sfd).uid : undefined;
    } catch {
      uid = undefined;
    }
    if (uid === undefined || (uid !== 0 && uid !== euid)) {
      socket.destroy(); // unanswered
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const timer = setTimeout(() => socket.destroy(), REQUEST_TIMEOUT_MS);
    const finish = (answer: ServeAnswer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.end(formatAnswer(answer));
      // A peer that never reads its answer must not hold the connection.
      setTimeout(() => socket.destroy(), REQUEST_TIMEOUT_MS).unref();
    };
    const handle = (): void => {
      const parsed = parseRequest(Buffer.concat(chunks, size));
      finish(parsed.ok ? answerRequest(parsed.value, deps) : { kind: 'cold', reason: parsed.reason });
    };
    socket.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > SERVE_MAX_MESSAGE_BYTES) {
        finish({ kind: 'cold', reason: `request larger than ${SERVE_MAX_MESSAGE_BYTES} bytes` });
        return;
      }
      chunks.push(chunk);
      if (requestComplete(chunk.length >= 3 ? chunk : Buffer.concat(chunks, size))) {
        const parsed = parseRequest(Buffer.concat(chunks, size));
        if (parsed.ok) handle();
      }
    });
    socket.on('end', () => {
      if (!done) handle();
    });
  });

  function disarmIdle(): void {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = undefined;
  }
  function armIdle(): void {
    if (opts.idleExitSeconds === undefined || closing || sockets.size > 0) return;
    disarmIdle();
    idleTimer = setTimeout(() => {
      void close().then(() => process.exit(0));
    }, opts.idleExitSeconds * 1000);
  }

  let ownSocket: { dev: number; ino: number } | undefined;
  async function close(): Promise<void> {
    if (closing) return;
    closing = true;
    disarmIdle();
    await new Promise<void>((ok) => {
      server.close(() => ok());
      for (const s of sockets) s.destroy();
    });
    if (ownSocket) {
      try {
        const st = lstatSync(opts.socket);
        if (st.dev === ownSocket.dev && st.ino === ownSocket.ino) rmSync(opts.socket, { force: true });
      } catch {
        // gone already
      }
    }
  }

  if (fd !== undefined) {
    delete env.LISTEN_FDS;
    delete env.LISTEN_PID;
    delete env.LISTEN_FDNAMES;
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen({ fd }, () => {
        server.off('error', fail);
        ok();
      });
    });
  } else {
    const problem = await prepareSocketPath(opts.socket);
    if (problem) throw new Error(problem);
    // Created 0600 from the start (no window in which others could connect), then chmod'ed to say so.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((ok, fail) => {
        server.once('error', fail);
        server.listen(opts.socket, () => {
          server.off('error', fail);
          ok();
        });
      });
    } finally {
      process.umask(umask);
    }
    chmodSync(opts.socket, 0o600);
    const st = lstatSync(opts.socket);
    ownSocket = { dev: st.dev, ino: st.ino };
  }
  armIdle();
  return { server, close };
}

/** The `serve` verb: argv after it. Runs until a signal (or --idle-exit). */
export async function serveMain(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const opts = parseServeArgs(argv);
  if (typeof opts === 'string') {
    say(opts);
    process.exit(2);
  }
  if ((process.geteuid?.() ?? 0) !== 0) {
    say('must run as root (it plans containers for the root launcher); the cold path works without it');
    process.exit(1);
  }
  let service: RunningService;
  try {
    service = await startService(opts, env);
  } catch (e) {
    say(message(e));
    process.exit(1);
  }
  const stop = (): void => {
    void service.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
