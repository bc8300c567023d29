/**
 * The optional parts of a mock driver root (docs/mock-driver.md, "Features"): their names, the device numbers
 * the real kernel modules register, and how the mock lays out DRM nodes. Pure data and functions; writer.ts
 * makes the files.
 */
import type { MockFeature } from './topology-types.js';

/** The 64-bit library directory of the mock (Debian multiarch layout). */
export const LIB_DIR = 'usr/lib/x86_64-linux-gnu';
/** Where Debian-style drivers put their 32-bit libraries (the compat32 capability). */
export const LIB32_DIR = 'usr/lib/i386-linux-gnu';

/** Every feature, in the order topologies list them. */
export const MOCK_FEATURES: readonly MockFeature[] = Object.freeze(['graphics', 'gds', 'mofed', 'nvswitch', 'gdrcopy'] as const);

/** `drm` in /proc/devices: /dev/dri/card<N> and renderD<N> (fixed by the kernel, DRM_MAJOR in drm_internal.h). */
export const DRM_MAJOR = 226;
/** `nvidia-fs` (GPUDirect Storage); the real module's major is dynamic, 241 is what the mock registers. */
export const NVIDIA_FS_MAJOR = 241;
/** GDS nodes: /dev/nvidia-fs0..3. */
export const NVIDIA_FS_COUNT = 4;
/** `infiniband_verbs` (fixed: IB_UVERBS_MAJOR); uverbs<N> start at minor 192 (IB_UVERBS_BASE_MINOR). */
export const INFINIBAND_VERBS_MAJOR = 231;
export const UVERBS_BASE_MINOR = 192;
/** MOFED nodes: /dev/infiniband/uverbs0..1. */
export const UVERBS_COUNT = 2;
/** /dev/infiniband/rdma_cm is a misc device: major 10, minor 58 on a typical host (the misc minor is dynamic). */
export const MISC_MAJOR = 10;
export const RDMA_CM_MINOR = 58;
/** `nvidia-nvswitch`; nvidia-nvswitchctl is minor 255, switches 0..NVSWITCH_COUNT-1. */
export const NVSWITCH_MAJOR = 240;
export const NVSWITCH_CTL_MINOR = 255;
export const NVSWITCH_COUNT = 4;
/** `gdrdrv` (GDRCopy): /dev/gdrdrv minor 0. */
export const GDRDRV_MAJOR = 237;

/**
 * The display device that is not an NVIDIA GPU: a server's BMC VGA (e.g. ASPEED) on bus 03, which probes
 * before the GPUs and so owns card0. It makes DRM numbers differ from GPU indices, as on real servers, so a
 * runtime that picks /dev/dri/card<index> instead of following the GPU's PCI bus id is caught by tests.
 */
export const BMC_PCI_BUS_ID = '0000:03:00.0';
/** The same bus id as NVML writes it; no GPU of a graphics topology may sit there. */
export const BMC_NVML_BUS_ID = '00000000:03:00.0';
export const BMC_DRM_CARD = 'card0';

/** Primary (card) minors 0..63 and render minors 128..191 are the kernel's legacy ranges; more come from 192 up. */
const LEGACY_MINORS = 64;
const RENDER_BASE = 128;
const EXTENDED_BASE = 192;

export interface DrmNodes {
  card: string; // "card2"
  cardMinor: number;
  render: string; // "renderD129"
  renderMinor: number;
}

/**
 * The DRM nodes of the GPU at topology position `gpuIndex` (0-based) behind the BMC's card0: card<i+1> and
 * renderD<128+i>. Beyond the legacy ranges (more than 63 GPUs) the kernel (6.8+) allocates both from 192 up,
 * render first then card for each device, and names the node after its minor: the same here, so every node of
 * up to 254 GPUs is unique.
 */
export function drmNodesOf(gpuIndex: number): DrmNodes {
  if (!Number.isInteger(gpuIndex) || gpuIndex < 0) throw new RangeError(`GPU index ${gpuIndex} is not a non-negative integer`);
  const renderMinor = gpuIndex < LEGACY_MINORS ? RENDER_BASE + gpuIndex : EXTENDED_BASE + 1 + 2 * (gpuIndex - LEGACY_MINORS);
  // card<i+1> fits the legacy range for i <= 62; GPU 63's card is the first extended minor (its render node, 191,
  // was still legacy); from GPU 64 on, each device takes render then card.
  const cardLegacy = gpuIndex + 1 < LEGACY_MINORS;
  const cardMinor = cardLegacy ? gpuIndex + 1 : gpuIndex === LEGACY_MINORS - 1 ? EXTENDED_BASE : renderMinor + 1;
  return { card: `card${cardMinor}`, cardMinor, render: `renderD${renderMinor}`, renderMinor };
}

/** `features` deduplicated, in MOCK_FEATURES order (the form topologies are written in). */
export function normalizeFeatures(features: Iterable<MockFeature>): MockFeature[] {
  const set = new Set(features);
  return MOCK_FEATURES.filter((f) => set.has(f));
}

export function hasFeature(t: { features?: readonly MockFeature[] }, f: MockFeature): boolean {
  return t.features?.includes(f) ?? false;
}
