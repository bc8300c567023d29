/**
 * The native launcher (native/launcher/launcher.c) together with the TypeScript runtime behind it, as shipped in
 * dist/: the launcher execs runc directly only while the launcher view the runtime wrote is valid, and hands every
 * other call to Node, which decides, refreshes the view and execs runc itself. `nvidia-runtime-decide` (a link to
 * the launcher) prints the launcher's decision; the real launcher is run to see what reaches runc.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SPEC_MAX_BYTES, VIEW_DIR } from '../../../src/launcher-contract.js';
import { viewFileName } from '../../../src/runtime/launcher-view.js';
import { distBin, PACKAGE_ROOT, tempDir } from '../../helpers/dist.js';

const GPU_SPEC = JSON.stringify({ process: { env: ['PATH=/bin', 'NVIDIA_VISIBLE_DEVICES=all'] } });
const PLAIN_SPEC = JSON.stringify({ process: { env: ['PATH=/bin'] }, root: { path: 'rootfs' } });
const PATH = '/usr/bin:/bin';

let dir: string;
let runc: string;
let config: string;
let configs: string[] = [];

beforeAll(() => {
  dir = realpathSync(tempDir('launcher'));
  runc = join(dir, 'fake-runc');
  // NUL-separated argv, then the environment, so the comparison is byte-exact (spaces, tabs, empty words, UTF-8).
  writeFileSync(runc, '#!/bin/sh\nprintf "RUNC\\0"; for a in "$@"; do printf "%s\\0" "$a"; done; printf "ENV\\0"; env -0\n', { mode: 0o755 });
});
afterAll(() => {
  for (const c of configs) rmSync(join(VIEW_DIR, viewFileName({ euid: 0, configPath: c, envPath: PATH })), { force: true });
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh config file per test, so every test starts without a launcher view. */
beforeEach(() => {
  chmodSync(runc, 0o755);
  config = join(dir, `config-${configs.length}.toml`);
  configs.push(config);
  writeFileSync(config, `[other]\nruntimes = ["/nope"]\n\n[nvidia-container-runtime]\nruntimes = ["${runc}", "runc"] # ours\n`);
});

function bundle(spec: string): string {
  const b = join(dir, `bundle-${Math.random().toString(36).slice(2)}`);
  mkdirSync(b);
  writeFileSync(join(b, 'config.json'), spec);
  return b;
}

interface Opts { env?: Record<string, string>; cwd?: string }
const envOf = (opts: Opts) => ({ PATH, NVIDIA_CTK_CONFIG_FILE_PATH: config, ...opts.env });

function launch(args: string[], opts: Opts = {}) {
  const r = spawnSync(distBin('nvidia-runtime'), args, { env: envOf(opts), cwd: opts.cwd ?? dir });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** The launcher's decision: ['runc', path] or ['node', reason]. */
function decide(args: string[], opts: Opts = {}): [string, string] {
  const r = spawnSync(distBin('nvidia-runtime-decide'), args, { env: envOf(opts), cwd: opts.cwd ?? dir });
  expect(r.status).toBe(0);
  const [what, why] = r.stdout.toString().trimEnd().split('\t');
  return [what!, why!];
}

function runcSaw(stdout: Buffer): { argv: string[]; env: Record<string, string> } | null {
  const words = stdout.toString().split('\0');
  if (words[0] !== 'RUNC') return null;
  const e = words.indexOf('ENV');
  const env = Object.fromEntries(words.slice(e + 1, -1).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return { argv: words.slice(1, e), env };
}

/** One call through Node writes the view; afterwards the launcher is certain. */
function warm(): void {
  expect(decide(['state', 'x'])[0]).toBe('node');
  expect(runcSaw(launch(['state', 'x']).stdout)?.argv).toEqual(['state', 'x']);
  expect(decide(['state', 'x'])).toEqual(['runc', runc]);
}

describe('the launcher view', () => {
  test('no view: Node decides, execs runc with argv byte-exact, and writes the view the launcher then uses', () => {
    expect(decide(['state', 'x'])).toEqual(['node', expect.stringMatching(/^no launcher view .* yet$/)]);
    const args = ['--root', '/run/x', '--log=/tmp/l.json', '--debug', 'state', 'a b\tc', '', 'ü'];
    expect(runcSaw(launch(args, { cwd: bundle(GPU_SPEC) }).stdout)?.argv).toEqual(args);
    expect(decide(args)).toEqual(['runc', runc]);
    expect(runcSaw(launch(args).stdout)?.argv).toEqual(args);
  });

  test('a changed config file makes the view stale until Node has run again', () => {
    warm();
    writeFileSync(config, `[nvidia-container-runtime]\nruntimes = ["${runc}"]\n`);
    expect(decide(['state', 'x'])).toEqual(['node', `${config} changed since the launcher view was written`]);
    launch(['state', 'x']);
    expect(decide(['state', 'x'])).toEqual(['runc', runc]);
  });

  test('a new runc earlier in the lookup makes the view stale, and Node picks it', () => {
    const first = join(dir, `path-${configs.length}`);
    mkdirSync(first);
    writeFileSync(config, '[nvidia-container-runtime]\nruntimes = ["my-runc"]\n');
    const later = join(dir, `later-${configs.length}`);
    mkdirSync(later);
    writeFileSync(join(later, 'my-runc'), readFileSync(runc), { mode: 0o755 });
    const env = { PATH: `${first}:${later}` };
    launch(['state', 'x'], { env });
    expect(decide(['state', 'x'], { env })).toEqual(['runc', join(later, 'my-runc')]);
    writeFileSync(join(first, 'my-runc'), readFileSync(runc), { mode: 0o755 });
    expect(decide(['state', 'x'], { env })).toEqual(['node', `${join(first, 'my-runc')} changed since the launcher view was written`]);
    expect(runcSaw(launch(['state', 'x'], { env }).stdout)).not.toBeNull();
    expect(decide(['state', 'x'], { env })).toEqual(['runc', join(first, 'my-runc')]);
    rmSync(join(VIEW_DIR, viewFileName({ euid: 0, configPath: config, envPath: env.PATH })), { force: true });
  });

  test('a view that is not root-owned or is writable by others is ignored', () => {
    warm();
    const view = join(VIEW_DIR, viewFileName({ euid: 0, configPath: config, envPath: PATH }));
    chmodSync(view, 0o666);
    expect(decide(['state', 'x'])[1]).toMatch(/is not usable$/);
    chmodSync(view, 0o644);
    expect(decide(['state', 'x'])[0]).toBe('runc');
  });

  test('each PATH and each config file has its own view', () => {
    warm();
    expect(decide(['state', 'x'], { env: { PATH: '/bin' } })[0]).toBe('node');
    expect(decide(['state', 'x'], { env: { NVIDIA_CTK_CONFIG_FILE_PATH: `${config}.other` } })[0]).toBe('node');
  });

  test('a view edited to name another runc or to drop a marker no longer matches its key or is refused', () => {
    warm();
    const view = join(VIEW_DIR, viewFileName({ euid: 0, configPath: config, envPath: PATH }));
    const text = readFileSync(view);
    writeFileSync(view, Buffer.concat([text.subarray(0, text.length - 2)])); // no end record
    expect(decide(['state', 'x'])[1]).toMatch(/incomplete|not usable/);
    launch(['state', 'x']);
    expect(readFileSync(view)).toEqual(text);
  });
});

describe('pass-through once the view is valid', () => {
  beforeEach(warm);

  test.each([
    [['--root', 'create', 'state', 'id']], // a flag value that looks like a verb
    [['-root=create', '--systemd-cgroup', 'kill', 'id', '9']],
    [['--log-format', 'json', '--', 'delete', '--force', 'id']],
    [['--cgroup-manager', 'disabled', 'delete', 'id']],
    [['features']],
    [[]],
  ])('verb detection follows runc global flags: %j', (args) => {
    expect(decide(args, { cwd: bundle(GPU_SPEC) })).toEqual(['runc', runc]);
    expect(runcSaw(launch(args, { cwd: bundle(GPU_SPEC) }).stdout)?.argv).toEqual(args);
  });

  test.each([
    (b: string) => ['--root', '/run/r', 'create', '--bundle', b, '--pid-file', 'p', 'id1'],
    (b: string) => ['create', 'id1', '--bundle', b],
    (b: string) => ['run', 'id1', '-d', '-b', b],
    (b: string) => ['create', '--pid-file', 'p', 'id1', `--bundle=${b}`],
    (b: string) => ['--cgroup-manager', 'disabled', '--log-level', 'debug', 'create', '-b', b, '--no-new-keyring', 'id1'],
  ])('create without a GPU marker execs runc (%#)', (mk) => {
    const args = mk(bundle(PLAIN_SPEC));
    expect(decide(args)).toEqual(['runc', runc]);
    expect(runcSaw(launch(args).stdout)?.argv).toEqual(args);
  });

  test('create whose config.json does not exist execs runc (runc reports it)', () => {
    expect(decide(['create', '-b', join(dir, 'no-such-bundle'), 'id1'])).toEqual(['runc', runc]);
  });
});

describe('every uncertain call goes to Node', () => {
  beforeEach(warm);

  test.each([
    [(b: string) => ['create', '--bundle', b, 'id'], /^GPU marker "NVIDIA_"/, GPU_SPEC],
    [(b: string) => ['create', 'id', '--bundle', b], /^GPU marker/, GPU_SPEC],
    [(b: string) => ['run', 'id', '-d', '-b', b], /^GPU marker/, GPU_SPEC],
    [(b: string) => ['create', '--pid-file', 'p', 'id', '--bundle', b], /^GPU marker/, GPU_SPEC],
    [(b: string) => ['--cgroup-manager', 'disabled', 'create', '-b', b, 'id'], /^GPU marker/, GPU_SPEC],
    [(b: string) => ['create', '--config', 'other.json', '-b', b, 'id'], /--config is decided by the runtime/, PLAIN_SPEC],
    [(b: string) => ['create', '--frobnicate', '-b', b, 'id'], /unknown create flag --frobnicate/, PLAIN_SPEC],
    [(b: string) => ['--frobnicate', 'create', '-b', b, 'id'], /unknown global flag --frobnicate/, PLAIN_SPEC],
    [(b: string) => ['create', '-b', b, '--', 'id'], /"--" among the create flags/, PLAIN_SPEC],
    [(b: string) => ['create', '--no-pivot', 'id', '-b', b], /is followed by id and more words/, PLAIN_SPEC],
    [(b: string) => ['create', '--no-pivot=true', '-b', b, 'id'], /boolean flag written with a value/, PLAIN_SPEC],
    [(b: string) => ['create', '-b', b, 'id', 'extra'], /exactly one container id/, PLAIN_SPEC],
    [(b: string) => ['create', '-b', '--pid-file', 'p', 'id', b], /flag -b has no value/, PLAIN_SPEC],
    [(b: string) => ['frobnicate', '-b', b, 'id'], /unknown verb frobnicate/, PLAIN_SPEC],
    [(b: string) => ['create', '-b', b, 'id'], /escape at byte \d+ .* GPU marker/, '{"process":{"env":["\\u004eVIDIA_VISIBLE_DEVICES=all"]}}'],
    [(b: string) => ['create', '-b', b, 'id'], /escape at byte/, '{"process":{"env":["NVIDIA\\u005fVISIBLE_DEVICES=0"]}}'],
    [(b: string) => ['create', '-b', b, 'id'], /escape at byte/, '{"annotations":{"cdi.k8s.io\\/gpu":"x"}}'],
    [(b: string) => ['create', '-b', b, 'id'], /malformed escape/, '{"process":{"args":["\\x"]}}'],
  ])('%#: %s', (mk, why, spec) => {
    expect(decide(mk(bundle(spec)))).toEqual(['node', expect.stringMatching(why)]);
  });

  test('escapes that cannot spell a marker character stay on the fast path', () => {
    const spec = '{"process":{"args":["sh","-c","a \\u0026\\u0026 b \\"q\\" \\\\ \\n \\u00e9 \\ud83d\\ude00"]}}';
    expect(decide(['create', '-b', bundle(spec), 'id'])).toEqual(['runc', runc]);
  });

  test('a symlinked, FIFO or oversized config.json goes to Node, which refuses it in one line', () => {
    const b = join(dir, `linked-${configs.length}`);
    mkdirSync(b);
    symlinkSync(join(bundle(PLAIN_SPEC), 'config.json'), join(b, 'config.json'));
    expect(decide(['create', '-b', b, 'id'])).toEqual(['node', expect.stringContaining('Too many levels of symbolic links')]);
    const r = launch(['create', '-b', b, 'id']);
    expect(r.status).not.toBe(0);
    expect(runcSaw(r.stdout)).toBeNull();
    expect(r.stderr).toMatch(/^nvidia-runtime: .*config\.json: is a symbolic link: refusing to follow it.*\n$/);
    const fifo = join(dir, `fifo-${configs.length}`);
    mkdirSync(fifo);
    spawnSync('mkfifo', [join(fifo, 'config.json')]);
    expect(decide(['create', '-b', fifo, 'id'])).toEqual(['node', expect.stringContaining('is not a regular file under')]);
    const big = bundle(PLAIN_SPEC);
    truncateSync(join(big, 'config.json'), SPEC_MAX_BYTES + 1); // sparse: cheap
    expect(decide(['create', '-b', big, 'id'])).toEqual(['node', expect.stringContaining('is not a regular file under')]);
  });

  test('Node runs with an allowlisted environment; runc gets the caller\'s, byte-exact', () => {
    const marker = join(dir, `node-options-ran-${configs.length}`);
    writeFileSync(join(dir, 'evil.cjs'), `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`);
    const env = { NODE_OPTIONS: `--require ${join(dir, 'evil.cjs')}`, LD_PRELOAD: '/nonexistent.so', OPENSSL_CONF: '/nonexistent.cnf', KEEP_ME: 'yes\tü' };
    expect(decide(['--frobnicate', 'state', 'x'], { env })[0]).toBe('node');
    const seen = runcSaw(launch(['--frobnicate', 'state', 'x'], { env }).stdout);
    expect(seen?.argv).toEqual(['--frobnicate', 'state', 'x']);
    expect(() => readFileSync(marker)).toThrow(); // NODE_OPTIONS never reached Node
    const { PWD: _pwd, ...runcEnv } = seen!.env; // the fake runc's shell adds PWD
    expect(runcEnv).toEqual({ PATH, NVIDIA_CTK_CONFIG_FILE_PATH: config, ...env }); // runc: exactly the caller's
  });
});

describe('config.toml is read by the runtime only', () => {
  test.each([
    ['a quoted table header', (r: string) => `["nvidia-container-runtime"]\nruntimes = ["${r}"]\n`],
    ['a dotted key', (r: string) => `nvidia-container-runtime.runtimes = ["${r}"]\n`],
    ['a multi-line array', (r: string) => `[nvidia-container-runtime]\nruntimes = [\n  "${r}",\n  "runc",\n]\n`],
    ['an inline table', (r: string) => `nvidia-container-runtime = { runtimes = ['${r}'] }\n`],
  ])('%s: the configured runc runs, for every verb', (_, toml) => {
    writeFileSync(config, toml(runc));
    for (const args of [['delete', 'x'], ['kill', 'x', 'KILL'], ['state', 'x']]) {
      const r = launch(args);
      expect(r.stderr).toBe('');
      expect(runcSaw(r.stdout)?.argv).toEqual(args);
      expect(decide(args)).toEqual(['runc', runc]);
    }
  });

  test('custom annotation prefixes are GPU markers for the launcher', () => {
    writeFileSync(config, `[nvidia-container-runtime]\nruntimes = ["${runc}"]\n[nvidia-container-runtime.modes.cdi]\nannotation-prefixes = ["gpus.example.com/"]\n`);
    launch(['state', 'x']);
    const spec = JSON.stringify({ annotations: { 'gpus.example.com/req': 'x' }, process: { env: [] } });
    expect(decide(['create', '-b', bundle(spec), 'id'])).toEqual(['node', 'GPU marker "gpus.example.com/" in the spec']);
  });

  test('a relative NVIDIA_CTK_CONFIG_FILE_PATH is refused for every verb, by the one owner', () => {
    const env = { NVIDIA_CTK_CONFIG_FILE_PATH: 'config.toml' };
    expect(decide(['delete', 'x'], { env })).toEqual(['node', 'NVIDIA_CTK_CONFIG_FILE_PATH is not an absolute path']);
    const r = launch(['delete', 'x'], { env });
    expect(r.status).toBe(1);
    expect(runcSaw(r.stdout)).toBeNull();
    expect(r.stderr).toMatch(/^nvidia-runtime: NVIDIA_CTK_CONFIG_FILE_PATH must be an absolute path.*\n$/);
  });
});

describe('errors come from the runtime, in one line, with a JSON line in the --log file', () => {
  test('a group-writable runc', () => {
    chmodSync(runc, 0o775);
    const log = join(dir, `log-${configs.length}.json`);
    writeFileSync(log, '{"level":"info","msg":"earlier","time":"x"}\n');
    const r = launch(['--log', log, '--log-format', 'json', 'create', '--bundle', bundle(GPU_SPEC), 'id']);
    expect(r.status).not.toBe(0);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^nvidia-runtime: low-level runtime ${runc} is group-writable: refusing to exec it.*\\n$`));
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[1]!)).toEqual({ level: 'error', msg: r.stderr.trim(), time: expect.any(String) });
  });

  test('no runc found', () => {
    writeFileSync(config, `[nvidia-container-runtime]\nruntimes = ["${join(dir, 'missing-runc')}"]\n`);
    const r = launch(['state', 'id']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^nvidia-runtime: no low-level runtime found: .*install runc.*\n$/);
  });

  test('a config.toml writable by group or others is refused: it picks the binary exec\'d as root', () => {
    chmodSync(config, 0o666);
    const r = launch(['state', 'id']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^nvidia-runtime: config\.toml .*: writable by group or others \(mode 666\): refusing to use it/);
    expect(decide(['state', 'id'])[0]).toBe('node');
    utimesSync(config, new Date(), new Date());
  });
});

describe('finding Node: a fixed list, the first trusted one runs, never a PATH lookup', () => {
  // The launcher built as the shipped one is, with its list of Node candidates replaced by paths in a private
  // directory (the shipped list is the build's node, then src/launcher-contract.json nodeFallbacks). Each fake node
  // prints the path it was executed as and its argv.
  let prefix: string;
  let nodes: string;
  const candidate = (name: string) => join(nodes, name);
  const BUILT = 'built-node';
  const FALLBACK = 'fallback-node';
  const LAST = 'last-node';

  beforeAll(() => {
    prefix = join(dir, 'node-lookup');
    nodes = join(prefix, 'nodes');
    mkdirSync(join(prefix, 'bin'), { recursive: true });
    mkdirSync(nodes);
    const list = [BUILT, FALLBACK, LAST].map((n) => JSON.stringify(candidate(n))).join(',');
    const src = join(PACKAGE_ROOT, 'native', 'launcher');
    const cc = spawnSync('cc', ['-std=gnu99', '-O2', '-Wall', '-Wextra', '-Werror', `-DNODE_EXECUTABLE=${JSON.stringify(candidate(BUILT))}`,
      `-DNVR_NODE_CANDIDATES=${list}`, '-o', join(prefix, 'bin', 'nvidia-runtime'), join(src, 'launcher.c'), join(src, 'serve_client.c')]);
    expect(cc.stderr.toString()).toBe('');
    expect(cc.status).toBe(0);
    symlinkSync('nvidia-runtime', join(prefix, 'bin', 'nvidia-container-runtime-hook'));
  });
  beforeEach(() => {
    for (const n of [BUILT, FALLBACK, LAST, 'real-node']) rmSync(candidate(n), { force: true });
  });

  const fakeNode = (name: string, mode = 0o755) => {
    writeFileSync(candidate(name), '#!/bin/sh\nprintf "NODE %s" "$0"; printf " %s" "$@"; echo\n');
    chmodSync(candidate(name), mode);
  };
  const run = (exe = 'nvidia-runtime') => {
    const r = spawnSync(join(prefix, 'bin', exe), ['state', 'x'], { env: { PATH: `${nodes}:${PATH}`, NVIDIA_CTK_CONFIG_FILE_PATH: join(prefix, 'none.toml') } });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };

  test('the node it was built with runs first', () => {
    fakeNode(BUILT);
    fakeNode(FALLBACK);
    expect(run()).toEqual({ status: 0, stdout: `NODE ${candidate(BUILT)} ${join(prefix, 'runtime', 'main.js')} state x\n`, stderr: '' });
  });

  test('the build\'s node gone (moved, upgraded): the fallback runs, for the runtime and the prestart hook', () => {
    fakeNode(FALLBACK);
    expect(run().stdout).toBe(`NODE ${candidate(FALLBACK)} ${join(prefix, 'runtime', 'main.js')} state x\n`);
    expect(run('nvidia-container-runtime-hook').stdout).toBe(`NODE ${candidate(FALLBACK)} ${join(prefix, 'runtime', 'prestart-hook.js')} state x\n`);
  });

  test('a candidate that is a link runs as its target, when the target is trusted', () => {
    fakeNode('real-node');
    symlinkSync('real-node', candidate(FALLBACK));
    expect(run().stdout).toMatch(new RegExp(`^NODE ${candidate('real-node')} `));
  });

  test.each([
    ['group-writable', () => fakeNode(BUILT, 0o775), 'not owned by root or writable by group/others'],
    ['world-writable', () => fakeNode(BUILT, 0o757), 'not owned by root or writable by group/others'],
    ['not owned by root', () => { fakeNode(BUILT); spawnSync('chown', ['65534', candidate(BUILT)]); }, 'not owned by root or writable by group/others'],
    ['a link to a group-writable file', () => { fakeNode('real-node', 0o775); symlinkSync('real-node', candidate(BUILT)); }, 'not owned by root or writable by group/others'],
    ['not executable', () => fakeNode(BUILT, 0o644), 'not an executable file'],
    ['a directory', () => mkdirSync(candidate(BUILT)), 'not an executable file'],
  ])('an untrusted node is refused (%s): the next candidate runs', (_, make, why) => {
    make();
    expect(run().stderr).toContain(`tried ${candidate(BUILT)} (${why}), `);
    fakeNode(FALLBACK);
    expect(run().stdout).toMatch(new RegExp(`^NODE ${candidate(FALLBACK)} `));
    rmSync(candidate(BUILT), { recursive: true, force: true });
  });

  test('a node in a directory others can write to is refused', () => {
    const open = join(prefix, 'open');
    mkdirSync(open, { recursive: true });
    chmodSync(open, 0o777);
    writeFileSync(join(open, 'node'), '#!/bin/sh\necho OPEN\n', { mode: 0o755 });
    symlinkSync(join(open, 'node'), candidate(BUILT));
    fakeNode(FALLBACK);
    expect(run().stdout).toMatch(new RegExp(`^NODE ${candidate(FALLBACK)} `));
  });

  test('none usable: one line naming every candidate, why, and the fix; nothing runs; a node on PATH is not used', () => {
    fakeNode(BUILT, 0o775);
    mkdirSync(candidate(FALLBACK));
    fakeNode('node'); // on the caller's PATH: never looked at
    const r = run();
    rmSync(candidate('node'));
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `nvidia-runtime: no usable Node.js: tried ${candidate(BUILT)} (not owned by root or writable by group/others), ` +
        `${candidate(FALLBACK)} (not an executable file), ${candidate(LAST)} (No such file or directory): ` +
        'install Node.js 20 or newer as /usr/bin/node (root-owned, not group/world-writable; the nodejs package)\n',
    );
    rmSync(candidate(FALLBACK), { recursive: true });
  });
});
