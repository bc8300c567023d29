/**
 * NVIDIA device nodes under a dev root (the driver root unless told otherwise) and MIG capability nodes
 * whose minors come from the driver's /proc capability files (FACTS.md §1.6–1.7). Majors and minors are
 * always read from the real node (lstat st_rdev), never assumed, so what goes into the container's
 * device cgroup is what the host actually has.
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { NvrError } from '../errors.js';
import type { DeviceNode } from '../edits/types.js';
import { resolveInRoot } from './root.js';

/**
 * A node found on the host: the edits' DeviceNode (CDI's shape) with everything the host told us filled in —
 * `hostPath` (dev root + resolved path), type, major:minor from st_rdev, `fileMode` (st_mode & 07777).
 */
export type HostDeviceNode = DeviceNode & Required<Pick<DeviceNode, 'hostPath' | 'type' | 'major' | 'minor' | 'fileMode'>>;

export interface LookupOptions {
  /** Throw NvrError DEVICE instead of returning undefined when the node is missing or not a char device. */
  strict?: boolean;
}

/** glibc's gnu_dev_major/gnu_dev_minor on a 64-bit dev_t. */
export function decodeRdev(rdev: bigint | number): { major: number; minor: number } {
  const d = BigInt(rdev);
  const major = ((d & 0x00000000000fff00n) >> 8n) | ((d & 0xfffff00000000000n) >> 32n);
  const minor = (d & 0x00000000000000ffn) | ((d & 0x00000ffffff00000n) >> 12n);
  return { major: Number(major), minor: Number(minor) };
}

/** The character device at `path` under `devRoot`, or undefined (or NvrError DEVICE when strict). */
export function lookupDeviceNode(devRoot: string, path: string, options: LookupOptions = {}): HostDeviceNode | undefined {
  const where = resolveInRoot(devRoot, path);
  let problem = 'does not exist';
  if (where.exists) {
    try {
      const st = lstatSync(where.hostPath, { bigint: true });
      if (st.isCharacterDevice()) {
        const { major, minor } = decodeRdev(st.rdev);
        return { path, hostPath: where.hostPath, type: 'c', major, minor, fileMode: Number(st.mode & 0o7777n) };
      }
      problem = 'is not a character device';
    } catch (e) {
      problem = `cannot be read (${(e as Error).message})`;
    }
  }
  if (options.strict) {
    throw new NvrError('DEVICE', `device node ${path} under ${devRoot} ${problem}`, {
      fix: 'check that the NVIDIA driver is loaded and its device nodes exist (nvidia-smi or nvidia-modprobe creates them), or pass the right --root',
    });
  }
  return undefined;
}

/** Look up several nodes, keeping the ones that exist, in the given order. */
export function lookupDeviceNodes(devRoot: string, paths: Iterable<string>, options: LookupOptions = {}): HostDeviceNode[] {
  const out: HostDeviceNode[] = [];
  for (const p of paths) {
    const node = lookupDeviceNode(devRoot, p, options);
    if (node) out.push(node);
  }
  return out;
}

/** `/dev/nvidia<minor>` of one GPU. */
export function gpuDeviceNode(devRoot: string, minor: number, options: LookupOptions = {}): HostDeviceNode | undefined {
  return lookupDeviceNode(devRoot, `/dev/nvidia${minor}`, options);
}

/** Where the driver's IMEX channel nodes live (char major `nvidia-caps-imex-channels` of /proc/devices, minor N). */
export const IMEX_CHANNELS_DIR = '/dev/nvidia-caps-imex-channels';
/** Channel ids are decimal and below 2^20 (libnvidia-container's limit for --imex-channel). */
export const IMEX_CHANNEL_LIMIT = 2 ** 20;

export const imexChannelPath = (channel: number): string => `${IMEX_CHANNELS_DIR}/channel${channel}`;

/**
 * The IMEX channel nodes that exist under `devRoot`, by channel number, ascending: every `channel<N>` char device
 * of IMEX_CHANNELS_DIR with N < 2^20, major:minor read from the node. No directory (no IMEX-capable driver, or
 * no channels created yet) means no channels.
 */
export function lookupImexChannels(devRoot: string): Array<{ channel: number; node: HostDeviceNode }> {
  const where = resolveInRoot(devRoot, IMEX_CHANNELS_DIR);
  if (!where.exists) return [];
  let names: string[];
  try {
    names = readdirSync(where.hostPath);
  } catch {
    return [];
  }
  const channels = names
    .map((n) => /^channel(0|[1-9]\d{0,6})$/.exec(n))
    .flatMap((m) => (m && Number(m[1]) < IMEX_CHANNEL_LIMIT ? [Number(m[1])] : []))
    .sort((a, b) => a - b);
  return channels.flatMap((channel) => {
    const node = lookupDeviceNode(devRoot, imexChannelPath(channel));
    return node ? [{ channel, node }] : [];
  });
}

export const CAPS_PROC_DIR = '/proc/driver/nvidia/capabilities';

/** In-root /proc paths of the MIG capability files. */
export function gpuInstanceAccessPath(gpuMinor: number, gi: number): string {
  return `${CAPS_PROC_DIR}/gpu${gpuMinor}/mig/gi${gi}/access`;
}
export function computeInstanceAccessPath(gpuMinor: number, gi: number, ci: number): string {
  return `${CAPS_PROC_DIR}/gpu${gpuMinor}/mig/gi${gi}/ci${ci}/access`;
}
export function migGlobalCapPath(which: 'config' | 'monitor'): string {
  return `${CAPS_PROC_DIR}/mig/${which}`;
}

/** Parse the `DeviceFileMinor: N` line of a capability file's text. */
export function parseDeviceFileMinor(text: string): number | undefined {
  const m = /^DeviceFileMinor:\s*(\d+)\s*$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** DeviceFileMinor of the capability file `procPath` under `driverRoot`, or undefined. */
export function readCapabilityMinor(driverRoot: string, procPath: string): number | undefined {
  const where = resolveInRoot(driverRoot, procPath);
  if (!where.exists) return undefined;
  try {
    return parseDeviceFileMinor(readFileSync(where.hostPath, 'utf8'));
  } catch {
    return undefined;
  }
}

export interface CapabilityNode {
  /** The /proc capability file (in-root path), which is bind-mounted too. */
  procPath: string;
  /** `/dev/nvidia-caps/nvidia-cap<N>` when both the file and the node exist. */
  node?: HostDeviceNode;
}

function capabilityNode(driverRoot: string, devRoot: string, procPath: string, options: LookupOptions): CapabilityNode | undefined {
  const minor = readCapabilityMinor(driverRoot, procPath);
  if (minor === undefined) {
    if (options.strict) {
      throw new NvrError('DEVICE', `MIG capability file ${procPath} under ${driverRoot} is missing or has no DeviceFileMinor`, {
        fix: 'check that MIG is enabled and the instance exists (nvidia-smi mig -lgi / -lci)',
      });
    }
    return undefined;
  }
  const node = lookupDeviceNode(devRoot, `/dev/nvidia-caps/nvidia-cap${minor}`, options);
  return node ? { procPath, node } : { procPath };
}

/**
 * Capability files and nodes of one MIG device: its GPU instance and its compute instance, in that order.
 * Missing ones are absent (strict: NvrError DEVICE).
 */
export function migDeviceCapabilities(
  driverRoot: string,
  devRoot: string,
  mig: { gpuMinor: number; gpuInstanceId: number; computeInstanceId: number },
  options: LookupOptions = {},
): CapabilityNode[] {
  const files = [
    gpuInstanceAccessPath(mig.gpuMinor, mig.gpuInstanceId),
    computeInstanceAccessPath(mig.gpuMinor, mig.gpuInstanceId, mig.computeInstanceId),
  ];
  return files.flatMap((f) => capabilityNode(driverRoot, devRoot, f, options) ?? []);
}

/** The global MIG `config` or `monitor` capability (file + node), or undefined. */
export function migGlobalCapability(
  driverRoot: string,
  devRoot: string,
  which: 'config' | 'monitor',
  options: LookupOptions = {},
): CapabilityNode | undefined {
  return capabilityNode(driverRoot, devRoot, migGlobalCapPath(which), options);
}
