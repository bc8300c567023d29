#!/usr/bin/env node
// `npm run bench`: nvidia-runtime against plain runc, measured in the same run, interleaved, medians and ratios.
// Needs root, a built tree (npm ci), runc, and dockerd for the docker rows (started privately here).
// Writes the table to stdout and to bench/results.json; docs/performance.md records the figures.
import { spawnSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

process.umask(0o022); // the runtime refuses a group/world-writable config.toml
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (n) => join(root, 'dist', 'bin', n);
const N = Number(process.env.BENCH_ITERATIONS ?? 25);
const dir = mkdtempSync(join(tmpdir(), 'nvr-bench-'));
const runcRoot = join(dir, 'state');
mkdirSync(runcRoot);

function sh(cmd, args, opts = {}) {
  // A created container inherits our stdio: with pipes, spawnSync would wait for the container to exit.
  const stdio = args.includes('create') ? 'ignore' : ['ignore', 'pipe', 'pipe'];
  const r = spawnSync(cmd, args, { stdio, ...opts });
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status} ${r.stderr ?? ''}`);
  return r;
}
function timed(fn) {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

// --- fixtures: mock driver with 8 GPUs, a glibc-ish rootfs (so the ld cache hook really runs), bundles
const driverRoot = join(dir, 'driver');
sh(bin('nvidia-ctk'), ['mock-driver', '--root', driverRoot, '--gpus', '8']);
const configFile = join(dir, 'config.toml');
writeFileSync(configFile, `[nvidia-container-cli]\nroot = "${driverRoot}"\n`);
const env = { ...process.env, NVIDIA_CTK_CONFIG_FILE_PATH: configFile };

const rootfs = join(dir, 'rootfs');
for (const d of ['bin', 'sbin', 'etc/ld.so.conf.d', 'lib64', 'lib/x86_64-linux-gnu', 'dev', 'proc', 'sys', 'tmp']) mkdirSync(join(rootfs, d), { recursive: true });
copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
for (const a of ['sh', 'true']) symlinkSync('busybox', join(rootfs, 'bin', a));
copyFileSync('/lib64/ld-linux-x86-64.so.2', join(rootfs, 'lib64/ld-linux-x86-64.so.2'));
copyFileSync('/lib/x86_64-linux-gnu/libc.so.6', join(rootfs, 'lib/x86_64-linux-gnu/libc.so.6'));
writeFileSync(join(rootfs, 'etc/ld.so.conf'), 'include /etc/ld.so.conf.d/*.conf\n');
sh('ldconfig', ['-r', rootfs]);

function bundle(name, extraEnv) {
  const b = join(dir, name);
  mkdirSync(b);
  sh('runc', ['spec', '--bundle', b]);
  const spec = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
  spec.root = { path: rootfs, readonly: false };
  spec.process.terminal = false;
  spec.process.args = ['true'];
  spec.process.env.push(...extraEnv);
  writeFileSync(join(b, 'config.json'), JSON.stringify(spec));
  copyFileSync(join(b, 'config.json'), join(b, 'config.orig.json'));
  return b;
}
const plain = bundle('plain', []);
const gpu = bundle('gpu', ['NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_DRIVER_CAPABILITIES=all']);

let seq = 0;
function lifecycle(runtime, b) {
  const id = `b${++seq}`;
  copyFileSync(join(b, 'config.orig.json'), join(b, 'config.json')); // every create starts from the engine's spec
  return timed(() => {
    sh(runtime, ['--root', runcRoot, 'create', '--bundle', b, id], { env });
    sh(runtime, ['--root', runcRoot, 'start', id], { env });
    sh(runtime, ['--root', runcRoot, 'delete', '--force', id], { env });
  });
}

const rows = [];
function compare(name, base, ours, target) {
  const a = [], b = [];
  base(); ours(); // warm caches
  for (let i = 0; i < N; i++) { a.push(base()); b.push(ours()); }
  const row = { name, runcMs: +median(a).toFixed(2), nvidiaMs: +median(b).toFixed(2), ratio: +(median(b) / median(a)).toFixed(2), target };
  rows.push(row);
  row.verdict = row.ratio <= target ? 'PASS' : 'MISS';
  console.log(`${name.padEnd(38)} runc ${String(row.runcMs).padStart(8)} ms   nvidia-runtime ${String(row.nvidiaMs).padStart(8)} ms   ${row.ratio.toFixed(2)}x  (target <= ${target}x) ${row.verdict}`);
}

console.log(`nvidia-runtime benchmark: ${N} interleaved iterations each, medians (${new Date().toISOString()})`);
// 1. pass-through: `state` of an existing container
sh('runc', ['--root', runcRoot, 'create', '--bundle', plain, 'st']);
compare('pass-through (state)', () => timed(() => sh('runc', ['--root', runcRoot, 'state', 'st'])), () => timed(() => sh(bin('nvidia-runtime'), ['--root', runcRoot, 'state', 'st'], { env })), 1.1);
sh('runc', ['--root', runcRoot, 'delete', '--force', 'st']);
// 2. non-GPU lifecycle
compare('non-GPU create+start+delete', () => lifecycle('runc', plain), () => lifecycle(bin('nvidia-runtime'), plain), 1.05);
// 3. GPU lifecycle: 8 GPUs, all capabilities, against runc running the same container without GPUs
compare('GPU (8, all caps) create+start+delete', () => lifecycle('runc', plain), () => lifecycle(bin('nvidia-runtime'), gpu), 1.9);

// 4. docker run, with a private dockerd
async function dockerRows() {
  const ddir = mkdtempSync(join(tmpdir(), 'nvr-bd-'));
  const sock = `unix://${join(ddir, 'd.sock')}`;
  writeFileSync(join(ddir, 'daemon.json'), JSON.stringify({ runtimes: { nvidia: { path: bin('nvidia-runtime') } } }));
  const d = spawn('dockerd', ['--iptables=false', '--bridge=none', '--config-file', join(ddir, 'daemon.json'), '-H', sock, '--data-root', join(ddir, 'data'), '--exec-root', join(ddir, 'x'), '--pidfile', join(ddir, 'pid')], { env, stdio: 'ignore' });
  try {
    for (let i = 0; i < 120 && sh('docker', ['-H', sock, 'info'], { allowFail: true }).status !== 0; i++) await new Promise((r) => setTimeout(r, 500));
    sh('tar', ['-C', rootfs, '-cf', join(ddir, 'img.tar'), '.']);
    sh('docker', ['-H', sock, 'import', join(ddir, 'img.tar'), 'bench:latest']);
    const run = (args) => () => timed(() => sh('docker', ['-H', sock, 'run', '--rm', '--network', 'none', ...args, 'bench:latest', 'true']));
    const saved = N;
    compare('docker run, no GPU', run(['--runtime=runc']), run(['--runtime=nvidia']), 1.05);
    compare('docker run, 8 GPUs all caps', run(['--runtime=runc']), run(['--runtime=nvidia', '-e', 'NVIDIA_VISIBLE_DEVICES=all', '-e', 'NVIDIA_DRIVER_CAPABILITIES=all']), 1.9);
    void saved;
  } finally {
    d.kill('SIGTERM');
    await new Promise((r) => d.on('exit', r));
    rmSync(ddir, { recursive: true, force: true });
  }
}
if (process.env.BENCH_SKIP_DOCKER !== '1' && spawnSync('which', ['dockerd']).status === 0) await dockerRows();

writeFileSync(join(root, 'bench', 'results.json'), JSON.stringify({ date: new Date().toISOString(), iterations: N, rows }, null, 2) + '\n');
rmSync(dir, { recursive: true, force: true });
