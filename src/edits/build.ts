/**
 * Host snapshot + what is wanted → ContainerEdits: the one builder, pure (it only selects from the snapshot, which
 * did every lookup when it was taken). The runtime's direct path, `cdi generate` and `explain` all derive their edits
 * here, so the direct and CDI paths agree by construction:
 *
 * - `driverEdits`: control nodes and read-only bind mounts of the capability's driver files at their host paths
 *   (sources are always host paths under the driver root, never paths from the image), and the createContainer hook
 *   that makes the libraries loadable;
 * - `deviceEdits`: the nodes of the selected GPUs and MIG devices, with the host's real major:minor;
 * - `imexEdits`: the nodes of the requested IMEX channels (a channel the host lacks is an error naming it);
 * - `buildEdits`: all three for a request, plus the granted NVIDIA_VISIBLE_DEVICES.
 */
import { posix } from 'node:path';
import { listDeviceNodes, listDriverFiles, type DeviceSelection, type HostInventory } from '../host/inventory.js';
import type { Capability } from '../host/capabilities.js';
import { IMEX_CHANNELS_DIR, imexChannelPath, type HostDeviceNode } from '../host/devices.js';
import { NvrError } from '../errors.js';
import { hostPathOf } from '../host/root.js';
import type { DeviceRequest } from '../request/types.js';
import { selectedGpus, type ResolvedDevices } from '../request/resolve.js';
import type { ContainerEdits, DeviceNode, Hook, Mount } from './types.js';

/** Read-only, no setuid, no device files, and no propagation back to the host (SECURITY.md R2). */
export const READ_ONLY_BIND = ['ro', 'nosuid', 'nodev', 'rbind', 'rprivate'];
/** IPC endpoints must stay writable (sockets, the MPS pipe directory). */
export const IPC_BIND = ['nosuid', 'nodev', 'noexec', 'rbind', 'rprivate'];
/** Every hook we inject runs with exactly this environment, never the image's (CVE-2025-23266). */
export const HOOK_ENV = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'];
export const HOOK_TIMEOUT_SECONDS = 30;

/** Where the ld cache hook runs: its host path, and the container's rootfs when known (the direct path). Without
 *  a rootfs (a CDI spec is written before any container exists) the hook reads it from the OCI state on stdin. */
export interface HookTarget {
  hookPath: string;
  rootfs?: string;
  /** A host ldconfig to run instead of the host's default (/sbin/ldconfig.real or /sbin/ldconfig). */
  ldconfig?: string;
}

/** A host node as an edit: hostPath only when the node lives elsewhere than its container path. */
export function nodeEdit(n: HostDeviceNode): DeviceNode {
  const node: DeviceNode = { path: n.path };
  if (n.hostPath !== n.path) node.hostPath = n.hostPath;
  return { ...node, type: n.type, major: n.major, minor: n.minor, fileMode: n.fileMode, permissions: 'rwm' };
}

/** The createContainer hook: soname links and the ld cache inside the container, by the native hook. */
export function ldcacheHook(libraries: readonly string[], target: HookTarget): Hook {
  const args = ['nvidia-runtime-hook', 'update-ldcache'];
  if (target.rootfs !== undefined) args.push('--root', target.rootfs);
  if (target.ldconfig !== undefined) args.push('--ldconfig', target.ldconfig);
  for (const f of [...new Set(libraries.map((l) => posix.dirname(l)))]) args.push('--folder', f);
  const libcuda = libraries.find((l) => /\/libcuda\.so\.[0-9.]+$/.test(l));
  // The dev link names the versioned file, not libcuda.so.1: that soname link only appears when ldconfig runs,
  // after the links are made, and ldconfig skips a dangling link.
  if (libcuda) args.push('--link', `${posix.basename(libcuda)}::${posix.join(posix.dirname(libcuda), 'libcuda.so')}`);
  return { hookName: 'createContainer', path: target.hookPath, args, env: [...HOOK_ENV], timeout: HOOK_TIMEOUT_SECONDS };
}

/** What every container with these capabilities gets: control nodes, driver file mounts, the ld cache hook. */
export function driverEdits(inv: HostInventory, caps: readonly Capability[], target: HookTarget): ContainerEdits {
  const control = listDeviceNodes(inv, caps, { gpus: [] }).nodes.map(nodeEdit);
  const files = listDriverFiles(inv, caps);
  const bind = (paths: readonly string[], options: readonly string[]): Mount[] =>
    paths.map((p) => ({ hostPath: hostPathOf(inv.root, p), containerPath: p, type: 'bind', options: [...options] }));
  const libraries = [...files.libraries.libraries, ...files.libraries.libraries32];
  const mounts = [
    ...bind(libraries, READ_ONLY_BIND),
    ...bind(files.binaries.paths, READ_ONLY_BIND),
    ...bind(files.firmware, READ_ONLY_BIND),
    ...bind(files.ipcs.paths, IPC_BIND),
  ];
  const edits: ContainerEdits = {};
  if (control.length > 0) edits.deviceNodes = control;
  if (mounts.length > 0) edits.mounts = mounts;
  if (libraries.length > 0) edits.hooks = [ldcacheHook(libraries, target)];
  return edits;
}

/** The nodes of the selected GPUs (and MIG devices: their parent GPU's node, then their capability nodes). */
export function deviceEdits(inv: HostInventory, selection: DeviceSelection): ContainerEdits {
  const listing = listDeviceNodes(inv, [], selection);
  const nodes = [
    ...listing.nodes.filter((n) => selection.gpus.some((g) => n.path === `/dev/nvidia${g.minor}`)),
    ...listing.migCapabilities.flatMap((c) => (c.node ? [c.node] : [])),
  ].map(nodeEdit);
  return nodes.length > 0 ? { deviceNodes: nodes } : {};
}

/**
 * The nodes of these IMEX channels, with the host's major:minor. We never create a channel node on the host (the
 * toolkit's nvidia-modprobe may, unless features.disable-imex-channel-creation): a channel the snapshot lacks is
 * an NvrError DEVICE naming it.
 */
export function imexEdits(inv: HostInventory, channels: readonly number[]): ContainerEdits {
  const nodes = channels.map((ch) => {
    const node = inv.imexChannels?.[ch];
    if (!node) {
      const have = Object.keys(inv.imexChannels ?? {});
      throw new NvrError('DEVICE', `IMEX channel ${ch}: ${imexChannelPath(ch)} does not exist under ${inv.devRoot}` +
        ` (${have.length > 0 ? `the host has channels ${have.join(',')}` : `the host has no IMEX channels in ${IMEX_CHANNELS_DIR}`})`, {
        fix: `request an existing channel in NVIDIA_IMEX_CHANNELS, or create it on the host: mknod ${imexChannelPath(ch)} c <major of nvidia-caps-imex-channels in /proc/devices> ${ch}`,
      });
    }
    return nodeEdit(node);
  });
  return nodes.length > 0 ? { deviceNodes: nodes } : {};
}

/** The global MIG config/monitor capability nodes; one the host lacks is an NvrError DEVICE naming it. */
export function migAdminEdits(inv: HostInventory, which: readonly ('config' | 'monitor')[]): ContainerEdits {
  const nodes = which.map((w) => {
    const cap = inv.migAdmin?.[w];
    if (!cap?.node) {
      throw new NvrError('DEVICE', `MIG ${w} capability: /proc/driver/nvidia/capabilities/mig/${w} or its /dev/nvidia-caps node is missing under ${inv.root}`, {
        fix: `check that the GPUs support MIG and the driver exposes the capability, or unset NVIDIA_MIG_${w.toUpperCase()}_DEVICES`,
      });
    }
    return nodeEdit(cap.node);
  });
  return nodes.length > 0 ? { deviceNodes: nodes } : {};
}

export interface BuildInput {
  inventory: HostInventory;
  request: DeviceRequest;
  resolved: ResolvedDevices;
  /** Absolute host path of nvidia-runtime-hook. */
  hookPath: string;
  /** Absolute host path of the container's rootfs (bundle + root.path). */
  rootfs: string;
  /** [nvidia-container-cli] ldconfig as a host path, when not the default. */
  ldconfig?: string;
}

export interface BuiltEdits {
  edits: ContainerEdits;
  /** What NVIDIA_VISIBLE_DEVICES now says: GPU and MIG UUIDs, or "none". */
  granted: string;
}

/** The direct path's edits for a resolved request. */
export function buildEdits(input: BuildInput): BuiltEdits {
  const { inventory: inv, request, resolved } = input;
  const granted =
    request.devices.length === 0
      ? 'none'
      : [...resolved.gpus.map((g) => g.uuid), ...resolved.migDevices.map((m) => m.mig.uuid)].join(',');
  const target: HookTarget = { hookPath: input.hookPath, rootfs: input.rootfs, ...(input.ldconfig ? { ldconfig: input.ldconfig } : {}) };
  const driver = driverEdits(inv, request.capabilities, target);
  const devices = deviceEdits(inv, { gpus: selectedGpus(resolved), migDevices: resolved.migDevices });
  const edits: ContainerEdits = { env: [`NVIDIA_VISIBLE_DEVICES=${granted}`] };
  const imex = imexEdits(inv, request.imexChannels ?? []);
  const admin = migAdminEdits(inv, request.migAdmin ?? []);
  const deviceNodes = [...(driver.deviceNodes ?? []), ...(devices.deviceNodes ?? []), ...(imex.deviceNodes ?? []), ...(admin.deviceNodes ?? [])];
  // Empty lists stay present here, as before: applyEdits treats them as "nothing to add".
  edits.deviceNodes = deviceNodes;
  edits.mounts = driver.mounts ?? [];
  if (driver.hooks) edits.hooks = driver.hooks;
  return { edits, granted };
}

/** The driver options of nvidia-container-cli that leave parts out (libnvidia-container's no-persistenced,
 *  no-fabricmanager, no-gsp-firmware). */
export interface DriverPartOptions {
  noPersistenced?: boolean;
  noFabricmanager?: boolean;
  noGspFirmware?: boolean;
}

/** edits without the mounts those options leave out. */
export function dropDriverParts(edits: ContainerEdits, opts: DriverPartOptions): ContainerEdits {
  const dropped = (m: Mount): boolean =>
    (opts.noPersistenced === true && m.containerPath.includes('/nvidia-persistenced/')) ||
    (opts.noFabricmanager === true && m.containerPath.includes('/nvidia-fabricmanager/')) ||
    (opts.noGspFirmware === true && m.containerPath.startsWith('/lib/firmware/nvidia/'));
  return edits.mounts ? { ...edits, mounts: edits.mounts.filter((m) => !dropped(m)) } : edits;
}
