/**
 * The byte strings whose presence anywhere in a bundle's config.json makes it a GPU candidate. The native
 * launcher uses the same list (native/include/gpu_markers.h, generated from gpu-markers.json by
 * scripts/gen-markers.mjs) to decide, without starting Node, that a create needs no GPU and can go straight
 * to runc. A false positive only costs the slow path; the TypeScript pipeline then reads the spec properly.
 * Go's encoder and every engine we know write these ASCII strings literally (no \u escapes for them).
 */
import markers from './gpu-markers.json' with { type: 'json' };

export const GPU_MARKERS: readonly string[] = Object.freeze([...markers]);

const MARKER_BYTES: readonly Buffer[] = GPU_MARKERS.map((m) => Buffer.from(m, 'latin1'));

/** True when any marker occurs in the raw bytes (or text) of a config.json. */
export function hasGpuMarker(bytes: Buffer | string): boolean {
  if (typeof bytes === 'string') return GPU_MARKERS.some((m) => bytes.includes(m));
  return MARKER_BYTES.some((m) => bytes.includes(m));
}
