/**
 * Host snapshot + what is wanted → ContainerEdits: the one builder, pure (it only selects from the snapshot, which
 * did every lookup when it was taken). The runtime's direct path, `cdi generate`, `explain` and the live path
 * (`nvidia-container-cli configure`) all derive their edits here, so every path injects the same things:
 *
 * - `driverEdits`: control nodes and read-only bind mounts of the capability's driver files at their host paths
 *   (libraries, binaries, firmware, IPC endpoints, graphics/display configuration and X modules; sources are always
 *   host paths under the driver root, never paths from the image), and the createContainer hook that makes the
 *   libraries loadable and creates the driver's links (libcuda.so, GBM backend, …);
 * - `deviceEdits`: the nodes of the selected GPUs and MIG devices, with the host's real major:minor;
 * - `drmEdits`: the DRM nodes of the selected GPUs and their /dev/dri/by-path links (graphics, display);
 * - `featureEdits`: GDS / MOFED / NVSwitch / GDRCopy nodes and files;
 * - `imexEdits`: the nodes of the requested IMEX channels (a channel the host lacks is an error naming it);
 * - `buildEdits`: all of them for a request, plus CUDA forward compatibility and the granted NVIDIA_VISIBLE_DEVICES.
 */
import { posix } from 'node:path';
import { listDeviceNodes, listDrmDevices, listDriverFiles, type DeviceSelection, type HostInventory } from '../host/inventory.js';
import type { Capability, DriverOptions } from '../host/capabilities.js';
import type { CudaCompatMode } from '../config/schema.js';
import { IMEX_CHANNELS_DIR, imexChannelPath, type HostDeviceNode } from '../host/devices.js';
import type { Feature, LinkEdit } from '../host/graphics.js';
import type { CompatLibrary } from '../host/cuda-compat.js';
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
  /** CUDA forward compatibility inside the ld cache hook: the host driver version the image's compat libcuda must
   *  be newer than (the hook's --cuda-compat; cuda-compat-mode = ldconfig). */
  cudaCompat?: string;
}

/** A host node as an edit: hostPath only when the node lives elsewhere than its container path. */
export function nodeEdit(n: HostDeviceNode): DeviceNode {
  const node: DeviceNode = { path: n.path };
  if (n.hostPath !== n.path) node.hostPath = n.hostPath;
  return { ...node, type: n.type, major: n.major, minor: n.minor, fileMode: n.fileMode, permissions: 'rwm' };
}

const linkArg = (l: LinkEdit): string => `${l.target}::${l.link}`;

/** The createContainer hook: the driver's links, CUDA compat and the ld cache inside the container, by the native
 *  hook. */
export function ldcacheHook(libraries: readonly string[], target: HookTarget, links: readonly LinkEdit[] = []): Hook {
  const args = ['nvidia-runtime-hook', 'update-ldcache'];
  if (target.rootfs !== undefined) args.push('--root', target.rootfs);
  if (target.ldconfig !== undefined) args.push('--ldconfig', target.ldconfig);
  if (target.cudaCompat !== undefined) args.push('--cuda-compat', target.cudaCompat);
  for (const f of [...new Set(libraries.map((l) => posix.dirname(l)))]) args.push('--folder', f);
  for (const l of links) args.push('--link', linkArg(l));
  return { hookName: 'createContainer', path: target.hookPath, args, env: [...HOOK_ENV], timeout: HOOK_TIMEOUT_SECONDS };
}

/** A createContainer hook that only makes links (no ld cache): the per-GPU by-path links of a CDI device. */
export function linksHook(links: readonly LinkEdit[], target: HookTarget): Hook {
  const args = ['nvidia-runtime-hook', 'create-symlinks'];
  if (target.rootfs !== undefined) args.push('--root', target.rootfs);
  for (const l of links) args.push('--link', linkArg(l));
  return { hookName: 'createContainer', path: target.hookPath, args, env: [...HOOK_ENV], timeout: HOOK_TIMEOUT_SECONDS };
}

/** The versioned library of `prefix` among `libraries` ("libcuda.so" → ".../libcuda.so.550.54.15"). */
const versioned = (libraries: readonly string[], prefix: string): string | undefined =>
  libraries.find((l) => posix.basename(l).startsWith(`${prefix}.`) && /\.so\.[0-9.]+$/.test(l));

/**
 * The links the driver's installer makes and a container needs (libnvidia-container's and the toolkit's):
 * development links (libcuda.so, libnvidia-opticalflow.so), libGLX_indirect.so.0 for indirect GLX, the GBM backend
 * gbm/nvidia-drm_gbm.so, libnvidia-vulkan-producer.so, and libglxserver_nvidia.so next to the X module. Each names
 * the versioned file, not the soname link: that only appears when ldconfig runs, after the links are made.
 */
export function driverLinks(libraries: readonly string[], configs: readonly { path: string }[], caps: readonly Capability[]): LinkEdit[] {
  const links: LinkEdit[] = [];
  const sibling = (lib: string | undefined, name: string): void => {
    if (lib) links.push({ target: posix.basename(lib), link: posix.join(posix.dirname(lib), name) });
  };
  sibling(versioned(libraries, 'libcuda.so'), 'libcuda.so');
  sibling(versioned(libraries, 'libnvidia-opticalflow.so'), 'libnvidia-opticalflow.so');
  if (caps.includes('graphics')) {
    sibling(versioned(libraries, 'libGLX_nvidia.so'), 'libGLX_indirect.so.0');
    const allocator = versioned(libraries, 'libnvidia-allocator.so');
    if (allocator) links.push({ target: `../${posix.basename(allocator)}`, link: posix.join(posix.dirname(allocator), 'gbm/nvidia-drm_gbm.so') });
    sibling(versioned(libraries, 'libnvidia-vulkan-producer.so'), 'libnvidia-vulkan-producer.so');
  }
  const glxserver = configs.find((c) => /\/libglxserver_nvidia\.so\.[0-9.]+$/.test(c.path));
  if (glxserver) links.push({ target: posix.basename(glxserver.path), link: posix.join(posix.dirname(glxserver.path), 'libglxserver_nvidia.so') });
  return links;
}

/** What every container with these capabilities gets under these driver options: control nodes, driver file
 *  mounts, the ld cache hook (with `extraLinks`, e.g. the DRM by-path links of its GPUs). */
export function driverEdits(inv: HostInventory, caps: readonly Capability[], target: HookTarget, opts?: DriverOptions, extraLinks: readonly LinkEdit[] = []): ContainerEdits {
  const control = listDeviceNodes(inv, caps, { gpus: [] }, opts).nodes.map(nodeEdit);
  const files = listDriverFiles(inv, caps, opts);
  const bind = (paths: readonly string[], options: readonly string[]): Mount[] =>
    paths.map((p) => ({ hostPath: hostPathOf(inv.root, p), containerPath: p, type: 'bind', options: [...options] }));
  const libraries = [...files.libraries.libraries, ...files.libraries.libraries32];
  const mounts = [
    ...bind(libraries, READ_ONLY_BIND),
    ...bind(files.binaries.paths, READ_ONLY_BIND),
    ...bind(files.firmware, READ_ONLY_BIND),
    ...bind(files.ipcs.paths, IPC_BIND),
    ...files.configs.map((c): Mount => ({ hostPath: hostPathOf(inv.root, c.source), containerPath: c.path, type: 'bind', options: [...READ_ONLY_BIND] })),
  ];
  const links = [...driverLinks(files.libraries.libraries, files.configs, caps), ...extraLinks];
  const edits: ContainerEdits = {};
  if (control.length > 0) edits.deviceNodes = control;
  if (mounts.length > 0) edits.mounts = mounts;
  if (libraries.length > 0) edits.hooks = [ldcacheHook(libraries, target, links)];
  else if (links.length > 0) edits.hooks = [linksHook(links, target)];
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

/** The DRM nodes of these GPUs (what a graphics or display container gets) and their by-path links. */
export function drmEdits(inv: HostInventory, gpus: DeviceSelection['gpus']): { edits: ContainerEdits; links: LinkEdit[] } {
  const drm = listDrmDevices(inv, gpus);
  return { edits: drm.nodes.length > 0 ? { deviceNodes: drm.nodes.map(nodeEdit) } : {}, links: drm.links };
}

/** GDS / MOFED / NVSwitch / GDRCopy: their nodes (and GDS's cufile.json and /run/udev) when the host has them. */
export function featureEdits(inv: HostInventory, features: readonly Feature[]): ContainerEdits {
  const nodes = features.flatMap((f) => inv.features[f].nodes.map(nodeEdit));
  const mounts = features.flatMap((f) => inv.features[f].mounts.map((p): Mount => ({ hostPath: hostPathOf(inv.root, p), containerPath: p, type: 'bind', options: [...READ_ONLY_BIND] })));
  return { ...(nodes.length > 0 ? { deviceNodes: nodes } : {}), ...(mounts.length > 0 ? { mounts } : {}) };
}

/** The toolkit's own CUDA compat hook (cuda-compat-mode = hook): nvidia-cdi-hook, our binary under that name. */
export function cudaCompatHook(cdiHookPath: string, driverVersion: string): Hook {
  return {
    hookName: 'createContainer',
    path: cdiHookPath,
    args: ['nvidia-cdi-hook', 'enable-cuda-compat', `--host-driver-version=${driverVersion}`],
    env: [...HOOK_ENV],
    timeout: HOOK_TIMEOUT_SECONDS,
  };
}

/** How the image's CUDA forward-compat libraries are made visible (cuda-compat-mode, src/host/cuda-compat.ts):
 *  `ldconfig` in our ld cache hook, `hook` by nvidia-cdi-hook enable-cuda-compat, `mount` by binding the given
 *  libraries (found in the rootfs) next to the driver's libcuda, `disabled` not at all. */
export interface CudaCompat {
  mode: CudaCompatMode;
  /** mode `mount`: the image's compat libraries newer than the host driver. */
  libraries?: readonly CompatLibrary[];
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
  /** libnvidia-container's driver options (config.toml driver-options, or cli flags). */
  driverOptions?: DriverOptions;
  /** Default: disabled. */
  cudaCompat?: CudaCompat;
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
  const compat = input.cudaCompat ?? { mode: 'disabled' };
  const target: HookTarget = {
    hookPath: input.hookPath,
    rootfs: input.rootfs,
    ...(input.ldconfig ? { ldconfig: input.ldconfig } : {}),
    ...(compat.mode === 'ldconfig' ? { cudaCompat: inv.driver.driverVersion } : {}),
  };
  const gpus = selectedGpus(resolved);
  const wantsDrm = request.capabilities.includes('graphics') || request.capabilities.includes('display');
  const drm = wantsDrm ? drmEdits(inv, gpus) : { edits: {}, links: [] };
  const driver = driverEdits(inv, request.capabilities, target, input.driverOptions, drm.links);
  const devices = deviceEdits(inv, { gpus, migDevices: resolved.migDevices });
  const features = featureEdits(inv, request.features ?? []);
  const imex = imexEdits(inv, request.imexChannels ?? []);
  const admin = migAdminEdits(inv, request.migAdmin ?? []);
  const edits: ContainerEdits = { env: [`NVIDIA_VISIBLE_DEVICES=${granted}`] };
  // Empty lists stay present here, as before: applyEdits treats them as "nothing to add".
  edits.deviceNodes = [driver, devices, drm.edits, features, imex, admin].flatMap((e) => e.deviceNodes ?? []);
  edits.mounts = [...(driver.mounts ?? []), ...compatMounts(inv, compat), ...(features.mounts ?? [])];
  const hooks = [...(compat.mode === 'hook' ? [cudaCompatHook(posix.join(posix.dirname(input.hookPath), 'nvidia-cdi-hook'), inv.driver.driverVersion)] : []), ...(driver.hooks ?? [])];
  if (hooks.length > 0) edits.hooks = hooks;
  return { edits, granted };
}

/** mode `mount`: each compat library bound read-only next to the driver's libcuda, where ldconfig then prefers it
 *  (the higher version of the same soname in one directory). Without a driver libcuda there is nothing to win over. */
function compatMounts(inv: HostInventory, compat: CudaCompat): Mount[] {
  const libcuda = inv.libraries['libcuda.so'];
  if (compat.mode !== 'mount' || !libcuda) return [];
  return (compat.libraries ?? []).map((l) => ({ hostPath: l.hostPath, containerPath: posix.join(posix.dirname(libcuda), l.name), type: 'bind', options: [...READ_ONLY_BIND] }));
}
