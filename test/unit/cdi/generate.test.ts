/**
 * generateCdiSpec against mock driver roots made by the shipped `nvidia-ctk mock-driver` (real NVML through the
 * fake library, real device nodes): golden files, schema validity, versions, and the round trip — the CDI path
 * (generate → registry → resolve → applyEdits) gives a container the same devices, cgroup rules and mounts as
 * the direct path (buildEdits → applyEdits).
 */
import { execa } from 'execa';
import fc from 'fast-check';
import { Ajv } from 'ajv';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateFeatureSpec, generateCdiSpec, generateImexSpec } from '../../../src/cdi/generate.js';
import { loadCdiRegistry, resolveCdiDevices } from '../../../src/cdi/registry.js';
import { CDI_SCHEMA } from '../../../src/cdi/schema.js';
import type { CdiSpec } from '../../../src/cdi/types.js';
import { minimumVersion, specProblem } from '../../../src/cdi/validate.js';
import { thrown } from '../../helpers/errors.js';
import { formatSpec } from '../../../src/cli/cdi-command.js';
import { applyEdits } from '../../../src/edits/apply.js';
import { buildEdits } from '../../../src/edits/build.js';
import { NvrError } from '../../../src/errors.js';
import { CAPABILITIES, type Capability } from '../../../src/host/capabilities.js';
import { loadHostInventory, type HostInventory } from '../../../src/host/inventory.js';
import type { OciSpec } from '../../../src/oci/types.js';
import { parseRequest } from '../../../src/request/parse.js';
import { resolveDevices } from '../../../src/request/resolve.js';
import { distBin, tempDir } from '../../helpers/dist.js';

const HOOK = '/usr/bin/nvidia-runtime-hook';
const ROOT_PLACEHOLDER = '<DRIVER_ROOT>';
const fixture = (name: string): string => fileURLToPath(new URL(`../../fixtures/cdi/${name}`, import.meta.url));

let work: string;
const roots: Record<string, string> = {};

async function mockRoot(name: string, args: string[]): Promise<string> {
  const root = join(work, name);
  await execa(distBin('nvidia-ctk'), ['mock-driver', '--root', root, ...args]);
  return root;
}

beforeAll(async () => {
  work = tempDir('cdi-gen');
  roots.gpu1 = await mockRoot('gpu1', ['--gpus', '1']);
  roots.gpu8 = await mockRoot('gpu8', ['--gpus', '8']);
  roots.mig = await mockRoot('mig', ['--gpus', '2', '--mig']);
  roots.graphics = await mockRoot('graphics', ['--gpus', '2', '--graphics', '--gds', '--mofed', '--nvswitch', '--gdrcopy']);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const inventory = (root: string): HostInventory => loadHostInventory({ driverRoot: root });
const normalise = (text: string, root: string): string => text.split(root).join(ROOT_PLACEHOLDER);

describe.each([
  ['gpu1', 'mock-1gpu.yaml'],
  ['gpu8', 'mock-8gpu.yaml'],
  ['mig', 'mock-mig.yaml'],
  ['graphics', 'mock-graphics.yaml'],
])('generateCdiSpec on mock root %s', (key, golden) => {
  let spec: CdiSpec;
  beforeAll(() => {
    spec = generateCdiSpec(inventory(roots[key]!), { hookPath: HOOK });
  });

  it(`matches the golden ${golden} (driver root normalised)`, () => {
    const text = normalise(formatSpec(spec, 'yaml'), roots[key]!);
    if (process.env.UPDATE_GOLDEN) writeFileSync(fixture(golden), text);
    expect(text).toBe(readFileSync(fixture(golden), 'utf8'));
  });

  it('is valid against our schema (plain ajv) and every extra rule, at cdiVersion 0.5.0 (podman 4.3 accepts ≤ 0.5.0)', () => {
    const validate = new Ajv({ strict: true }).compile(CDI_SCHEMA);
    expect(validate(JSON.parse(JSON.stringify(spec)))).toBe(true);
    expect(specProblem(spec)).toBeUndefined();
    expect(spec.cdiVersion).toBe('0.5.0');
    expect(minimumVersion(spec)).toBe(spec.cdiVersion);
  });

  it('is deterministic', () => {
    const again = generateCdiSpec(inventory(roots[key]!), { hookPath: HOOK });
    expect(formatSpec(again, 'json')).toBe(formatSpec(spec, 'json'));
  });

  it('names every GPU by index and UUID, every MIG device by gpu:mig and UUID, plus all', () => {
    const inv = inventory(roots[key]!);
    const expected: string[] = [];
    for (const g of inv.driver.gpus) expected.push(String(g.index), g.uuid);
    for (const g of inv.driver.gpus) for (const m of g.migDevices) expected.push(`${g.index}:${m.index}`, m.uuid);
    expect(spec.devices.map((d) => d.name)).toEqual([...expected, 'all']);
    for (const d of spec.devices) {
      for (const n of d.containerEdits.deviceNodes ?? []) {
        expect(n).toEqual(expect.objectContaining({ type: 'c', major: expect.any(Number), minor: expect.any(Number) }));
        expect(n.hostPath).toBe(roots[key] + n.path); // dev root ≠ / → hostPath
      }
    }
  });
});

describe('generateCdiSpec options', () => {
  it('type-index names, vendor and class', () => {
    const spec = generateCdiSpec(inventory(roots.mig!), { hookPath: HOOK, vendor: 'example.com', class: 'dev', deviceNameStrategies: ['type-index'] });
    expect(spec.kind).toBe('example.com/dev');
    expect(spec.devices.map((d) => d.name)).toEqual(['gpu0', 'gpu1', 'mig0:0', 'mig0:1', 'mig0:2', 'mig1:0', 'mig1:1', 'mig1:2', 'all']);
    // No name starts with a digit, but hostPath still needs 0.5.0.
    expect(spec.cdiVersion).toBe('0.5.0');
  });

  it('a class with a dot needs 0.6.0', () => {
    expect(generateCdiSpec(inventory(roots.gpu1!), { hookPath: HOOK, class: 'gpu.x' }).cdiVersion).toBe('0.6.0');
  });

  it('MIG devices carry the parent GPU node and their two capability nodes', () => {
    const spec = generateCdiSpec(inventory(roots.mig!), { hookPath: HOOK });
    const mig = spec.devices.find((d) => d.name === '1:0')!;
    expect(mig.containerEdits.deviceNodes!.map((n) => n.path)).toEqual(['/dev/nvidia1', expect.stringMatching(/^\/dev\/nvidia-caps\/nvidia-cap\d+$/), expect.stringMatching(/^\/dev\/nvidia-caps\/nvidia-cap\d+$/)]);
  });

  it('rejects bad strategies, vendors and classes with INPUT errors', () => {
    const inv = inventory(roots.gpu1!);
    expect(() => generateCdiSpec(inv, { hookPath: HOOK, deviceNameStrategies: ['serial'] })).toThrow(/unknown device name strategy "serial"/);
    expect(() => generateCdiSpec(inv, { hookPath: HOOK, vendor: '1nvidia' })).toThrow(NvrError);
    expect(() => generateCdiSpec(inv, { hookPath: HOOK, class: 'gpu-' })).toThrow(/--class/);
  });

  it('a GPU whose device node is missing is an error, not a silent omission', () => {
    const root = join(work, 'gpu1');
    const copy = join(work, 'devroot');
    mkdirSync(join(copy, 'dev'), { recursive: true });
    const inv = loadHostInventory({ driverRoot: root, devRoot: copy });
    expect(() => generateCdiSpec(inv, { hookPath: HOOK })).toThrow(/device node \/dev\/nvidia0/);
  });

  it('the hook has no --root (it reads the rootfs from the OCI state) and an explicit env and timeout', () => {
    const spec = generateCdiSpec(inventory(roots.gpu1!), { hookPath: HOOK });
    const [hook] = spec.containerEdits!.hooks!;
    expect(hook!.args).not.toContain('--root');
    expect(hook!.args!.slice(0, 2)).toEqual(['nvidia-runtime-hook', 'update-ldcache']);
    expect(hook!.args).toContain('--folder');
    expect(hook!.args).toContain('libcuda.so.550.54.15::/usr/lib/x86_64-linux-gnu/libcuda.so');
    // CUDA forward compatibility for the host driver (NVIDIA's generator adds its enable-cuda-compat hook instead)
    expect(hook!.args!.slice(2, 4)).toEqual(['--cuda-compat', '550.54.15']);
    const off = generateCdiSpec(inventory(roots.gpu1!), { hookPath: HOOK, cudaCompat: false });
    expect(off.containerEdits!.hooks![0]!.args).not.toContain('--cuda-compat');
    expect(hook).toEqual(expect.objectContaining({ hookName: 'createContainer', path: HOOK, env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], timeout: 30 }));
  });
});

describe('round trip: CDI path == direct path', () => {
  const base = (): OciSpec => ({ ociVersion: '1.0.2', process: { env: ['PATH=/bin'] }, root: { path: 'rootfs' }, mounts: [], linux: {} }) as unknown as OciSpec;

  function direct(inv: HostInventory, visible: string, caps: readonly Capability[] = CAPABILITIES): OciSpec {
    const request = parseRequest({
      env: [`NVIDIA_VISIBLE_DEVICES=${visible}`, `NVIDIA_DRIVER_CAPABILITIES=${caps.join(',')}`],
      mounts: [],
      boundingCapabilities: ['CAP_SYS_ADMIN'],
      annotations: {},
    });
    expect(request.capabilities).toEqual([...caps].sort());
    const resolved = resolveDevices(request, inv.driver);
    // cuda-compat-mode = ldconfig (the default) gives the hook --cuda-compat, as the generated spec's hook has it.
    return applyEdits(base(), buildEdits({ inventory: inv, request, resolved, hookPath: HOOK, rootfs: '/bundle/rootfs', cudaCompat: { mode: 'ldconfig' } }).edits);
  }

  function viaCdi(root: string, names: string[]): OciSpec {
    const dir = join(work, `specs-${Math.random().toString(36).slice(2)}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'nvidia.yaml'), formatSpec(generateCdiSpec(inventory(root), { hookPath: HOOK }), 'yaml'));
    const registry = loadCdiRegistry([dir]);
    expect(registry.errors).toEqual([]);
    return applyEdits(base(), resolveCdiDevices(registry, names));
  }

  const devices = (s: OciSpec) => (s as { linux: { devices: unknown[] } }).linux.devices;
  const hookArgs = (s: OciSpec) => (s as { hooks: { createContainer: { args: string[] }[] } }).hooks.createContainer[0]!.args;
  const withoutRoot = (args: string[]): string[] => args.filter((x, i) => x !== '--root' && args[i - 1] !== '--root');
  const rules = (s: OciSpec) => (s as { linux: { resources: { devices: unknown[] } } }).linux.resources.devices;
  const sortBy = <T>(xs: T[], key: (x: T) => string): T[] => [...xs].sort((a, b) => key(a).localeCompare(key(b)));

  it.each([
    ['gpu8', '1', ['nvidia.com/gpu=1']],
    ['gpu8', '0,5', ['nvidia.com/gpu=0', 'nvidia.com/gpu=5']],
    ['mig', '1:2', ['nvidia.com/gpu=1:2']],
  ])('%s NVIDIA_VISIBLE_DEVICES=%s', (key, visible, names) => {
    const inv = inventory(roots[key]!);
    const a = direct(inv, visible);
    const b = viaCdi(roots[key]!, names);
    // Devices and rules: same set (order: the direct path lists control nodes first; CDI applies the spec's
    // common edits first too, so even the order agrees).
    expect(devices(b)).toEqual(devices(a));
    expect(rules(b)).toEqual(rules(a));
    expect(b.mounts).toEqual(a.mounts);
    // By design: env says `void` (the CDI devices are the grant) instead of the granted UUIDs, and the hook has no
    // --root (the rootfs comes from the OCI state on stdin).
    const env = (s: OciSpec) => (s as { process: { env: string[] } }).process.env;
    expect(env(b)).toEqual(['PATH=/bin', 'NVIDIA_VISIBLE_DEVICES=void']);
    expect(env(a)[1]).toMatch(/^NVIDIA_VISIBLE_DEVICES=(GPU|MIG)-/);
    expect(hookArgs(b)).toEqual(withoutRoot(hookArgs(a)));
    expect(sortBy(devices(b) as { path: string }[], (d) => d.path).length).toBeGreaterThan(4);
  });

  it('for any selection of GPUs and MIG devices, by index or UUID (fast-check)', () => {
    const specDir = join(work, 'specs-prop');
    mkdirSync(specDir);
    for (const key of ['gpu8', 'mig']) {
      mkdirSync(join(specDir, key));
      writeFileSync(join(specDir, key, 'nvidia.yaml'), formatSpec(generateCdiSpec(inventory(roots[key]!), { hookPath: HOOK }), 'yaml'));
    }
    const hosts = Object.fromEntries(['gpu8', 'mig'].map((k) => [k, { inv: inventory(roots[k]!), registry: loadCdiRegistry([join(specDir, k)]) }]));
    const ids = (key: string): string[] => {
      const { inv } = hosts[key]!;
      return inv.driver.gpus.flatMap((g) => [String(g.index), g.uuid, ...g.migDevices.flatMap((m) => [`${g.index}:${m.index}`, m.uuid])]);
    };
    fc.assert(
      fc.property(fc.constantFrom('gpu8', 'mig'), fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), (key, picks) => {
        const all = ids(key);
        const chosen = [...new Set(picks.map((i) => all[i % all.length]!))];
        const a = direct(hosts[key]!.inv, chosen.join(','));
        const b = applyEdits(base(), resolveCdiDevices(hosts[key]!.registry, chosen.map((c) => `nvidia.com/gpu=${c}`)));
        // The same devices and rules; their order follows the request on the CDI path, GPU index on the direct one.
        const text = (x: unknown): string => JSON.stringify(x);
        expect(sortBy(devices(b), text)).toEqual(sortBy(devices(a), text));
        expect(sortBy(rules(b), text)).toEqual(sortBy(rules(a), text));
        expect(b.mounts).toEqual(a.mounts);
        expect(hookArgs(b)).toEqual(withoutRoot(hookArgs(a)));
      }),
      { numRuns: 60 },
    );

    // Fewer capabilities: a CDI spec carries every capability's files (it is written before any container asks), so
    // the direct path must give a part of it — never a mount, node or folder the spec lacks — in the same order.
    const isSubsequence = <T>(part: T[], whole: T[]): boolean => {
      let i = 0;
      for (const x of whole) if (i < part.length && JSON.stringify(x) === JSON.stringify(part[i])) i++;
      return i === part.length;
    };
    const folders = (args: string[]): string[] => args.filter((_, i) => args[i - 1] === '--folder');
    fc.assert(
      fc.property(fc.constantFrom('gpu8', 'mig'), fc.nat(), fc.subarray([...CAPABILITIES], { minLength: 1 }), (key, pick, caps) => {
        const id = ids(key)[pick % ids(key).length]!;
        const a = direct(hosts[key]!.inv, id, caps);
        const b = applyEdits(base(), resolveCdiDevices(hosts[key]!.registry, [`nvidia.com/gpu=${id}`]));
        const text = (x: unknown): string => JSON.stringify(x);
        expect(devices(b).map(text)).toEqual(expect.arrayContaining(devices(a).map(text)));
        expect(rules(b).map(text)).toEqual(expect.arrayContaining(rules(a).map(text)));
        expect(isSubsequence(a.mounts as unknown[], b.mounts as unknown[])).toBe(true);
        const hooks = (s: OciSpec) => (s as { hooks?: { createContainer: { args: string[] }[] } }).hooks?.createContainer ?? [];
        if (hooks(a).length > 0) {
          expect(isSubsequence(folders(hookArgs(a)), folders(hookArgs(b)))).toBe(true);
          if (caps.length === CAPABILITIES.length) expect(hookArgs(b)).toEqual(withoutRoot(hookArgs(a)));
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('generateImexSpec (cdi generate --mode imex) on a mock root', () => {
  it('the snapshot holds channels 0-7 with the mock major 510', () => {
    const inv = inventory(roots.gpu1!);
    expect(Object.keys(inv.imexChannels)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    expect(inv.imexChannels[3]).toMatchObject({ path: '/dev/nvidia-caps-imex-channels/channel3', type: 'c', major: 510, minor: 3 });
  });

  it('a spec of its own: kind nvidia.com/imex-channel, one device per channel named by its number, plus all; valid', () => {
    const spec = generateImexSpec(inventory(roots.gpu1!));
    expect(spec.kind).toBe('nvidia.com/imex-channel');
    expect(spec.cdiVersion).toBe('0.5.0');
    expect(spec.containerEdits).toBeUndefined();
    expect(spec.devices.map((d) => d.name)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', 'all']);
    expect(spec.devices[1]!.containerEdits.deviceNodes).toEqual([{
      path: '/dev/nvidia-caps-imex-channels/channel1', hostPath: join(roots.gpu1!, 'dev/nvidia-caps-imex-channels/channel1'),
      type: 'c', major: 510, minor: 1, fileMode: 0o666, permissions: 'rwm',
    }]);
    expect(spec.devices.at(-1)!.containerEdits.deviceNodes).toHaveLength(8);
    expect(new Ajv({ strict: true }).compile(CDI_SCHEMA)(JSON.parse(JSON.stringify(spec)))).toBe(true);
    expect(specProblem(spec)).toBeUndefined();
  });

  it('the GPU spec is unchanged by the channels (NVIDIA generates them only in the imex mode)', () => {
    const text = formatSpec(generateCdiSpec(inventory(roots.gpu1!), { hookPath: HOOK }), 'yaml');
    expect(text).not.toContain('imex');
  });
});

describe('graphics and the companions in CDI specs', () => {
  test('each GPU device carries its own DRM nodes and one create-symlinks hook for its by-path links; all has both GPUs\'', () => {
    const inv = inventory(roots.graphics!);
    const spec = generateCdiSpec(inv, { hookPath: HOOK });
    const dev = (name: string) => spec.devices.find((d) => d.name === name)!.containerEdits;
    expect(dev('1').deviceNodes!.map((n) => [n.path, n.major, n.minor])).toEqual([['/dev/nvidia1', 195, 1], ['/dev/dri/card2', 226, 2], ['/dev/dri/renderD129', 226, 129]]);
    const bus = inv.driver.gpus[1]!.pciBusId.slice(4).toLowerCase();
    expect(dev('1').hooks).toEqual([{
      hookName: 'createContainer', path: HOOK, env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], timeout: 30,
      args: ['nvidia-runtime-hook', 'create-symlinks', '--link', `../card2::/dev/dri/by-path/pci-${bus}-card`, '--link', `../renderD129::/dev/dri/by-path/pci-${bus}-render`],
    }]);
    expect(dev(inv.driver.gpus[1]!.uuid)).toEqual(dev('1'));
    expect(dev('all').deviceNodes!.filter((n) => n.path.startsWith('/dev/dri/')).map((n) => n.path)).toEqual(['/dev/dri/card1', '/dev/dri/renderD128', '/dev/dri/card2', '/dev/dri/renderD129']);
    expect(dev('all').hooks).toHaveLength(1);
    expect(dev('all').hooks![0]!.args!.filter((a) => a.startsWith('../'))).toHaveLength(4);
    // the companions never enter the GPU spec: they have specs of their own
    expect(JSON.stringify(spec)).not.toMatch(/nvidia-fs|infiniband|nvswitch|gdrdrv|cufile/);
    const mounts = spec.containerEdits!.mounts!.map((m) => m.containerPath);
    expect(mounts).toEqual(expect.arrayContaining(['/usr/share/glvnd/egl_vendor.d/10_nvidia.json', '/etc/vulkan/icd.d/nvidia_icd.json', '/usr/lib/x86_64-linux-gnu/nvidia/xorg/nvidia_drv.so']));
  });

  test('--mode gds|mofed|nvswitch|gdrcopy: one device `all` of kind nvidia.com/<mode>, valid; none on a host without the nodes', () => {
    const inv = inventory(roots.graphics!);
    const want: Record<string, string[]> = {
      gds: ['/dev/nvidia-fs0', '/dev/nvidia-fs1', '/dev/nvidia-fs2', '/dev/nvidia-fs3'],
      mofed: ['/dev/infiniband/rdma_cm', '/dev/infiniband/uverbs0', '/dev/infiniband/uverbs1'],
      nvswitch: ['/dev/nvidia-nvswitch0', '/dev/nvidia-nvswitch1', '/dev/nvidia-nvswitch2', '/dev/nvidia-nvswitch3', '/dev/nvidia-nvswitchctl'],
      gdrcopy: ['/dev/gdrdrv'],
    };
    for (const [mode, nodes] of Object.entries(want)) {
      const spec = generateFeatureSpec(inv, mode as 'gds');
      expect(spec.kind).toBe(`nvidia.com/${mode}`);
      expect(spec.devices.map((d) => d.name)).toEqual(['all']);
      expect(spec.devices[0]!.containerEdits.deviceNodes!.map((n) => n.path)).toEqual(nodes);
      expect(specProblem(spec)).toBeUndefined();
    }
    expect(generateFeatureSpec(inv, 'gds').devices[0]!.containerEdits.mounts!.map((m) => m.containerPath)).toEqual(['/etc/cufile.json', '/run/udev']);
    expect(generateFeatureSpec(inv, 'gds', { vendor: 'example.com', class: 'storage' }).kind).toBe('example.com/storage');
    for (const mode of ['gds', 'mofed', 'nvswitch', 'gdrcopy'] as const) {
      const e = thrown(() => generateFeatureSpec(inventory(roots.gpu1!), mode));
      expect(e.code).toBe('DEVICE');
      expect(e.message).toMatch(/device nodes found under .*: a CDI spec needs at least one device/);
    }
  });
});
