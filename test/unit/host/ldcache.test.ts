import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NvrError } from '../../../src/errors.js';
import { ARCH_I386, ARCH_X86_64, parseLdCache, readLdCache, type LdCache } from '../../../src/host/ldcache.js';
import { LIB32_DIR, LIB64_DIR, driverLibs, makeFakeRoot, removeFakeRoot } from '../../helpers/fake-root.js';

function expectLdcacheError(fn: () => unknown, pattern: RegExp): NvrError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(NvrError);
  const e = err as NvrError;
  expect(e.code).toBe('LDCACHE');
  expect(e.message).toMatch(pattern);
  return e;
}

/** Prefix a new-format cache with a libc5 table of `n` entries (padding to 8 bytes), as old ldconfig did. */
function withLibc5Header(newFormat: Buffer, n: number): Buffer {
  const head = Buffer.alloc(16 + n * 12);
  head.write('ld.so-1.7.0', 0, 'latin1');
  head.writeUInt32LE(n, 12);
  for (let i = 0; i < n; i++) head.writeInt32LE(1, 16 + i * 12); // flags; key/value unused by us
  const pad = Buffer.alloc(((head.length + 7) & ~7) - head.length);
  return Buffer.concat([head, pad, newFormat]);
}

describe('ld.so.cache parser', () => {
  let root: string;
  let cache: Buffer;
  let parsed: LdCache;
  beforeAll(() => {
    root = makeFakeRoot({
      libs: [...driverLibs('550.54.15'), { file: 'libcuda.so.550.54.15', soname: 'libcuda.so.1', arch: 'i386' }],
    });
    cache = readFileSync(join(root, 'etc/ld.so.cache'));
    parsed = parseLdCache(cache);
  });
  afterAll(() => removeFakeRoot(root));

  it('reads every entry ldconfig wrote (new format at offset 0)', () => {
    const printed = execFileSync('ldconfig', ['-r', root, '-p'], { encoding: 'utf8' });
    const sonames = [...printed.matchAll(/^\s+(\S+) \(/gm)].map((m) => m[1]);
    expect(parsed.entries.map((e) => e.key)).toEqual(sonames);
    expect(parsed.entries).toContainEqual({ flags: 0x0303, key: 'libcuda.so.1', value: `${LIB64_DIR}/libcuda.so.1`, arch: ARCH_X86_64 });
    const i386 = parsed.entries.find((e) => e.value === `${LIB32_DIR}/libcuda.so.1`);
    expect(i386).toMatchObject({ key: 'libcuda.so.1', arch: ARCH_I386 });
    expect(i386!.flags & 1).toBe(1);
  });

  it('reads the libc5 header + new format layout', () => {
    expect(parseLdCache(withLibc5Header(cache, 3))).toEqual(parsed);
    expect(parseLdCache(withLibc5Header(cache, 0))).toEqual(parsed);
  });

  it('reads through readLdCache with the root', () => {
    expect(readLdCache(root)).toEqual(parsed);
  });

  it('rejects bad magic and a bad version', () => {
    const bad = Buffer.from(cache);
    bad.write('X', 0, 'latin1');
    expectLdcacheError(() => parseLdCache(bad, '/r/etc/ld.so.cache'), /\/r\/etc\/ld\.so\.cache is corrupt: bad magic/);
    const v = Buffer.from(cache);
    v.write('9.9', 17, 'latin1');
    expectLdcacheError(() => parseLdCache(v), /unsupported version/);
  });

  it('rejects truncated headers and entry tables', () => {
    expectLdcacheError(() => parseLdCache(cache.subarray(0, 30)), /truncated header/);
    expectLdcacheError(() => parseLdCache(Buffer.alloc(0)), /truncated header/);
    expectLdcacheError(() => parseLdCache(cache.subarray(0, 48 + 24 * parsed.entries.length - 1)), /entry table/);
    const huge = Buffer.from(cache);
    huge.writeUInt32LE(0x7fffffff, 20);
    expectLdcacheError(() => parseLdCache(huge), /entry table of 2147483647 entries/);
  });

  it('rejects string offsets out of bounds and strings without NUL', () => {
    const oob = Buffer.from(cache);
    oob.writeUInt32LE(cache.length + 10, 48 + 4); // first entry's key
    expectLdcacheError(() => parseLdCache(oob), /string offset \d+ is outside the file/);
    // Cut the file inside the string that starts last (ldconfig shares tails, so check keys and values).
    const starts = parsed.entries.flatMap((_, i) => [cache.readUInt32LE(48 + i * 24 + 4), cache.readUInt32LE(48 + i * 24 + 8)]);
    expectLdcacheError(() => parseLdCache(cache.subarray(0, Math.max(...starts) + 3)), /no terminating NUL/);
  });

  it('rejects big-endian caches and libc5-only caches', () => {
    const be = Buffer.from(cache);
    be.writeUInt8(3, 28);
    expectLdcacheError(() => parseLdCache(be), /big-endian/);
    const oldOnly = withLibc5Header(Buffer.alloc(0), 1);
    expectLdcacheError(() => parseLdCache(oldOnly), /libc5-only/);
    const oldTrunc = withLibc5Header(Buffer.alloc(0), 5).subarray(0, 30);
    expectLdcacheError(() => parseLdCache(oldTrunc), /libc5 table/);
  });

  it('readLdCache: a missing cache says how to regenerate it', () => {
    const empty = makeFakeRoot({ dirs: ['/etc'] });
    const e = expectLdcacheError(() => readLdCache(empty), /cannot read ld\.so\.cache/);
    expect(e.fix).toBe(`run \`ldconfig -r ${empty}\``);
    removeFakeRoot(empty);
  });

  it('readLdCache: a corrupt cache names the file and the fix', () => {
    const bad = makeFakeRoot({ files: { '/etc/ld.so.cache': 'glibc-ld.so.cache1.1' } });
    const e = expectLdcacheError(() => readLdCache(bad), new RegExp(`${bad}/etc/ld.so.cache is corrupt`));
    expect(e.fix).toBe(`run \`ldconfig -r ${bad}\` to regenerate it`);
    removeFakeRoot(bad);
  });
});
