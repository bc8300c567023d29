/** The native launcher (native/launcher/launcher.c), built with native/Makefile.dev into build/dev/. */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT, tempDir } from '../../helpers/dist.js';

const LAUNCHER = join(PACKAGE_ROOT, 'build', 'dev', 'nvidia-runtime');
const GPU_SPEC = JSON.stringify({ process: { env: ['PATH=/bin', 'NVIDIA_VISIBLE_DEVICES=all'] } });
const PLAIN_SPEC = JSON.stringify({ process: { env: ['PATH=/bin'] }, root: { path: 'rootfs' } });

let dir: string; // <dir>/bin/nvidia-runtime, <dir>/runtime/main.js, <dir>/fake-runc, <dir>/config.toml
let runc: string;
let config: string;

beforeAll(() => {
  execFileSync('make', ['-s', '-f', 'native/Makefile.dev', 'build/dev/nvidia-runtime'], { cwd: PACKAGE_ROOT });
  dir = realpathSync(tempDir('launcher'));
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'runtime'));
  copyFileSync(LAUNCHER, join(dir, 'bin', 'nvidia-runtime'));
  chmodSync(join(dir, 'bin', 'nvidia-runtime'), 0o755);
  runc = join(dir, 'fake-runc');
  // NUL-separated argv so the comparison is byte-exact (spaces, tabs, empty words, UTF-8).
  writeFileSync(runc, '#!/bin/sh\nprintf "RUNC\\0"; for a in "$@"; do printf "%s\\0" "$a"; done\n', { mode: 0o755 });
  writeFileSync(
    join(dir, 'runtime', 'main.js'),
    'process.stdout.write("NODE\\0" + JSON.stringify({ argv: process.argv, env: process.env }));\n',
  );
  config = join(dir, 'config.toml');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeEach(() => {
  chmodSync(runc, 0o755);
  writeFileSync(config, `[other]\nruntimes = ["/nope"]\n\n[nvidia-container-runtime]\nruntimes = ["${runc}", "runc"] # ours\n`);
});

function bundle(spec: string): string {
  const b = join(dir, `bundle-${Math.random().toString(36).slice(2)}`);
  mkdirSync(b);
  writeFileSync(join(b, 'config.json'), spec);
  return b;
}

function launch(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}) {
  const r = spawnSync(join(dir, 'bin', 'nvidia-runtime'), args, {
    env: { PATH: '/usr/bin:/bin', NVIDIA_CTK_CONFIG_FILE_PATH: config, ...opts.env },
    cwd: opts.cwd ?? dir,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

function runcArgv(stdout: Buffer): string[] | null {
  const words = stdout.toString().split('\0');
  if (words[0] !== 'RUNC') return null;
  return words.slice(1, -1);
}

function nodeRun(stdout: Buffer): { argv: string[]; env: Record<string, string> } | null {
  const text = stdout.toString();
  return text.startsWith('NODE\0') ? JSON.parse(text.slice(5)) : null;
}

describe('pass-through', () => {
  test('non-create verbs exec the configured runc with argv byte-exact', () => {
    const args = ['--root', '/run/x', '--log=/tmp/l.json', '--debug', 'state', 'a b\tc', '', 'ü'];
    const r = launch(args, { cwd: bundle(GPU_SPEC) }); // a GPU config.json in cwd must not matter
    expect(r.status).toBe(0);
    expect(runcArgv(r.stdout)).toEqual(args);
  });

  test.each([
    [['--root', 'create', 'state', 'id']], // a flag value that looks like a verb
    [['-root=create', '--systemd-cgroup', 'kill', 'id', '9']],
    [['--log-format', 'json', '--', 'delete', '--force', 'id']],
    [['features']],
    [[]],
  ])('verb detection follows runc global flags: %j', (args) => {
    const r = launch(args, { cwd: bundle(GPU_SPEC) });
    expect(runcArgv(r.stdout)).toEqual(args);
  });

  test('create without a GPU marker execs runc', () => {
    const args = ['--root', '/run/r', 'create', '--bundle', bundle(PLAIN_SPEC), '--pid-file', 'p', 'id1'];
    expect(runcArgv(launch(args).stdout)).toEqual(args);
  });

  test('create whose config.json cannot be read execs runc (runc reports it)', () => {
    const args = ['create', '-b', join(dir, 'no-such-bundle'), 'id1'];
    expect(runcArgv(launch(args).stdout)).toEqual(args);
  });

  test('bare runtime names are searched in PATH, skipping the launcher itself', () => {
    const pathDir = join(dir, 'path');
    mkdirSync(pathDir, { recursive: true });
    symlinkSync(join(dir, 'bin', 'nvidia-runtime'), join(pathDir, 'self'));
    copyFileSync(runc, join(pathDir, 'my-runc'));
    chmodSync(join(pathDir, 'my-runc'), 0o755);
    writeFileSync(config, '[nvidia-container-runtime]\nruntimes = [ "self", \'my-runc\' ]\n');
    const r = launch(['start', 'id'], { env: { PATH: pathDir } });
    expect(runcArgv(r.stdout)).toEqual(['start', 'id']);
  });
});

describe('GPU create/run goes to Node', () => {
  test.each([
    (b: string) => ['--root', '/run/r', 'create', '--bundle', b, '--pid-file', 'p', 'id'],
    (b: string) => ['create', `--bundle=${b}`, 'id'],
    (b: string) => ['create', '-b', b, 'id'],
    (b: string) => ['create', `-b=${b}`, 'id'],
    (b: string) => ['--debug', 'run', '-bundle', b, '-d', 'id'],
  ])('execs node with main.js and the original argv, in a sanitized env (%#)', (mk) => {
    const args = mk(bundle(GPU_SPEC));
    const r = launch(args, {
      env: { NODE_OPTIONS: '--require /evil.js', NODE_PATH: '/x', LD_PRELOAD: '/nonexistent.so', KEEP_ME: 'yes' },
    });
    const node = nodeRun(r.stdout);
    expect(node).not.toBeNull();
    expect(node!.argv.slice(1)).toEqual([join(dir, 'runtime', 'main.js'), ...args]);
    expect(node!.env.NODE_OPTIONS).toBeUndefined();
    expect(node!.env.NODE_PATH).toBeUndefined();
    expect(node!.env.LD_PRELOAD).toBeUndefined();
    expect(node!.env.KEEP_ME).toBe('yes');
    expect(node!.env.NVIDIA_RUNTIME_RUNC).toBe(runc);
  });

  test('the bundle defaults to the cwd', () => {
    const node = nodeRun(launch(['create', 'id'], { cwd: bundle(GPU_SPEC) }).stdout);
    expect(node?.argv.slice(2)).toEqual(['create', 'id']);
  });

  test('a symlinked config.json is refused, not followed', () => {
    const b = join(dir, 'linked');
    mkdirSync(b);
    symlinkSync(join(bundle(PLAIN_SPEC), 'config.json'), join(b, 'config.json'));
    const r = launch(['create', '-b', b, 'id']);
    expect(r.status).toBe(1);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toMatch(/^nvidia-runtime: .*config\.json is a symlink: .+\n$/);
  });
});

describe('errors', () => {
  test('a group-writable runc: exit 1, one stderr line, a JSON error line in the --log file', () => {
    chmodSync(runc, 0o775);
    const log = join(dir, 'log.json');
    writeFileSync(log, '{"level":"info","msg":"earlier","time":"x"}\n');
    const r = launch(['--log', log, '--log-format', 'json', 'create', '--bundle', bundle(GPU_SPEC), 'id']);
    expect(r.status).toBe(1);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toBe(`nvidia-runtime: runtime ${runc} is group- or world-writable: chmod go-w it\n`);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);
    const entry = JSON.parse(lines[1]!);
    expect(entry).toEqual({ level: 'error', msg: r.stderr.trim(), time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) });
  });

  test('no JSON line without --log-format json', () => {
    chmodSync(runc, 0o777);
    const log = join(dir, 'text.log');
    const r = launch(['--log', log, 'state', 'id']);
    expect(r.status).toBe(1);
    expect(() => readFileSync(log)).toThrow();
  });

  test('no runc found: exit 1 with a fix', () => {
    writeFileSync(config, `[nvidia-container-runtime]\nruntimes = ["${join(dir, 'missing-runc')}"]\n`);
    const r = launch(['state', 'id']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^nvidia-runtime: no low-level runtime found .*: install runc.*\n$/);
  });

  test('a runtimes key that is not a single-line string array is an error, not a silent default', () => {
    writeFileSync(config, '[nvidia-container-runtime]\nruntimes = [\n  "runc",\n]\n');
    const r = launch(['state', 'id']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot parse \[nvidia-container-runtime\] runtimes: write it as a single-line/);
  });

  test('a config.toml writable by group or others is refused: it picks the binary exec\'d as root', () => {
    writeFileSync(config, `[nvidia-container-runtime]\nruntimes = ["${join(dir, 'missing-runc')}"]\n`);
    chmodSync(config, 0o666);
    try {
      const r = launch(['state', 'id']);
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`nvidia-runtime: ${config} is writable by someone other than root: refusing to use it: make it owned by root and not group- or world-writable (chmod go-w)\n`);
    } finally {
      chmodSync(config, 0o644);
    }
  });
});
