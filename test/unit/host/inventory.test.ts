import fc from 'fast-check';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NvrError } from '../../../src/errors.js';
import { CAPABILITIES, controlDevicesFor, type Capability } from '../../../src/host/capabilities.js';
import { lookupDeviceNodes } from '../../../src/host/devices.js';
import { findBinaries, findFirmware, findIpcs, findLibraries } from '../../../src/host/driver-files.js';
import { listDeviceNodes, listDriverFiles, loadHostInventory, type HostInventory } from '../../../src/host/inventory.js';
import { findConfigs, findVulkanConfigs, findXorgModules, GRAPHICS_CONFIGS, XORG_CONFIGS } from '../../../src/host/graphics.js';
import { findNvmlLibrary, loadAddon, queryDriver, type AddonNvmlResult, type NvmlAddon } from '../../../src/host/nvml.js';
import { driverLibs, LIB32_DIR, LIB64_DIR, makeFakeRoot, removeFakeRoot, standardFakeRootSpec } from '../../helpers/fake-root.js';

const V = '550.54.15';
const answer: AddonNvmlResult = {
  driverVersion: V,
  cudaDriverVersion: 12040,
  devices: [0, 1].map((i) => ({
    index: i,
    minor: i,
    uuid: `GPU-${i}`,
    name: 'NVIDIA A100-SXM4-40GB',
    brand: 14,
    pciBusId: '',
    domain: 0,
    bus: 7 + i,
    device: 0,
    pciDeviceId: 0x20b010de,
    migCurrent: i,
    migDevices: i === 1 ? [{ index: 0, gpuInstanceId: 1, computeInstanceId: 0, uuid: 'MIG-x', name: '1g.5gb' }] : [],
  })),
};

describe('loadHostInventory', () => {
  let root: string;
  const queried: string[] = [];
  const addon: NvmlAddon = {
    nvmlQuery: (p) => {
      queried.push(p);
      return answer;
    },
  };
  beforeAll(() => {
    const spec = standardFakeRootSpec(V, 240);
    root = makeFakeRoot({
      ...spec,
      devices: [...spec.devices!, { path: '/dev/nvidia-caps/nvidia-cap12', major: 508, minor: 12 }],
      files: {
        ...spec.files,
        '/proc/driver/nvidia/capabilities/gpu1/mig/gi1/access': 'DeviceFileMinor: 12\n',
        '/proc/driver/nvidia/capabilities/gpu1/mig/gi1/ci0/access': 'DeviceFileMinor: 13\n',
        '/tmp/nvidia-mps/.keep': '',
      },
    });
  });
  afterAll(() => removeFakeRoot(root));

  it('queries NVML found through the root ld cache and lists files and devices', () => {
    const inv = loadHostInventory({ driverRoot: root + '/', addon });
    expect(queried).toEqual([join(root, LIB64_DIR, `libnvidia-ml.so.${V}`)]);
    expect(inv.root).toBe(root);
    expect(inv.devRoot).toBe(root);
    expect(inv.driver.cudaVersion).toBe('12.4');
    expect(inv.driver.gpus.map((g) => g.pciBusId)).toEqual(['00000000:07:00.0', '00000000:08:00.0']);

    const files = listDriverFiles(inv, ['utility', 'compute']);
    expect(files.libraries.libraries).toEqual([
      `${LIB64_DIR}/libnvidia-ml.so.${V}`,
      `${LIB64_DIR}/libnvidia-cfg.so.${V}`,
      `${LIB64_DIR}/libcuda.so.${V}`,
      `${LIB64_DIR}/libnvidia-ptxjitcompiler.so.${V}`,
    ]);
    expect(files.binaries.paths).toEqual(['/usr/bin/nvidia-smi', '/usr/bin/nvidia-cuda-mps-control']);
    expect(files.firmware).toEqual([`/lib/firmware/nvidia/${V}/gsp_ga10x.bin`, `/lib/firmware/nvidia/${V}/gsp_tu10x.bin`]);
    expect(files.ipcs.paths).toEqual(['/tmp/nvidia-mps']);

    const gpu1 = inv.driver.gpus[1];
    const devs = listDeviceNodes(inv, ['utility', 'compute'], { gpus: [gpu1], migDevices: [{ gpu: gpu1, mig: gpu1.migDevices[0] }] });
    expect(devs.nodes.map((n) => `${n.path} ${n.major}:${n.minor}`)).toEqual([
      '/dev/nvidiactl 195:255',
      '/dev/nvidia-uvm 240:0',
      '/dev/nvidia-uvm-tools 240:1',
      '/dev/nvidia1 195:1',
    ]);
    expect(devs.migCapabilities.map((c) => [c.procPath, c.node?.path])).toEqual([
      ['/proc/driver/nvidia/capabilities/gpu1/mig/gi1/access', '/dev/nvidia-caps/nvidia-cap12'],
      ['/proc/driver/nvidia/capabilities/gpu1/mig/gi1/ci0/access', undefined],
    ]);
    expect(listDeviceNodes(inv, ['utility', 'display'], { gpus: [] }).nodes.map((n) => n.path)).toEqual(['/dev/nvidiactl', '/dev/nvidia-modeset']);
  });

  it('looks devices up under a separate dev root', () => {
    const dev = makeFakeRoot({ devices: [{ path: '/dev/nvidiactl', major: 195, minor: 255 }] });
    const inv = loadHostInventory({ driverRoot: root, devRoot: dev, addon });
    expect(listDeviceNodes(inv, ['compute'], { gpus: inv.driver.gpus }).nodes.map((n) => n.hostPath)).toEqual([join(dev, 'dev/nvidiactl')]);
    removeFakeRoot(dev);
  });

  it('rejects a missing driver root or one that is a file', () => {
    expect(() => loadHostInventory({ driverRoot: '/nonexistent/driver', addon })).toThrow(
      expect.objectContaining({ code: 'DRIVER_ROOT', message: expect.stringContaining('driver root /nonexistent/driver does not exist') }),
    );
    const file = join(root, 'not-a-dir');
    writeFileSync(file, '');
    expect(() => loadHostInventory({ driverRoot: file, addon })).toThrow(NvrError);
  });

  it('reports a root without ld cache as LDCACHE', () => {
    const bare = makeFakeRoot({});
    expect(() => loadHostInventory({ driverRoot: bare, addon })).toThrow(expect.objectContaining({ code: 'LDCACHE' }));
    removeFakeRoot(bare);
  });
});

// The real addon against the fake NVML (built by `npm ci` / node-gyp): skipped with a reason when absent.
const release = fileURLToPath(new URL('../../../build/Release/', import.meta.url));
const haveNative = existsSync(join(release, 'nvidia_runtime.node')) && existsSync(join(release, 'libnvidia-ml-mock.so'));
const nativeTitle = haveNative ? 'real addon + libnvidia-ml-mock.so' : 'real addon (skipped: build/Release/nvidia_runtime.node or libnvidia-ml-mock.so not built)';
(haveNative ? describe : describe.skip)(nativeTitle, () => {
  it('queries the mock through the real addon', () => {
    const topology = [
      'driver\t550.54.15',
      'nvml\t12.550.54.15',
      'cuda\t12040',
      'gpu\t0\tGPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\tNVIDIA A100-SXM4-40GB\t14\t0\t7\t0\t20b010de\t8\t0\t7\t42949672960\t0',
      'gpu\t1\tGPU-11111111-bbbb-cccc-dddd-eeeeeeeeeeee\tNVIDIA A100-SXM4-40GB\t14\t0\t8\t0\t20b010de\t8\t0\t7\t42949672960\t0',
      '',
    ].join('\n');
    // Jest sandboxes process.env (setenv never reaches the addon), so embed the topology in a copy of the
    // library after its marker line, as `mock-driver` does (native/README.md).
    const lib = Buffer.from(readFileSync(join(release, 'libnvidia-ml-mock.so')));
    const marker = 'NVMOCK-TOPOLOGY-V1\n';
    const at = lib.indexOf(marker);
    expect(at).toBeGreaterThan(0);
    lib.write(topology + '\0', at + marker.length, 'utf8');
    // The mock shows a GPU only if <root>/dev/nvidia<minor> exists, <root> = its own path up to /usr/lib.
    const root = makeFakeRoot({
      devices: [{ path: '/dev/nvidia0', major: 195, minor: 0 }],
      files: { [`${LIB64_DIR}/libnvidia-ml.so.550.54.15`]: lib },
      symlinks: { [`${LIB64_DIR}/libnvidia-ml.so.1`]: 'libnvidia-ml.so.550.54.15' },
    });
    try {
      const info = queryDriver(findNvmlLibrary(root), loadAddon());
      expect(info.driverVersion).toBe('550.54.15');
      expect(info.nvmlVersion).toBe('12.550.54.15');
      expect(info.cudaVersion).toBe('12.4');
      // only minor 0 has a device node under the root
      expect(info.gpus.map((g) => [g.index, g.minor, g.uuid, g.pciBusId, g.brand, g.computeCapability, g.architecture, g.migEnabled])).toEqual([
        [0, 0, 'GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', '00000000:07:00.0', 'Nvidia', '8.0', 'Ampere', false],
      ]);
    } finally {
      removeFakeRoot(root);
    }
  });
});

/**
 * The snapshot is the host read once: every lookup happens in loadHostInventory, the selections only pick from the
 * result. So a snapshot must (1) be immutable, (2) not look at the disk again, (3) pick exactly what a fresh lookup
 * for the same capabilities and GPUs would find (the per-call lookups it replaced), and (4) keep, as data, the error a
 * strict consumer (`cdi generate`) throws for a missing GPU or MIG node.
 */
describe('the host snapshot', () => {
  let root: string;
  let inv: HostInventory;
  const addon: NvmlAddon = { nvmlQuery: () => answer };
  beforeAll(() => {
    const spec = standardFakeRootSpec(V, 240);
    root = makeFakeRoot({
      ...spec,
      libs: [
        ...driverLibs(V, ['libnvidia-ml', 'libcuda', 'libnvidia-ptxjitcompiler', 'libnvidia-cfg', 'libnvidia-encode', 'libnvcuvid', 'libnvidia-glcore', 'libGLX_nvidia', 'libnvidia-ngx']),
        { file: `libcuda.so.${V}`, soname: 'libcuda.so.1', arch: 'i386' },
        { file: `libnvidia-ml.so.${V}`, soname: 'libnvidia-ml.so.1', arch: 'i386' },
        // another driver's library still in the cache: never selected
        { file: 'libnvidia-opencl.so.535.1', soname: 'libnvidia-opencl.so.1' },
      ],
      // GPU 1's node is missing; MIG gi1 has its node, ci0 (minor 13) has none.
      devices: [...spec.devices!.filter((d) => d.path !== '/dev/nvidia1'), { path: '/dev/nvidia-caps/nvidia-cap12', major: 508, minor: 12 }],
      files: {
        ...spec.files,
        '/proc/driver/nvidia/capabilities/gpu1/mig/gi1/access': 'DeviceFileMinor: 12\n',
        '/proc/driver/nvidia/capabilities/gpu1/mig/gi1/ci0/access': 'DeviceFileMinor: 13\n',
        '/tmp/nvidia-mps/.keep': '',
        '/var/run/nvidia-persistenced/socket': '',
      },
    });
    inv = loadHostInventory({ driverRoot: root, addon });
  });
  afterAll(() => removeFakeRoot(root));

  it('has no IMEX channels when the host has none', () => {
    expect(inv.imexChannels).toEqual({});
  });

  it('is deep-frozen', () => {
    expect(Object.isFrozen(inv)).toBe(true);
    expect(Object.isFrozen(inv.driver.gpus[0])).toBe(true);
    expect(Object.isFrozen(inv.nodes['/dev/nvidiactl'])).toBe(true);
    expect(Object.isFrozen(inv.libraries)).toBe(true);
    expect(Object.isFrozen(inv.migCapabilities['1/1/0'])).toBe(true);
    expect(() => {
      (inv.libraries as Record<string, string>)['libcuda.so'] = '/elsewhere';
    }).toThrow(TypeError);
  });

  it('a missing GPU node is left out of listings and kept as the strict error; so is an incomplete MIG device', () => {
    const [gpu0, gpu1] = inv.driver.gpus;
    expect(listDeviceNodes(inv, ['compute'], { gpus: [gpu0!, gpu1!] }).nodes.map((n) => n.path)).toEqual([
      '/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools', '/dev/nvidia0',
    ]);
    expect(inv.nodeProblems['/dev/nvidia1']).toEqual(expect.objectContaining({ code: 'DEVICE', message: expect.stringMatching(/device node \/dev\/nvidia1 .*does not exist/) }));
    expect(inv.nodeProblems['/dev/nvidia0']).toBeUndefined();
    expect(Object.keys(inv.migProblems)).toEqual(['1/1/0']);
    expect(inv.migProblems['1/1/0']).toBeInstanceOf(NvrError);
  });

  it('selects for any capabilities and GPUs exactly what a fresh lookup finds (fast-check)', () => {
    const control = (caps: Capability[], gpus: typeof inv.driver.gpus) =>
      lookupDeviceNodes(inv.devRoot, [...controlDevicesFor(caps), ...gpus.map((g) => `/dev/nvidia${g.minor}`)]);
    fc.assert(
      fc.property(fc.subarray([...CAPABILITIES]), fc.subarray([...inv.driver.gpus]), (caps, gpus) => {
        expect(listDriverFiles(inv, caps)).toEqual({
          libraries: findLibraries(root, inv.ldcache, caps, V),
          binaries: findBinaries(root, caps),
          firmware: findFirmware(root, V),
          ipcs: findIpcs(root, caps),
          configs: [
            ...(caps.includes('graphics') ? [...findConfigs(root, GRAPHICS_CONFIGS), ...findVulkanConfigs(root)] : []),
            ...(caps.includes('display') ? [...findConfigs(root, XORG_CONFIGS), ...findXorgModules(root, '/usr/lib/x86_64-linux-gnu', V)] : []),
          ],
        });
        expect(listDeviceNodes(inv, caps, { gpus }).nodes).toEqual(control(caps, gpus));
      }),
      { numRuns: 100 },
    );
    // The fixture exercises both sides: some of every kind present, some missing, 32-bit ones too.
    const all = listDriverFiles(inv, CAPABILITIES);
    expect(all.libraries.libraries32).toEqual([`${LIB32_DIR}/libnvidia-ml.so.${V}`, `${LIB32_DIR}/libcuda.so.${V}`]);
    expect(all.libraries.missing).toContain('libnvidia-opencl.so');
    expect(all.binaries.missing.length).toBeGreaterThan(0);
    expect(all.ipcs.missing.length).toBeGreaterThan(0);
  });

  it('never looks at the disk again: the root can vanish and every selection stays the same', () => {
    const gpus = [...inv.driver.gpus];
    const mig = { gpu: gpus[1]!, mig: gpus[1]!.migDevices[0]! };
    const before = { files: listDriverFiles(inv, CAPABILITIES), devices: listDeviceNodes(inv, CAPABILITIES, { gpus, migDevices: [mig] }) };
    const moved = `${root}.moved`;
    renameSync(root, moved);
    try {
      expect(listDriverFiles(inv, CAPABILITIES)).toEqual(before.files);
      expect(listDeviceNodes(inv, CAPABILITIES, { gpus, migDevices: [mig] })).toEqual(before.devices);
    } finally {
      renameSync(moved, root);
    }
  });
});
