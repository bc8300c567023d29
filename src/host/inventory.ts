/**
 * The host, as one immutable value (the snapshot every edit is derived from): the driver (from NVML under the driver
 * root), its ld cache, the roots, and every lookup the edits need, done once when the snapshot is taken — driver
 * files of every capability, every control node, the node of every GPU, the capability nodes of every MIG device.
 * `listDriverFiles` and `listDeviceNodes` then only select from it (no I/O), so the runtime, `cdi generate`,
 * `explain` and `nvidia-container-cli list` all see the same host.
 */
import { statSync } from 'node:fs';
import { posix } from 'node:path';
import { deepFreeze } from '../config/defaults.js';
import { NvrError } from '../errors.js';
import { ALL_LIBRARY_PREFIXES, binariesFor, CAPABILITIES, CONTROL_DEVICES, controlDevicesFor, hasDriverOption, ipcsFor, libraryPrefixesFor, type Capability, type DriverOptions } from './capabilities.js';
import { findConfigs, findDrmDevice, findFeatureFiles, findVulkanConfigs, findXorgModules, GRAPHICS_CONFIGS, XORG_CONFIGS, type DrmDevice, type Feature, type FeatureFiles, type FileMount } from './graphics.js';
import { lookupDeviceNode, lookupImexChannels, migDeviceCapabilities, migGlobalCapability, type CapabilityNode, type HostDeviceNode } from './devices.js';
import { findBinary, findFirmware, findIpcs, librariesByPrefix, pick, type FileLookup, type LibraryLookup } from './driver-files.js';
import { ARCH_I386, ARCH_X86_64, readLdCache, type LdCache } from './ldcache.js';
import { findNvmlLibrary, queryDriver, type NvmlAddon } from './nvml.js';
import { normalizeRoot } from './root.js';
import type { DriverInfo, GpuInfo, MigDeviceInfo } from './types.js';

/** A lookup that the strict consumer (`cdi generate`) must refuse: what was wrong, as the error to throw. */
type Problem = NvrError;

export interface HostInventory {
  /** Driver root, normalised ("/" or "/run/nvidia/driver"). */
  readonly root: string;
  /** Where device nodes are looked up (defaults to the driver root). */
  readonly devRoot: string;
  readonly ldcache: LdCache;
  /** Host path of the libnvidia-ml that was queried. */
  readonly nvmlLibrary: string;
  readonly driver: DriverInfo;
  /** Every capability's driver files, looked up once: library per soname prefix (64- and 32-bit), binary per
   *  name, the IPC endpoints that exist, the GSP firmware. */
  readonly libraries: Readonly<Record<string, string>>;
  readonly libraries32: Readonly<Record<string, string>>;
  readonly binaries: Readonly<Record<string, string>>;
  readonly ipcs: readonly string[];
  readonly firmware: readonly string[];
  /** Control nodes and /dev/nvidia<minor> of every GPU, by container path; absent when missing. */
  readonly nodes: Readonly<Record<string, HostDeviceNode>>;
  /** Why a GPU node is unusable, by container path. */
  readonly nodeProblems: Readonly<Record<string, Problem>>;
  /** Capability files and nodes of every MIG device, by migKey(). */
  readonly migCapabilities: Readonly<Record<string, readonly CapabilityNode[]>>;
  /** Why a MIG device's capabilities are incomplete, by migKey(). */
  readonly migProblems: Readonly<Record<string, Problem>>;
  /** The IMEX channel nodes that exist (/dev/nvidia-caps-imex-channels/channel<N>), by channel number. */
  readonly imexChannels: Readonly<Record<number, HostDeviceNode>>;
  /** The global MIG `config` and `monitor` capabilities (/proc file + /dev/nvidia-caps node), when the host has them. */
  readonly migAdmin: Readonly<Partial<Record<'config' | 'monitor', CapabilityNode>>>;
  /** graphics: glvnd EGL vendor, EGL platforms, OptiX, Vulkan ICD/layers (src/host/graphics.ts), those present. */
  readonly graphicsConfigs: readonly FileMount[];
  /** display: X.Org snippets and the X server modules, those present. */
  readonly xorgConfigs: readonly FileMount[];
  readonly xorgModules: readonly FileMount[];
  /** The DRM nodes and by-path links of every GPU, by its NVML PCI bus id. */
  readonly drm: Readonly<Record<string, DrmDevice>>;
  /** GDS, MOFED, NVSwitch and GDRCopy nodes (and GDS's files) present on the host. */
  readonly features: Readonly<Record<Feature, FeatureFiles>>;
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

export const migKey = (gpu: GpuInfo, mig: MigDeviceInfo): string => `${gpu.minor}/${mig.gpuInstanceId}/${mig.computeInstanceId}`;

function problemOf(f: () => unknown): Problem | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    if (e instanceof NvrError) return e;
    throw e;
  }
}

/** Read the host once: the ld cache of the driver root, NVML from it, and every lookup under the roots. */
export function loadHostInventory(options: InventoryOptions): HostInventory {
  const root = normalizeRoot(options.driverRoot);
  requireDirectory(root);
  const devRoot = normalizeRoot(options.devRoot ?? root);
  const ldcache = readLdCache(root);
  const nvmlLibrary = findNvmlLibrary(root, ldcache);
  const driver = queryDriver(nvmlLibrary, options.addon);

  const prefixes = ALL_LIBRARY_PREFIXES;
  const libraries = Object.fromEntries(librariesByPrefix(root, ldcache, prefixes, ARCH_X86_64, driver.driverVersion));
  const libraries32 = Object.fromEntries(librariesByPrefix(root, ldcache, prefixes, ARCH_I386, driver.driverVersion));
  const driverLibDir = [libraries['libcuda.so'], libraries['libnvidia-ml.so']].find((p) => p !== undefined);
  const graphicsConfigs = [...findConfigs(root, GRAPHICS_CONFIGS), ...findVulkanConfigs(root)];
  const xorgConfigs = findConfigs(root, XORG_CONFIGS);
  const xorgModules = findXorgModules(root, driverLibDir ? posix.dirname(driverLibDir) : undefined, driver.driverVersion);
  const drm = Object.fromEntries(driver.gpus.map((g) => [g.pciBusId, findDrmDevice(devRoot, g.pciBusId)]));
  const features = findFeatureFiles(root, devRoot);
  const binaries: Record<string, string> = {};
  for (const name of binariesFor(CAPABILITIES)) {
    const path = findBinary(root, name);
    if (path !== undefined) binaries[name] = path;
  }
  const ipcs = findIpcs(root, CAPABILITIES).paths;
  const firmware = findFirmware(root, driver.driverVersion);
  const nodes: Record<string, HostDeviceNode> = {};
  const nodeProblems: Record<string, Problem> = {};
  for (const path of [...CONTROL_DEVICES, ...driver.gpus.map((g) => `/dev/nvidia${g.minor}`)]) {
    const node = lookupDeviceNode(devRoot, path);
    if (node) nodes[path] = node;
    else nodeProblems[path] = problemOf(() => lookupDeviceNode(devRoot, path, { strict: true }))!;
  }
  const migCapabilities: Record<string, CapabilityNode[]> = {};
  const migProblems: Record<string, Problem> = {};
  for (const gpu of driver.gpus) {
    for (const mig of gpu.migDevices) {
      const ids = { gpuMinor: gpu.minor, gpuInstanceId: mig.gpuInstanceId, computeInstanceId: mig.computeInstanceId };
      const caps = migDeviceCapabilities(root, devRoot, ids);
      migCapabilities[migKey(gpu, mig)] = caps;
      // The lookup again, strictly, only to word the error of an incomplete device (GI and CI, each with its node).
      const complete = caps.length === 2 && caps.every((c) => c.node !== undefined);
      const problem = complete ? undefined : problemOf(() => migDeviceCapabilities(root, devRoot, ids, { strict: true }));
      if (problem) migProblems[migKey(gpu, mig)] = problem;
    }
  }
  const imexChannels: Record<number, HostDeviceNode> = {};
  for (const { channel, node } of lookupImexChannels(devRoot)) imexChannels[channel] = node;
  const migAdmin: Partial<Record<'config' | 'monitor', CapabilityNode>> = {};
  for (const which of ['config', 'monitor'] as const) {
    const cap = migGlobalCapability(root, devRoot, which);
    if (cap?.node) migAdmin[which] = cap;
  }
  return deepFreeze({
    root, devRoot, ldcache, nvmlLibrary, driver, libraries, libraries32, binaries, ipcs, firmware, nodes, nodeProblems,
    migCapabilities, migProblems, imexChannels, migAdmin, graphicsConfigs, xorgConfigs, xorgModules, drm, features,
  });
}

export interface DriverFiles {
  libraries: LibraryLookup;
  binaries: FileLookup;
  firmware: string[];
  ipcs: FileLookup;
  /** Configuration files and X modules (graphics, display), bound read-only at `path`. */
  configs: FileMount[];
}

/** Libraries, binaries, firmware, IPC endpoints and configuration files the given capabilities bring under these
 *  driver options (selected from the snapshot). */
export function listDriverFiles(inv: HostInventory, caps: Iterable<Capability>, opts?: DriverOptions): DriverFiles {
  const capList = [...caps];
  const prefixes = libraryPrefixesFor(capList, opts);
  const lib64 = pick(inv.libraries, prefixes);
  const lib32 = capList.includes('compat32') ? pick(inv.libraries32, prefixes) : { paths: [], missing: [] };
  const ipcs = ipcsFor(capList, opts);
  return {
    libraries: { libraries: lib64.paths, libraries32: lib32.paths, missing: lib64.missing, missing32: lib32.missing },
    binaries: pick(inv.binaries, binariesFor(capList, opts)),
    firmware: hasDriverOption(opts, 'no-gsp-firmware') ? [] : [...inv.firmware],
    ipcs: { paths: ipcs.filter((p) => inv.ipcs.includes(p)), missing: ipcs.filter((p) => !inv.ipcs.includes(p)) },
    configs: [
      ...(capList.includes('graphics') ? inv.graphicsConfigs : []),
      ...(capList.includes('display') ? [...inv.xorgConfigs, ...inv.xorgModules] : []),
    ].map((f) => ({ ...f })),
  };
}

/** The DRM nodes and by-path links of these GPUs (graphics and display containers get them). */
export function listDrmDevices(inv: HostInventory, gpus: readonly GpuInfo[]): DrmDevice {
  const of = gpus.map((g) => inv.drm[g.pciBusId] ?? { nodes: [], links: [] });
  return { nodes: of.flatMap((d) => d.nodes), links: of.flatMap((d) => d.links) };
}

export interface DeviceSelection {
  gpus: GpuInfo[];
  /** MIG devices with their parent GPU. */
  migDevices?: Array<{ gpu: GpuInfo; mig: MigDeviceInfo }>;
}

export interface DeviceListing {
  /** Control nodes for the capabilities, then one /dev/nvidiaN per GPU. */
  nodes: HostDeviceNode[];
  /** MIG capability files and nodes, per selected MIG device. */
  migCapabilities: CapabilityNode[];
}

/** Device nodes for selected GPUs / MIG devices under these capabilities (missing nodes are left out). */
export function listDeviceNodes(inv: HostInventory, caps: Iterable<Capability>, sel: DeviceSelection, opts?: DriverOptions): DeviceListing {
  const paths = [...controlDevicesFor(caps, opts), ...sel.gpus.map((g) => `/dev/nvidia${g.minor}`)];
  return {
    nodes: paths.flatMap((p) => (inv.nodes[p] ? [inv.nodes[p]!] : [])),
    migCapabilities: (sel.migDevices ?? []).flatMap(({ gpu, mig }) => inv.migCapabilities[migKey(gpu, mig)] ?? []),
  };
}
