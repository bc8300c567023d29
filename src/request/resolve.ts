/**
 * Match a DeviceRequest's selectors against the host's GPUs (from NVML). Indices are NVML indices, not
 * device-node minors. CDI names are not resolved here: they are handed back for the CDI layer.
 */
import { NvrError } from '../errors.js';
import type { DriverInfo, GpuInfo, MigDeviceInfo } from '../host/types.js';
import { formatSelector, normalizePciBusId, quote } from './devices.js';
import type { DeviceRequest, DeviceSelector } from './types.js';

export interface ResolvedMig {
  gpu: GpuInfo;
  mig: MigDeviceInfo;
}

export interface ResolvedDevices {
  gpus: GpuInfo[]; // selected whole GPUs, host index order, unique
  migDevices: ResolvedMig[]; // selected MIG devices (parents not added to gpus), host order, unique
  cdi: string[]; // fully-qualified CDI names, request order, unique
}

/** All MIG devices of a GPU, when MIG is on (or NVML cannot tell but lists some). */
function enabledMigDevices(gpu: GpuInfo): MigDeviceInfo[] {
  return gpu.migEnabled === false ? [] : gpu.migDevices;
}

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

function findMig(driver: DriverInfo, s: DeviceSelector): ResolvedMig | undefined {
  if (s.kind === 'mig-index') {
    const gpu = driver.gpus.find((g) => g.index === s.gpu);
    const mig = gpu && enabledMigDevices(gpu).find((m) => m.index === s.mig);
    return gpu && mig ? { gpu, mig } : undefined;
  }
  if (s.kind !== 'mig-uuid') return undefined;
  // Legacy naming MIG-GPU-<parent uuid>/<gi>/<ci>.
  const legacy = /^MIG-(GPU-[^/]+)\/(\d+)\/(\d+)$/i.exec(s.uuid);
  for (const gpu of driver.gpus) {
    for (const mig of enabledMigDevices(gpu)) {
      const hit = legacy
        ? same(gpu.uuid, legacy[1]!) && mig.gpuInstanceId === Number(legacy[2]) && mig.computeInstanceId === Number(legacy[3])
        : same(mig.uuid, s.uuid);
      if (hit) return { gpu, mig };
    }
  }
  return undefined;
}

function findGpu(driver: DriverInfo, s: DeviceSelector): GpuInfo | undefined {
  switch (s.kind) {
    case 'index':
      return driver.gpus.find((g) => g.index === s.index);
    case 'uuid':
      return driver.gpus.find((g) => same(g.uuid, s.uuid));
    case 'pci':
      return driver.gpus.find((g) => (normalizePciBusId(g.pciBusId) ?? g.pciBusId.toLowerCase()) === s.busId);
    default:
      return undefined;
  }
}

/** "0-3" for a contiguous run, else "0,2,5". */
function indexList(indices: number[]): string {
  const sorted = [...indices].sort((a, b) => a - b);
  const contiguous = sorted.length > 2 && sorted.every((v, i) => i === 0 || v === sorted[i - 1]! + 1);
  return contiguous ? `${sorted[0]}-${sorted[sorted.length - 1]}` : sorted.join(',');
}

function abbreviate(items: string[], max = 8): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

/** What this host has, for "unknown device" messages. */
export function describeHostDevices(driver: DriverInfo): string {
  if (driver.gpus.length === 0) return 'this host has no GPUs';
  const gpus = driver.gpus.length === 1 ? 'GPU' : 'GPUs';
  let text = `this host has ${gpus} ${indexList(driver.gpus.map((g) => g.index))} (${abbreviate(driver.gpus.map((g) => g.uuid))})`;
  const migs = driver.gpus.flatMap((g) => enabledMigDevices(g).map((m) => `${g.index}:${m.index}`));
  if (migs.length > 0) text += ` and MIG devices ${abbreviate(migs)}`;
  return text;
}

function unknownDevice(s: DeviceSelector, driver: DriverInfo): NvrError {
  return new NvrError('DEVICE', `unknown device ${quote(formatSelector(s))}: ${describeHostDevices(driver)}`, {
    fix: 'select an existing GPU by index, UUID or PCI bus id, or a MIG device as <gpu>:<mig> or MIG-…',
  });
}

export function resolveDevices(request: DeviceRequest, driver: DriverInfo): ResolvedDevices {
  const gpus = new Set<GpuInfo>();
  const migs = new Set<MigDeviceInfo>();
  const cdi = new Set<string>();
  if (request.gpu) {
    for (const s of request.devices) {
      if (s.kind === 'all') {
        for (const gpu of driver.gpus) {
          gpus.add(gpu);
          for (const mig of enabledMigDevices(gpu)) migs.add(mig);
        }
      } else if (s.kind === 'cdi') {
        cdi.add(s.name);
      } else if (s.kind === 'mig-index' || s.kind === 'mig-uuid') {
        const hit = findMig(driver, s);
        if (!hit) throw unknownDevice(s, driver);
        migs.add(hit.mig);
      } else {
        const gpu = findGpu(driver, s);
        if (!gpu) throw unknownDevice(s, driver);
        gpus.add(gpu);
      }
    }
  }
  // Walk the host in order so the result is in host index order whatever the request order was.
  const byIndex = [...driver.gpus].sort((a, b) => a.index - b.index);
  return {
    gpus: byIndex.filter((g) => gpus.has(g)),
    migDevices: byIndex.flatMap((gpu) =>
      [...gpu.migDevices].sort((a, b) => a.index - b.index).filter((m) => migs.has(m)).map((mig) => ({ gpu, mig })),
    ),
    cdi: [...cdi],
  };
}

/** Every GPU the container touches: selected GPUs plus the parents of selected MIG devices, host order. */
export function selectedGpus(resolved: ResolvedDevices): GpuInfo[] {
  const set = new Set<GpuInfo>([...resolved.gpus, ...resolved.migDevices.map((m) => m.gpu)]);
  return [...set].sort((a, b) => a.index - b.index);
}
