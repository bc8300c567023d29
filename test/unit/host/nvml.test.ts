import { join } from 'node:path';
import { NvrError } from '../../../src/errors.js';
import { readLdCache, type LdCache } from '../../../src/host/ldcache.js';
import {
  findNvmlLibrary,
  formatCudaVersion,
  formatPciBusId,
  queryDriver,
  type AddonDevice,
  type AddonNvmlError,
  type AddonNvmlResult,
  type NvmlAddon,
} from '../../../src/host/nvml.js';
import { LIB64_DIR, driverLibs, makeFakeRoot, removeFakeRoot } from '../../helpers/fake-root.js';

function fakeAddon(answer: AddonNvmlResult | AddonNvmlError): NvmlAddon & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    nvmlQuery(libraryPath: string) {
      calls.push(libraryPath);
      return answer;
    },
  };
}

const device = (over: Partial<AddonDevice> = {}): AddonDevice => ({
  index: 0,
  minor: 3,
  uuid: 'GPU-11111111-2222-3333-4444-555555555555',
  name: 'NVIDIA H100 80GB HBM3',
  brand: 14,
  pciBusId: '00000000:1A:00.0',
  domain: 0,
  bus: 0x1a,
  device: 0,
  pciDeviceId: 0x233010de,
  ccMajor: 9,
  ccMinor: 0,
  architecture: 9,
  memoryTotal: 85899345920,
  migCurrent: 1,
  migPending: 1,
  migDevices: [
    { index: 0, gpuInstanceId: 1, computeInstanceId: 0, uuid: 'MIG-aaaa', name: 'NVIDIA H100 80GB HBM3 MIG 1g.10gb', memoryTotal: 10737418240 },
    { index: 1, uuid: 'MIG-no-ids' },
  ],
  ...over,
});

function nvmlErr(code: number, call: string, message = 'msg'): NvrError {
  try {
    queryDriver('/r/usr/lib/libnvidia-ml.so.1', fakeAddon({ error: { code, call, message } }));
  } catch (e) {
    expect(e).toBeInstanceOf(NvrError);
    expect((e as NvrError).code).toBe('NVML');
    return e as NvrError;
  }
  throw new Error('queryDriver did not throw');
}

describe('queryDriver', () => {
  it('maps the addon result to DriverInfo with the seed formats', () => {
    const addon = fakeAddon({
      nvmlVersion: '12.550.54.15',
      driverVersion: '550.54.15',
      cudaDriverVersion: 12040,
      devices: [
        device(),
        device({
          index: 1,
          minor: 0,
          brand: 5,
          domain: 0x10,
          bus: 0xab,
          device: 0x1f,
          architecture: 0xffffffff,
          ccMajor: undefined,
          memoryTotal: undefined,
          migCurrent: 0,
          migDevices: [],
        }),
        device({ index: 2, brand: undefined, architecture: undefined, migCurrent: undefined, migDevices: [] }),
      ],
    });
    const info = queryDriver('/lib/libnvidia-ml.so.1', addon);
    expect(addon.calls).toEqual(['/lib/libnvidia-ml.so.1']);
    expect(info).toEqual({
      nvmlVersion: '12.550.54.15',
      driverVersion: '550.54.15',
      cudaVersion: '12.4',
      gpus: [
        {
          index: 0,
          minor: 3,
          uuid: 'GPU-11111111-2222-3333-4444-555555555555',
          name: 'NVIDIA H100 80GB HBM3',
          brand: 'Nvidia',
          pciBusId: '00000000:1a:00.0',
          computeCapability: '9.0',
          architecture: 'Hopper',
          memoryTotalBytes: 85899345920,
          migEnabled: true,
          migDevices: [
            {
              index: 0,
              gpuInstanceId: 1,
              computeInstanceId: 0,
              uuid: 'MIG-aaaa',
              name: 'NVIDIA H100 80GB HBM3 MIG 1g.10gb',
              memoryTotalBytes: 10737418240,
            },
          ],
        },
        {
          index: 1,
          minor: 0,
          uuid: 'GPU-11111111-2222-3333-4444-555555555555',
          name: 'NVIDIA H100 80GB HBM3',
          brand: 'GeForce',
          pciBusId: '00000010:ab:1f.0',
          migEnabled: false,
          migDevices: [],
        },
        expect.objectContaining({ index: 2, brand: 'Unknown', migDevices: [] }),
      ],
    });
    expect(info.gpus[2]).not.toHaveProperty('architecture');
    expect(info.gpus[2]).not.toHaveProperty('migEnabled');
  });

  it('leaves out optional driver fields the addon did not return', () => {
    expect(queryDriver('/x', fakeAddon({ driverVersion: '470.82.01', devices: [] }))).toEqual({ driverVersion: '470.82.01', gpus: [] });
  });

  it('maps every brand and architecture name', () => {
    const brands = Array.from({ length: 18 }, (_, b) =>
      queryDriver('/x', fakeAddon({ driverVersion: '1', devices: [device({ brand: b })] })).gpus[0].brand,
    );
    expect(brands).toEqual([
      'Unknown', 'Quadro', 'Tesla', 'NVS', 'GRID', 'GeForce', 'TITAN', 'VApps', 'VPC', 'VCS', 'VWS',
      'CloudGaming', 'QuadroRTX', 'NvidiaRTX', 'Nvidia', 'GeForceRTX', 'TitanRTX', 'Unknown',
    ]);
    const arch = (a: number) => queryDriver('/x', fakeAddon({ driverVersion: '1', devices: [device({ architecture: a })] })).gpus[0].architecture;
    expect([2, 3, 4, 5, 6, 7, 8, 9, 10, 13].map(arch)).toEqual([
      'Kepler', 'Maxwell', 'Pascal', 'Volta', 'Turing', 'Ampere', 'Ada', 'Hopper', 'Blackwell', 'Rubin',
    ]);
    expect(arch(11)).toBeUndefined();
  });

  it('formats CUDA versions and PCI bus ids like the seed', () => {
    expect(formatCudaVersion(12040)).toBe('12.4');
    expect(formatCudaVersion(11080)).toBe('11.8');
    expect(formatCudaVersion(13000)).toBe('13.0');
    expect(formatPciBusId(0, 7, 0)).toBe('00000000:07:00.0');
    expect(formatPciBusId(0xabcd, 0xff, 0x1f)).toBe('0000abcd:ff:1f.0');
  });

  it('maps NVML errors to clear NvrErrors', () => {
    const notLoaded = nvmlErr(9, 'nvmlInit_v2');
    expect(notLoaded.userMessage()).toMatch(/NVIDIA driver not loaded/);
    expect(notLoaded.userMessage()).toMatch(/kernel module loaded .* driver root/);
    expect(nvmlErr(4, 'nvmlInit_v2').message).toMatch(/insufficient permissions/);
    const dl = nvmlErr(12, 'dlopen', 'libnvidia-ml.so.1: wrong ELF class: ELFCLASS32');
    expect(dl.message).toBe('cannot load NVML library /r/usr/lib/libnvidia-ml.so.1: libnvidia-ml.so.1: wrong ELF class: ELFCLASS32');
    expect(nvmlErr(13, 'nvmlDeviceGetMinorNumber').message).toBe(
      'libnvidia-ml at /r/usr/lib/libnvidia-ml.so.1 lacks nvmlDeviceGetMinorNumber: driver too old or not NVML',
    );
    expect(nvmlErr(15, 'nvmlDeviceGetUUID', 'GPU is lost').message).toBe('NVML nvmlDeviceGetUUID failed: GPU is lost (code 15)');
    expect(nvmlErr(999, 'nvmlInit_v2', 'Unknown Error').fix).toBeDefined();
  });
});

describe('findNvmlLibrary', () => {
  const V = '550.54.15';
  let root: string;
  let cache: LdCache;
  beforeAll(() => {
    root = makeFakeRoot({ libs: driverLibs(V, ['libnvidia-ml', 'libcuda']) });
    cache = readLdCache(root);
  });
  afterAll(() => removeFakeRoot(root));

  it('uses the x86-64 ld cache entry, resolved inside the root', () => {
    expect(findNvmlLibrary(root, cache)).toBe(join(root, LIB64_DIR, `libnvidia-ml.so.${V}`));
  });

  it('skips cache entries whose file is gone and falls back to the usual directories', () => {
    const r2 = makeFakeRoot({
      libs: [{ file: `libnvidia-ml.so.${V}`, soname: 'libnvidia-ml.so.1', dir: '/usr/local/nvidia/lib64' }],
      ldconfig: false,
      symlinks: { '/usr/local/nvidia/lib64/libnvidia-ml.so.1': `libnvidia-ml.so.${V}` },
    });
    const stale: LdCache = { entries: [{ flags: 0x0303, key: 'libnvidia-ml.so.1', value: '/gone/libnvidia-ml.so.1', arch: 0x0300 }] };
    expect(findNvmlLibrary(r2, stale)).toBe(join(r2, `/usr/local/nvidia/lib64/libnvidia-ml.so.${V}`));
    expect(findNvmlLibrary(r2)).toBe(join(r2, `/usr/local/nvidia/lib64/libnvidia-ml.so.${V}`));
    removeFakeRoot(r2);
  });

  it('ignores i386 entries and says where it looked when nothing is found', () => {
    const r3 = makeFakeRoot({ libs: [{ file: `libnvidia-ml.so.${V}`, soname: 'libnvidia-ml.so.1', arch: 'i386' }] });
    let err: unknown;
    try {
      findNvmlLibrary(r3, readLdCache(r3));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NvrError);
    expect((err as NvrError).code).toBe('NVML');
    expect((err as NvrError).message).toBe(`NVML (libnvidia-ml.so.1) not found under driver root ${r3}`);
    expect((err as NvrError).fix).toMatch(/--root/);
    removeFakeRoot(r3);
  });
});
