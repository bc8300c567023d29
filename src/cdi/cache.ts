/**
 * The parsed-spec cache: a YAML CDI spec is parsed once, not on every create (loading the `yaml` package and parsing
 * an 8-GPU spec costs ~90 ms; reading the cached JSON, ~1 ms). An entry is the parsed document as JSON, under
 * /run/nvidia-runtime/cdi-cache/<hash of the spec's path>.json, recording the spec's path, its identity (dev,
 * ino, size, mtime_ns, ctime_ns of the opened file) and the hash of its text (the addon's FNV-1a: reading and hashing 25 KB is ~0.1 ms;
 * parsing it is what costs).
 *
 * The cache never decides anything: a hit yields the same document the parser would, and the caller validates it
 * exactly as a freshly parsed one (specProblem), so CDI stays exactly as strict. An entry is used only when
 * - the directory is a real directory (no symlink) owned by root (or by us) with mode 0700 or stricter, and the entry
 *   a regular file (opened O_NOFOLLOW) owned by root (or by us), mode 0600 or stricter: stricter than src/trust.ts
 *   (nobody but its owner can even read it);
 * - it is our JSON, for this very path, its identity equals the spec file's identity now (any write to the spec
 *   changes its ctime; a replaced file has another inode) and its text hash equals that of the text just read (so
 *   neither coarse timestamps nor a write racing the read can pair a document with text it was not parsed from).
 * Anything else (missing, foreign owner, wrong mode, unparsable, another path, a stale identity) is a miss: the spec
 * is parsed as before and the entry rewritten; so is an entry whose document fails validation (load.ts). Only a
 * document that parsed and validated is stored. The file mechanics (trust, atomic write, bound) are
 * src/cache/run-cache.ts's.
 */
import type { BigIntStats } from 'node:fs';
import { contentHash, readRunCacheEntry, writeRunCacheEntry, type RunCacheOptions } from '../cache/run-cache.js';

export const DEFAULT_CDI_CACHE_DIR = '/run/nvidia-runtime/cdi-cache';
export const CACHE_FORMAT = 'nvidia-runtime cdi-cache 2';
/** A spec is at most MAX_SPEC_BYTES (16 MiB); its JSON is about as large. */
const MAX_ENTRY_BYTES = 48 << 20;
export { MAX_ENTRIES, jsonFaithful } from '../cache/run-cache.js';

export type CdiCacheOptions = RunCacheOptions;

/** The hash an entry records of the text its document was parsed from (length + content hash); undefined: no cache. */
export function textHash(text: string): string | undefined {
  const b = Buffer.from(text, 'utf8');
  const h = contentHash(b);
  return h === undefined ? undefined : `${b.length}:${h}`;
}

/** The identity an entry records: what changes whenever the file's content can have changed. */
export function specIdentity(st: BigIntStats): string {
  return `${st.dev},${st.ino},${st.size},${st.mtimeNs},${st.ctimeNs}`;
}

interface Entry {
  format: string;
  file: string;
  identity: string;
  textHash: string;
  doc: unknown;
}

/** The cached document of `file` (whose identity is `identity` and text hash `hash`), or undefined on any miss. */
export function lookupCachedSpec(file: string, identity: string, hash: string | undefined, options: CdiCacheOptions = {}): unknown {
  if (hash === undefined) return undefined;
  const entry = readRunCacheEntry(options.dir ?? DEFAULT_CDI_CACHE_DIR, file, MAX_ENTRY_BYTES, options) as Partial<Entry> | null | undefined;
  if (entry === null || typeof entry !== 'object' || entry.format !== CACHE_FORMAT || entry.file !== file || entry.identity !== identity || entry.textHash !== hash) return undefined;
  if (!('doc' in entry)) return undefined;
  return entry.doc;
}

/** Records the parsed and validated `doc` of `file` (identity of the opened file: `st`; its text's hash). Silent on any failure. */
export function storeCachedSpec(file: string, st: BigIntStats, hash: string | undefined, doc: unknown, options: CdiCacheOptions = {}): void {
  if (hash === undefined) return;
  const entry: Entry = { format: CACHE_FORMAT, file, identity: specIdentity(st), textHash: hash, doc };
  writeRunCacheEntry(options.dir ?? DEFAULT_CDI_CACHE_DIR, file, entry, options);
}
