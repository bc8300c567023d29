/**
 * The driver files that are not libraries on the ld cache: graphics and display configuration (glvnd EGL vendor
 * file, EGL external platforms, Vulkan ICD and layers, X.Org snippets), the X server modules, the DRM nodes of each
 * GPU (found through its PCI bus id in sysfs, as the kernel ties them) and the device nodes of the optional GPU
 * companions (GPUDirect Storage, MOFED, NVSwitch, GDRCopy). Looked up where NVIDIA's toolkit looks (its graphics,
 * gds, mofed, nvswitch and gdrcopy discoverers), always under the driver or dev root through resolveInRoot: never
 * from the container image, never outside the root.
 */
import { lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { lookupDeviceNode, type HostDeviceNode } from './devices.js';
import { resolveInRoot } from './root.js';

/** A file to bind: `source` is where it is under the root (in-root path), `path` where it goes in the container. */
export interface FileMount {
  source: string;
  path: string;
}

/** Where driver configuration lives (XDG's config and data dirs; the caller's XDG_DATA_DIRS is never read). */
export const CONFIG_DIRS = ['/etc', '/usr/local/share', '/usr/share'] as const;

/** graphics: the glvnd vendor file, the EGL external platforms and OptiX's binary, mounted where they are found. */
export const GRAPHICS_CONFIGS = [
  'glvnd/egl_vendor.d/10_nvidia.json',
  'egl/egl_external_platform.d/15_nvidia_gbm.json',
  'egl/egl_external_platform.d/10_nvidia_wayland.json',
  'nvidia/nvoptix.bin',
] as const;

/** graphics: Vulkan's ICD and layer manifests; also looked up at the driver root itself (GKE installs them at
 *  <root>/vulkan) and always mounted under /etc, which every Vulkan loader reads. nvidia_layers.json moved from
 *  icd.d (older drivers) to implicit_layer.d. */
export const VULKAN_CONFIGS = [
  'vulkan/icd.d/nvidia_icd.json',
  'vulkan/icd.d/nvidia_icd.x86_64.json',
  'vulkan/icd.d/nvidia_layers.json',
  'vulkan/implicit_layer.d/nvidia_layers.json',
] as const;

/** display: the X.Org configuration snippets of the driver. */
export const XORG_CONFIGS = ['X11/xorg.conf.d/10-nvidia.conf', 'X11/xorg.conf.d/nvidia-drm-outputclass.conf'] as const;

const isRegularFile = (hostPath: string): boolean => {
  try {
    return statSync(hostPath).isFile();
  } catch {
    return false;
  }
};

/** The first regular file `rel` in `dirs` under the root (in-root path of the real file), or undefined. */
function firstFile(root: string, dirs: readonly string[], rel: string): { found: string; source: string } | undefined {
  for (const dir of dirs) {
    const found = posix.join(dir, rel);
    const file = resolveInRoot(root, found);
    if (file.exists && isRegularFile(file.hostPath)) return { found, source: file.path };
  }
  return undefined;
}

/** Configuration files of `names` found in CONFIG_DIRS, mounted at the path they were found at. */
export function findConfigs(root: string, names: readonly string[]): FileMount[] {
  return names.flatMap((rel) => {
    const f = firstFile(root, CONFIG_DIRS, rel);
    return f ? [{ source: f.source, path: f.found }] : [];
  });
}

/** Vulkan manifests found in CONFIG_DIRS or at the root, mounted at /etc/<name>. */
export function findVulkanConfigs(root: string): FileMount[] {
  return VULKAN_CONFIGS.flatMap((rel) => {
    const f = firstFile(root, [...CONFIG_DIRS, '/'], rel);
    return f ? [{ source: f.source, path: posix.join('/etc', rel) }] : [];
  });
}

/** Where the X server modules may be, first the driver's library directory (the toolkit's buildXOrgSearchPaths). */
export function xorgSearchDirs(libDir: string | undefined): string[] {
  const under = (base: string) => ['modules/drivers', 'modules/extensions', 'modules/updates/drivers', 'modules/updates/extensions'].map((m) => `${base}/${m}`);
  return [
    ...(libDir ? [`${libDir}/nvidia/xorg`, ...under(`${libDir}/xorg`)] : []),
    ...under('/usr/lib/xorg'),
    ...under('/usr/lib64/xorg'),
    ...under('/usr/X11R6/lib'),
    ...under('/usr/X11R6/lib64'),
  ];
}

/**
 * display: the X driver (nvidia_drv.so) and the GLX server module (libglxserver_nvidia.so.<driver version>), the
 * first of each in xorgSearchDirs, mounted at the path it was found at (the X server looks there by name).
 */
export function findXorgModules(root: string, libDir: string | undefined, driverVersion: string): FileMount[] {
  const dirs = xorgSearchDirs(libDir);
  return ['nvidia_drv.so', `libglxserver_nvidia.so.${driverVersion}`].flatMap((name) => {
    const f = firstFile(root, dirs, name);
    return f ? [{ source: f.source, path: f.found }] : [];
  });
}

/** A symlink to create in the container: `link` (absolute) pointing at `target` (as written, often relative). */
export interface LinkEdit {
  target: string;
  link: string;
}

/** The DRM nodes of one GPU and the /dev/dri/by-path links that name them. */
export interface DrmDevice {
  nodes: HostDeviceNode[];
  links: LinkEdit[];
}

/** "00000000:18:00.0" (NVML) → "0000:18:00.0" (sysfs, /proc/driver/nvidia/gpus, by-path names); lowercase. */
export function sysfsBusId(pciBusId: string): string {
  const id = pciBusId.toLowerCase();
  const colon = id.indexOf(':');
  const domain = id.slice(0, colon);
  return parseInt(domain, 16) <= 0xffff ? domain.slice(-4) + id.slice(colon) : id;
}

const readDir = (hostPath: string): string[] => {
  try {
    return readdirSync(hostPath).sort();
  } catch {
    return [];
  }
};

/**
 * The DRM nodes the kernel created for the GPU at `pciBusId`: the `card<N>` and `renderD<N>` entries of
 * /sys/bus/pci/devices/<bus>/drm under the dev root, each the char node /dev/dri/<name> (major:minor read from the
 * node), and the /dev/dri/by-path/pci-<bus>-{card,render} links that point at them. A GPU without DRM (no
 * nvidia-drm module) has none.
 */
export function findDrmDevice(devRoot: string, pciBusId: string): DrmDevice {
  const bus = sysfsBusId(pciBusId);
  const drmDir = resolveInRoot(devRoot, `/sys/bus/pci/devices/${bus}/drm`);
  const names = drmDir.exists ? readDir(drmDir.hostPath).filter((n) => /^(card|renderD)\d+$/.test(n)) : [];
  const nodes = names.flatMap((n) => {
    const node = lookupDeviceNode(devRoot, `/dev/dri/${n}`);
    return node ? [node] : [];
  });
  const links: LinkEdit[] = [];
  const byPath = resolveInRoot(devRoot, '/dev/dri/by-path');
  for (const entry of byPath.exists ? readDir(byPath.hostPath) : []) {
    if (entry !== `pci-${bus}-card` && entry !== `pci-${bus}-render`) continue;
    let target: string;
    try {
      const at = `${byPath.hostPath}/${entry}`;
      if (!lstatSync(at).isSymbolicLink()) continue;
      target = readlinkSync(at);
    } catch {
      continue;
    }
    // Only a link to one of this GPU's nodes, written as udev does (../cardN): nothing else is recreated.
    if (nodes.some((n) => target === `../${posix.basename(n.path)}`)) links.push({ target, link: `/dev/dri/by-path/${entry}` });
  }
  return { nodes, links };
}

/** The optional companions of a GPU container, each asked for with NVIDIA_<NAME>=enabled. */
export const FEATURES = ['gds', 'mofed', 'nvswitch', 'gdrcopy'] as const;
export type Feature = (typeof FEATURES)[number];

/** Nodes and files of one feature: injected only when its nodes exist (a feature without nodes brings nothing). */
export interface FeatureFiles {
  nodes: HostDeviceNode[];
  /** In-root paths under the driver root, bound at the same path (GDS: /etc/cufile.json, /run/udev). */
  mounts: string[];
}

/** The char devices `dir/<name>` under the dev root whose names match, sorted by name (numbers numerically). */
function nodesMatching(devRoot: string, dir: string, match: (name: string) => boolean): HostDeviceNode[] {
  const where = resolveInRoot(devRoot, dir);
  const names = where.exists ? readDir(where.hostPath).filter(match) : [];
  names.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return names.flatMap((n) => {
    const node = lookupDeviceNode(devRoot, posix.join(dir, n));
    return node ? [node] : [];
  });
}

const existing = (root: string, paths: readonly string[]): string[] => paths.filter((p) => resolveInRoot(root, p).exists);

/**
 * What each feature brings on this host (the toolkit's discoverers): GDS /dev/nvidia-fs<N> with /etc/cufile.json and
 * /run/udev; MOFED /dev/infiniband/uverbs<N> and rdma_cm; NVSwitch /dev/nvidia-nvswitchctl and nvidia-nvswitch<N>;
 * GDRCopy /dev/gdrdrv.
 */
export function findFeatureFiles(root: string, devRoot: string): Record<Feature, FeatureFiles> {
  const gds = nodesMatching(devRoot, '/dev', (n) => /^nvidia-fs\d+$/.test(n));
  return {
    gds: { nodes: gds, mounts: gds.length > 0 ? existing(root, ['/etc/cufile.json', '/run/udev']) : [] },
    mofed: { nodes: nodesMatching(devRoot, '/dev/infiniband', (n) => /^uverbs\d+$/.test(n) || n === 'rdma_cm'), mounts: [] },
    nvswitch: { nodes: nodesMatching(devRoot, '/dev', (n) => /^nvidia-nvswitch(ctl|\d+)$/.test(n)), mounts: [] },
    gdrcopy: { nodes: nodesMatching(devRoot, '/dev', (n) => n === 'gdrdrv'), mounts: [] },
  };
}
