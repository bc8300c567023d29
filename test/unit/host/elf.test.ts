/**
 * src/host/elf.ts: soname and DT_NEEDED of real objects (the built mock stubs, the host's libc) and of
 * hand-made ELF32/ELF64 images, and a property that garbage never throws and never yields bytes from outside
 * the buffer.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { elfDynamicInfo, readElfDynamicInfo } from '../../../src/host/elf.js';
import { NEEDED_PLACEHOLDER, patchNeeded, patchSoname, SONAME_PLACEHOLDER } from '../../../src/mock/elf-patch.js';

const RELEASE = join(process.cwd(), 'build/Release');
const STUB = join(RELEASE, 'libnvidia-stub.so');
const STUB32 = join(RELEASE, 'libnvidia-stub32.so');
const STUB_NEEDED = join(RELEASE, 'libnvidia-stub-needed.so');
const LIBC = '/lib/x86_64-linux-gnu/libc.so.6';
const itIf = (cond: boolean) => (cond ? it : it.skip);

interface ElfSpec {
  cls: 32 | 64;
  soname?: string;
  needed?: string[];
  /** Virtual address of the PT_LOAD segment (file offset 0): DT_STRTAB is written as an address in it. */
  base?: number;
  /** Omit DT_STRSZ. */
  noStrsz?: boolean;
}

/** A minimal little-endian ELF shared object: header, PT_LOAD over the whole file, PT_DYNAMIC, .dynamic, .dynstr. */
function makeElf(spec: ElfSpec): Buffer {
  const is64 = spec.cls === 64;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const dynsize = is64 ? 16 : 8;
  const base = spec.base ?? 0x10000;
  const names = [...(spec.needed ?? []), ...(spec.soname ? [spec.soname] : [])];
  const strs: number[] = [];
  let strtab = Buffer.from([0]);
  for (const n of names) {
    strs.push(strtab.length);
    strtab = Buffer.concat([strtab, Buffer.from(n + '\0', 'latin1')]);
  }
  const dynEntries: Array<[number, number]> = [];
  (spec.needed ?? []).forEach((_, i) => dynEntries.push([1, strs[i]!]));
  if (spec.soname) dynEntries.push([14, strs[names.length - 1]!]);
  const phoff = ehsize;
  const dynOff = phoff + 2 * phentsize;
  const strOff = dynOff + (dynEntries.length + 3) * dynsize;
  dynEntries.push([5, base + strOff]);
  if (!spec.noStrsz) dynEntries.push([10, strtab.length]);
  dynEntries.push([0, 0]);
  const size = strOff + strtab.length;
  const buf = Buffer.alloc(size);
  buf.writeUInt32BE(0x7f454c46, 0);
  buf[4] = is64 ? 2 : 1;
  buf[5] = 1;
  buf[6] = 1;
  buf.writeUInt16LE(3, 16); // ET_DYN
  buf.writeUInt16LE(is64 ? 62 : 3, 18);
  const w = (v: number, at: number): void => {
    if (is64) buf.writeBigUInt64LE(BigInt(v), at);
    else buf.writeUInt32LE(v, at);
  };
  w(phoff, is64 ? 32 : 28);
  buf.writeUInt16LE(ehsize, is64 ? 52 : 40);
  buf.writeUInt16LE(phentsize, is64 ? 54 : 42);
  buf.writeUInt16LE(2, is64 ? 56 : 44);
  const ph = (i: number, type: number, offset: number, vaddr: number, filesz: number): void => {
    const at = phoff + i * phentsize;
    buf.writeUInt32LE(type, at);
    w(offset, at + (is64 ? 8 : 4));
    w(vaddr, at + (is64 ? 16 : 8));
    w(filesz, at + (is64 ? 32 : 16));
    w(filesz, at + (is64 ? 40 : 20));
  };
  ph(0, 1, 0, base, size);
  ph(1, 2, dynOff, base + dynOff, (dynEntries.length) * dynsize);
  dynEntries.forEach(([tag, val], i) => {
    w(tag, dynOff + i * dynsize);
    w(val, dynOff + i * dynsize + (is64 ? 8 : 4));
  });
  strtab.copy(buf, strOff);
  return buf;
}

describe('elfDynamicInfo on hand-made objects', () => {
  it.each([32, 64] as const)('ELF%i: soname and needed in file order', (cls) => {
    const elf = makeElf({ cls, soname: 'libGL.so.1', needed: ['libnvidia-glcore.so.550.54.15', 'libc.so.6'] });
    expect(elfDynamicInfo(elf)).toEqual({ soname: 'libGL.so.1', needed: ['libnvidia-glcore.so.550.54.15', 'libc.so.6'] });
  });

  it('an object without soname or needed entries', () => {
    expect(elfDynamicInfo(makeElf({ cls: 64 }))).toEqual({ needed: [] });
    expect(elfDynamicInfo(makeElf({ cls: 64, needed: ['libc.so.6'] }))).toEqual({ needed: ['libc.so.6'] });
  });

  it('maps DT_STRTAB through PT_LOAD (any load address), with or without DT_STRSZ', () => {
    for (const base of [0, 0x400000, 0x7f0000000000]) {
      expect(elfDynamicInfo(makeElf({ cls: 64, soname: 'libx.so.1', base }))).toEqual({ soname: 'libx.so.1', needed: [] });
    }
    expect(elfDynamicInfo(makeElf({ cls: 32, soname: 'libx.so.1', noStrsz: true }))).toEqual({ soname: 'libx.so.1', needed: [] });
  });

  it('undefined for non-ELF, big-endian, unknown class, truncated or inconsistent objects', () => {
    const good = makeElf({ cls: 64, soname: 'libx.so.1', needed: ['liby.so.2'] });
    expect(elfDynamicInfo(Buffer.alloc(0))).toBeUndefined();
    expect(elfDynamicInfo(Buffer.from('\x7fELF'))).toBeUndefined();
    expect(elfDynamicInfo(Buffer.from('#!/bin/sh\necho hi\n'))).toBeUndefined();
    const be = Buffer.from(good);
    be[5] = 2;
    expect(elfDynamicInfo(be)).toBeUndefined();
    const cls = Buffer.from(good);
    cls[4] = 3;
    expect(elfDynamicInfo(cls)).toBeUndefined();
    // Cut inside the string table: the names would run past the end.
    expect(elfDynamicInfo(good.subarray(0, good.length - 3))).toBeUndefined();
    // Cut inside the program headers.
    expect(elfDynamicInfo(good.subarray(0, 80))).toBeUndefined();
    // DT_STRTAB outside every PT_LOAD.
    const moved = makeElf({ cls: 64, soname: 'libx.so.1', base: 0x10000 });
    moved.writeBigUInt64LE(0x90000n, 64 + 16); // the PT_LOAD's p_vaddr: the table's address is no longer in it
    expect(elfDynamicInfo(moved)).toBeUndefined();
    // A soname offset past the string table.
    const far = makeElf({ cls: 32, soname: 'libx.so.1' });
    const dynOff = 52 + 2 * 32;
    far.writeUInt32LE(0x7fff, dynOff + 4);
    expect(elfDynamicInfo(far)).toBeUndefined();
  });
});

describe('elfDynamicInfo on real objects', () => {
  itIf(existsSync(LIBC))('the host libc: soname libc.so.6, needs the dynamic loader', () => {
    const info = readElfDynamicInfo(LIBC);
    expect(info?.soname).toBe('libc.so.6');
    expect(info?.needed).toContain('ld-linux-x86-64.so.2');
    expect(elfDynamicInfo(readFileSync(LIBC))).toEqual(info);
  });

  itIf(existsSync(STUB))('the built stub, patched: the soname it was given', () => {
    const stub = readFileSync(STUB);
    expect(elfDynamicInfo(stub)?.soname).toBe(SONAME_PLACEHOLDER);
    expect(elfDynamicInfo(patchSoname(stub, 'libcuda.so.1'))).toEqual({ soname: 'libcuda.so.1', needed: elfDynamicInfo(stub)!.needed });
  });

  itIf(existsSync(STUB_NEEDED))('the built stub with DT_NEEDED, patched: soname and needed as patched', () => {
    const raw = readFileSync(STUB_NEEDED);
    expect(elfDynamicInfo(raw)).toMatchObject({ soname: SONAME_PLACEHOLDER, needed: [NEEDED_PLACEHOLDER] });
    const lib = patchNeeded(patchSoname(raw, 'libGL.so.1'), 'libnvidia-glcore.so.550.54.15');
    // Only the placeholder is needed: the stub must load in a container that has nothing but the driver.
    expect(elfDynamicInfo(lib)).toEqual({ soname: 'libGL.so.1', needed: ['libnvidia-glcore.so.550.54.15'] });
  });

  itIf(existsSync(STUB32))('the 32-bit stub (ELF32, i386)', () => {
    const lib = patchSoname(readFileSync(STUB32), 'libcuda.so.1');
    expect(lib[4]).toBe(1);
    expect(elfDynamicInfo(lib)?.soname).toBe('libcuda.so.1');
  });

  describe('readElfDynamicInfo', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'nvr-elf-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('reads a file; undefined for a missing file, a directory, a FIFO, a text file', () => {
      const p = join(dir, 'libx.so.1');
      writeFileSync(p, makeElf({ cls: 64, soname: 'libx.so.1', needed: ['libc.so.6'] }));
      expect(readElfDynamicInfo(p)).toEqual({ soname: 'libx.so.1', needed: ['libc.so.6'] });
      expect(readElfDynamicInfo(join(dir, 'nope'))).toBeUndefined();
      mkdirSync(join(dir, 'd'));
      expect(readElfDynamicInfo(join(dir, 'd'))).toBeUndefined();
      writeFileSync(join(dir, 't'), 'INPUT(-lc)\n');
      expect(readElfDynamicInfo(join(dir, 't'))).toBeUndefined();
      try {
        execFileSync('mkfifo', [join(dir, 'fifo')]);
      } catch {
        return; // no mkfifo: the rest is covered above
      }
      expect(readElfDynamicInfo(join(dir, 'fifo'))).toBeUndefined(); // and does not hang
    });

    it('reads only the parts it needs: a huge file with a small dynamic section is fine', () => {
      const elf = makeElf({ cls: 64, soname: 'libbig.so.1' });
      const p = join(dir, 'libbig.so.1');
      writeFileSync(p, Buffer.concat([elf, Buffer.alloc(64 * 1024 * 1024)]));
      expect(readElfDynamicInfo(p)).toEqual({ soname: 'libbig.so.1', needed: [] });
    });
  });
});

describe('elfDynamicInfo never throws and never reads outside the buffer', () => {
  /** Every returned name must be a NUL-terminated string present in the input. */
  const inBuffer = (buf: Buffer, info: ReturnType<typeof elfDynamicInfo>): boolean =>
    info === undefined || [...info.needed, ...(info.soname === undefined ? [] : [info.soname])].every((n) => n.length > 0 && buf.includes(Buffer.from(n + '\0', 'latin1')));

  const seeds = [
    makeElf({ cls: 64, soname: 'libGL.so.1', needed: ['libnvidia-glcore.so.550.54.15'] }),
    makeElf({ cls: 32, soname: 'libEGL.so.1', needed: ['libnvidia-eglcore.so.550.54.15', 'libc.so.6'] }),
    ...(existsSync(STUB_NEEDED) ? [readFileSync(STUB_NEEDED)] : []),
  ];

  it('random bytes, with and without an ELF header', () => {
    const header = fc.constantFrom(Buffer.alloc(0), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]));
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 600 }), (h, body) => {
        const buf = Buffer.concat([h, Buffer.from(body)]);
        return inBuffer(buf, elfDynamicInfo(buf));
      }),
      { numRuns: 2000 },
    );
  });

  it('truncated and mutated real objects', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.nat(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 12 }),
        (seed, cut, edits) => {
          const buf = Buffer.from(seed.subarray(0, seed.length - (cut % (seed.length + 1))));
          for (const [at, v] of edits) if (buf.length > 0) buf[at % buf.length] = v;
          return inBuffer(buf, elfDynamicInfo(buf));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('mutations of the header and program header fields in particular', () => {
    // Bytes 0..0x120 hold the ELF header, program headers and (in makeElf) the dynamic section.
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(0x120), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (seed, edits) => {
        const buf = Buffer.from(seed);
        for (const [at, v] of edits) if (at < buf.length) buf[at] = v;
        return inBuffer(buf, elfDynamicInfo(buf));
      }),
      { numRuns: 3000 },
    );
  });
});
