/**
 * `nvidia-ctk doctor` end to end: the built command against mock driver roots, a healthy host and one broken setup
 * per symptom (docs/doctor.md, docs/troubleshooting.md). Every engine config, the /dev/char directory and the
 * warm-path socket are temp paths named by flags; PATH is an empty directory, so no engine installed on this
 * machine (and none of its real config files) enters the report.
 */
import { execa } from 'execa';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MockTopology } from '../../src/mock/topology-types.js';
import { distBin, tempDir } from '../helpers/dist.js';

interface Check {
  id: string;
  status: 'PASS' | 'INFO' | 'WARN' | 'FAIL';
  message: string;
  fix?: string;
  details?: Record<string, unknown>;
}
interface Report {
  checks: Check[];
  summary: { pass: number; info: number; warn: number; fail: number; ok: boolean };
}

let dir: string;
const ctk = (args: string[]) => execa(distBin('nvidia-ctk'), args, { reject: false });

beforeAll(() => {
  dir = tempDir('doctor');
  mkdirSync(join(dir, 'empty-path'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A mock root whose GPUs report persistence mode `persistence` (per GPU), from a topology file. */
async function mockRoot(name: string, persistence: boolean[] = [true, true], extra: string[] = []): Promise<string> {
  const seed = join(dir, `${name}-seed`);
  await ctk(['mock-driver', '--root', seed, '--gpus', String(persistence.length), ...extra]);
  const t = JSON.parse(readFileSync(join(seed, 'etc/nvidia-mock/topology.json'), 'utf8')) as MockTopology;
  persistence.forEach((p, i) => (t.gpus[i]!.persistenceMode = p));
  const file = join(dir, `${name}-topology.json`);
  writeFileSync(file, JSON.stringify(t));
  const root = join(dir, name);
  const r = await ctk(['mock-driver', '--root', root, '--topology', file]);
  expect(r.exitCode).toBe(0);
  rmSync(seed, { recursive: true, force: true });
  return root;
}

interface Setup {
  root: string;
  config: string;
  specDir: string;
  daemonJson: string;
  devChar: string;
}

/** A healthy setup around `root`: config.toml 0644, a CDI spec of this root, docker registered, /dev/char links. */
async function setup(name: string, root: string): Promise<Setup> {
  const base = join(dir, `${name}-setup`);
  const specDir = join(base, 'cdi');
  const devChar = join(base, 'char');
  mkdirSync(specDir, { recursive: true });
  const config = join(base, 'config.toml');
  writeFileSync(config, `[nvidia-container-cli]\nroot = "${root}"\n\n[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["${specDir}"]\n`);
  chmodSync(config, 0o644);
  expect((await ctk(['cdi', 'generate', '--driver-root', root, '--output', join(specDir, 'nvidia.yaml')])).exitCode).toBe(0);
  const daemonJson = join(base, 'daemon.json');
  writeFileSync(daemonJson, JSON.stringify({ runtimes: { nvidia: { path: distBin('nvidia-runtime'), runtimeArgs: [] } } }, null, 2));
  expect((await ctk(['system', 'create-dev-char-symlinks', '--driver-root', root, '--dev-char-path', devChar])).exitCode).toBe(0);
  return { root, config, specDir, daemonJson, devChar };
}

function doctor(s: Setup, extra: string[] = [], env: Record<string, string> = {}) {
  const none = join(dir, 'no-such-file');
  const defaults: Record<string, string> = {
    '--config': s.config, '--docker-config': s.daemonJson, '--containerd-config': none, '--crio-config': join(dir, 'no-crio', 'crio.conf'),
    '--dev-char-path': s.devChar, '--serve-socket': join(dir, 'no-serve.sock'),
  };
  // A flag in `extra` replaces its default (given twice, yargs would make it a list).
  const flags = Object.entries(defaults).filter(([k]) => !extra.includes(k)).flat();
  return execa(distBin('nvidia-ctk'), ['doctor', ...flags, ...extra], { reject: false, env: { PATH: join(dir, 'empty-path'), ...env }, extendEnv: false });
}

async function report(s: Setup, extra: string[] = []): Promise<{ exitCode: number | undefined; report: Report }> {
  const r = await doctor(s, ['--json', ...extra]);
  return { exitCode: r.exitCode, report: JSON.parse(r.stdout) as Report };
}
const check = (rep: Report, id: string): Check => {
  const c = rep.checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id} in ${rep.checks.map((x) => x.id).join(', ')}`);
  return c;
};

describe('a healthy mock host', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setup('healthy', await mockRoot('healthy'));
  });

  test('text: every line is STATUS id: message, no WARN or FAIL, exit 0', async () => {
    const r = await doctor(s);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.at(-1)).toMatch(/^OK: \d+ pass, \d+ info, 0 warn, 0 fail$/);
    for (const l of lines.slice(0, -1)) expect(l).toMatch(/^(PASS|INFO) [\w./:-]+: \S/);
    expect(r.stdout).toMatch(/^PASS driver\.nvml: NVML .*libnvidia-ml\.so\.550\.54\.15 answered in \d+ ms/m);
    expect(r.stdout).toMatch(/^PASS driver\.cuda: CUDA 12\.4:/m);
    expect(r.stdout).toMatch(/^PASS driver\.devices: 2 GPUs: 0: /m);
    expect(r.stdout).toMatch(/^PASS driver\.persistence\.1: GPU 1 .*persistence mode on$/m);
    expect(r.stdout).toMatch(/^PASS devices\.nvidiactl: .*\/dev\/nvidiactl 195:255 mode 0666$/m);
    expect(r.stdout).toMatch(/^PASS devices\.dev-char: \d+ NVIDIA device node\(s\) linked/m);
    expect(r.stdout).toMatch(/^PASS config\.file: /m);
    expect(r.stdout).toMatch(new RegExp(`^PASS cdi\\.spec\\.${s.specDir}/nvidia\\.yaml: nvidia\\.com/gpu, .*matches driver 550\\.54\\.15$`, 'm'));
    expect(r.stdout).toMatch(/^PASS engine\.docker: docker: runtime "nvidia" -> /m);
    expect(r.stdout).toMatch(/^INFO engine\.containerd: containerd: not installed/m);
    expect(r.stdout).toMatch(/^INFO serve: no warm-path service/m);
    expect(r.stdout).toMatch(/^PASS dry-run: a GPU create .* would be granted NVIDIA_VISIBLE_DEVICES=GPU-/m);
  });

  test('--json: one document, the same checks, stable keys', async () => {
    const [text, { exitCode, report: rep }] = await Promise.all([doctor(s), report(s)]);
    expect(exitCode).toBe(0);
    expect(rep.summary).toMatchObject({ warn: 0, fail: 0, ok: true });
    expect(rep.checks.map((c) => `${c.status} ${c.id}: ${c.message}`.replace(/\d+ ms/, 'N ms'))).toEqual(
      text.stdout.trimEnd().split('\n').slice(0, -1).map((l) => l.replace(/\d+ ms/, 'N ms')),
    );
    for (const c of rep.checks) expect(Object.keys(c).every((k) => ['id', 'status', 'message', 'fix', 'details'].includes(k))).toBe(true);
    expect(check(rep, 'driver.cuda').details).toEqual({ cudaVersion: '12.4' });
    expect(check(rep, 'dry-run').details).toMatchObject({ edits: { deviceNodes: expect.arrayContaining(['/dev/nvidia0', '/dev/nvidia1']) } });
  });

  test('--driver-root overrides the config\'s root; a root without a driver fails NVML and the dry run', async () => {
    const empty = join(dir, 'empty-root');
    mkdirSync(empty, { recursive: true });
    const { exitCode, report: rep } = await report(s, ['--driver-root', empty]);
    expect(exitCode).toBe(1);
    expect(check(rep, 'driver.nvml')).toMatchObject({ status: 'FAIL', message: expect.stringContaining(`cannot read ld.so.cache ${empty}/etc/ld.so.cache`), fix: `run \`ldconfig -r ${empty}\`` });
    expect(check(rep, 'dry-run').status).toBe('FAIL');
  });

  test('$NVIDIA_CTK_CONFIG_FILE_PATH is the config when --config is not given', async () => {
    const none = join(dir, 'no-such-file');
    const r = await execa(distBin('nvidia-ctk'), ['doctor', '--json', '--docker-config', none, '--containerd-config', none, '--crio-config', none, '--dev-char-path', s.devChar, '--serve-socket', none],
      { reject: false, env: { PATH: join(dir, 'empty-path'), NVIDIA_CTK_CONFIG_FILE_PATH: s.config }, extendEnv: false });
    expect(check(JSON.parse(r.stdout) as Report, 'config.file').message).toContain(`${s.config} ($NVIDIA_CTK_CONFIG_FILE_PATH)`);
  });

  test('a --config that does not exist is bad input: one line, exit 1, no report', async () => {
    const r = await execa(distBin('nvidia-ctk'), ['doctor', '--config', join(dir, 'nope.toml')], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^nvidia-ctk: --config .*nope\.toml: no such file; /);
  });
});

describe('broken setups, one symptom each', () => {
  let root: string;
  beforeAll(async () => {
    root = await mockRoot('broken');
  });

  test('a group-writable config.toml: FAIL config.file with the chmod fix, and the dry run fails the same way', async () => {
    const s = await setup('writable', root);
    chmodSync(s.config, 0o664);
    const r = await doctor(s);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(`FAIL config.file: config.toml ${s.config}: writable by group or others (mode 664): refusing to use it\n  fix: chown root ${s.config} && chmod go-w ${s.config}\n`);
    expect(r.stdout).toMatch(/^FAIL dry-run: .*refusing to use it$/m);
  });

  test('an unknown key: WARN config.keys, exit 0', async () => {
    const s = await setup('unknown-key', root);
    writeFileSync(s.config, `no-such-key = true\n${readFileSync(s.config, 'utf8')}`);
    const r = await doctor(s);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^WARN config\.keys: .*unknown key "no-such-key" ignored$/m);
    expect(r.stdout).toMatch(/^ {2}fix: remove or correct those keys/m);
  });

  test('a CDI spec generated for another driver version: WARN stale, naming the old libcuda', async () => {
    const s = await setup('stale', root);
    const old = join(dir, 'old-driver');
    expect((await ctk(['mock-driver', '--root', old, '--gpus', '2', '--driver-version', '535.104.05', '--cuda-version', '12.2'])).exitCode).toBe(0);
    const spec = join(s.specDir, 'old.yaml');
    expect((await ctk(['cdi', 'generate', '--driver-root', old, '--output', spec])).exitCode).toBe(0);
    const { report: rep } = await report(s);
    const c = check(rep, `cdi.spec.${spec}`);
    expect(c.status).toBe('WARN');
    expect(c.message).toContain('is stale');
    expect(c.message).toContain('libcuda.so.535.104.05');
    expect(c.message).toContain('but the driver is 550.54.15');
    expect(c.fix).toContain(`nvidia-ctk cdi generate --output ${spec}`);
    expect(check(rep, `cdi.spec.${join(s.specDir, 'nvidia.yaml')}`).status).toBe('PASS');
  });

  test('an invalid CDI spec: FAIL, the valid one still PASS', async () => {
    const s = await setup('invalid-spec', root);
    writeFileSync(join(s.specDir, 'bad.json'), '{"cdiVersion": "0.5.0", "kind": "nvidia.com/gpu", "devices": []}');
    const { exitCode, report: rep } = await report(s);
    expect(exitCode).toBe(1);
    expect(check(rep, `cdi.spec.${join(s.specDir, 'bad.json')}`).status).toBe('FAIL');
    expect(check(rep, `cdi.spec.${join(s.specDir, 'nvidia.yaml')}`).status).toBe('PASS');
  });

  test('a missing device node: FAIL for that GPU\'s node, exit 1', async () => {
    const r2 = await mockRoot('missing-node');
    const s = await setup('missing-node', r2);
    rmSync(join(r2, 'dev/nvidia1'));
    const r = await doctor(s);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(`FAIL devices.nvidia1: ${r2}/dev/nvidia1 is missing (GPU 1's node): GPU containers cannot get it\n  fix: `);
  });

  test('persistence mode off: WARN for that GPU with the timeout symptom and nvidia-smi -pm 1', async () => {
    const s = await setup('persistence', await mockRoot('persistence', [true, false]));
    const r = await doctor(s);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^PASS driver\.persistence\.0: /m);
    expect(r.stdout).toMatch(/^WARN driver\.persistence\.1: GPU 1 .*persistence mode off: .*"driver rpc error: timed out"\n {2}fix: nvidia-smi -i 1 -pm 1/m);
  });

  test('a daemon.json without the nvidia runtime, with the systemd cgroup driver and no /dev/char links: both WARN', async () => {
    const s = await setup('docker', root);
    writeFileSync(s.daemonJson, JSON.stringify({ 'exec-opts': ['native.cgroupdriver=systemd'] }));
    const { report: rep } = await report(s, ['--dev-char-path', join(dir, 'no-links')]);
    expect(check(rep, 'engine.docker')).toMatchObject({ status: 'WARN', fix: expect.stringContaining('nvidia-ctk runtime configure --runtime=docker') });
    expect(check(rep, 'engine.docker').message).toContain('unknown or invalid runtime name: nvidia');
    const d = check(rep, 'devices.dev-char');
    expect(d.status).toBe('WARN');
    expect(d.message).toContain('Failed to initialize NVML: Unknown Error');
    expect(d.fix).toContain(`nvidia-ctk system create-dev-char-symlinks --create-all --driver-root ${root}`);
  });

  test('a containerd config whose conf.d drop-in registers the handler: PASS naming the drop-in', async () => {
    const s = await setup('containerd', root);
    const cd = join(dir, 'containerd');
    mkdirSync(cd, { recursive: true });
    writeFileSync(join(cd, 'config.toml'), 'version = 2\n');
    const r = await execa(distBin('nvidia-ctk'), ['runtime', 'configure', '--runtime=containerd', '--config', join(cd, 'config.toml'), '--drop-in-config', join(cd, 'conf.d/99-nvidia.toml'), '--nvidia-runtime-path', distBin('nvidia-runtime')], { reject: false });
    expect(r.exitCode).toBe(0);
    const { report: rep } = await report(s, ['--containerd-config', join(cd, 'config.toml')]);
    expect(check(rep, 'engine.containerd')).toMatchObject({ status: 'PASS', message: expect.stringContaining(`in ${join(cd, 'conf.d/99-nvidia.toml')}`) });
  });

  test('a hand-written containerd handler that drops CDI annotations: WARN; configure (reading the same config.toml) fixes it', async () => {
    const s = await setup('containerd-annotations', root);
    const cd = join(dir, 'containerd-annotations');
    mkdirSync(cd, { recursive: true });
    const main = join(cd, 'config.toml');
    const cri = 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes';
    writeFileSync(main, `version = 2\n[${cri}.runc]\nruntime_type = "io.containerd.runc.v2"\n[${cri}.nvidia]\nruntime_type = "io.containerd.runc.v2"\n` +
      `[${cri}.nvidia.options]\nBinaryName = "${distBin('nvidia-runtime')}"\n`);
    const before = check((await report(s, ['--containerd-config', main])).report, 'engine.containerd');
    expect(before).toMatchObject({ status: 'WARN', fix: expect.stringContaining('nvidia-ctk runtime configure --runtime=containerd') });
    expect(before.message).toContain('does not pass cdi.k8s.io/* annotations to the runtime');
    const r = await execa(distBin('nvidia-ctk'), ['runtime', 'configure', '--runtime=containerd', '--config', main, '--no-drop-in', '--nvidia-runtime-path', distBin('nvidia-runtime')],
      { env: { NVIDIA_CTK_CONFIG_FILE_PATH: s.config }, reject: false });
    expect(r.exitCode).toBe(0);
    expect(check((await report(s, ['--containerd-config', main])).report, 'engine.containerd').status).toBe('PASS');
  });
});
