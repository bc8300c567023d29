/**
 * The addon's speed-only helpers against their JavaScript meaning, through the built addon (build/Release):
 * identities(paths, follow) must give, path for path, exactly what statIdentity / lstatIdentity give (src/
 * launcher-contract.ts identityOf; "-" missing; null where they give undefined) — a table of file kinds plus random
 * paths; contentHash must be FNV-1a 64 (published vectors, and a BigInt reference on random bytes).
 */
import { createRequire } from 'node:module';
import { chmodSync, mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { lstatIdentity, statIdentity } from '../../../src/launcher-contract.js';
import { PACKAGE_ROOT, tempDir } from '../../helpers/dist.js';

interface Addon {
  identities(paths: readonly string[], follow: boolean): Array<string | null>;
  contentHash(b: Buffer): string;
}
const addon = createRequire(import.meta.url)(join(PACKAGE_ROOT, 'build/Release/nvidia_runtime.node')) as Addon;

let dir: string;
beforeAll(() => {
  dir = tempDir('fast-addon');
  writeFileSync(join(dir, 'file'), 'x');
  mkdirSync(join(dir, 'dir'));
  symlinkSync('file', join(dir, 'link'));
  symlinkSync('nowhere', join(dir, 'dangling'));
  symlinkSync('loop', join(dir, 'loop'));
  execFileSync('mknod', [join(dir, 'chr'), 'c', '195', '7']);
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  writeFileSync(join(dir, 'old'), '');
  utimesSync(join(dir, 'old'), new Date('1960-01-01T00:00:00.123Z'), new Date('1960-01-01T00:00:00.123Z'));
  writeFileSync(join(dir, 'big'), Buffer.alloc(70000));
  chmodSync(join(dir, 'file'), 0o4755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const js = (p: string, follow: boolean): string | null => (follow ? statIdentity(p) : lstatIdentity(p)) ?? null;

const TABLE = ['file', 'dir', 'link', 'dangling', 'loop', 'chr', 'fifo', 'old', 'big', 'missing', 'file/below', 'link/', 'dir/../file', ''];
test.each(TABLE)('%s: stat and lstat identities equal the JavaScript ones', (name) => {
  const p = name === '' ? '' : join(dir, name);
  for (const follow of [true, false]) expect(addon.identities([p], follow)).toEqual([js(p, follow)]);
});

test('host paths, a NUL byte, a very long path, and the whole table in one call', () => {
  const paths = ['/', '/dev/null', '/proc/self', '/etc/hostname', `${dir}/fi\0le`, `/${'a'.repeat(5000)}`, ...TABLE.map((n) => join(dir, n))];
  for (const follow of [true, false]) expect(addon.identities(paths, follow)).toEqual(paths.map((p) => js(p, follow)));
});

test('random paths under the fixture directory', () => {
  const part = fc.constantFrom('file', 'dir', 'link', 'dangling', 'chr', 'x', '..', '.', '');
  fc.assert(fc.property(fc.array(part, { maxLength: 4 }), fc.boolean(), (parts, follow) => {
    const p = join(dir, ...parts);
    expect(addon.identities([p], follow)).toEqual([js(p, follow)]);
  }), { numRuns: 300 });
});

test('bad arguments are a TypeError (of the addon\'s realm: matched by message)', () => {
  expect(() => addon.identities('x' as unknown as string[], true)).toThrow(/paths must be an array/);
  expect(() => addon.identities([1 as unknown as string], true)).toThrow(/paths must be an array of strings/);
  expect(() => addon.identities([], undefined as unknown as boolean)).toThrow(/follow a boolean/);
  expect(() => addon.contentHash('x' as unknown as Buffer)).toThrow(/must be a Buffer/);
});

const fnv1a64 = (b: Buffer): string => {
  let h = 0xcbf29ce484222325n;
  for (const x of b) h = ((h ^ BigInt(x)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, '0');
};
test('contentHash is FNV-1a 64', () => {
  expect(addon.contentHash(Buffer.from(''))).toBe('cbf29ce484222325');
  expect(addon.contentHash(Buffer.from('a'))).toBe('af63dc4c8601ec8c');
  expect(addon.contentHash(Buffer.from('foobar'))).toBe('85944171f73967e8');
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (a) => {
    const b = Buffer.from(a);
    expect(addon.contentHash(b)).toBe(fnv1a64(b));
  }));
});
