import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NvrError } from '../../../src/errors.js';
import { listDeviceNodes, listDriverFiles, loadHostInventory } from '../../../src/host/inventory.js';
import { findNvmlLibrary, loadAddon, queryDriver, type AddonNvmlResult, type NvmlAddon } from '../../../src/host/nvml.js';
import { LIB64_DIR, makeFakeRoot, removeFakeRoot, standardFakeRootSpec } from '../../helpers/fake-root.js';

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
