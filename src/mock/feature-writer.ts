/**
 * The files and nodes of the optional features of a mock driver root (features.ts, docs/mock-driver.md):
 * graphics (EGL/Vulkan/X.Org configuration, EGL platform and non-glvnd GL libraries, X server modules, DRM
 * nodes tied to PCI bus ids) and the GPU companions GDS, MOFED, NVSwitch and GDRCopy. Everything here is made
 * only when its feature is listed, and removeFeatureFiles() takes exactly these paths away again.
 */
import { lstat, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NvrError } from '../errors.js';
import { patchNeeded, patchSoname } from './elf-patch.js';
import {
  BMC_DRM_CARD,
  BMC_PCI_BUS_ID,
  DRM_MAJOR,
  drmNodesOf,
  GDRDRV_MAJOR,
  hasFeature,
  INFINIBAND_VERBS_MAJOR,
  LIB_DIR,
  MISC_MAJOR,
  NVIDIA_FS_COUNT,
  NVIDIA_FS_MAJOR,
  NVSWITCH_COUNT,
  NVSWITCH_CTL_MINOR,
  NVSWITCH_MAJOR,
  RDMA_CM_MINOR,
  UVERBS_BASE_MINOR,
  UVERBS_COUNT,
} from './features.js';
import { mknod, readArtifact, removeAndPrune, removeEmptyDirAndPrune, symlinkFresh, writeAtomic } from './fsops.js';
import type { MockTopology } from './topology-types.js';

/** The stub artifacts the graphics libraries are made from (a subset of MockArtifacts). */
export interface GraphicsArtifacts {
  stubLibrary: string;
  stubNeededLibrary?: string;
}

// ---------------------------------------------------------------------------------------------- graphics: libraries

/** EGL external platform libraries: NVIDIA versions them on their own, not with the driver version. */
export const EGL_PLATFORM_LIBRARIES: ReadonlyArray<{ file: string; soname: string }> = Object.freeze([
  { file: 'libnvidia-egl-gbm.so.1.1.1', soname: 'libnvidia-egl-gbm.so.1' },
  { file: 'libnvidia-egl-wayland.so.1.1.13', soname: 'libnvidia-egl-wayland.so.1' },
]);

/** Plain stubs of the graphics feature in LIB_DIR (and so in the ld cache). */
export function graphicsLibraryFiles(version: string): Array<{ file: string; soname: string }> {
  const producer = `libnvidia-vulkan-producer.so.${version}`;
  return [...EGL_PLATFORM_LIBRARIES, { file: producer, soname: producer }];
}

/**
 * The non-glvnd GL libraries (libnvidia-container's no-glvnd option): `<name>.so.<ver>` with the soname the
 * real driver gives them and the DT_NEEDED libnvidia-container checks before it accepts one as NVIDIA's
 * (libnvidia-glcore for libGL, libnvidia-eglcore for EGL and GLES) instead of Mesa's or glvnd's.
 */
export const COMPAT_GL_LIBRARIES: ReadonlyArray<{ name: string; sonameVersion: string; core: string }> = Object.freeze([
  { name: 'libGL', sonameVersion: '1', core: 'libnvidia-glcore' },
  { name: 'libEGL', sonameVersion: '1', core: 'libnvidia-eglcore' },
  { name: 'libGLESv1_CM', sonameVersion: '1', core: 'libnvidia-eglcore' },
  { name: 'libGLESv2', sonameVersion: '2', core: 'libnvidia-eglcore' },
]);

export function compatGlFiles(version: string): Array<{ file: string; soname: string; needed: string }> {
  return COMPAT_GL_LIBRARIES.map(({ name, sonameVersion, core }) => ({
    file: `${name}.so.${version}`,
    soname: `${name}.so.${sonameVersion}`,
    needed: `${core}.so.${version}`,
  }));
}

/** X server modules: in their own directory, which no ld.so.conf lists (the X server finds them by ModulePath). */
export const XORG_MODULE_DIR = `${LIB_DIR}/nvidia/xorg`;

export function xorgModuleFiles(version: string): Array<{ file: string; soname: string }> {
  return [
    { file: 'nvidia_drv.so', soname: 'nvidia_drv.so' },
    { file: `libglxserver_nvidia.so.${version}`, soname: 'libglxserver_nvidia.so.1' },
  ];
}

/** The GBM backend link the driver installs: Mesa's libgbm loads <gbm dir>/<drm driver>_gbm.so. */
export const GBM_LINK = { path: `${LIB_DIR}/gbm/nvidia-drm_gbm.so`, target: '../libnvidia-allocator.so.1' } as const;

/**
 * Writes the graphics libraries into LIB_DIR (before `ldconfig -r`, which puts them in the cache and makes
 * their soname links) and the X modules next to it. Needs libnvidia-stub-needed.so for the non-glvnd GL libs.
 */
export async function writeGraphicsLibraries(root: string, t: MockTopology, a: GraphicsArtifacts, log: (m: string) => void): Promise<void> {
  if (a.stubNeededLibrary === undefined) {
    throw new NvrError('IO', 'native artifacts not built: run npm ci (missing libnvidia-stub-needed.so, needed by the graphics feature)', {
      fix: 'run npm ci in the package directory to build the native mock artifacts, or leave out the graphics feature',
    });
  }
  const stub = await readArtifact(a.stubLibrary);
  const stubNeeded = await readArtifact(a.stubNeededLibrary);
  const v = t.driverVersion;
  for (const { file, soname } of graphicsLibraryFiles(v)) await writeAtomic(join(root, LIB_DIR, file), patchSoname(stub, soname), 0o755);
  for (const { file, soname, needed } of compatGlFiles(v)) {
    await writeAtomic(join(root, LIB_DIR, file), patchNeeded(patchSoname(stubNeeded, soname), needed), 0o755);
  }
  for (const { file, soname } of xorgModuleFiles(v)) await writeAtomic(join(root, XORG_MODULE_DIR, file), patchSoname(stub, soname), 0o755);
  await symlinkFresh(`libglxserver_nvidia.so.${v}`, join(root, XORG_MODULE_DIR, 'libglxserver_nvidia.so'));
  await symlinkFresh(GBM_LINK.target, join(root, GBM_LINK.path));
  log(`graphics libraries: EGL platforms, vulkan producer, ${COMPAT_GL_LIBRARIES.length} non-glvnd GL, X modules in /${XORG_MODULE_DIR}, gbm backend link`);
}

// ------------------------------------------------------------------------------------------------ graphics: configs

const json = (value: unknown): string => JSON.stringify(value, null, 4) + '\n';
const eglIcd = (library: string): string => json({ file_format_version: '1.0.0', ICD: { library_path: library } });
const VULKAN_API_VERSION = '1.3.277';

const XORG_OUTPUT_CLASS = [
  'Section "OutputClass"',
  '    Identifier "nvidia"',
  '    MatchDriver "nvidia-drm"',
  '    Driver "nvidia"',
  '    Option "AllowEmptyInitialConfiguration"',
];

/** Configuration files of the graphics feature, with the contents the real driver installs (path under the root). */
export const GRAPHICS_CONFIG_FILES: ReadonlyArray<{ path: string; content: string }> = Object.freeze([
  { path: 'usr/share/glvnd/egl_vendor.d/10_nvidia.json', content: eglIcd('libEGL_nvidia.so.0') },
  { path: 'usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json', content: eglIcd('libnvidia-egl-gbm.so.1') },
  { path: 'usr/share/egl/egl_external_platform.d/10_nvidia_wayland.json', content: eglIcd('libnvidia-egl-wayland.so.1') },
  {
    path: 'usr/share/vulkan/icd.d/nvidia_icd.json',
    content: json({ file_format_version: '1.0.1', ICD: { library_path: 'libGLX_nvidia.so.0', api_version: VULKAN_API_VERSION } }),
  },
  {
    path: 'etc/vulkan/implicit_layer.d/nvidia_layers.json',
    content: json({
      file_format_version: '1.0.0',
      layer: {
        name: 'VK_LAYER_NV_optimus',
        type: 'INSTANCE',
        library_path: 'libGLX_nvidia.so.0',
        api_version: VULKAN_API_VERSION,
        implementation_version: '1',
        description: 'NVIDIA Optimus layer',
        functions: { vkGetInstanceProcAddr: 'vk_optimusGetInstanceProcAddr', vkGetDeviceProcAddr: 'vk_optimusGetDeviceProcAddr' },
        enable_environment: { __NV_PRIME_RENDER_OFFLOAD: '1' },
        disable_environment: { DISABLE_LAYER_NV_OPTIMUS_1: '' },
      },
    }),
  },
  { path: 'usr/share/nvidia/nvoptix.bin', content: 'NVMOCK nvoptix.bin placeholder\n' },
  {
    path: 'usr/share/X11/xorg.conf.d/10-nvidia.conf',
    content: [...XORG_OUTPUT_CLASS, `    ModulePath "/${XORG_MODULE_DIR}"`, 'EndSection', ''].join('\n'),
  },
  {
    // The distribution packages' variant: the same class, not the primary GPU, with the stock modules as fallback.
    path: 'etc/X11/xorg.conf.d/nvidia-drm-outputclass.conf',
    content: [...XORG_OUTPUT_CLASS, '    Option "PrimaryGPU" "no"', `    ModulePath "/${XORG_MODULE_DIR}"`, '    ModulePath "/usr/lib/xorg/modules"', 'EndSection', ''].join('\n'),
  },
]);

export async function writeGraphicsConfigs(root: string, log: (m: string) => void): Promise<void> {
  for (const { path, content } of GRAPHICS_CONFIG_FILES) await writeAtomic(join(root, path), content);
  log(`graphics configs: ${GRAPHICS_CONFIG_FILES.map((f) => f.path.split('/').pop()).join(', ')}`);
}

// --------------------------------------------------------------------------------------------------- graphics: DRM

const DRM_CARD_MODE = 0o660; // root:video on a real host
const DRM_RENDER_MODE = 0o666; // root:render, usually opened up by udev rules
const hex4 = (n: number): string => `0x${(n & 0xffff).toString(16).padStart(4, '0')}`;
// ASPEED's AST2500/2600 BMC graphics: the usual card0 of a GPU server.
const BMC_PCI = { vendor: 0x1a03, device: 0x2000, class: '0x030000' };
const GPU_PCI_CLASS = '0x030200'; // 3D controller, what data-center GPUs report

/** The sysfs directory of a PCI function: <root>/sys/bus/pci/devices/<bus>. */
const sysfsDevice = (root: string, bus: string): string => join(root, 'sys/bus/pci/devices', bus);

async function writePciDevice(root: string, bus: string, ids: { vendor: number; device: number; class: string }): Promise<void> {
  const dir = sysfsDevice(root, bus);
  await writeAtomic(join(dir, 'vendor'), `${hex4(ids.vendor)}\n`);
  await writeAtomic(join(dir, 'device'), `${hex4(ids.device)}\n`);
  await writeAtomic(join(dir, 'class'), `${ids.class}\n`);
}

/** One DRM node: the sysfs entry under its PCI device, /dev/dri/<name> and the udev by-path link to it. */
async function writeDrmNode(root: string, bus: string, name: string, minor: number, mode: number, byPath: string): Promise<void> {
  await mkdir(join(sysfsDevice(root, bus), 'drm', name), { recursive: true });
  await mknod(join(root, 'dev/dri', name), DRM_MAJOR, minor, mode);
  await symlinkFresh(`../${name}`, join(root, 'dev/dri/by-path', `pci-${bus}-${byPath}`));
}

/**
 * The DRM nodes as the kernel and udev lay them out: the BMC's card0 (no render node: its driver has none),
 * then per GPU in topology order card<i+1> and renderD<128+i>, each listed under the GPU's sysfs PCI device.
 * `busOf` maps an NVML bus id to the sysfs form (writer.ts procBusId).
 */
export async function writeDrm(root: string, t: MockTopology, busOf: (pciBusId: string) => string, log: (m: string) => void): Promise<void> {
  await writePciDevice(root, BMC_PCI_BUS_ID, BMC_PCI);
  await writeDrmNode(root, BMC_PCI_BUS_ID, BMC_DRM_CARD, 0, DRM_CARD_MODE, 'card');
  for (const [i, gpu] of t.gpus.entries()) {
    const bus = busOf(gpu.pciBusId);
    const n = drmNodesOf(i);
    await writePciDevice(root, bus, { vendor: gpu.pciDeviceId & 0xffff, device: gpu.pciDeviceId >>> 16, class: GPU_PCI_CLASS });
    await writeDrmNode(root, bus, n.card, n.cardMinor, DRM_CARD_MODE, 'card');
    await writeDrmNode(root, bus, n.render, n.renderMinor, DRM_RENDER_MODE, 'render');
  }
  log(`DRM: ${BMC_DRM_CARD} (BMC at ${BMC_PCI_BUS_ID}), card/renderD nodes for ${t.gpus.length} GPUs, /dev/dri/by-path links`);
}

// ------------------------------------------------------------------------------------- GDS, MOFED, NVSwitch, GDRCopy

const COMPANION_MODE = 0o666;

/** The char device nodes of the companion features in the topology: path under dev/, major, minor. */
export function companionNodes(t: MockTopology): Array<{ path: string; major: number; minor: number }> {
  const nodes: Array<{ path: string; major: number; minor: number }> = [];
  if (hasFeature(t, 'gds')) {
    for (let i = 0; i < NVIDIA_FS_COUNT; i++) nodes.push({ path: `nvidia-fs${i}`, major: NVIDIA_FS_MAJOR, minor: i });
  }
  if (hasFeature(t, 'mofed')) {
    for (let i = 0; i < UVERBS_COUNT; i++) nodes.push({ path: `infiniband/uverbs${i}`, major: INFINIBAND_VERBS_MAJOR, minor: UVERBS_BASE_MINOR + i });
    nodes.push({ path: 'infiniband/rdma_cm', major: MISC_MAJOR, minor: RDMA_CM_MINOR });
  }
  if (hasFeature(t, 'nvswitch')) {
    nodes.push({ path: 'nvidia-nvswitchctl', major: NVSWITCH_MAJOR, minor: NVSWITCH_CTL_MINOR });
    for (let i = 0; i < NVSWITCH_COUNT; i++) nodes.push({ path: `nvidia-nvswitch${i}`, major: NVSWITCH_MAJOR, minor: i });
  }
  if (hasFeature(t, 'gdrcopy')) nodes.push({ path: 'gdrdrv', major: GDRDRV_MAJOR, minor: 0 });
  return nodes;
}

export async function writeCompanionNodes(root: string, t: MockTopology, log: (m: string) => void): Promise<void> {
  const nodes = companionNodes(t);
  for (const n of nodes) await mknod(join(root, 'dev', n.path), n.major, n.minor, COMPANION_MODE);
  if (nodes.length > 0) log(`feature device nodes: ${nodes.map((n) => n.path).join(', ')}`);
}

/** GDS's configuration, the shape of the default /etc/cufile.json (without its comments: this one is plain JSON). */
export const CUFILE_JSON = json({ logging: { dir: '/var/log', level: 'ERROR' }, properties: { max_direct_io_size_kb: 16384 } });
export const CUFILE_PATH = 'etc/cufile.json';
/** udev's database, which cuFile reads to find NVMe and RDMA devices; the mock's is empty. */
export const UDEV_DATA_DIR = 'run/udev/data';

export async function writeCompanionFiles(root: string, t: MockTopology, log: (m: string) => void): Promise<void> {
  if (!hasFeature(t, 'gds')) return;
  await writeAtomic(join(root, CUFILE_PATH), CUFILE_JSON);
  await mkdir(join(root, UDEV_DATA_DIR), { recursive: true });
  log(`GDS: /${CUFILE_PATH}, /${UDEV_DATA_DIR}`);
}

/** Extra /proc/devices char majors of the features in the topology (sorted into the list by writer.ts). */
export function featureProcDevices(t: MockTopology): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  if (hasFeature(t, 'graphics')) out.push([DRM_MAJOR, 'drm']);
  if (hasFeature(t, 'gds')) out.push([NVIDIA_FS_MAJOR, 'nvidia-fs']);
  if (hasFeature(t, 'mofed')) out.push([MISC_MAJOR, 'misc'], [INFINIBAND_VERBS_MAJOR, 'infiniband_verbs']);
  if (hasFeature(t, 'nvswitch')) out.push([NVSWITCH_MAJOR, 'nvidia-nvswitch']);
  if (hasFeature(t, 'gdrcopy')) out.push([GDRDRV_MAJOR, 'gdrdrv']);
  return out;
}

// ---------------------------------------------------------------------------------------------------------- removal

/** Is `path` a regular file made from a mock stub (every stub exports nvmock_stub)? Symlinks and others: no. */
async function isMockStub(path: string): Promise<boolean> {
  try {
    const st = await lstat(path);
    if (!st.isFile() || st.size > 16 * 1024 * 1024) return false;
    return (await readFile(path)).includes('nvmock_stub');
  } catch {
    return false;
  }
}

const danglingLink = async (path: string): Promise<boolean> =>
  (await lstat(path).then((s) => s.isSymbolicLink(), () => false)) && (await stat(path).then(() => false, () => true));

/**
 * The non-glvnd GL names are also Mesa's and glvnd's, so only the mock's own files go (stub files, and the
 * soname links ldconfig made to them, which dangle once those are gone); a real libGL someone put there stays.
 */
async function removeCompatGl(root: string): Promise<void> {
  const dir = join(root, LIB_DIR);
  const names = await readdir(dir).catch(() => [] as string[]);
  const ours = (n: string): boolean => COMPAT_GL_LIBRARIES.some((l) => n.startsWith(`${l.name}.so.`));
  for (const n of names.filter(ours)) if (await isMockStub(join(dir, n))) await removeAndPrune(root, join(LIB_DIR, n));
  for (const n of names.filter(ours)) if (await danglingLink(join(dir, n))) await removeAndPrune(root, join(LIB_DIR, n));
}

/** Library name prefixes of the graphics feature that only NVIDIA uses (removed like the driver's own libraries). */
export const GRAPHICS_LIB_PREFIXES = ['libnvidia-egl-gbm.so', 'libnvidia-egl-wayland.so', 'libnvidia-vulkan-producer.so'] as const;

/**
 * Removes everything any feature may have made in an earlier run, and the directories that leaves empty:
 * exactly the paths above, never a sibling. (Driver-named libraries and dev/nvidia* go in writer.ts.)
 */
export async function removeFeatureFiles(root: string): Promise<void> {
  for (const rel of ['dev/dri', 'dev/infiniband', 'dev/gdrdrv', 'sys/bus/pci', GBM_LINK.path, CUFILE_PATH]) await removeAndPrune(root, rel);
  for (const { path } of GRAPHICS_CONFIG_FILES) await removeAndPrune(root, path);
  const xorg = await readdir(join(root, XORG_MODULE_DIR)).catch(() => [] as string[]);
  for (const n of xorg.filter((x) => x === 'nvidia_drv.so' || x.startsWith('libglxserver_nvidia.so'))) await removeAndPrune(root, join(XORG_MODULE_DIR, n));
  await removeCompatGl(root);
  await removeEmptyDirAndPrune(root, UDEV_DATA_DIR);
}
