/**
 * Request + host → ContainerEdits. This is where "what the container asked for" meets "what the host has":
 * device nodes with the host's real major:minor, read-only bind mounts of the capability's driver files at their
 * host paths (sources are always host paths under the driver root, never paths from the image), the granted
 * NVIDIA_VISIBLE_DEVICES and one createContainer hook that makes the libraries loadable. Pure apart from the
 * host lookups it is handed (the inventory).
 */
import { posix } from 'node:path';
import type { HostInventory } from '../host/inventory.js';
import { listDeviceNodes, listDriverFiles } from '../host/inventory.js';
import { hostPathOf } from '../host/root.js';
import type { DeviceRequest } from '../request/types.js';
import { selectedGpus, type ResolvedDevices } from '../request/resolve.js';
import type { ContainerEdits, DeviceNode, Mount } from './types.js';

/** Read-only, no setuid, no device files, and no propagation back to the host (SECURITY.md R2). */
export const READ_ONLY_BIND = ['ro', 'nosuid', 'nodev', 'rbind', 'rprivate'];
/** IPC endpoints must stay writable (sockets, the MPS pipe directory). */
export const IPC_BIND = ['nosuid', 'nodev', 'noexec', 'rbind', 'rprivate'];
/** Every hook we inject runs with exactly this environment, never the image's (CVE-2025-23266). */
export const HOOK_ENV = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'];
export const HOOK_TIMEOUT_SECONDS = 30;

export interface BuildInput {
  inventory: HostInventory;
  request: DeviceRequest;
  resolved: ResolvedDevices;
  /** Absolute host path of nvidia-runtime-hook. */
  hookPath: string;
  /** Absolute host path of the container's rootfs (bundle + root.path). */
  rootfs: string;
}

export interface BuiltEdits {
  edits: ContainerEdits;
  /** What NVIDIA_VISIBLE_DEVICES now says: GPU and MIG UUIDs, or "none". */
  granted: string;
}

export function buildEdits(input: BuildInput): BuiltEdits {
  const { inventory: inv, request, resolved } = input;
  const gpus = selectedGpus(resolved);
  const devices = listDeviceNodes(inv, request.capabilities, { gpus, migDevices: resolved.migDevices });
  const deviceNodes: DeviceNode[] = [
    ...devices.nodes,
    ...devices.migCapabilities.flatMap((c) => (c.node ? [c.node] : [])),
  ].map((n) => ({ path: n.path, type: n.type, major: n.major, minor: n.minor, fileMode: n.fileMode, permissions: 'rwm' }));

  const files = listDriverFiles(inv, request.capabilities);
  const bind = (paths: string[], options: string[]): Mount[] =>
    paths.map((p) => ({ hostPath: hostPathOf(inv.root, p), containerPath: p, type: 'bind', options }));
  const libraries = [...files.libraries.libraries, ...files.libraries.libraries32];
  const mounts = [
    ...bind(libraries, READ_ONLY_BIND),
    ...bind(files.binaries.paths, READ_ONLY_BIND),
    ...bind(files.firmware, READ_ONLY_BIND),
    ...bind(files.ipcs.paths, IPC_BIND),
  ];

  const granted =
    request.devices.length === 0
      ? 'none'
      : [...resolved.gpus.map((g) => g.uuid), ...resolved.migDevices.map((m) => m.mig.uuid)].join(',');

  const edits: ContainerEdits = { env: [`NVIDIA_VISIBLE_DEVICES=${granted}`], deviceNodes, mounts };
  if (libraries.length > 0) edits.hooks = [ldcacheHook(input, libraries)];
  return { edits, granted };
}

/** The createContainer hook: soname links and the ld cache inside the container, by the native hook. */
function ldcacheHook(input: BuildInput, libraries: string[]) {
  const folders = [...new Set(libraries.map((l) => posix.dirname(l)))];
  const args = ['nvidia-runtime-hook', 'update-ldcache', '--root', input.rootfs];
  for (const f of folders) args.push('--folder', f);
  const libcuda = libraries.find((l) => /\/libcuda\.so\.[0-9.]+$/.test(l));
  // The dev link names the versioned file, not libcuda.so.1: that soname link only appears when ldconfig runs,
  // after the links are made, and ldconfig skips a dangling link.
  if (libcuda) args.push('--link', `${posix.basename(libcuda)}::${posix.join(posix.dirname(libcuda), 'libcuda.so')}`);
  return { hookName: 'createContainer', path: input.hookPath, args, env: [...HOOK_ENV], timeout: HOOK_TIMEOUT_SECONDS };
}
