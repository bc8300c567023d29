/**
 * The warm path's client in the shipped launcher (native/launcher/serve_client.c, docs/warm-path.md): for a
 * create/run that would go to Node only because its spec holds a GPU marker, the launcher asks the service on
 * NVR_SERVE_SOCKET first. A fake service (a node:net server in this process) records what the launcher sends and
 * answers what each test wants; a fake runc records its argv and environment. The cold path is the real runtime on a
 * mock driver root: it rewrites config.json with its GPU edits (/dev/nvidiactl …) and execs the fake runc, so
 * "the cold path ran" is visible in config.json, and "the warm path ran" is config.json holding exactly the answer.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { SERVE_DEADLINE_MS, SERVE_MAGIC, SERVE_MAX_MESSAGE_BYTES, SERVE_SOCKET, statIdentity, VIEW_DIR } from '../../../src/launcher-contract.js';
import fc from 'fast-check';
import { viewFileName } from '../../../src/runtime/launcher-view.js';
import { distBin, PACKAGE_ROOT, tempDir } from '../../helpers/dist.js';

const PATH = '/usr/bin:/bin';
const GPU_SPEC = JSON.stringify({ ociVersion: '1.0.2', process: { args: ['sh'], env: ['PATH=/bin', 'NVIDIA_VISIBLE_DEVICES=all'] }, root: { path: 'rootfs' } });
const PLAIN_SPEC = JSON.stringify({ ociVersion: '1.0.2', process: { args: ['sh'], env: ['PATH=/bin'] }, root: { path: 'rootfs' } });
const NEW_TEXT = '{"ociVersion":"1.0.2","written":"by the fake service","bytes":"\\u00e9 ü\\n"}\n';

let dir: string;
let runc: string;
let config: string;

beforeAll(() => {
  dir = realpathSync(tempDir('launcher-serve'));
  execFileSync(distBin('nvidia-ctk'), ['mock-driver', '--root', join(dir, 'driver'), '--gpus', '2'], { stdio: 'ignore' });
  runc = join(dir, 'fake-runc');
  // $0, then argv NUL-separated, then the environment: byte-exact comparisons.
  writeFileSync(runc, '#!/bin/sh\nprintf "RUNC\\0%s\\0" "$0"; for a in "$@"; do printf "%s\\0" "$a"; done; printf "ENV\\0"; env -0\n', { mode: 0o755 });
  config = join(dir, 'config.toml');
  writeFileSync(config, `[nvidia-container-cli]\nroot = "${join(dir, 'driver')}"\n\n[nvidia-container-runtime]\nruntimes = ["${runc}"]\n`);
  rmSync(SERVE_SOCKET, { force: true });
});
afterAll(() => {
  rmSync(join(VIEW_DIR, viewFileName({ euid: 0, configPath: config, envPath: PATH })), { force: true });
  rmSync(dir, { recursive: true, force: true });
});

let server: FakeService | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  rmSync(SERVE_SOCKET, { force: true });
});

// ---- the fake service ---------------------------------------------------------------------------------------

interface FakeService {
  /** Each request of this test's launchers (a config file in this test's directory), as received up to the launcher's shutdown(SHUT_WR). */
  requests: Buffer[];
  /** How many of those (a launcher another test on this host runs is answered nothing and not counted). */
  connections: number;
  close(): Promise<void>;
}

type Answer = (request: Buffer, socket: Socket) => void | Promise<void>;

/** Listens on `at` (default NVR_SERVE_SOCKET), mode 0600 unless told otherwise. */
async function fakeService(answer: Answer, opts: { at?: string; mode?: number } = {}): Promise<FakeService> {
  const at = opts.at ?? SERVE_SOCKET;
  rmSync(at, { force: true });
  const state: FakeService = { requests: [], connections: 0, close: async () => {} };
  const sockets = new Set<Socket>();
  const srv: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // the launcher may close first (oversized, late)
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('end', () => {
      const req = Buffer.concat(chunks);
      if (!req.includes(Buffer.from(`\0c${dir}/`))) {
        socket.end(); // not ours: the socket is the host's; an empty answer sends that caller cold
        return;
      }
      state.connections++;
      state.requests.push(req);
      void answer(req, socket);
    });
  });
  await new Promise<void>((ok) => srv.listen(at, ok));
  chmodSync(at, opts.mode ?? 0o600);
  state.close = () => new Promise<void>((ok) => {
    for (const s of sockets) s.destroy();
    srv.close(() => ok());
  });
  return state;
}

const records = (...r: (string | Buffer)[]): Buffer => Buffer.concat(r.map((x) => Buffer.concat([Buffer.from(x), Buffer.from([0])])));
const runcAnswer = (r: string): Buffer => records(SERVE_MAGIC, 'runc', `r${r}`, '.');
function writeAnswer(a: { r: string; f: string; i: string; text: string | Buffer; n?: string }): Buffer {
  const text = Buffer.from(a.text);
  return Buffer.concat([records(SERVE_MAGIC, 'write', `r${a.r}`, `f${a.f}`, `i${a.i}`, `n${a.n ?? text.length}`), text, Buffer.from('.\0')]);
}
/** An answer that replaces this bundle's config.json (identity read now, as the service would). */
const writeFor = (bundle: string, text = NEW_TEXT) =>
  writeAnswer({ r: runc, f: join(bundle, 'config.json'), i: statIdentity(join(bundle, 'config.json'))!, text });
const sendAndEnd = (bytes: Buffer): Answer => (_req, socket) => { socket.end(bytes); };

// ---- running the launcher -----------------------------------------------------------------------------------

interface Opts { env?: Record<string, string | undefined>; cwd?: string; name?: string; bin?: string }
const envOf = (opts: Opts): Record<string, string> =>
  Object.fromEntries(Object.entries({ PATH, NVIDIA_CTK_CONFIG_FILE_PATH: config, ...opts.env }).filter(([, v]) => v !== undefined)) as Record<string, string>;

/** Asynchronous: the fake service answers from this very process. */
function launch(args: string[], opts: Opts = {}): Promise<{ status: number | null; stdout: Buffer; stderr: string; ms: number }> {
  const start = Date.now();
  return new Promise((ok, fail) => {
    const child = spawn(opts.bin ?? distBin(opts.name ?? 'nvidia-runtime'), args, { env: envOf(opts), cwd: opts.cwd ?? dir });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    child.on('error', fail);
    child.on('close', (status) => ok({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString(), ms: Date.now() - start }));
  });
}

function runcSaw(stdout: Buffer): { argv0: string; argv: string[]; env: Record<string, string> } | null {
  const words = stdout.toString().split('\0');
  if (words[0] !== 'RUNC') return null;
  const e = words.indexOf('ENV');
  const env = Object.fromEntries(words.slice(e + 1, -1).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  delete env.PWD; // the fake runc's shell adds it
  return { argv0: words[1]!, argv: words.slice(2, e), env };
}

function bundle(spec = GPU_SPEC): string {
  const b = join(dir, `bundle-${Math.random().toString(36).slice(2)}`);
  mkdirSync(b);
  writeFileSync(join(b, 'config.json'), spec);
  return b;
}
const spec = (b: string): string => readFileSync(join(b, 'config.json'), 'utf8');
/** The cold path ran: the real runtime wrote its GPU edits (the mock driver's control device). */
const coldRan = (b: string): boolean => spec(b).includes('"/dev/nvidiactl"');

/** One call through Node writes the launcher view (with its GPU markers); the launcher is certain afterwards. */
beforeEach(async () => {
  const r = await launch(['state', 'x']);
  expect(r.stderr).toBe('');
  const d = await launch(['create', '-b', bundle(), 'id'], { name: 'nvidia-runtime-decide' });
  expect(d.stdout.toString()).toBe('node\tGPU marker "NVIDIA_" in the spec\n');
});

/** The cold path ran for this create, and runc got the caller's argv. */
async function expectCold(b: string, args = ['create', '--bundle', b, 'id1']): Promise<void> {
  const r = await launch(args);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(runcSaw(r.stdout)?.argv).toEqual(args);
  expect(coldRan(b)).toBe(true);
}

// ---- the tests ----------------------------------------------------------------------------------------------

describe('the request', () => {
  test('magic, cwd, config path, PATH, every argv word and the end record, exactly', async () => {
    server = await fakeService(sendAndEnd(records(SERVE_MAGIC, 'cold', 'test', '.')));
    const b = bundle();
    const args = ['--root', '/run/r', '--log-format', 'json', 'create', '--pid-file', 'p f', `--bundle=${b}`, 'id\t1'];
    await expectCold(b, args);
    expect(server.requests).toEqual([records(SERVE_MAGIC, `d${dir}`, `c${config}`, `p${PATH}`, ...args.map((a) => `a${a}`), '.')]);
  });

  test('PATH unset is "P"; the config path unset is "c" alone; run and a relative bundle', async () => {
    server = await fakeService(sendAndEnd(records(SERVE_MAGIC, 'cold', 'test', '.')));
    const b = bundle();
    const args = ['run', '-d', '-b', b.slice(dir.length + 1), 'id1'];
    // With no NVIDIA_CTK_CONFIG_FILE_PATH the default config (absent here) has no view: nothing is asked. So the
    // unset form is checked on the PATH only, after a view for the unset PATH exists.
    await launch(['state', 'x'], { env: { PATH: undefined } });
    const r = await launch(args, { env: { PATH: undefined } });
    expect(runcSaw(r.stdout)?.argv).toEqual(args);
    expect(server.requests).toEqual([records(SERVE_MAGIC, `d${dir}`, `c${config}`, 'P', ...args.map((a) => `a${a}`), '.')]);
    rmSync(join(VIEW_DIR, viewFileName({ euid: 0, configPath: config, envPath: undefined })), { force: true });
  });
});

describe('answers the launcher acts on', () => {
  test('write: config.json is exactly the answer, same mode and owner, no temp file left; runc runs with the caller\'s argv and environment', async () => {
    const b = bundle();
    const file = join(b, 'config.json');
    chmodSync(file, 0o640);
    chownSync(file, 1234, 5678);
    writeFileSync(join(b, '.config.json.999999999.abcdef012345.tmp'), 'left by a killed writer');
    writeFileSync(join(b, `.config.json.${process.pid}.abcdef012345.tmp`), 'a live writer\'s');
    server = await fakeService(sendAndEnd(writeFor(b)));
    const env = { KEEP_ME: 'yes\tü', NODE_OPTIONS: '--frob' };
    const args = ['--log-level', 'debug', 'create', '--bundle', b, '--pid-file', 'p', 'id1'];
    const r = await launch(args, { env });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(NEW_TEXT);
    const st = statSync(file);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o640, 1234, 5678]);
    expect(readdirSync(b).sort()).toEqual([`.config.json.${process.pid}.abcdef012345.tmp`, 'config.json']); // the dead writer's is gone
    const seen = runcSaw(r.stdout);
    expect(seen).toEqual({ argv0: runc, argv: args, env: envOf({ env }) });
    expect(server.connections).toBe(1);
  });

  test('write with a relative bundle: f is the path the runtime resolves (cwd, bundle, config.json)', async () => {
    const b = bundle();
    server = await fakeService(sendAndEnd(writeFor(b)));
    mkdirSync(join(dir, 'x'), { recursive: true });
    const args = ['create', '-b', `./x/../${b.slice(dir.length + 1)}/`, 'id1'];
    const r = await launch(args);
    expect(runcSaw(r.stdout)?.argv).toEqual(args);
    expect(spec(b)).toBe(NEW_TEXT);
  });

  test('write with the bundle as the cwd (no --bundle)', async () => {
    const b = bundle();
    server = await fakeService(sendAndEnd(writeFor(b)));
    const r = await launch(['create', 'id1'], { cwd: b });
    expect(runcSaw(r.stdout)?.argv).toEqual(['create', 'id1']);
    expect(spec(b)).toBe(NEW_TEXT);
    expect(server.requests[0]!.includes(Buffer.from(`\0d${b}\0`))).toBe(true);
  });

  test('write naming the lexical path of a file other than the one scanned ("link/.." in the bundle): cold', async () => {
    const b = bundle(); // lexically <dir>/x-link/../<b>
    const elsewhere = join(dir, `elsewhere-${Math.random().toString(36).slice(2)}`);
    mkdirSync(join(elsewhere, 'sub'), { recursive: true });
    const name = b.slice(dir.length + 1);
    mkdirSync(join(elsewhere, name));
    writeFileSync(join(elsewhere, name, 'config.json'), GPU_SPEC); // what the kernel (and runc) resolve
    symlinkSync(join(elsewhere, 'sub'), join(dir, `link-${name}`));
    server = await fakeService(sendAndEnd(writeFor(b)));
    const r = await launch(['create', '-b', `link-${name}/../${name}`, 'id1']);
    expect(runcSaw(r.stdout)).not.toBeNull();
    expect(server.connections).toBe(1);
    expect(spec(b)).not.toBe(NEW_TEXT);
    expect(readFileSync(join(elsewhere, name, 'config.json'), 'utf8')).not.toBe(NEW_TEXT);
  });

  test('a failed replacement: the runtime\'s one line and --log record, exit 1, nothing replaced, no temp file left', async () => {
    const b = bundle();
    server = await fakeService(sendAndEnd(writeFor(b, `${'x'.repeat(4096)}\n`)));
    // A file size limit of 1 KiB (SIGXFSZ ignored, so write(2) fails with EFBIG instead of killing the launcher).
    const log = join(dir, `log-${Math.random().toString(36).slice(2)}.json`);
    const args = ['--log', log, '--log-format', 'json', 'create', '--bundle', b, 'id1'];
    const r = await launch(['-c', 'ulimit -f 2; trap "" XFSZ; exec "$0" "$@"', distBin('nvidia-runtime'), ...args], { bin: '/bin/sh' });
    expect(r.stderr).toBe(`nvidia-runtime: writing ${join(b, 'config.json')}: write failed (EFBIG); check that the directory is writable and the filesystem is not full or read-only\n`);
    expect(r.status).toBe(1);
    expect(runcSaw(r.stdout)).toBeNull();
    expect(spec(b)).toBe(GPU_SPEC);
    expect(readdirSync(b)).toEqual(['config.json']);
    // The cold path's own line for the same failure (no service; a spec whose edited text is over the limit too).
    await server.close();
    const big = JSON.stringify({ ...JSON.parse(GPU_SPEC), annotations: { pad: 'x'.repeat(4096) } });
    const c = bundle(big);
    const coldLog = join(dir, `log-${Math.random().toString(36).slice(2)}.json`);
    const cold = await launch(['-c', 'ulimit -f 2; trap "" XFSZ; exec "$0" "$@"', distBin('nvidia-runtime'), '--log', coldLog, '--log-format', 'json', 'create', '--bundle', c, 'id1'], { bin: '/bin/sh' });
    expect([cold.status, cold.stderr.replace(c, b)]).toEqual([1, r.stderr]);
    expect(spec(c)).toBe(big);
    const record = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    expect(record(log)).toEqual({ level: 'error', msg: r.stderr.trimEnd(), time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) });
    expect(Object.keys(record(log))).toEqual(Object.keys(record(coldLog))); // the same shape, field order included
    expect(record(coldLog).msg!.replace(c, b)).toBe(record(log).msg);
    // runc's default format (logrus text) for a --log without --log-format
    const text = join(dir, `log-${Math.random().toString(36).slice(2)}.txt`);
    const b2 = bundle();
    server = await fakeService(sendAndEnd(writeFor(b2, `${'x'.repeat(4096)}\n`)));
    const t = await launch(['-c', 'ulimit -f 2; trap "" XFSZ; exec "$0" "$@"', distBin('nvidia-runtime'), `--log=${text}`, 'create', '--bundle', b2, 'id1'], { bin: '/bin/sh' });
    expect(t.status).toBe(1);
    expect(readFileSync(text, 'utf8')).toMatch(new RegExp(`^time="[^"]+Z" level=error msg=${JSON.stringify(t.stderr.trimEnd()).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n$`));
  });

  test('runc: runc runs, config.json untouched', async () => {
    const b = bundle();
    server = await fakeService(sendAndEnd(runcAnswer(runc)));
    const args = ['run', '--bundle', b, 'id1'];
    const r = await launch(args);
    expect(r.stderr).toBe('');
    expect(runcSaw(r.stdout)).toEqual({ argv0: runc, argv: args, env: envOf({}) });
    expect(spec(b)).toBe(GPU_SPEC);
  });
});

describe('every other answer is the cold path', () => {
  const other = join('/tmp', 'other-runc');
  test.each<[string, (b: string) => Buffer]>([
    ['cold', () => records(SERVE_MAGIC, 'cold', 'not handled', '.')],
    ['runc: another runc', () => runcAnswer(other)],
    ['write: another runc', (b) => writeAnswer({ r: other, f: join(b, 'config.json'), i: statIdentity(join(b, 'config.json'))!, text: NEW_TEXT })],
    ['write: a stale identity', (b) => writeAnswer({ r: runc, f: join(b, 'config.json'), i: '1,2,33188,0,10,1,1', text: NEW_TEXT })],
    ['write: another file', (b) => writeAnswer({ r: runc, f: join(dir, 'config.json'), i: statIdentity(join(b, 'config.json'))!, text: NEW_TEXT })],
    ['write: the file by another spelling', (b) => writeAnswer({ r: runc, f: `${b}/./config.json`, i: statIdentity(join(b, 'config.json'))!, text: NEW_TEXT })],
    ['empty', () => Buffer.alloc(0)],
    ['another magic', () => records('nvidia-runtime-serve 2', 'runc', `r${runc}`, '.')],
    ['an unknown kind', () => records(SERVE_MAGIC, 'exec', `r${runc}`, '.')],
    ['runc: no end record', () => records(SERVE_MAGIC, 'runc', `r${runc}`)],
    ['runc: an unterminated end record', () => Buffer.concat([records(SERVE_MAGIC, 'runc', `r${runc}`), Buffer.from('.')])],
    ['runc: data after the end', () => Buffer.concat([runcAnswer(runc), Buffer.from('x')])],
    ['runc: a relative runc', () => runcAnswer('fake-runc')],
    ['write: truncated text', (b) => writeFor(b).subarray(0, -10)],
    ['write: no end after the text', (b) => writeFor(b).subarray(0, -2)],
    ['write: data after the end', (b) => Buffer.concat([writeFor(b), records('.')])],
    ['write: a length one too long', (b) => writeAnswer({ r: runc, f: join(b, 'config.json'), i: statIdentity(join(b, 'config.json'))!, text: NEW_TEXT, n: String(Buffer.byteLength(NEW_TEXT) + 1) })],
    ['write: a length with a leading zero', (b) => writeAnswer({ r: runc, f: join(b, 'config.json'), i: statIdentity(join(b, 'config.json'))!, text: NEW_TEXT, n: `0${Buffer.byteLength(NEW_TEXT)}` })],
    ['write: a signed length', (b) => writeAnswer({ r: runc, f: join(b, 'config.json'), i: statIdentity(join(b, 'config.json'))!, text: NEW_TEXT, n: `+${Buffer.byteLength(NEW_TEXT)}` })],
    ['write: records out of order', (b) => Buffer.concat([records(SERVE_MAGIC, 'write', `f${join(b, 'config.json')}`, `r${runc}`, `i${statIdentity(join(b, 'config.json'))}`, `n${Buffer.byteLength(NEW_TEXT)}`), Buffer.from(NEW_TEXT), Buffer.from('.\0')])],
  ])('%s', async (_, answer) => {
    const b = bundle();
    server = await fakeService(sendAndEnd(answer(b)));
    await expectCold(b);
    expect(server.connections).toBe(1);
  });

  test('write of a config.json that is now a link to the same file: cold (the runtime refuses links)', async () => {
    const b = bundle();
    const real = join(dir, `real-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(real, GPU_SPEC);
    server = await fakeService(async (_req, socket) => {
      rmSync(join(b, 'config.json'));
      symlinkSync(real, join(b, 'config.json')); // same identity through stat(2)
      socket.end(writeAnswer({ r: runc, f: join(b, 'config.json'), i: statIdentity(join(b, 'config.json'))!, text: NEW_TEXT }));
    });
    const r = await launch(['create', '--bundle', b, 'id1']);
    expect(runcSaw(r.stdout)).toBeNull();
    expect(r.stderr).toMatch(/^nvidia-runtime: .*config\.json: is a symbolic link: refusing to follow it.*\n$/); // Node's line
    expect(readFileSync(real, 'utf8')).toBe(GPU_SPEC);
  });

  test('an answer over NVR_SERVE_MAX_MESSAGE_BYTES', async () => {
    const b = bundle();
    const text = Buffer.alloc(SERVE_MAX_MESSAGE_BYTES, 0x20);
    server = await fakeService(sendAndEnd(writeFor(b, text.toString())));
    await expectCold(b);
  });

  test('an answer past NVR_SERVE_DEADLINE_MS', async () => {
    const b = bundle();
    server = await fakeService(async (_req, socket) => {
      await new Promise((ok) => setTimeout(ok, SERVE_DEADLINE_MS + 300));
      socket.end(writeFor(b));
    });
    await expectCold(b);
  });

  test('a whole answer, but the connection stays open past the deadline', async () => {
    const b = bundle();
    server = await fakeService((_req, socket) => { socket.write(runcAnswer(runc)); });
    await expectCold(b);
  });

  test('a service that never answers', async () => {
    const b = bundle();
    server = await fakeService(() => {});
    await expectCold(b);
  });
});

describe('the service is never contacted', () => {
  test('a group/world-writable socket', async () => {
    server = await fakeService(sendAndEnd(runcAnswer(runc)), { mode: 0o666 });
    await expectCold(bundle());
    expect(server.connections).toBe(0);
  });

  test('a symlink at NVR_SERVE_SOCKET (to a 0600 socket)', async () => {
    const real = join(dir, 'real.sock');
    server = await fakeService(sendAndEnd(runcAnswer(runc)), { at: real });
    symlinkSync(real, SERVE_SOCKET);
    await expectCold(bundle());
    expect(server.connections).toBe(0);
  });

  test('a trusted socket whose server is another user (SO_PEERCRED): connected, sent nothing, cold', async () => {
    // Bound (and chmod'ed) by root, so the socket file passes the trust rule; listen(2) after dropping to uid 1000,
    // so SO_PEERCRED names uid 1000. The server would answer `runc`; it prints how many bytes it got.
    const py = `import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o600)
os.setgid(1000); os.setuid(1000); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); c.settimeout(5)
n = 0
try:
    while True:
        d = c.recv(65536)
        if not d: break
        n += len(d)
except Exception: pass
try: c.sendall(bytes.fromhex(sys.argv[2]))
except Exception: pass
print(n, flush=True)`;
    const child = spawn('python3', ['-c', py, SERVE_SOCKET, runcAnswer(runc).toString('hex')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const exited = new Promise((ok) => child.once('close', ok));
    await new Promise<void>((ok) => child.stdout.on('data', (c: Buffer) => { out += c.toString(); if (out.startsWith('ready\n')) ok(); }));
    try {
      await expectCold(bundle());
    } finally {
      setTimeout(() => child.kill(), 6000).unref();
      await exited;
    }
    expect(out).toBe('ready\n0\n');
  });

  test('no socket: the cold path, silently', async () => {
    expect(existsSync(SERVE_SOCKET)).toBe(false);
    await expectCold(bundle());
  });

  test('a socket file nobody listens on: the cold path, silently', async () => {
    execFileSync('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(SERVE_SOCKET)})`]);
    chmodSync(SERVE_SOCKET, 0o600);
    await expectCold(bundle());
  });

  test.each([
    ['a create without a GPU marker', (b: string) => ['create', '--bundle', b, 'id1'], PLAIN_SPEC],
    ['state', () => ['state', 'id1'], GPU_SPEC],
    ['delete', () => ['delete', '--force', 'id1'], GPU_SPEC],
    ['no verb', () => [], GPU_SPEC],
  ])('%s: runc directly', async (_, mk, text) => {
    server = await fakeService(sendAndEnd(runcAnswer(runc)));
    const b = bundle(text);
    const r = await launch(mk(b), { cwd: b });
    expect(runcSaw(r.stdout)?.argv).toEqual(mk(b));
    expect(spec(b)).toBe(text);
    expect(server.connections).toBe(0);
  });

  test.each([
    ['--config (decided by the runtime)', (b: string) => ['create', '--config', 'config.json', '-b', b, 'id1']],
    ['an unknown flag', (b: string) => ['create', '--frob', '-b', b, 'id1']],
    ['two ids', (b: string) => ['create', '-b', b, 'id1', 'id2']],
  ])('a GPU create outside the modelled grammar: %s goes to Node directly', async (_, mk) => {
    server = await fakeService(sendAndEnd(runcAnswer(runc)));
    const b = bundle();
    await launch(mk(b));
    expect(server.connections).toBe(0);
  });

  test('a GPU create whose spec is a link goes to Node directly', async () => {
    server = await fakeService(sendAndEnd(runcAnswer(runc)));
    const b = join(dir, `linked-${Math.random().toString(36).slice(2)}`);
    mkdirSync(b);
    symlinkSync(join(bundle(), 'config.json'), join(b, 'config.json'));
    await launch(['create', '-b', b, 'id1']);
    expect(server.connections).toBe(0);
  });

  test('no launcher view for this config file: Node directly', async () => {
    server = await fakeService(sendAndEnd(runcAnswer(runc)));
    const other = join(dir, `other-${Math.random().toString(36).slice(2)}.toml`);
    writeFileSync(other, readFileSync(config));
    const b = bundle();
    const r = await launch(['create', '-b', b, 'id1'], { env: { NVIDIA_CTK_CONFIG_FILE_PATH: other } });
    expect(runcSaw(r.stdout)).not.toBeNull();
    expect(coldRan(b)).toBe(true);
    expect(server.connections).toBe(0);
    rmSync(join(VIEW_DIR, viewFileName({ euid: 0, configPath: other, envPath: PATH })), { force: true });
  });

  test('nvidia-runtime-decide prints the decision and never asks the service', async () => {
    server = await fakeService(sendAndEnd(runcAnswer(runc)));
    const b = bundle();
    const r = await launch(['create', '-b', b, 'id1'], { name: 'nvidia-runtime-decide' });
    expect(r.stdout.toString()).toBe('node\tGPU marker "NVIDIA_" in the spec\n');
    expect(server.connections).toBe(0);
    expect(spec(b)).toBe(GPU_SPEC);
  });
});


/** What a correct client makes of an answer (docs/warm-path.md), for the differential fuzz below. */
function referenceParse(buf: Buffer): { kind: 'runc' | 'write'; r: string; f?: string; i?: string; text?: Buffer } | null {
  let at = 0;
  const next = (): string | null => {
    const nul = buf.indexOf(0, at);
    if (nul < 0) return null;
    const rec = buf.subarray(at, nul).toString('latin1');
    at = nul + 1;
    return rec;
  };
  if (next() !== SERVE_MAGIC) return null;
  const kind = next();
  if (kind !== 'runc' && kind !== 'write') return null;
  const r = next();
  if (!r || r[0] !== 'r' || r[1] !== '/') return null;
  if (kind === 'runc') return next() === '.' && at === buf.length ? { kind, r: r.slice(1) } : null;
  const f = next();
  const i = next();
  const n = next();
  if (!f || f[0] !== 'f' || f[1] !== '/' || !i || i[0] !== 'i' || i.length < 2 || !n || !/^n(0|[1-9][0-9]*)$/.test(n)) return null;
  const len = Number(n.slice(1));
  if (buf.length - at !== len + 2 || buf[at + len] !== 0x2e || buf[at + len + 1] !== 0) return null;
  return { kind, r: r.slice(1), f: f.slice(1), i: i.slice(1), text: buf.subarray(at, at + len) };
}

describe('the client built with ASan+UBSan', () => {
  let bin: string;
  beforeAll(() => {
    execFileSync('make', ['-s', '-f', 'native/Makefile.dev', 'build/dev/nvidia-runtime-asan'], { cwd: PACKAGE_ROOT });
    // <prefix>/bin/nvidia-runtime with <prefix>/runtime -> dist/runtime: the launcher finds the real runtime.
    const prefix = join(dir, 'asan-prefix');
    mkdirSync(join(prefix, 'bin'), { recursive: true });
    bin = join(prefix, 'bin', 'nvidia-runtime');
    copyFileSync(join(PACKAGE_ROOT, 'build/dev/nvidia-runtime-asan'), bin);
    chmodSync(bin, 0o755);
    symlinkSync(join(PACKAGE_ROOT, 'dist', 'runtime'), join(prefix, 'runtime'));
  });

  test('mutated answers: never a finding; warm exactly when a correct client would be, with exactly its bytes', async () => {
    const seen = { write: 0, runc: 0, cold: 0 };
    let answer: Buffer = Buffer.alloc(0);
    server = await fakeService((_req, socket) => { socket.end(answer); });
    await fc.assert(fc.asyncProperty(
      fc.boolean(), fc.nat(400), fc.nat(6), fc.uint8Array({ maxLength: 4 }), fc.nat(3),
      async (asWrite, at, drop, ins, keep) => {
        const b = bundle();
        const good = asWrite ? writeFor(b, '{"a":1}\n') : runcAnswer(runc);
        const cut = Math.min(at, good.length);
        // keep == 0: the answer as it is (both outcomes must occur); else a mutation at `at`
        answer = keep === 0 ? good : Buffer.concat([good.subarray(0, cut), Buffer.from(ins), good.subarray(cut + drop)]);
        const args = ['create', '--bundle', b, 'id1'];
        const r = await launch(args, { bin });
        expect(r.stderr).toBe(''); // a sanitizer report would be here
        expect(r.status).toBe(0);
        expect(runcSaw(r.stdout)?.argv).toEqual(args);
        const ref = referenceParse(answer);
        const file = join(b, 'config.json');
        const usable = ref !== null && ref.r === runc && (ref.kind === 'runc' || (ref.f === file && ref.i !== undefined));
        if (usable && ref!.kind === 'write' && readFileSync(file).equals(ref!.text!)) seen.write++;
        else if (usable && ref!.kind === 'runc' && spec(b) === GPU_SPEC) seen.runc++;
        else {
          // cold: the real runtime's edits; a write answer whose identity no longer matched is cold too
          expect(coldRan(b)).toBe(true);
          if (usable) expect(ref!.kind === 'write' && ref!.i !== good.toString('latin1').match(/\0i([^\0]*)\0/)![1]).toBe(true);
          seen.cold++;
        }
      },
    ), { numRuns: 120, seed: 20261202 });
    expect(seen.write).toBeGreaterThan(5);
    expect(seen.runc).toBeGreaterThan(5);
    expect(seen.cold).toBeGreaterThan(30);
  }, 120_000);
});
