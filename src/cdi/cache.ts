/**
 * The parsed-spec cache: a YAML CDI spec is parsed once, not on every create (loading the `yaml` package and parsing
 * an 8-GPU spec costs ~90 ms; reading the cached JSON, ~1 ms). An entry is the parsed document as JSON, under
 * /run/nvidia-runtime/cdi-cache/<sha256 of the spec's path>.json, recording the spec's path, its identity (dev,
 * ino, size, mtime_ns, ctime_ns of the opened file) and the sha256 of its text (reading and hashing 25 KB is ~0.1 ms;
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
 * document that parsed and validated is stored, and only when it survives a JSON round trip unchanged. Every
 * failure to read or write the cache is silent: it is an optimisation. Past MAX_ENTRIES entries it is emptied.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, writeFileSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_CDI_CACHE_DIR = '/run/nvidia-runtime/cdi-cache';
export const CACHE_FORMAT = 'nvidia-runtime cdi-cache 1';
/** A spec is at most MAX_SPEC_BYTES (16 MiB); its JSON is about as large. */
const MAX_ENTRY_BYTES = 48 << 20;
/** A host has a handful of spec files; past this many entries (specs come and go under new names) the cache is
 *  emptied before the next entry is written, so it never grows without bound. */
export const MAX_ENTRIES = 256;

export interface CdiCacheOptions {
  dir?: string;
  euid?: number;
}

/** The hash an entry records of the text its document was parsed from. */
export function textHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
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

const entryName = (file: string): string => `${createHash('sha256').update(file).digest('hex').slice(0, 32)}.json`;

const ownedByUs = (uid: number | bigint, euid: number): boolean => Number(uid) === 0 || Number(uid) === euid;

function trustedDir(dir: string, euid: number): boolean {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && ownedByUs(st.uid, euid) && (st.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

/** The cached document of `file` (whose identity is `identity` and text hash `hash`), or undefined on any miss. */
export function lookupCachedSpec(file: string, identity: string, hash: string, options: CdiCacheOptions = {}): unknown {
  const dir = options.dir ?? DEFAULT_CDI_CACHE_DIR;
  const euid = options.euid ?? process.geteuid?.() ?? 0;
  if (!trustedDir(dir, euid)) return undefined;
  let fd: number;
  try {
    fd = openSync(join(dir, entryName(file)), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || !ownedByUs(st.uid, euid) || (st.mode & 0o077) !== 0 || st.size > MAX_ENTRY_BYTES) return undefined;
    const buf = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) return undefined;
      off += n;
    }
    text = buf.toString('utf8');
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
  let entry: Partial<Entry>;
  try {
    entry = JSON.parse(text) as Partial<Entry>;
  } catch {
    return undefined;
  }
  if (entry === null || typeof entry !== 'object' || entry.format !== CACHE_FORMAT || entry.file !== file || entry.identity !== identity || entry.textHash !== hash) return undefined;
  if (!('doc' in entry)) return undefined;
  return entry.doc;
}

/** True when JSON.stringify → JSON.parse gives back exactly `v` (plain data, finite numbers, no __proto__ keys). */
export function jsonFaithful(v: unknown, depth = 0): boolean {
  if (depth > 256) return false;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v) && !Object.is(v, -0);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!(i in v) || !jsonFaithful(v[i], depth + 1)) return false;
    return true;
  }
  if (typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const k of Object.keys(v)) if (k === '__proto__' || !jsonFaithful((v as Record<string, unknown>)[k], depth + 1)) return false;
  return Object.getOwnPropertySymbols(v).length === 0;
}

/** Records the parsed and validated `doc` of `file` (identity of the opened file: `st`; its text's hash). Silent on any failure. */
export function storeCachedSpec(file: string, st: BigIntStats, hash: string, doc: unknown, options: CdiCacheOptions = {}): void {
  const dir = options.dir ?? DEFAULT_CDI_CACHE_DIR;
  const euid = options.euid ?? process.geteuid?.() ?? 0;
  if (!jsonFaithful(doc)) return;
  try {
    if (!trustedDir(dir, euid)) {
      mkdirSync(join(dir, '..'), { recursive: true, mode: 0o755 });
      try {
        mkdirSync(dir, { mode: 0o700 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return;
      }
      if (!trustedDir(dir, euid)) return; // someone else's, or too open: never write into it
    }
    const entry: Entry = { format: CACHE_FORMAT, file, identity: specIdentity(st), textHash: hash, doc };
    const target = join(dir, entryName(file));
    const names = readdirSync(dir);
    if (names.length >= MAX_ENTRIES) for (const n of names) rmSync(join(dir, n), { force: true });
    const tmp = `${target}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600, flag: 'wx' });
      renameSync(tmp, target);
    } catch {
      rmSync(tmp, { force: true });
    }
  } catch {
    // best effort
  }
}
