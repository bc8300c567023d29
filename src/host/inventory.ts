/**
 * The host, as one value: the driver (from NVML under the driver root), its ld cache, and the roots.
 * Composes the host modules; the file and device listings are thin helpers over them.
 */
import { statSync } from 'node:fs';
import { NvrError } from '../errors.js';
import type { Capability } from './capabilities.js';
import { controlDevicesFor } from './capabilities.js';
import { lookupDeviceNodes, migDeviceCapabilities, type CapabilityNode, type DeviceNode } from './devices.js';
import { findBinaries, findFirmware, findIpcs, findLibraries, type FileLookup, type LibraryLookup } from './driver-files.js';
import { readLdCache, type LdCache } from './ldcache.js';
import { findNvmlLibrary, queryDriver, type NvmlAddon } from './nvml.js';
import { normalizeRoot } from './root.js';
import type { DriverInfo, GpuInfo, MigDeviceInfo } from './types.js';

export interface HostInventory {
  /** Driver root, normalised ("/" or "/run/nvidia/driver"). */
  root: string;
  /** Where device nodes are looked up (defaults to the driver root). */
  devRoot: string;
  ldcache: LdCache;
  /** Host path of the libnvidia-ml that was queried. */
  nvmlLibrary: string;
  driver: DriverInfo;
}

export interface InventoryOptions {
  driverRoot: string;
  devRoot?: string;
  /** Injected addon (tests); default: the native addon. */
  addon?: NvmlAddon;
}

function requireDirectory(root: string): void {
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    // handled below
  }
  if (!isDir) {
    throw new NvrError('DRIVER_ROOT', `driver root ${root} does not exist or is not a directory`, {
      fix: 'pass --root with the directory that holds the driver (e.g. /run/nvidia/driver)',
    });
  }
}

/** Read the ld cache of the driver root and query NVML from it. */
export function loadHostInventory(options: InventoryOptions): HostInventory {
  const root = normalizeRoot(options.driverRoot);
  requireDirectory(root);
  const devRoot = normalizeRoot(options.devRoot ?? root);
  const ldcache = readLdCache(root);
  const nvmlLibrary = findNvmlLibrary(root, ldcache);
  const driver = queryDriver(nvmlLibrary, options.addon);
  return { root, devRoot, ldcache, nvmlLibrary, driver };
}

export interface DriverFiles {
  libraries: LibraryLookup;
  binaries: FileLookup;
  firmware: string[];
  ipcs: FileLookup;
}

/** Libraries, binaries, firmware and IPC endpoints the given capabilities bring. */
export function listDriverFiles(inv: HostInventory, caps: Iterable<Capability>): DriverFiles {
  const capList = [...caps];
  return {
    libraries: findLibraries(inv.root, inv.ldcache, capList, inv.driver.driverVersion),
    binaries: findBinaries(inv.root, capList),
    firmware: findFirmware(inv.root, inv.driver.driverVersion),
    ipcs: findIpcs(inv.root, capList),
  };
}

export interface DeviceSelection {
  gpus: GpuInfo[];
  /** MIG devices with their parent GPU. */
  migDevices?: Array<{ gpu: GpuInfo; mig: MigDeviceInfo }>;
}

export interface DeviceListing {
  /** Control nodes for the capabilities, then one /dev/nvidiaN per GPU. */
  nodes: DeviceNode[];
  /** MIG capability files and nodes, per selected MIG device. */
  migCapabilities: CapabilityNode[];
}

/** Device nodes for selected GPUs / MIG devices under these capabilities (missing nodes are left out). */
export function listDeviceNodes(inv: HostInventory, caps: Iterable<Capability>, sel: DeviceSelection): DeviceListing {
  const paths = [...controlDevicesFor(caps), ...sel.gpus.map((g) => `/dev/nvidia${g.minor}`)];
  return {
    nodes: lookupDeviceNodes(inv.devRoot, paths),
    migCapabilities: (sel.migDevices ?? []).flatMap(({ gpu, mig }) =>
      migDeviceCapabilities(inv.root, inv.devRoot, {
        gpuMinor: gpu.minor,
        gpuInstanceId: mig.gpuInstanceId,
        computeInstanceId: mig.computeInstanceId,
      }),
    ),
  };
}
