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
export const NGX_LIBS = ['libnvidia-ngx.so'] as const;

export const PERSISTENCED_SOCKET = '/var/run/nvidia-persistenced/socket';
export const FABRICMANAGER_SOCKET = '/var/run/nvidia-fabricmanager/socket';
export const MPS_PIPE_DIR = '/tmp/nvidia-mps';

function union(lists: ReadonlyArray<readonly string[]>): string[] {
  return [...new Set(lists.flat())];
}

/** Library soname prefixes wanted for these capabilities, in libnvidia-container's list order. */
export function libraryPrefixesFor(caps: Iterable<Capability>): string[] {
  const c = new Set(caps);
  const lists: Array<readonly string[]> = [];
  if (c.has('utility')) lists.push(UTILITY_LIBS);
  // video needs the CUDA libraries too (NVENC/NVDEC sit on top of libcuda).
  if (c.has('compute') || c.has('video')) lists.push(COMPUTE_LIBS);
  if (c.has('video')) lists.push(VIDEO_LIBS);
  if (c.has('graphics') || c.has('display')) lists.push(GRAPHICS_LIBS);
  if (c.has('graphics')) lists.push(GRAPHICS_LIBS_GLVND);
  if (c.has('ngx')) lists.push(NGX_LIBS);
  return union(lists);
}

/** Binary names wanted for these capabilities. */
export function binariesFor(caps: Iterable<Capability>): string[] {
  const c = new Set(caps);
  const lists: Array<readonly string[]> = [];
  if (c.has('utility')) lists.push(UTILITY_BINS);
  if (c.has('compute')) lists.push(COMPUTE_BINS);
  return union(lists);
}

/** IPC paths (in-root) wanted for these capabilities: daemon sockets with utility, MPS pipes with compute. */
export function ipcsFor(caps: Iterable<Capability>): string[] {
  const c = new Set(caps);
  const out: string[] = [];
  if (c.has('utility')) out.push(PERSISTENCED_SOCKET, FABRICMANAGER_SOCKET);
  if (c.has('compute')) out.push(MPS_PIPE_DIR);
  return out;
}

/**
 * Driver control nodes for these capabilities, in the seed's listing order: nvidiactl always,
 * nvidia-uvm(-tools) with compute, nvidia-modeset with display.
 */
export function controlDevicesFor(caps: Iterable<Capability>): string[] {
  const c = new Set(caps);
  const out = ['/dev/nvidiactl'];
  if (c.has('compute')) out.push('/dev/nvidia-uvm', '/dev/nvidia-uvm-tools');
  if (c.has('display')) out.push('/dev/nvidia-modeset');
  return out;
}

/** Every control node, regardless of capability (`nvidia-container-cli list` with --device). */
export const CONTROL_DEVICES = ['/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools', '/dev/nvidia-modeset'] as const;
