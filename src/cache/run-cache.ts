/**
 * The runtime's caches under /run/nvidia-runtime (the parsed CDI specs, src/cdi/cache.ts; the host snapshot,
 * src/host/snapshot-cache.ts): one JSON entry per key in a directory of their own. They are optimisations that never
 * decide anything — every caller checks that an entry still matches what it was made from — but the runtime runs as
 * root and builds containers from them, so an entry is read only when
 * - the directory is a real directory (no symlink) owned by root (or by us) with mode 0700 or stricter, and
 * - the entry is a regular file (opened O_NOFOLLOW) owned by root (or by us), mode 0600 or stricter,
 * stricter than src/trust.ts (nobody but its owner can even read it). Entries are written to a temp file and renamed
 * into place, only values that survive a JSON round trip unchanged are stored, and past MAX_ENTRIES entries the
 * directory is emptied before the next write (bounded on a host whose keys come and go). Every failure to read or
 * write is silent: a miss.
 */
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fastAddon } from '../host/fast-addon.js';

/** Past this many entries in one cache directory it is emptied before the next write. */
export const MAX_ENTRIES = 256;

export interface RunCacheOptions {
  dir?: string;
  euid?: number;
}

/**
 * FNV-1a 64 of `b` (the addon's contentHash; 16 hex digits), undefined when the addon cannot load (then nothing is
 * cached). Not cryptographic: what is hashed is trusted input and every entry also names what it was made from;
 * node:crypto alone costs every cold create ~3 ms to load.
 */
export function contentHash(b: Buffer | string): string | undefined {
  return fastAddon()?.contentHash(typeof b === 'string' ? Buffer.from(b, 'utf8') : b);
}

const ownedByUs = (uid: number | bigint, euid: number): boolean => Number(uid) === 0 || Number(uid) === euid;

function trustedDir(dir: string, euid: number): boolean {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && ownedByUs(st.uid, euid) && (st.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

/** The entry file of `key` (its hash: two keys sharing a name only overwrite each other; entries name their key). */
function entryFile(dir: string, key: string): string | undefined {
  const h = contentHash(key);
  return h === undefined ? undefined : join(dir, `${h}.json`);
}

/** The parsed JSON of `key`'s entry in `dir` when it passes the checks above and is at most maxBytes; else undefined. */
export function readRunCacheEntry(dir: string, key: string, maxBytes: number, options: RunCacheOptions = {}): unknown {
  const euid = options.euid ?? process.geteuid?.() ?? 0;
  const file = entryFile(dir, key);
  if (file === undefined || !trustedDir(dir, euid)) return undefined;
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || !ownedByUs(st.uid, euid) || (st.mode & 0o077) !== 0 || st.size > maxBytes) return undefined;
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
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Writes `value` as `key`'s entry in `dir` (created 0700 when missing; never into a directory that is not ours). */
export function writeRunCacheEntry(dir: string, key: string, value: unknown, options: RunCacheOptions = {}): void {
  const euid = options.euid ?? process.geteuid?.() ?? 0;
  const target = entryFile(dir, key);
  if (target === undefined || !jsonFaithful(value)) return;
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
    const names = readdirSync(dir);
    if (names.length >= MAX_ENTRIES) for (const n of names) rmSync(join(dir, n), { force: true });
    const tmp = `${target}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(value), { mode: 0o600, flag: 'wx' });
      renameSync(tmp, target);
    } catch {
      rmSync(tmp, { force: true });
    }
  } catch {
    // best effort
  }
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
