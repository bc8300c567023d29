/**
 * The byte strings whose presence anywhere in a bundle's config.json makes it a GPU candidate: the built-in list
 * (src/launcher-contract.json) plus what config.toml adds (custom CDI annotation prefixes, the env names of
 * `swarm-resource`). The launcher gets the
 * same list from the launcher view this runtime writes (launcher-view.ts), so it never needs to read config.toml.
 * A false positive only costs the slow path; the request parser then reads the spec properly.
 */
import type { FrozenRuntimeConfig } from '../config/schema.js';
import { GPU_MARKERS } from '../launcher-contract.js';
import { swarmResourceNames } from '../request/env.js';

export { GPU_MARKERS };

/** Every marker for this configuration, built-in ones first, without duplicates. */
export function gpuMarkers(config: Pick<FrozenRuntimeConfig, 'runtime' | 'swarmResource'>): string[] {
  return [...new Set([...GPU_MARKERS, ...config.runtime.cdi.annotationPrefixes, ...swarmResourceNames(config.swarmResource)])];
}

/** True when any marker occurs in the raw bytes (or text) of a config.json. */
export function hasGpuMarker(bytes: Buffer | string, markers: readonly string[] = GPU_MARKERS): boolean {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  return markers.some((m) => buf.includes(Buffer.from(m, 'utf8')));
}
