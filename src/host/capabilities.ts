/**
 * Driver capabilities (NVIDIA_DRIVER_CAPABILITIES) and what each one brings into a container: the binary,
 * library-prefix and IPC lists of libnvidia-container (FACTS.md §1.4). Pure data and pure functions.
 */
import { NvrError } from '../errors.js';

export const CAPABILITIES = ['utility', 'compute', 'video', 'graphics', 'display', 'compat32', 'ngx'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export function isCapability(s: string): s is Capability {
  return (CAPABILITIES as readonly string[]).includes(s);
}

/**
 * Expand a list of capability names (`all` = every capability), in canonical order, without duplicates.
 * Names are trimmed and lower-cased, empty ones skipped; an unknown name → NvrError INPUT.
 */
export function expandCapabilities(names: Iterable<string>): Capability[] {
  const set = new Set<Capability>();
  for (const raw of names) {
    const name = raw.trim().toLowerCase();
    if (name === '') continue;
    if (name === 'all') CAPABILITIES.forEach((c) => set.add(c));
    else if (isCapability(name)) set.add(name);
    else {
      throw new NvrError('INPUT', `unknown driver capability "${raw}"`, {
        fix: `use a comma-separated list of ${CAPABILITIES.join(', ')} or all`,
      });
    }
  }
  return CAPABILITIES.filter((c) => set.has(c));
}

export const UTILITY_BINS = ['nvidia-smi', 'nvidia-debugdump', 'nvidia-persistenced', 'nv-fabricmanager'] as const;
export const COMPUTE_BINS = ['nvidia-cuda-mps-control', 'nvidia-cuda-mps-server'] as const;

export const UTILITY_LIBS = ['libnvidia-ml.so', 'libnvidia-cfg.so', 'libnvidia-nscq.so'] as const;
export const COMPUTE_LIBS = [
  'libcuda.so',
  'libcudadebugger.so',
  'libnvidia-opencl.so',
  'libnvidia-gpucomp.so',
  'libnvidia-ptxjitcompiler.so',
  'libnvidia-fatbinaryloader.so',
  'libnvidia-allocator.so',
  'libnvidia-compiler.so',
  'libnvidia-pkcs11.so',
  'libnvidia-pkcs11-openssl3.so',
  'libnvidia-nvvm.so',
  'libnvidia-tileiras.so',
] as const;
export const VIDEO_LIBS = ['libvdpau_nvidia.so', 'libnvidia-encode.so', 'libnvidia-opticalflow.so', 'libnvcuvid.so'] as const;
export const GRAPHICS_LIBS = [
  'libnvidia-eglcore.so',
  'libnvidia-glcore.so',
  'libnvidia-tls.so',
  'libnvidia-glsi.so',
  'libnvidia-fbc.so',
  'libnvidia-ifr.so',
  'libnvidia-rtcore.so',
  'libnvoptix.so',
] as const;
export const GRAPHICS_LIBS_GLVND = [
  'libGLX_nvidia.so',
  'libEGL_nvidia.so',
  'libGLESv2_nvidia.so',
  'libGLESv1_CM_nvidia.so',
  'libnvidia-glvkspirv.so',
  'libnvidia-cbl.so',
] as const;
/** Only with the no-glvnd driver option, instead of the glvnd list; accepted only when the ELF needs
 *  libnvidia-glcore or libnvidia-eglcore (NVIDIA's, not Mesa's). */
export const GRAPHICS_LIBS_COMPAT = ['libGL.so', 'libEGL.so', 'libGLESv1_CM.so', 'libGLESv2.so'] as const;
/** What NVIDIA's runtime adds for graphics beyond libnvidia-container's lists (its graphics modifier): the GBM
 *  backend's target and the Vulkan producer, both named with the driver version. */
export const GRAPHICS_MODIFIER_LIBS = ['libnvidia-allocator.so', 'libnvidia-vulkan-producer.so'] as const;
/** EGL external platform libraries: NVIDIA ships them with their own versions (libnvidia-egl-gbm.so.1.1.1), so
 *  they are matched by `<prefix>.X.Y…` instead of the driver version. */
export const EGL_PLATFORM_LIBS = ['libnvidia-egl-gbm.so', 'libnvidia-egl-wayland.so'] as const;
export const NGX_LIBS = ['libnvidia-ngx.so'] as const;

/**
 * libnvidia-container's driver options that leave parts out (nvc_info.c): no-glvnd swaps the glvnd vendor
 * libraries for the non-glvnd ("compat") GL libraries; no-uvm drops nvidia-uvm(-tools); no-modeset drops
 * nvidia-modeset; no-mps drops the MPS binaries and pipe directory; no-persistenced / no-fabricmanager drop their
 * sockets; no-gsp-firmware drops the GSP firmware.
 */
export const DRIVER_OPTIONS = ['no-glvnd', 'no-uvm', 'no-modeset', 'no-mps', 'no-persistenced', 'no-fabricmanager', 'no-gsp-firmware'] as const;
export type DriverOption = (typeof DRIVER_OPTIONS)[number];
export type DriverOptions = ReadonlySet<DriverOption> | readonly DriverOption[];

const has = (opts: DriverOptions | undefined, o: DriverOption): boolean =>
  opts !== undefined && (Array.isArray(opts) ? (opts as readonly DriverOption[]).includes(o) : (opts as ReadonlySet<DriverOption>).has(o));
export { has as hasDriverOption };

/** Driver option names as given (config, flags), checked; unknown → NvrError INPUT naming `where`. */
export function parseDriverOptions(names: Iterable<string>, where: string): DriverOption[] {
  const out: DriverOption[] = [];
  for (const raw of names) {
    const name = raw.trim();
    if (name === '') continue;
    if (!(DRIVER_OPTIONS as readonly string[]).includes(name)) {
      throw new NvrError('INPUT', `${where}: unknown driver option "${raw}"`, { fix: `use any of ${DRIVER_OPTIONS.join(', ')}` });
    }
    if (!out.includes(name as DriverOption)) out.push(name as DriverOption);
  }
  return DRIVER_OPTIONS.filter((o) => out.includes(o));
}

export const PERSISTENCED_SOCKET = '/var/run/nvidia-persistenced/socket';
export const FABRICMANAGER_SOCKET = '/var/run/nvidia-fabricmanager/socket';
export const MPS_PIPE_DIR = '/tmp/nvidia-mps';

function union(lists: ReadonlyArray<readonly string[]>): string[] {
  return [...new Set(lists.flat())];
}

/** Every prefix any capability and option can ask for, in one order (libnvidia-container's lists, then the
 *  toolkit's graphics additions): what the host snapshot looks up once, and the order every selection keeps, so a
 *  container's libraries are always a subsequence of a CDI spec's. */
export const ALL_LIBRARY_PREFIXES: readonly string[] = union([
  UTILITY_LIBS, COMPUTE_LIBS, VIDEO_LIBS, GRAPHICS_LIBS, GRAPHICS_LIBS_GLVND, GRAPHICS_LIBS_COMPAT, GRAPHICS_MODIFIER_LIBS, EGL_PLATFORM_LIBS, NGX_LIBS,
]);

/** Library soname prefixes wanted for these capabilities, in ALL_LIBRARY_PREFIXES order. */
export function libraryPrefixesFor(caps: Iterable<Capability>, opts?: DriverOptions): string[] {
  const c = new Set(caps);
  const lists: Array<readonly string[]> = [];
  if (c.has('utility')) lists.push(UTILITY_LIBS);
  // video needs the CUDA libraries too (NVENC/NVDEC sit on top of libcuda).
  if (c.has('compute') || c.has('video')) lists.push(COMPUTE_LIBS);
  if (c.has('video')) lists.push(VIDEO_LIBS);
  if (c.has('graphics') || c.has('display')) lists.push(GRAPHICS_LIBS);
  if (c.has('graphics')) lists.push(has(opts, 'no-glvnd') ? GRAPHICS_LIBS_COMPAT : GRAPHICS_LIBS_GLVND, GRAPHICS_MODIFIER_LIBS, EGL_PLATFORM_LIBS);
  if (c.has('ngx')) lists.push(NGX_LIBS);
  const wanted = new Set(lists.flat());
  return ALL_LIBRARY_PREFIXES.filter((p) => wanted.has(p));
}

/** Binary names wanted for these capabilities. */
export function binariesFor(caps: Iterable<Capability>, opts?: DriverOptions): string[] {
  const c = new Set(caps);
  const lists: Array<readonly string[]> = [];
  if (c.has('utility')) lists.push(UTILITY_BINS);
  if (c.has('compute') && !has(opts, 'no-mps')) lists.push(COMPUTE_BINS);
  return union(lists);
}

/** IPC paths (in-root) wanted for these capabilities: daemon sockets with utility, MPS pipes with compute. */
export function ipcsFor(caps: Iterable<Capability>, opts?: DriverOptions): string[] {
  const c = new Set(caps);
  const out: string[] = [];
  if (c.has('utility') && !has(opts, 'no-persistenced')) out.push(PERSISTENCED_SOCKET);
  if (c.has('utility') && !has(opts, 'no-fabricmanager')) out.push(FABRICMANAGER_SOCKET);
  if (c.has('compute') && !has(opts, 'no-mps')) out.push(MPS_PIPE_DIR);
  return out;
}

/**
 * Driver control nodes for these capabilities, in the seed's listing order: nvidiactl always,
 * nvidia-uvm(-tools) with compute (unless no-uvm), nvidia-modeset with display (unless no-modeset).
 */
export function controlDevicesFor(caps: Iterable<Capability>, opts?: DriverOptions): string[] {
  const c = new Set(caps);
  const out = ['/dev/nvidiactl'];
  if (c.has('compute') && !has(opts, 'no-uvm')) out.push('/dev/nvidia-uvm', '/dev/nvidia-uvm-tools');
  if (c.has('display') && !has(opts, 'no-modeset')) out.push('/dev/nvidia-modeset');
  return out;
}

/** Every control node, regardless of capability (`nvidia-container-cli list` with --device). */
export const CONTROL_DEVICES = ['/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools', '/dev/nvidia-modeset'] as const;
