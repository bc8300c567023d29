/**
 * The addon's helpers that only make things faster (contentHash, identities): loaded once, lazily; undefined when
 * the addon cannot be loaded, and every caller then does the same work in JavaScript (or caches nothing).
 * Relative to dist/<dir>/, so it resolves from dist/host/ and from the bundled dist/runtime/main.js alike.
 */
import { createRequire } from 'node:module';

export interface FastAddon {
  /** FNV-1a 64 of the bytes, 16 hex digits (native/addon/addon.cc). */
  contentHash(b: Buffer): string;
  /** identityOf's text per path (stat or lstat), "-" when missing, null when it cannot be stat'ed otherwise. */
  identities(paths: readonly string[], follow: boolean): Array<string | null>;
}

let addon: FastAddon | null | undefined;
export function fastAddon(): FastAddon | undefined {
  if (addon === undefined) {
    try {
      const a = createRequire(import.meta.url)('../../build/Release/nvidia_runtime.node') as Partial<FastAddon>;
      addon = typeof a.contentHash === 'function' && typeof a.identities === 'function' ? (a as FastAddon) : null;
    } catch {
      addon = null;
    }
  }
  return addon ?? undefined;
}
