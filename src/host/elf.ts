/**
 * Minimal ELF reader: the soname and the DT_NEEDED list of a shared object, which libnvidia-container checks
 * before it accepts a non-glvnd libGL/libEGL/libGLES* as NVIDIA's (it must need libnvidia-glcore or
 * libnvidia-eglcore). Little-endian ELF64 (x86-64) and ELF32 (i386). The input is untrusted (a file in a
 * driver root): every offset and size is checked before use, and anything that does not parse is `undefined`,
 * never an exception and never a string read from outside the file.
 */
import { closeSync, constants as fsc, fstatSync, openSync, readSync } from 'node:fs';

export interface ElfDynamicInfo {
  /** DT_SONAME, when the object has one. */
  soname?: string;
  /** DT_NEEDED entries in file order. */
  needed: string[];
}

/**
 * Random access to the object's bytes: up to `length` bytes at `offset` (fewer at the end of the file, none
 * past it). A Buffer or a file descriptor, so a file is never read whole.
 */
type ReadAt = (offset: number, length: number) => Buffer;

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;

// Caps that no real shared object comes near; together they bound what readElfDynamicInfo reads (< 4 MiB).
const MAX_PHDR_BYTES = 64 * 1024;
const MAX_DYNAMIC_BYTES = 512 * 1024;
const MAX_STRTAB_BYTES = 2 * 1024 * 1024;
const MAX_NAME_BYTES = 4096;

/** Field layout of the two classes (offsets into the ELF header, program header and dynamic entry). */
interface Layout {
  word: 4 | 8;
  phoff: number;
  phentsize: number;
  phnum: number;
  phMin: number; // the smallest valid e_phentsize
  pType: number;
  pOffset: number;
  pVaddr: number;
  pFilesz: number;
  dynSize: number;
}

const ELF32: Layout = { word: 4, phoff: 28, phentsize: 42, phnum: 44, phMin: 32, pType: 0, pOffset: 4, pVaddr: 8, pFilesz: 16, dynSize: 8 };
const ELF64: Layout = { word: 8, phoff: 32, phentsize: 54, phnum: 56, phMin: 56, pType: 0, pOffset: 8, pVaddr: 16, pFilesz: 32, dynSize: 16 };

/** An address-sized field; NaN when a 64-bit value does not fit a JS number exactly (so every range check fails). */
function word(buf: Buffer, at: number, size: 4 | 8): number {
  if (size === 4) return buf.readUInt32LE(at);
  const v = buf.readBigUInt64LE(at);
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : NaN;
}

/** `length` bytes at `offset` exactly, or undefined (short file, or a nonsensical range). */
function readExact(read: ReadAt, offset: number, length: number): Buffer | undefined {
  if (!(Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(length) && length >= 0)) return undefined;
  const b = read(offset, length);
  return b.length === length ? b : undefined;
}

interface Segment {
  offset: number;
  vaddr: number;
  filesz: number;
}

/** The file offset of virtual address `addr` through the PT_LOAD segment that holds it in the file. */
function fileOffsetOf(loads: Segment[], addr: number): { offset: number; room: number } | undefined {
  for (const s of loads) {
    if (addr >= s.vaddr && addr - s.vaddr < s.filesz) return { offset: s.offset + (addr - s.vaddr), room: s.filesz - (addr - s.vaddr) };
  }
  return undefined;
}

/** The NUL-terminated string at `at` in the string table; undefined if it runs past the table or is empty. */
function nameAt(strtab: Buffer, at: number): string | undefined {
  if (!(Number.isSafeInteger(at) && at >= 0 && at < strtab.length)) return undefined;
  const end = strtab.indexOf(0, at);
  if (end < 0 || end === at || end - at > MAX_NAME_BYTES) return undefined;
  return strtab.toString('latin1', at, end);
}

function parse(read: ReadAt): ElfDynamicInfo | undefined {
  const head = read(0, 64);
  if (head.length < 16 || head.readUInt32BE(0) !== 0x7f454c46 || head[5] !== 1 /* ELFDATA2LSB */) return undefined;
  const L = head[4] === 1 /* ELFCLASS32 */ ? ELF32 : head[4] === 2 /* ELFCLASS64 */ ? ELF64 : undefined;
  if (L === undefined || head.length < L.phnum + 2) return undefined; // e_phnum is the last field used

  const phoff = word(head, L.phoff, L.word);
  const phentsize = head.readUInt16LE(L.phentsize);
  const phnum = head.readUInt16LE(L.phnum);
  if (phentsize < L.phMin || phnum === 0 || phnum * phentsize > MAX_PHDR_BYTES) return undefined;
  const phdrs = readExact(read, phoff, phnum * phentsize);
  if (phdrs === undefined) return undefined;

  const loads: Segment[] = [];
  let dynamic: Segment | undefined;
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    const type = phdrs.readUInt32LE(at + L.pType);
    if (type !== PT_LOAD && type !== PT_DYNAMIC) continue;
    const seg = { offset: word(phdrs, at + L.pOffset, L.word), vaddr: word(phdrs, at + L.pVaddr, L.word), filesz: word(phdrs, at + L.pFilesz, L.word) };
    if (!(Number.isSafeInteger(seg.offset) && Number.isSafeInteger(seg.vaddr) && Number.isSafeInteger(seg.filesz))) continue;
    if (type === PT_LOAD) loads.push(seg);
    else dynamic ??= seg;
  }
  if (dynamic === undefined) return undefined;

  const dynBytes = Math.min(dynamic.filesz - (dynamic.filesz % L.dynSize), MAX_DYNAMIC_BYTES);
  const dyn = readExact(read, dynamic.offset, dynBytes);
  if (dyn === undefined) return undefined; // PT_DYNAMIC past the end: a truncated file
  const neededAt: number[] = [];
  let sonameAt: number | undefined;
  let strtabAddr: number | undefined;
  let strsz: number | undefined;
  for (let at = 0; at + L.dynSize <= dyn.length; at += L.dynSize) {
    // d_tag is signed; every tag used here is small and positive, so the high half of an ELF64 tag must be 0.
    if (L.word === 8 && dyn.readUInt32LE(at + 4) !== 0) continue;
    const tag = dyn.readUInt32LE(at);
    const val = word(dyn, at + L.word, L.word);
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) neededAt.push(val);
    else if (tag === DT_SONAME) sonameAt ??= val;
    else if (tag === DT_STRTAB) strtabAddr ??= val;
    else if (tag === DT_STRSZ) strsz ??= val;
  }
  if (neededAt.length === 0 && sonameAt === undefined) return { needed: [] };
  if (strtabAddr === undefined) return undefined;
  // DT_STRTAB is an address: the table is where a PT_LOAD segment maps it, and cannot extend past that segment.
  const where = fileOffsetOf(loads, strtabAddr);
  if (where === undefined) return undefined;
  const size = Math.min(strsz !== undefined && Number.isSafeInteger(strsz) ? strsz : where.room, where.room, MAX_STRTAB_BYTES);
  const strtab = read(where.offset, size);

  const needed: string[] = [];
  for (const off of neededAt) {
    const name = nameAt(strtab, off);
    if (name === undefined) return undefined;
    needed.push(name);
  }
  if (sonameAt === undefined) return { needed };
  const soname = nameAt(strtab, sonameAt);
  return soname === undefined ? undefined : { soname, needed };
}

const bufferReader =
  (bytes: Buffer): ReadAt =>
  (offset, length) =>
    offset >= bytes.length ? Buffer.alloc(0) : bytes.subarray(offset, Math.min(bytes.length, offset + length));

/** Soname and DT_NEEDED of the ELF shared object in `bytes`; undefined for anything that does not parse. */
export function elfDynamicInfo(bytes: Buffer): ElfDynamicInfo | undefined {
  try {
    return parse(bufferReader(bytes));
  } catch {
    return undefined; // a Buffer read the checks above missed: still not an ELF we understand
  }
}

/**
 * The same for a host file, read piecewise (headers, the dynamic segment, the string table: a few MiB at most,
 * whatever the file's size). Undefined when the file cannot be opened, is not a regular file, or does not parse.
 * Opened non-blocking, so a FIFO planted under a library name cannot hang the caller.
 */
export function readElfDynamicInfo(hostPath: string): ElfDynamicInfo | undefined {
  let fd: number;
  try {
    fd = openSync(hostPath, fsc.O_RDONLY | fsc.O_NONBLOCK); // libuv adds O_CLOEXEC itself
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    const read: ReadAt = (offset, length) => {
      if (offset >= st.size || length <= 0) return Buffer.alloc(0);
      const buf = Buffer.alloc(Math.min(length, st.size - offset));
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    };
    return parse(read);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
