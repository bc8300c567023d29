/**
 * NVML through the native addon (contract: native/README.md). The addon only enumerates; this module finds
 * which libnvidia-ml to load under the driver root, turns the raw numbers into the seed's strings
 * (FACTS.md §1.2) and turns NVML failures into NvrErrors that say what to do.
 */
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { NvrError } from '../errors.js';
import type { DriverInfo, GpuInfo, MigDeviceInfo } from './types.js';
import { ARCH_X86_64, entryMatchesArch, type LdCache } from './ldcache.js';
import { normalizeRoot, resolveInRoot } from './root.js';

export interface AddonMigDevice {
  index: number;
  gpuInstanceId?: number;
  computeInstanceId?: number;
  uuid: string;
  name?: string;
  memoryTotal?: number;
}

export interface AddonDevice {
  index: number;
  minor: number;
  uuid: string;
  name: string;
  brand?: number;
  pciBusId: string;
  domain: number;
  bus: number;
  device: number;
  pciDeviceId: number;
  ccMajor?: number;
  ccMinor?: number;
  architecture?: number;
  memoryTotal?: number;
  migCurrent?: number;
  migPending?: number;
  /** nvmlDeviceGetPersistenceMode: 1 on, 0 off; absent when NVML cannot tell. Only the doctor reads it. */
  persistenceMode?: number;
  migDevices: AddonMigDevice[];
}

export interface AddonNvmlResult {
  nvmlVersion?: string;
  driverVersion: string;
  cudaDriverVersion?: number;
  devices: AddonDevice[];
}

export interface AddonNvmlError {
  error: { code: number; call: string; message: string };
}

/** The part of the addon this module uses; tests pass a fake. */
export interface NvmlAddon {
  nvmlQuery(libraryPath: string): AddonNvmlResult | AddonNvmlError;
}

/** build/Release is two levels above both src/host and dist/host. */
const ADDON_PATH = '../../build/Release/nvidia_runtime.node';
let cachedAddon: NvmlAddon | undefined;

/** Load the native addon on first use (so commands that never touch NVML never load it). */
export function loadAddon(): NvmlAddon {
  if (cachedAddon) return cachedAddon;
  try {
    cachedAddon = createRequire(import.meta.url)(ADDON_PATH) as NvmlAddon;
  } catch (cause) {
    throw new NvrError('NVML', `cannot load the native addon build/Release/nvidia_runtime.node: ${(cause as Error).message}`, {
      fix: 'rebuild it with `npm ci` (or `npx node-gyp rebuild`)',
      cause,
    });
  }
  return cachedAddon;
}

export const NVML_SONAME = 'libnvidia-ml.so.1';
/** Where drivers put libnvidia-ml when the ld cache does not know it (in-root directories). */
export const NVML_FALLBACK_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/local/nvidia/lib64'];

function regularFile(hostPath: string): boolean {
  try {
    return statSync(hostPath).isFile();
  } catch {
    return false;
  }
}

/**
 * Host path of the root's libnvidia-ml.so.1 (symlinks resolved inside the root): the first x86-64 entry of
 * the root's ld cache that exists, like the loader would pick, else the usual directories.
 */
export function findNvmlLibrary(root: string, ldcache?: LdCache): string {
  const r = normalizeRoot(root);
  const candidates = [
    ...(ldcache?.entries ?? []).filter((e) => e.key === NVML_SONAME && entryMatchesArch(e, ARCH_X86_64)).map((e) => e.value),
    ...NVML_FALLBACK_DIRS.map((d) => `${d}/${NVML_SONAME}`),
  ];
  for (const c of candidates) {
    const f = resolveInRoot(r, c);
    if (f.exists && regularFile(f.hostPath)) return f.hostPath;
  }
  throw new NvrError('NVML', `NVML (${NVML_SONAME}) not found under driver root ${r}`, {
    fix: `install the NVIDIA driver there, run \`ldconfig${r === '/' ? '' : ` -r ${r}`}\`, or pass --root with the directory that holds the driver`,
  });
}

/** nvmlBrandType_t → the seed's brand names. */
const BRANDS: Record<number, string> = {
  1: 'Quadro',
  2: 'Tesla',
  3: 'NVS',
  4: 'GRID',
  5: 'GeForce',
  6: 'TITAN',
  7: 'VApps',
  8: 'VPC',
  9: 'VCS',
  10: 'VWS',
  11: 'CloudGaming',
  12: 'QuadroRTX',
  13: 'NvidiaRTX',
  14: 'Nvidia',
  15: 'GeForceRTX',
  16: 'TitanRTX',
};

/** nvmlDeviceArchitecture_t → name. */
const ARCHITECTURES: Record<number, string> = {
  2: 'Kepler',
  3: 'Maxwell',
  4: 'Pascal',
  5: 'Volta',
  6: 'Turing',
  7: 'Ampere',
  8: 'Ada',
  9: 'Hopper',
  10: 'Blackwell',
  13: 'Rubin',
};

export function brandName(brand: number | undefined): string {
  return (brand !== undefined && BRANDS[brand]) || 'Unknown';
}

export function architectureName(arch: number | undefined): string | undefined {
  return arch === undefined ? undefined : ARCHITECTURES[arch];
}

/** 12040 → "12.4" (the seed's v/1000 . v%100/10). */
export function formatCudaVersion(v: number): string {
  return `${Math.trunc(v / 1000)}.${Math.trunc((v % 100) / 10)}`;
}

/** `%08x:%02x:%02x.0`, as the seed prints bus locations. */
export function formatPciBusId(domain: number, bus: number, device: number): string {
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `${hex(domain, 8)}:${hex(bus, 2)}:${hex(device, 2)}.0`;
}

/** Turn an addon `{code, call, message}` into the user-facing error. */
export function nvmlError(libraryPath: string, err: { code: number; call: string; message: string }): NvrError {
  switch (err.code) {
    case 9:
      return new NvrError('NVML', `NVIDIA driver not loaded (${err.call} via ${libraryPath})`, {
        fix: 'is the kernel module loaded (modprobe nvidia) and is the driver root (--root) right?',
      });
    case 4:
      return new NvrError('NVML', `insufficient permissions for NVML ${err.call} (${libraryPath})`, {
        fix: 'run as root or give this user access to /dev/nvidiactl and /dev/nvidia*',
      });
    case 12:
      return new NvrError('NVML', `cannot load NVML library ${libraryPath}: ${err.message}`, {
        fix: 'check that the file is the driver\'s x86-64 libnvidia-ml.so.1 and that --root points at the driver',
      });
    case 13:
      return new NvrError('NVML', `libnvidia-ml at ${libraryPath} lacks ${err.call}: driver too old or not NVML`, {
        fix: 'use a newer NVIDIA driver, or point --root at the real driver',
      });
    default:
      return new NvrError('NVML', `NVML ${err.call} failed: ${err.message} (code ${err.code})`, {
        fix: `check the driver with nvidia-smi; NVML library: ${libraryPath}`,
      });
  }
}

function toMig(m: AddonMigDevice): MigDeviceInfo[] {
  // Without instance ids a MIG device cannot be addressed (its /proc capability paths need them).
  if (m.gpuInstanceId === undefined || m.computeInstanceId === undefined) return [];
  return [
    {
      index: m.index,
      gpuInstanceId: m.gpuInstanceId,
      computeInstanceId: m.computeInstanceId,
      uuid: m.uuid,
      name: m.name ?? '',
      ...(m.memoryTotal !== undefined && { memoryTotalBytes: m.memoryTotal }),
    },
  ];
}

function toGpu(d: AddonDevice): GpuInfo {
  const architecture = architectureName(d.architecture);
  return {
    index: d.index,
    minor: d.minor,
    uuid: d.uuid,
    name: d.name,
    brand: brandName(d.brand),
    pciBusId: formatPciBusId(d.domain, d.bus, d.device),
    ...(d.ccMajor !== undefined && d.ccMinor !== undefined && { computeCapability: `${d.ccMajor}.${d.ccMinor}` }),
    ...(architecture !== undefined && { architecture }),
    ...(d.memoryTotal !== undefined && { memoryTotalBytes: d.memoryTotal }),
    ...(d.migCurrent !== undefined && { migEnabled: d.migCurrent === 1 }),
    migDevices: d.migDevices.flatMap(toMig),
  };
}

/** Query NVML at `libraryPath` (a host path) → DriverInfo; NVML failures → NvrError NVML. */
export function queryDriver(libraryPath: string, addon: NvmlAddon = loadAddon()): DriverInfo {
  const res = addon.nvmlQuery(libraryPath);
  if ('error' in res) throw nvmlError(libraryPath, res.error);
  return {
    ...(res.nvmlVersion !== undefined && { nvmlVersion: res.nvmlVersion }),
    driverVersion: res.driverVersion,
    ...(res.cudaDriverVersion !== undefined && { cudaVersion: formatCudaVersion(res.cudaDriverVersion) }),
    gpus: res.devices.map(toGpu),
  };
}
