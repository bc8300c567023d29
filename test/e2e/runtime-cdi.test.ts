/**
 * nvidia-runtime's CDI path with real runc: devices named by CDI names (NVIDIA_VISIBLE_DEVICES, annotations,
 * mode = "cdi") come from a CDI spec generated for the mock driver root; Docker's `--gpus` hook is removed; and the
 * CDI path grants exactly what the direct path grants for the same request.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCdiSpec } from '../../src/cdi/generate.js';
import { mutableDefaults } from '../../src/config/defaults.js';
import type { FrozenRuntimeConfig, RuntimeMode } from '../../src/config/schema.js';
import { loadHostInventory } from '../../src/host/inventory.js';
import { planCreate } from '../../src/runtime/plan.js';
import { distBin } from '../helpers/dist.js';
import { makeBusyboxRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, runtimeCreate, runtimeRun, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let specDir: string;
let fresh = 0;

/** config.toml for the mock root with the CDI spec dir (writeConfig cannot add keys to [nvidia-container-runtime]). */
function cdiHost(name: string, mode: RuntimeMode = 'auto', top = ''): GpuHost {
  const configFile = join(host.dir, `${name}.toml`);
  writeFileSync(
    configFile,
    `${top}\n[nvidia-container-cli]\nroot = "${host.driverRoot}"\n\n[nvidia-container-runtime]\ndebug = "${configFile}.log"\nmode = "${mode}"\n\n` +
      `[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["${join(host.dir, 'no-such-dir')}", "${specDir}"]\n`,
  );
  return { ...host, configFile };
}

beforeAll(async () => {
  host = await makeGpuHost(4);
  specDir = join(host.dir, 'cdi');
  mkdirSync(specDir);
  const spec = generateCdiSpec(loadHostInventory({ driverRoot: host.driverRoot }), { hookPath: distBin('nvidia-runtime-hook') });
  writeFileSync(join(specDir, 'nvidia.json'), JSON.stringify(spec, null, 2));
});
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

const gpuNodes = (out: string) =>
  out.split('\n').filter((l) => /^c.* nvidia\d+$/.test(l)).map((l) => /(\S+)$/.exec(l)![1]).sort();

interface BundleEdit {
  env?: string[];
  annotations?: Record<string, string>;
  prestart?: { path: string; args?: string[] }[];
}

async function bundleFor(h: GpuHost, edit: BundleEdit, args = ['sh', '-c', 'ls -l /dev; echo ---; ls /usr/lib/x86_64-linux-gnu 2>&1; echo ---; env']) {
  // A fresh rootfs each time: runc leaves the bind-mount targets it created behind in the rootfs.
  const rootfs = makeBusyboxRootfs(join(host.dir, `rootfs-${++fresh}`));
  const bundle = await makeBundle(h, rootfs, { env: edit.env, args });
  const file = join(bundle, 'config.json');
  const spec = JSON.parse(readFileSync(file, 'utf8'));
  if (edit.annotations) spec.annotations = edit.annotations;
  if (edit.prestart) spec.hooks = { prestart: edit.prestart };
  writeFileSync(file, JSON.stringify(spec, null, '\t'));
  return bundle;
}

async function run(h: GpuHost, edit: BundleEdit) {
  const bundle = await bundleFor(h, edit);
  const r = await runtimeRun(h, bundle);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  const [dev, libs, env] = r.stdout.split('---');
  return { gpus: gpuNodes(dev!), libs: libs!, env: env!, spec: JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) };
}

describe('the CDI path', () => {
  test('NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=1 in auto mode: GPU 1 and the driver files from the spec', async () => {
    const { gpus, libs, spec, env } = await run(cdiHost('auto'), { env: ['NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=1'] });
    expect(gpus).toEqual(['nvidia1']);
    expect(libs).toContain('libcuda.so.550.54.15');
    // The spec's own env edit (void: already handled) replaces the request, once.
    expect(env.split('\n').filter((l) => l.startsWith('NVIDIA_VISIBLE_DEVICES='))).toEqual(['NVIDIA_VISIBLE_DEVICES=void']);
    const rules = spec.linux.resources.devices.filter((r: { allow: boolean; major?: number }) => r.allow && r.major === 195);
    expect(rules.map((r: { minor: number }) => r.minor).sort((a: number, b: number) => a - b)).toEqual([1, 254, 255]);
    expect(spec.hooks.createContainer).toHaveLength(1);
  });

  test('the same name by UUID', async () => {
    const uuid = host.topology.gpus[3]!.uuid;
    expect((await run(cdiHost('auto-uuid'), { env: [`NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=${uuid}`] })).gpus).toEqual(['nvidia3']);
  });

  test('a CDI annotation overrides NVIDIA_VISIBLE_DEVICES=all', async () => {
    const { gpus } = await run(cdiHost('annotation'), {
      env: ['NVIDIA_VISIBLE_DEVICES=all'],
      annotations: { 'cdi.k8s.io/test_gpu2': 'nvidia.com/gpu=2' },
    });
    expect(gpus).toEqual(['nvidia2']);
  });

  test('mode = "cdi": NVIDIA_VISIBLE_DEVICES=0 means nvidia.com/gpu=0', async () => {
    expect((await run(cdiHost('mode-cdi', 'cdi'), { env: ['NVIDIA_VISIBLE_DEVICES=0'] })).gpus).toEqual(['nvidia0']);
  });

  test('an unresolvable name: create fails with one line naming it and the spec dirs; config.json unchanged', async () => {
    const h = cdiHost('unresolvable');
    const bundle = await bundleFor(h, { env: ['NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=9'] }, ['true']);
    const before = readFileSync(join(bundle, 'config.json'), 'utf8');
    const r = await runtimeCreate(h, bundle);
    expect(r.exitCode).not.toBe(0);
    expect(r.containerCreated).toBe(false);
    expect(readFileSync(join(bundle, 'config.json'), 'utf8')).toBe(before);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^nvidia-runtime: .*nvidia\.com\/gpu=9/);
    expect(lines[0]).toContain(specDir);
    expect(lines[0]).toContain(join(host.dir, 'no-such-dir'));
  });

  test('legacy mode refuses CDI names before touching the host', async () => {
    const h = cdiHost('legacy', 'legacy');
    const bundle = await bundleFor(h, { env: ['NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=1'] }, ['true']);
    const r = await runtimeCreate(h, bundle);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/^nvidia-runtime: CDI device names \("nvidia\.com\/gpu=1"\) cannot be used in mode = "legacy"/);
  });
});

describe('docker run --gpus: its prestart hook is removed from every spec we modify', () => {
  const dockerHook = { path: '/usr/bin/nvidia-container-runtime-hook', args: ['/usr/bin/nvidia-container-runtime-hook', 'prestart'] };
  const toolkitHook = { path: '/usr/local/bin/nvidia-container-toolkit', args: ['nvidia-container-toolkit', 'prestart'] };
  const otherHook = { path: '/bin/true', args: ['true'] };

  // The hook binaries do not exist here: had they stayed in the spec, runc would fail to run them.
  test.each([
    ['the CDI path', ['NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=1']],
    ['the direct path', ['NVIDIA_VISIBLE_DEVICES=1']],
  ])('%s', async (_name, env) => {
    const { gpus, spec } = await run(cdiHost('docker'), { env, prestart: [dockerHook, otherHook, toolkitHook] });
    expect(gpus).toEqual(['nvidia1']);
    expect(spec.hooks.prestart).toEqual([otherHook]);
  });

  test('only the two toolkit hooks, and only as prestart hooks', async () => {
    const { spec } = await run(cdiHost('docker-only'), { env: ['NVIDIA_VISIBLE_DEVICES=1'], prestart: [dockerHook] });
    expect(spec.hooks.prestart).toBeUndefined();
    expect(spec.hooks.createContainer).toHaveLength(1);
  });
});

describe('round trip: generate → resolve → applyEdits grants what the direct path grants', () => {
  function config(mode: RuntimeMode): FrozenRuntimeConfig {
    const c = mutableDefaults();
    c.cli.root = host.driverRoot;
    c.runtime.mode = mode;
    c.runtime.cdi.specDirs = [specDir];
    return c;
  }
  const deps = () => ({ loadInventory: (driverRoot: string) => loadHostInventory({ driverRoot }), hookPath: distBin('nvidia-runtime-hook') });

  test.each([
    // The spec's common edits carry the files of every capability, so the direct path is asked for all of them.
    ['GPU 1', 'nvidia.com/gpu=1', '1'],
    ['all GPUs', 'nvidia.com/gpu=all', 'all'],
  ])('%s', async (_name, cdiName, plain) => {
    const caps = 'NVIDIA_DRIVER_CAPABILITIES=all';
    const viaCdi = planCreate(await bundleFor(host, { env: [`NVIDIA_VISIBLE_DEVICES=${cdiName}`, caps] }, ['true']), config('auto'), deps());
    const direct = planCreate(await bundleFor(host, { env: [`NVIDIA_VISIBLE_DEVICES=${plain}`, caps] }, ['true']), config('auto'), deps());
    expect(viaCdi.request.cdiDevices).toEqual([cdiName]);
    expect(direct.request.cdiDevices).toBeUndefined();
    type Spec = { linux: { devices: { path: string }[]; resources: { devices: unknown[] } }; mounts: { destination: string }[] };
    const [a, b] = [viaCdi.spec as unknown as Spec, direct.spec as unknown as Spec];
    const byPath = (x: { path: string }, y: { path: string }) => x.path.localeCompare(y.path);
    const byDest = (x: { destination: string }, y: { destination: string }) => x.destination.localeCompare(y.destination);
    expect([...a.linux.devices].sort(byPath)).toEqual([...b.linux.devices].sort(byPath));
    expect(a.linux.devices.length).toBeGreaterThan(3);
    const rules = (s: Spec) => s.linux.resources.devices.map((r) => JSON.stringify(r)).sort();
    expect(rules(a)).toEqual(rules(b));
    expect([...a.mounts].sort(byDest)).toEqual([...b.mounts].sort(byDest));
    expect(a.mounts.some((m) => m.destination.endsWith('/libcuda.so.550.54.15'))).toBe(true);
  });
});
