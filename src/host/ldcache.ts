/**
 * glibc ld.so.cache reader (FACTS.md §1.12). The cache tells us which file each soname resolves to inside
 * the driver root, exactly as the dynamic loader of that root would find it. Parsing is a pure function of
 * the bytes; every offset is bounds-checked so a corrupt or hostile cache yields an NvrError, never garbage.
 */
import { readFileSync } from 'node:fs';
import { NvrError } from '../errors.js';
import { normalizeRoot, resolveInRoot } from './root.js';

export interface LdCacheEntry {
  /** Raw flags: low byte = type (1 ELF, 3 ELF libc6), 0xff00 = arch. */
  flags: number;
  /** Soname, e.g. "libcuda.so.1". */
  key: string;
  /** Path of the soname link inside the root, e.g. "/usr/lib/x86_64-linux-gnu/libcuda.so.1". */
  value: string;
  /** flags & 0xff00 (ARCH_X86_64, ARCH_I386, …). */
  arch: number;
}

export interface LdCache {
  /** Entries in file order (ldconfig sorts them; "last acceptable wins" logic depends on this order). */
  entries: LdCacheEntry[];
}

export const ARCH_MASK = 0xff00;
export const ARCH_I386 = 0x0000;
export const ARCH_X86_64 = 0x0300;
/** x86-64 libc6 entries carry 0x0303, i386 libc6 0x0003; libnvidia-container only requires the ELF bit. */
export const FLAG_ELF = 0x0001;

const OLD_MAGIC = 'ld.so-1.7.0';
const NEW_MAGIC = 'glibc-ld.so.cache';
const NEW_VERSION = '1.1';
const NEW_HEADER_SIZE = 48;
const NEW_ENTRY_SIZE = 24;
const OLD_HEADER_SIZE = 16; // 11-byte magic, padded to 12, then u32 nlibs
const OLD_ENTRY_SIZE = 12;

/** Is this entry an ELF library of the given arch (libnvidia-container's test)? */
export function entryMatchesArch(e: LdCacheEntry, arch: number): boolean {
  return (e.flags & FLAG_ELF) !== 0 && e.arch === arch;
}

function corrupt(file: string, what: string, root?: string): NvrError {
  const r = root === undefined ? undefined : normalizeRoot(root);
  const fix = r === undefined || r === '/' ? 'run `ldconfig` to regenerate it' : `run \`ldconfig -r ${r}\` to regenerate it`;
  return new NvrError('LDCACHE', `ld.so.cache ${file} is corrupt: ${what}`, { fix });
}

function readString(buf: Buffer, base: number, offset: number, file: string, root?: string): string {
  const start = base + offset;
  if (offset < 0 || start >= buf.length) throw corrupt(file, `string offset ${offset} is outside the file`, root);
  const end = buf.indexOf(0, start);
  if (end < 0) throw corrupt(file, `string at offset ${offset} has no terminating NUL`, root);
  return buf.toString('utf8', start, end);
}

/**
 * Parse an ld.so.cache image: the new format at offset 0, or the old libc5 table followed (8-byte aligned)
 * by the new one. Only new-format entries are returned (the old table duplicates them without arch info).
 * `file` and `root` only shape the error message.
 */
export function parseLdCache(buf: Buffer, file = 'ld.so.cache', root?: string): LdCache {
  let base = 0;
  if (buf.length >= OLD_MAGIC.length && buf.toString('latin1', 0, OLD_MAGIC.length) === OLD_MAGIC) {
    if (buf.length < OLD_HEADER_SIZE) throw corrupt(file, 'truncated libc5 header', root);
    const oldCount = buf.readUInt32LE(12);
    const oldEnd = OLD_HEADER_SIZE + oldCount * OLD_ENTRY_SIZE;
    if (oldEnd > buf.length) throw corrupt(file, `libc5 table of ${oldCount} entries runs past the end`, root);
    base = (oldEnd + 7) & ~7;
    if (buf.length < base + NEW_MAGIC.length || buf.toString('latin1', base, base + NEW_MAGIC.length) !== NEW_MAGIC) {
      throw corrupt(file, 'libc5-only cache without the glibc section', root);
    }
  }
  if (buf.length < base + NEW_HEADER_SIZE) throw corrupt(file, 'truncated header', root);
  if (buf.toString('latin1', base, base + NEW_MAGIC.length) !== NEW_MAGIC) throw corrupt(file, 'bad magic', root);
  const version = buf.toString('latin1', base + 17, base + 20);
  if (version !== NEW_VERSION) throw corrupt(file, `unsupported version "${version}"`, root);
  if ((buf.readUInt8(base + 28) & 3) === 3) throw corrupt(file, 'big-endian cache on a little-endian host', root);

  const count = buf.readUInt32LE(base + 20);
  const tableEnd = base + NEW_HEADER_SIZE + count * NEW_ENTRY_SIZE;
  if (tableEnd > buf.length) throw corrupt(file, `entry table of ${count} entries runs past the end`, root);

  const entries: LdCacheEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = base + NEW_HEADER_SIZE + i * NEW_ENTRY_SIZE;
    const flags = buf.readInt32LE(at);
    // key/value are offsets from the start of the new header (glibc's string table base).
    const key = readString(buf, base, buf.readUInt32LE(at + 4), file, root);
    const value = readString(buf, base, buf.readUInt32LE(at + 8), file, root);
    entries.push({ flags, key, value, arch: flags & ARCH_MASK });
  }
  return { entries };
}

/**
 * Read and parse `<root><path>` (path resolved inside the root). A missing or corrupt cache → NvrError LDCACHE.
 */
export function readLdCache(root: string, path = '/etc/ld.so.cache'): LdCache {
  const r = normalizeRoot(root);
  const where = resolveInRoot(r, path);
  let buf: Buffer;
  try {
    buf = readFileSync(where.hostPath);
  } catch (cause) {
    const fix = r === '/' ? 'run `ldconfig`' : `run \`ldconfig -r ${r}\``;
    throw new NvrError('LDCACHE', `cannot read ld.so.cache ${where.hostPath}: ${(cause as Error).message}`, { fix, cause });
  }
  return parseLdCache(buf, where.hostPath, r);
}
