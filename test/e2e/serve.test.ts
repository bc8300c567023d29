/**
 * `nvidia-runtime serve` end to end (docs/warm-path.md): the shipped service on a private socket, spoken to from
 * this test with node:net; its answers compared with what the cold path (the shipped `nvidia-runtime create`
 * through Node) writes for the same bundle, byte for byte. Then the launcher's own client against it on the default
 * socket (through a counting relay in this test), again byte-identical to the cold path.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { SERVE_MAGIC, SERVE_SOCKET, statIdentity, VIEW_DIR } from '../../src/launcher-contract.js';
import { viewFileName } from '../../src/runtime/launcher-view.js';
import { formatRequest, parseAnswer, type ServeAnswer } from '../../src/serve/protocol.js';
import { DIST_ROOT, distBin, tempDir } from '../helpers/dist.js';

const PATH = '/usr/bin:/bin';
const gpuSpec = (env: string[] = ['NVIDIA_VISIBLE_DEVICES=all']): string =>
  JSON.stringify({ ociVersion: '1.0.2', process: { args: ['sh'], env: ['PATH=/bin', ...env], cwd: '/' }, root: { path: 'rootfs' } }, null, '\t');

let dir: string;
let runc: string;
let config: string;
let sock: string;
let service: ChildProcess;
let serviceErr = '';

function writeConfig(extra = ''): void {
  writeFileSync(config, `${extra}\n[nvidia-container-cli]\nroot = "${join(dir, 'driver')}"\n\n[nvidia-container-runtime]\nruntimes = ["${runc}"]\ndebug = "${join(dir, 'runtime.log')}"\n`, { mode: 0o644 });
}

async function waitFor(path: string, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > end) throw new Error(`${path} did not appear: ${serviceErr}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

function startService(at: string, args: string[] = []): ChildProcess {
  const child = spawn(distBin('nvidia-runtime'), ['serve', '--socket', at, ...args], { env: { PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (c) => { serviceErr += String(c); });
  return child;
}

beforeAll(async () => {
  dir = realpathSync(tempDir('serve'));
  chmodSync(dir, 0o755);
  execFileSync(distBin('nvidia-ctk'), ['mock-driver', '--root', join(dir, 'driver'), '--gpus', '2'], { stdio: 'ignore' });
  runc = join(dir, 'fake-runc');
  writeFileSync(runc, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  config = join(dir, 'config.toml');
  writeConfig();
  sock = join(dir, 'sock', 'serve.sock');
  service = startService(sock);
  await waitFor(sock);
});
afterAll(async () => {
  service?.kill('SIGTERM');
  await new Promise((ok) => (service.exitCode !== null ? ok(null) : service.once('exit', ok)));
  rmSync(join(VIEW_DIR, viewFileName({ euid: 0, configPath: config, envPath: PATH })), { force: true });
  rmSync(dir, { recursive: true, force: true });
});

/** One exchange: our request bytes, the service's whole answer (empty when it closed unanswered). */
function exchange(bytes: Buffer, at = sock): Promise<Buffer> {
  return new Promise((ok, fail) => {
    const s = connect(at);
    const chunks: Buffer[] = [];
    s.on('connect', () => s.end(bytes));
    s.on('data', (c) => chunks.push(c));
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? ok(Buffer.concat(chunks)) : fail(e)));
    s.on('close', () => ok(Buffer.concat(chunks)));
  });
}
async function ask(args: string[], opts: { cwd?: string; configPath?: string | null } = {}): Promise<ServeAnswer> {
  const req = formatRequest({ cwd: opts.cwd ?? dir, configPath: opts.configPath === null ? undefined : opts.configPath ?? config, path: PATH, args });
  const p = parseAnswer(await exchange(req));
  if (!p.ok) throw new Error(`malformed answer: ${p.reason}`);
  return p.value;
}

let n = 0;
function bundle(spec = gpuSpec()): string {
  const b = join(dir, `bundle-${++n}`);
  mkdirSync(join(b, 'rootfs'), { recursive: true });
  writeFileSync(join(b, 'config.json'), spec);
  return b;
}
/** The cold path on the bundle itself: the runtime's Node entry (of the build under test) as the launcher execs it (so no service on the host
 *  can answer for it); config.json is put back as it was afterwards. */
function coldCreate(b: string): string {
  const file = join(b, 'config.json');
  const original = readFileSync(file);
  execFileSync(process.execPath, [join(DIST_ROOT, 'dist', 'runtime', 'main.js'), 'create', '--bundle', b, `cold-${n}`], { env: { PATH, NVIDIA_CTK_CONFIG_FILE_PATH: config }, stdio: 'pipe' });
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, original);
  return text;
}

test('a GPU bundle: write, the cold path\'s bytes, the identity of the file as read; nothing written', async () => {
  const b = bundle();
  const before = readFileSync(join(b, 'config.json'));
  const a = await ask(['create', '--bundle', b, 'c1']);
  expect(a.kind).toBe('write');
  if (a.kind !== 'write') return;
  expect(a.runc).toBe(runc);
  expect(a.file).toBe(join(b, 'config.json'));
  expect(a.identity).toBe(statIdentity(join(b, 'config.json')));
  expect(readFileSync(join(b, 'config.json'))).toEqual(before);
  // A relative bundle is resolved against the request's cwd; `run` too.
  const rel = await ask(['--log-format', 'json', 'run', '-b', `bundle-${n}`, 'c2'], { cwd: dir });
  expect(rel).toEqual(a);
  expect(a.text.toString('utf8')).toBe(coldCreate(b));
  expect(a.text.toString()).toContain('/dev/nvidiactl');
});

test('the runtime log gets the cold path\'s line', async () => {
  const b = bundle();
  rmSync(join(dir, 'runtime.log'), { force: true });
  await ask(['create', '--bundle', b, 'logged']);
  const warm = readFileSync(join(dir, 'runtime.log'), 'utf8');
  expect(warm).toMatch(/create logged: granted GPU-/);
  rmSync(join(dir, 'runtime.log'));
  coldCreate(b);
  const cold = readFileSync(join(dir, 'runtime.log'), 'utf8');
  // Line for line the same, but for the time stamps and the container id.
  const norm = (log: string): string => log.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'T').replace(/cold-\d+|logged/g, 'ID');
  expect(norm(warm)).toBe(norm(cold));
});

test('no GPU after all: runc, the config.json untouched', async () => {
  for (const env of [[], ['NVIDIA_VISIBLE_DEVICES=void']]) {
    const b = bundle(gpuSpec(env));
    expect(await ask(['create', '--bundle', b, 'plain'])).toEqual({ kind: 'runc', runc });
    expect(coldCreate(b)).toBe(gpuSpec(env));
  }
});

test('errors and calls the service does not handle: cold', async () => {
  const b = bundle();
  const cold = async (args: string[], opts?: Parameters<typeof ask>[1]): Promise<string> => {
    const a = await ask(args, opts);
    expect(a.kind).toBe('cold');
    return a.kind === 'cold' ? a.reason : '';
  };
  expect(await cold(['state', 'x'])).toMatch(/not a create/);
  expect(await cold(['create', '--bundle', join(dir, 'missing'), 'x'])).toMatch(/config.json/);
  expect(await cold(['create', '--bundle', b, 'x'], { cwd: 'relative' })).toMatch(/cwd/);
  expect(await cold(['create', '--bundle', b, 'x'], { configPath: 'relative.toml' })).toMatch(/absolute/);
  expect(await cold(['create', '--bundle', b, 'x'], { configPath: join(dir, 'absent', 'c.toml') })).not.toBe(''); // defaults: no root
  const bad = join(dir, 'bad.toml');
  writeFileSync(bad, '[nvidia-container-runtime\n', { mode: 0o644 });
  expect(await cold(['create', '--bundle', b, 'x'], { configPath: bad })).toMatch(/invalid TOML/);
  writeFileSync(join(b, 'config.json'), '{"ociVersion": ');
  expect(await cold(['create', '--bundle', b, 'x'])).not.toBe('');
});

test('garbage and truncated requests: cold or closed, and the service goes on', async () => {
  const good = formatRequest({ cwd: dir, configPath: config, path: PATH, args: ['state', 'x'] });
  for (const bytes of [Buffer.from('hello'), Buffer.alloc(0), good.subarray(0, good.length - 2), Buffer.from(`${SERVE_MAGIC}\0zzz\0.\0`), Buffer.alloc(300000, 0x61)]) {
    const answer = await exchange(bytes);
    if (answer.length > 0) {
      const p = parseAnswer(answer);
      expect(p.ok && p.value.kind).toBe('cold');
    }
  }
  // A request never completed is closed by the service (else this waits until the test's timeout).
  await new Promise<void>((ok) => {
    const s = connect(sock);
    s.on('connect', () => s.write(Buffer.from(`${SERVE_MAGIC}\0`)));
    s.on('error', () => {});
    s.on('close', () => ok());
  });
  expect((await ask(['create', '--bundle', bundle(), 'after'])).kind).toBe('write');
});

test('cache invalidation: a changed config.toml changes the next answer', async () => {
  const b = bundle();
  const first = await ask(['create', '--bundle', b, 'inv']);
  expect(first.kind).toBe('write');
  writeConfig('supported-driver-capabilities = "utility"');
  const second = await ask(['create', '--bundle', b, 'inv']);
  expect(second.kind).toBe('write');
  if (first.kind !== 'write' || second.kind !== 'write') return;
  expect(second.text.equals(first.text)).toBe(false);
  expect(second.text.toString()).toBe(coldCreate(b));
  const runc2 = join(dir, 'fake-runc-2');
  writeFileSync(runc2, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  writeFileSync(config, readFileSync(config, 'utf8').replace(`runtimes = ["${runc}"]`, `runtimes = ["${runc2}"]`));
  expect(await ask(['create', '--bundle', b, 'inv'])).toMatchObject({ kind: 'write', runc: runc2 });
  writeConfig();
  expect(await ask(['create', '--bundle', b, 'inv'])).toEqual({ ...first, identity: statIdentity(join(b, 'config.json')) });
});

test('a peer that is neither root nor the service\'s user is closed unanswered', async () => {
  const open = join(dir, 'open');
  mkdirSync(open, { mode: 0o755 });
  chmodSync(open, 0o755);
  const at = join(open, 'serve.sock');
  const other = startService(at);
  try {
    await waitFor(at);
    chmodSync(at, 0o666); // for this test only: let uid 65534 connect at all
    const client = `const s=require('net').connect(${JSON.stringify(at)});const c=[];s.on('connect',()=>s.end(Buffer.from(${JSON.stringify(formatRequest({ cwd: dir, configPath: config, path: PATH, args: ['state', 'x'] }).toString('latin1'))},'latin1')));s.on('data',d=>c.push(d));s.on('error',()=>{});s.on('close',()=>process.stdout.write('got '+Buffer.concat(c).length));`;
    const out = execFileSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e', client], { encoding: 'utf8' });
    expect(out).toBe('got 0');
    // Root is answered on the same socket.
    expect(parseAnswer(await exchange(formatRequest({ cwd: dir, configPath: config, path: PATH, args: ['state', 'x'] }), at))).toMatchObject({ ok: true, value: { kind: 'cold' } });
  } finally {
    other.kill('SIGTERM');
    await new Promise((ok) => (other.exitCode !== null ? ok(null) : other.once('exit', ok)));
  }
  expect(existsSync(at)).toBe(false); // removed on SIGTERM
});

test('refuses a non-root start in one line; --idle-exit exits', async () => {
  const r = (() => {
    try {
      execFileSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', distBin('nvidia-runtime'), 'serve', '--socket', join(dir, 'x.sock')], { stdio: 'pipe', env: { PATH } });
      return { status: 0, stderr: '' };
    } catch (e) {
      const err = e as { status: number; stderr: Buffer };
      return { status: err.status, stderr: String(err.stderr) };
    }
  })();
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/^nvidia-runtime serve: must run as root[^\n]*\n$/);
  const at = join(dir, 'idle.sock');
  const idle = startService(at, ['--idle-exit', '1']);
  const code = await new Promise((ok) => idle.once('exit', ok));
  expect(code).toBe(0);
  expect(existsSync(at)).toBe(false);
});

const socketActivate = ['/usr/bin/systemd-socket-activate', '/bin/systemd-socket-activate'].find((p) => existsSync(p));
(socketActivate ? test : test.skip)('under socket activation (LISTEN_FDS): fd 3, and the socket stays with its owner', async () => {
  const at = join(dir, 'activated.sock');
  const child = spawn(socketActivate!, ['-l', at, '-E', 'PATH', distBin('nvidia-runtime'), 'serve', '--idle-exit', '2'], { env: { PATH }, stdio: 'ignore' });
  try {
    await waitFor(at);
    const b = bundle();
    const a = await ask(['create', '--bundle', b, 'act']); // the main service, for comparison
    expect(a.kind).toBe('write');
    const p = parseAnswer(await exchange(formatRequest({ cwd: dir, configPath: config, path: PATH, args: ['create', '--bundle', b, 'act'] }), at));
    expect(p).toMatchObject({ ok: true, value: { kind: 'write', runc } });
    if (p.ok && a.kind === 'write') expect(p.value).toEqual(a);
  } finally {
    child.kill('SIGTERM');
    await new Promise((ok) => (child.exitCode !== null ? ok(null) : child.once('exit', ok)));
  }
  expect(existsSync(at)).toBe(true); // not ours to remove: it belongs to whoever activated us
});

// ---- the launcher's client against the real service -------------------------------------------------------------

describe('through the launcher (native/launcher/serve_client.c) on the default socket', () => {
  let relay: Server | undefined;
  const seen: Buffer[] = [];
  afterAll(async () => {
    await new Promise((ok) => (relay ? relay.close(ok) : ok(null)));
    rmSync(SERVE_SOCKET, { force: true });
  });

  test('nvidia-runtime create: the service answers, the launcher writes the cold path\'s bytes', async () => {
    const env = { PATH, NVIDIA_CTK_CONFIG_FILE_PATH: config };
    const b = bundle();
    const cold = coldCreate(b);
    // A relay on NVR_SERVE_SOCKET to the service, recording its answers (proof that the warm path ran).
    rmSync(SERVE_SOCKET, { force: true });
    mkdirSync(VIEW_DIR, { recursive: true, mode: 0o755 });
    relay = createServer({ allowHalfOpen: true }, (client: Socket) => {
      const upstream = connect(sock);
      const answer: Buffer[] = [];
      client.on('data', (c) => upstream.write(c));
      client.on('end', () => upstream.end());
      client.on('error', () => upstream.destroy());
      upstream.on('data', (c) => { answer.push(c); client.write(c); });
      upstream.on('end', () => { seen.push(Buffer.concat(answer)); client.end(); });
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((ok) => relay!.listen(SERVE_SOCKET, ok));
    chmodSync(SERVE_SOCKET, 0o600);
    execFileSync(distBin('nvidia-runtime'), ['state', 'x'], { env, stdio: 'pipe' }); // the launcher view
    const before = seen.length;
    // Asynchronous: the relay runs in this very process.
    await execa(distBin('nvidia-runtime'), ['create', '--bundle', b, 'warm'], { env, cwd: dir, extendEnv: false });
    const answers = seen.slice(before).filter((a) => a.includes(Buffer.from(`f${join(b, 'config.json')}\0`)));
    expect(answers).toHaveLength(1);
    expect(parseAnswer(answers[0]!)).toMatchObject({ ok: true, value: { kind: 'write' } });
    expect(readFileSync(join(b, 'config.json'), 'utf8')).toBe(cold);
  });
});
