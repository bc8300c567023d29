#!/usr/bin/env node
// `npm run bench`: nvidia-runtime against plain runc, measured in the same run, interleaved, medians and ratios.
// Needs root, a built tree (npm ci), runc, and dockerd for the docker rows (started privately here).
// Writes the table to stdout and to bench/results.json; docs/performance.md records the figures.
import { spawnSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { createConnection } from 'node:net';
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
  // A created container inherits our stdio: with pipes, spawnSync would wait for the container to exit (stderr is
  // passed through as it is, so that a failing create says why).
  const stdio = args.includes('create') ? ['ignore', 'ignore', 'inherit'] : ['ignore', 'pipe', 'pipe'];
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

// --- fixtures: mock driver roots (8 GPUs; 64 GPUs; 8 GPUs with MIG), a CDI spec of the 8-GPU root, a glibc-ish
// rootfs (so the ld cache hook really runs), bundles
// The runtime's own environment: the launcher gives Node an allowlist (PATH, NVIDIA_CTK_CONFIG_FILE_PATH, LISTEN_*)
// only; nothing of ours (NODE_OPTIONS, NODE_EXTRA_CA_CERTS, which slows a bare node start ~3x here) reaches it.
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NODE_')));
function driver(name, flags) {
  const d = join(dir, name);
  sh(bin('nvidia-ctk'), ['mock-driver', '--root', d, ...flags]);
  return d;
}
function configFor(name, driverRoot, extra = '') {
  const f = join(dir, `${name}.toml`);
  writeFileSync(f, `[nvidia-container-cli]\nroot = "${driverRoot}"\n${extra}`);
  return { ...baseEnv, NVIDIA_CTK_CONFIG_FILE_PATH: f };
}
const driverRoot = driver('driver', ['--gpus', '8']);
const env = configFor('config', driverRoot);
const env64 = configFor('config64', driver('driver64', ['--gpus', '64']));
const envMig = configFor('config-mig', driver('driver-mig', ['--gpus', '8', '--mig']));
const cdiDir = join(dir, 'cdi');
mkdirSync(cdiDir);
sh(bin('nvidia-ctk'), ['cdi', 'generate', '--output', join(cdiDir, 'nvidia.yaml')], { env });
const envCdi = configFor('config-cdi', driverRoot, `[nvidia-container-runtime]\nmode = "cdi"\n[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["${cdiDir}"]\n`);

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
function lifecycle(runtime, b, e = env) {
  const id = `b${++seq}`;
  copyFileSync(join(b, 'config.orig.json'), join(b, 'config.json')); // every create starts from the engine's spec
  return timed(() => {
    sh(runtime, ['--root', runcRoot, 'create', '--bundle', b, id], { env: e });
    sh(runtime, ['--root', runcRoot, 'start', id], { env: e });
    sh(runtime, ['--root', runcRoot, 'delete', '--force', id], { env: e });
  });
}
/** create only (timed), then an untimed delete. */
function createOnly(runtime, b, e = env) {
  const id = `c${++seq}`;
  copyFileSync(join(b, 'config.orig.json'), join(b, 'config.json'));
  const t = timed(() => sh(runtime, ['--root', runcRoot, 'create', '--bundle', b, id], { env: e }));
  sh('runc', ['--root', runcRoot, 'delete', '--force', id], { env: e });
  return t;
}
const ours = bin('nvidia-runtime');

/** Runs every fn N times, interleaved (after one warm-up each); the medians, in order. */
function interleaved(fns) {
  const xs = fns.map(() => []);
  for (const f of fns) f();
  for (let i = 0; i < N; i++) fns.forEach((f, k) => xs[k].push(f()));
  return xs.map((x) => median(x));
}

const rows = [];
const figures = [];
function row(name, runcMs, nvidiaMs, target) {
  const r = { name, runcMs: +runcMs.toFixed(2), nvidiaMs: +nvidiaMs.toFixed(2), ratio: +(nvidiaMs / runcMs).toFixed(2), target };
  r.verdict = target === undefined ? 'info' : r.ratio <= target ? 'PASS' : 'MISS';
  rows.push(r);
  const verdict = target === undefined ? '(figure below)' : `(target <= ${target}x) ${r.verdict}`;
  console.log(`${name.padEnd(44)} runc ${runcMs.toFixed(2).padStart(8)} ms   nvidia-runtime ${nvidiaMs.toFixed(2).padStart(8)} ms   ${r.ratio.toFixed(2)}x  ${verdict}`);
  return r;
}
/** One summary line per figure: `figure: <value> (target <t>) PASS|MISS`. */
function figure(name, value, unit, target, pass, detail = {}) {
  const f = { figure: name, value: +value.toFixed(2), unit, target, verdict: pass ? 'PASS' : 'MISS', ...detail };
  figures.push(f);
  return f;
}
function skipped(name, target, reason) {
  figures.push({ figure: name, value: null, target, verdict: 'SKIP', reason });
}
const ratioFigure = (name, r, target, label = `<= ${target}x`) => figure(name, r.ratio, 'x', label, r.ratio <= target, { runcMs: r.runcMs, nvidiaMs: r.nvidiaMs });

console.log(`nvidia-runtime benchmark: ${N} interleaved iterations each, medians (${new Date().toISOString()})`);
const serveSock = '/run/nvidia-runtime/serve.sock';
if (existsSync(serveSock)) console.log(`note: ${serveSock} exists before the cold rows: a running service may serve them`);

// 1. pass-through: `state` of an existing container
sh('runc', ['--root', runcRoot, 'create', '--bundle', plain, 'st']);
{
  const [a, b] = interleaved([() => timed(() => sh('runc', ['--root', runcRoot, 'state', 'st'])), () => timed(() => sh(ours, ['--root', runcRoot, 'state', 'st'], { env }))]);
  ratioFigure('pass-through state', row('pass-through (state)', a, b, 1.1), 1.1);
}
sh('runc', ['--root', runcRoot, 'delete', '--force', 'st']);
// 2. non-GPU lifecycle
{
  const [a, b] = interleaved([() => lifecycle('runc', plain), () => lifecycle(ours, plain)]);
  ratioFigure('non-GPU lifecycle', row('non-GPU create+start+delete', a, b, 1.05), 1.05);
}
// 3. GPU lifecycles, cold (every create starts Node): 8 GPUs direct, the same through CDI (mode = "cdi", the YAML
// spec `cdi generate` wrote), 64 GPUs, 8 GPUs with MIG; all against runc running the container without GPUs.
// The spec a create of ours writes, given to plain runc (`edited`): the floor of every GPU row (runc's binds, nodes
// and our hook, nothing of ours), and in 4. the base of our own share (launcher, service, write).
const edited = join(dir, 'gpu-edited');
mkdirSync(edited);
copyFileSync(join(gpu, 'config.orig.json'), join(gpu, 'config.json'));
sh(ours, ['--root', runcRoot, 'create', '--bundle', gpu, 'probe'], { env });
sh('runc', ['--root', runcRoot, 'delete', '--force', 'probe']);
copyFileSync(join(gpu, 'config.json'), join(edited, 'config.orig.json'));
let gpuDirectMs;
{
  const [r, d, c, g64, mig, f] = interleaved([
    () => lifecycle('runc', plain),
    () => lifecycle(ours, gpu, env),
    () => lifecycle(ours, gpu, envCdi),
    () => lifecycle(ours, gpu, env64),
    () => lifecycle(ours, gpu, envMig),
    () => lifecycle('runc', edited),
  ]);
  gpuDirectMs = d;
  ratioFigure('GPU lifecycle direct cold', row('GPU (8, all caps) create+start+delete', r, d, 2.5), 2.5);
  row('floor: runc alone on the spec ours writes', r, f);
  row('GPU (8, CDI mode) create+start+delete', r, c);
  figure('CDI mode vs direct', c / d, 'x', '<= 1.10x (within 10 %)', c / d <= 1.1, { directMs: +d.toFixed(2), cdiMs: +c.toFixed(2) });
  row('GPU (64, all caps) create+start+delete', r, g64);
  figure('64-GPU root vs 8-GPU', g64 / d, 'x', '<= 1.1x', g64 / d <= 1.1, { gpu8Ms: +d.toFixed(2), gpu64Ms: +g64.toFixed(2) });
  row('GPU (8 with MIG) create+start+delete', r, mig);
  figure('MIG topology vs 8-GPU', mig / d, 'x', '<= 1.1x', mig / d <= 1.1, { gpu8Ms: +d.toFixed(2), migMs: +mig.toFixed(2) });
}

// 4. The warm path, when `nvidia-runtime serve` works here: started on its socket, used once it appears.
/** Whether a server accepts connections on the unix socket `path` now. */
function connectable(path) {
  return new Promise((resolve) => {
    const c = createConnection(path);
    const t = setTimeout(() => { c.destroy(); resolve(false); }, 1000);
    c.on('connect', () => { clearTimeout(t); c.destroy(); resolve(true); });
    c.on('error', () => { clearTimeout(t); resolve(false); });
  });
}
async function startService() {
  if (existsSync(serveSock) && (await connectable(serveSock))) {
    console.log(`note: a service already answers on ${serveSock}; the warm rows use it`);
    return { proc: undefined };
  }
  const proc = spawn(ours, ['serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  let exited = false;
  proc.on('exit', () => { exited = true; });
  // Ours only while it runs: a socket some other process (a test) made meanwhile does not count.
  for (let i = 0; i < 50 && !exited && !(existsSync(serveSock) && (await connectable(serveSock))); i++) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 200));
  if (!exited && existsSync(serveSock) && (await connectable(serveSock))) return { proc };
  if (!exited) proc.kill('SIGTERM');
  return { reason: exited ? `\`nvidia-runtime serve\` does not run here (exit ${proc.exitCode}: ${err.trim().split('\n')[0].replace(/\\n/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 120) || 'no message'})` : `no service on ${serveSock} within 5 s` };
}
async function warmRows(service) {
  if (service.reason) {
    console.log(`warm path skipped: ${service.reason}`);
    skipped('GPU lifecycle warm', '<= 1.4x', service.reason);
    skipped('own share of a warm GPU create', '<= 5 ms', service.reason);
    return;
  }
  // The floor: plain runc running the very spec ours writes (its binds, nodes and our hook), with nothing of ours.
  const [r, w, f] = interleaved([() => lifecycle('runc', plain), () => lifecycle(ours, gpu, env), () => lifecycle('runc', edited)]);
  ratioFigure('GPU lifecycle warm', row('GPU (8, all caps) lifecycle, warm path', r, w, 1.4), 1.4);
  row('floor: runc alone on the spec ours writes', r, f);
  const [rc, oc] = interleaved([() => createOnly('runc', edited), () => createOnly(ours, gpu, env)]);
  console.log(`${'GPU create, warm: ours vs runc on our spec'.padEnd(44)} runc ${rc.toFixed(2).padStart(8)} ms   nvidia-runtime ${oc.toFixed(2).padStart(8)} ms   +${(oc - rc).toFixed(2)} ms`);
  figure('own share of a warm GPU create', oc - rc, 'ms', '<= 5 ms', oc - rc <= 5, { runcOnOurSpecMs: +rc.toFixed(2), oursMs: +oc.toFixed(2) });
}

// 5. docker run, with a private dockerd (with GPUs: warm when the service runs, else cold)
async function dockerRows(label) {
  const ddir = mkdtempSync(join(tmpdir(), 'nvr-bd-'));
  const sock = `unix://${join(ddir, 'd.sock')}`;
  writeFileSync(join(ddir, 'daemon.json'), JSON.stringify({ runtimes: { nvidia: { path: ours } } }));
  const d = spawn('dockerd', ['--iptables=false', '--bridge=none', '--config-file', join(ddir, 'daemon.json'), '-H', sock, '--data-root', join(ddir, 'data'), '--exec-root', join(ddir, 'x'), '--pidfile', join(ddir, 'pid')], { env, stdio: 'ignore' });
  try {
    for (let i = 0; i < 120 && sh('docker', ['-H', sock, 'info'], { allowFail: true }).status !== 0; i++) await new Promise((r) => setTimeout(r, 500));
    sh('tar', ['-C', rootfs, '-cf', join(ddir, 'img.tar'), '.']);
    sh('docker', ['-H', sock, 'import', join(ddir, 'img.tar'), 'bench:latest']);
    const run = (args) => () => timed(() => sh('docker', ['-H', sock, 'run', '--rm', '--network', 'none', ...args, 'bench:latest', 'true']));
    const [a, b, c] = interleaved([run(['--runtime=runc']), run(['--runtime=nvidia']), run(['--runtime=nvidia', '-e', 'NVIDIA_VISIBLE_DEVICES=all', '-e', 'NVIDIA_DRIVER_CAPABILITIES=all'])]);
    row('docker run, no GPU', a, b, 1.05);
    const g = row(`docker run, 8 GPUs all caps (${label})`, a, c, 1.2);
    figure('docker run with 8 GPUs', (g.ratio - 1) * 100, '%', '<= +20 %', g.ratio <= 1.2, { path: label, runcMs: g.runcMs, nvidiaMs: g.nvidiaMs });
  } finally {
    d.kill('SIGTERM');
    await new Promise((r) => d.on('exit', r));
    rmSync(ddir, { recursive: true, force: true });
  }
}

const service = process.env.BENCH_SKIP_SERVE === '1' ? { reason: 'BENCH_SKIP_SERVE=1' } : await startService();
try {
  await warmRows(service);
  if (process.env.BENCH_SKIP_DOCKER !== '1' && spawnSync('which', ['dockerd']).status === 0) await dockerRows(service.reason ? 'cold path' : 'warm path');
  else skipped('docker run with 8 GPUs', '<= +20 %', 'no dockerd (or BENCH_SKIP_DOCKER=1)');
} finally {
  if (service.proc) {
    service.proc.kill('SIGTERM');
    await new Promise((r) => (service.proc.exitCode !== null ? r() : service.proc.on('exit', r)));
  }
}

console.log('');
for (const f of figures) {
  const v = f.value === null ? 'n/a' : f.unit === '%' ? `${f.value >= 0 ? '+' : ''}${f.value.toFixed(1)} %` : f.unit === 'ms' ? `${f.value.toFixed(2)} ms` : `${f.value.toFixed(2)}x`;
  console.log(`${f.figure}: ${v} (target ${f.target}) ${f.verdict}${f.reason ? ` (${f.reason})` : ''}`);
}
void gpuDirectMs;
writeFileSync(join(root, 'bench', 'results.json'), JSON.stringify({ date: new Date().toISOString(), iterations: N, node: process.version, rows, figures }, null, 2) + '\n');
rmSync(dir, { recursive: true, force: true });
