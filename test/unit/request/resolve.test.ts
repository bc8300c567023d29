import { NvrError } from '../../../src/errors.js';
import type { DriverInfo, GpuInfo } from '../../../src/host/types.js';
import { parseVisibleDevices } from '../../../src/request/devices.js';
import { resolveDevices, selectedGpus } from '../../../src/request/resolve.js';
import type { DeviceRequest } from '../../../src/request/types.js';

const uuid = (n: number, prefix = 'GPU') => `${prefix}-${String(n).padStart(8, '0')}-0000-0000-0000-00000000000${n % 10}`;

function gpu(index: number, minor: number, mig = false): GpuInfo {
  return {
    index,
    minor,
    uuid: uuid(index),
    name: 'NVIDIA A100-SXM4-40GB',
    brand: 'Tesla',
    pciBusId: `00000000:${(0x07 + index).toString(16).padStart(2, '0').toUpperCase()}:00.0`,
    computeCapability: '8.0',
    migEnabled: mig,
    migDevices: mig
      ? [0, 1].map((m) => ({
          index: m,
          gpuInstanceId: 3 + m,
          computeInstanceId: 0,
          uuid: uuid(10 * index + m + 1, 'MIG'),
          name: 'NVIDIA A100-SXM4-40GB MIG 1g.5gb',
        }))
      : [],
  };
}

// Minors deliberately differ from indices (NVML index order ≠ /dev/nvidiaN numbering).
const driver: DriverInfo = {
  driverVersion: '550.54.15',
  cudaVersion: '12.4',
  gpus: [gpu(0, 3), gpu(1, 0, true), gpu(2, 2), gpu(3, 1)],
};

function request(nvd: string): DeviceRequest {
  const v = parseVisibleDevices(nvd);
  if (!v.gpu) throw new Error('test request must be a GPU request');
  return { gpu: true, devices: v.devices, capabilities: [], requirements: [], source: 'env', reasons: [] };
}

const indices = (gpus: GpuInfo[]) => gpus.map((g) => g.index);
const migs = (r: ReturnType<typeof resolveDevices>) => r.migDevices.map((m) => `${m.gpu.index}:${m.mig.index}`);

describe('resolveDevices', () => {
  it('selects by NVML index, not by minor', () => {
    const r = resolveDevices(request('0'), driver);
    expect(r.gpus.map((g) => [g.index, g.minor])).toEqual([[0, 3]]);
  });

  it('returns GPUs in host index order, unique, across selector kinds', () => {
    const r = resolveDevices(request(`3,${uuid(0).toUpperCase()},0000:08:00.0,0,00000000:0a:00.0`), driver);
    expect(indices(r.gpus)).toEqual([0, 1, 3]);
    expect(r.migDevices).toEqual([]);
    expect(r.cdi).toEqual([]);
  });

  it('all → every GPU plus the MIG devices of MIG-enabled GPUs', () => {
    const r = resolveDevices(request('all'), driver);
    expect(indices(r.gpus)).toEqual([0, 1, 2, 3]);
    expect(migs(r)).toEqual(['1:0', '1:1']);
  });

  it('resolves MIG devices by index, UUID and legacy UUID, without adding the parent to gpus', () => {
    const r = resolveDevices(request(`1:1,${uuid(12, 'MIG')},MIG-${uuid(1)}/3/0`), driver);
    expect(r.gpus).toEqual([]);
    expect(migs(r)).toEqual(['1:0', '1:1']);
    expect(indices(selectedGpus(r))).toEqual([1]);
  });

  it('hands CDI names back unresolved', () => {
    const r = resolveDevices(request('nvidia.com/gpu=0,2,nvidia.com/gpu=0'), driver);
    expect(r.cdi).toEqual(['nvidia.com/gpu=0']);
    expect(indices(r.gpus)).toEqual([2]);
  });

  it('none and non-GPU requests resolve to nothing', () => {
    expect(resolveDevices(request('none'), driver)).toEqual({ gpus: [], migDevices: [], cdi: [] });
    const notGpu: DeviceRequest = { gpu: false, devices: [], capabilities: [], requirements: [], source: 'none', reasons: [] };
    expect(resolveDevices(notGpu, driver)).toEqual({ gpus: [], migDevices: [], cdi: [] });
  });

  it('all on a host without GPUs selects nothing', () => {
    expect(resolveDevices(request('all'), { driverVersion: '1', gpus: [] }).gpus).toEqual([]);
  });

  it.each([
    ['7', '"7"'],
    [uuid(9), JSON.stringify(uuid(9))],
    ['0000:99:00.0', '"00000000:99:00.0"'],
    ['0:0', '"0:0"'], // GPU 0 has no MIG
    ['1:5', '"1:5"'],
    [uuid(99, 'MIG'), JSON.stringify(uuid(99, 'MIG'))],
  ])('unknown device %s → DEVICE error listing what exists', (nvd, shown) => {
    let err: NvrError | undefined;
    try {
      resolveDevices(request(nvd), driver);
    } catch (e) {
      err = e as NvrError;
    }
    expect(err).toBeInstanceOf(NvrError);
    expect(err!.code).toBe('DEVICE');
    expect(err!.message).toBe(
      `unknown device ${shown}: this host has GPUs 0-3 (${[0, 1, 2, 3].map((i) => uuid(i)).join(', ')}) and MIG devices 1:0, 1:1`,
    );
  });

  it('abbreviates long device lists and handles hosts without GPUs', () => {
    const big: DriverInfo = { driverVersion: '1', gpus: Array.from({ length: 12 }, (_, i) => gpu(i, i)) };
    expect(() => resolveDevices(request('12'), big)).toThrow(/this host has GPUs 0-11 \(.*, GPU-00000007-[^,]*? and 4 more\)$/);
    expect(() => resolveDevices(request('0'), { driverVersion: '1', gpus: [] })).toThrow('unknown device "0": this host has no GPUs');
    const sparse: DriverInfo = { driverVersion: '1', gpus: [gpu(0, 0), gpu(2, 2)] };
    expect(() => resolveDevices(request('1'), sparse)).toThrow(/this host has GPUs 0,2 \(/);
  });
});
