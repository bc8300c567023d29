/**
 * `--json` of every report command (docs/doctor.md, "JSON of the report commands"): `nvidia-container-cli info` and
 * `list`, `nvidia-ctk cdi list`, `explain`, `doctor`. Each document carries the data its text shows, under keys that
 * are always present.
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MockTopology } from '../../src/mock/topology-types.js';
import { distBin, tempDir } from '../helpers/dist.js';

let dir: string;
let root: string;
let topology: MockTopology;
const cli = (args: string[]) => execa(distBin('nvidia-container-cli'), args, { reject: false });
const ctk = (args: string[], env: Record<string, string> = {}) => execa(distBin('nvidia-ctk'), args, { reject: false, env });

beforeAll(async () => {
  dir = tempDir('report-json');
  root = join(dir, 'root');
  expect((await ctk(['mock-driver', '--root', root, '--gpus', '2', '--mig'])).exitCode).toBe(0);
  topology = JSON.parse(readFileSync(join(root, 'etc/nvidia-mock/topology.json'), 'utf8')) as MockTopology;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('info --json: the text\'s data, every key present (null where the text says N/A)', async () => {
  const [text, json] = await Promise.all([cli(['--root', root, 'info']), cli(['--root', root, 'info', '--json'])]);
  const info = JSON.parse(json.stdout);
  expect(Object.keys(info)).toEqual(['driverVersion', 'cudaVersion', 'nvmlVersion', 'gpus']);
  expect(text.stdout).toContain(`NVRM version:   ${info.driverVersion}`);
  expect(text.stdout).toContain(`CUDA version:   ${info.cudaVersion}`);
  expect(info.gpus).toHaveLength(topology.gpus.length);
  for (const g of info.gpus) {
    expect(Object.keys(g)).toEqual(['index', 'minor', 'name', 'brand', 'uuid', 'pciBusId', 'computeCapability', 'architecture', 'memoryTotalBytes', 'migEnabled', 'migDevices']);
    expect(text.stdout).toContain(`GPU UUID:       ${g.uuid}`);
    expect(text.stdout).toContain(`Bus Location:   ${g.pciBusId}`);
    for (const m of g.migDevices) {
      expect(Object.keys(m)).toEqual(['index', 'gpuInstanceId', 'computeInstanceId', 'uuid', 'name', 'memoryTotalBytes']);
      expect(text.stdout).toContain(`MIG UUID:       ${m.uuid}`);
    }
  }
  expect(info.gpus[0].migDevices.length).toBeGreaterThan(0);
});

test('list --json: the text\'s host paths, in order, with kind and container path', async () => {
  const args = ['--root', root, 'list', '--device', 'all', '--compute', '--utility'];
  const [text, json] = await Promise.all([cli(args), cli([...args, '--json'])]);
  const list = JSON.parse(json.stdout);
  expect(Object.keys(list)).toEqual(['root', 'capabilities', 'files']);
  expect(list.root).toBe(root);
  expect(list.capabilities).toEqual(['utility', 'compute']);
  expect(list.files.map((f: { hostPath: string }) => f.hostPath)).toEqual(text.stdout.split('\n'));
  for (const f of list.files) {
    expect(Object.keys(f)).toEqual(['kind', 'path', 'hostPath']);
    expect(f.hostPath).toBe(join(root, f.path));
  }
  expect(list.files.find((f: { path: string }) => f.path === '/dev/nvidia1')).toMatchObject({ kind: 'device' });
});

test('cdi list --json: the names the text lists, each with its kind and file, and the broken files', async () => {
  const specDir = join(dir, 'cdi');
  expect((await ctk(['cdi', 'generate', '--driver-root', root, '--output', join(specDir, 'nvidia.yaml')])).exitCode).toBe(0);
  writeFileSync(join(specDir, 'broken.json'), '{');
  const [text, json] = await Promise.all([ctk(['cdi', 'list', '--spec-dir', specDir]), ctk(['cdi', 'list', '--spec-dir', specDir, '--json'])]);
  const out = JSON.parse(json.stdout);
  expect(Object.keys(out)).toEqual(['specDirs', 'devices', 'errors']);
  expect(out.devices.map((d: { name: string }) => d.name)).toEqual(text.stdout.split('\n'));
  expect(out.devices[0]).toEqual({ name: out.devices[0].name, kind: 'nvidia.com/gpu', file: join(specDir, 'nvidia.yaml') });
  expect(out.errors).toEqual([{ file: join(specDir, 'broken.json'), reason: expect.stringContaining('not valid JSON') }]);
  expect(text.stderr).toContain(`${join(specDir, 'broken.json')}: `);
});

test('explain --json: the verdict and grant the text shows', async () => {
  const bundle = join(dir, 'bundle');
  mkdirSync(join(bundle, 'rootfs'), { recursive: true });
  await execa('runc', ['spec', '--bundle', bundle]);
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  spec.root = { path: 'rootfs' };
  spec.process.env.push('NVIDIA_VISIBLE_DEVICES=1');
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
  const config = join(dir, 'config.toml');
  writeFileSync(config, `[nvidia-container-cli]\nroot = "${root}"\n`);
  const env = { NVIDIA_CTK_CONFIG_FILE_PATH: config };
  const [text, json] = await Promise.all([ctk(['explain', '--bundle', bundle], env), ctk(['explain', '--bundle', bundle, '--json'], env)]);
  const x = JSON.parse(json.stdout);
  expect(x.wouldSucceed).toBe(true);
  expect(text.stdout).toContain(`Granted:       NVIDIA_VISIBLE_DEVICES=${x.granted}`);
  expect(x.devices.map((d: { uuid: string }) => d.uuid)).toEqual([topology.gpus[1]!.uuid]);
});

test('doctor --json: {checks: [{id, status, message, fix?, details?}], summary}', async () => {
  const none = join(dir, 'none');
  const r = await execa(distBin('nvidia-ctk'), ['doctor', '--json', '--driver-root', root, '--config', join(dir, 'config.toml'), '--docker-config', none, '--containerd-config', none, '--crio-config', none, '--dev-char-path', none, '--serve-socket', none],
    { reject: false, env: { PATH: dir }, extendEnv: false });
  const rep = JSON.parse(r.stdout);
  expect(Object.keys(rep)).toEqual(['checks', 'summary']);
  expect(Object.keys(rep.summary)).toEqual(['pass', 'info', 'warn', 'fail', 'ok']);
  for (const c of rep.checks) {
    expect(['PASS', 'INFO', 'WARN', 'FAIL']).toContain(c.status);
    expect(typeof c.id).toBe('string');
    expect(typeof c.message).toBe('string');
    expect(c.fix === undefined).toBe(c.status === 'PASS' || c.status === 'INFO');
  }
  expect(r.exitCode).toBe(rep.summary.ok ? 0 : 1);
});
