/**
 * The code-cache loader (src/runtime/loader.ts): a good cache is used; a corrupt, mismatched (another bundle's),
 * untrusted or missing cache is ignored and the bundle still runs. V8 keeps an in-process compilation cache, so
 * whether a cache is accepted is asked in a fresh node process (the built dist/runtime/loader.js).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT } from '../../helpers/dist.js';
import { BUNDLE_NAME, CACHE_NAME, readTrustedCache, runRuntime, writeTopLevelCodeCache } from '../../../src/runtime/loader.js';

let dir: string;
const mainUrl = (): string => pathToFileURL(join(dir, 'main.js')).href;
const out = (): string => join(dir, 'ran.txt');
/** A bundle that proves it ran with the loader's arguments: it writes its import.meta.url and a required builtin's work. */
const bundleSource = (tag: string): string =>
  `const { writeFileSync } = require('node:fs'); const { basename } = require('node:path');\n` +
  `function work(x) { return x.map((v) => v * 2).join(','); }\n` +
  `writeFileSync(${JSON.stringify(join('DIR', 'ran.txt'))}.replace('DIR', __dirname), ${JSON.stringify(tag)} + ' ' + basename(new URL(__nvr_import_meta_url).pathname) + ' ' + basename(__filename) + ' ' + work([1, 2]));\n`;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nvr-loader-'));
  writeFileSync(join(dir, BUNDLE_NAME), bundleSource('one'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const ran = (): string => readFileSync(out(), 'utf8');
const builtLoader = pathToFileURL(join(PACKAGE_ROOT, 'dist', 'runtime', 'loader.js')).href;
/** In a fresh process: was the cache next to the bundle rejected (true/false, "none" when not offered)? Then run it. */
function freshRejected(): string {
  const code =
    `import { compileBundle, readTrustedCache, runRuntime } from ${JSON.stringify(builtLoader)};\n` +
    `const c = compileBundle(${JSON.stringify(join(dir, BUNDLE_NAME))}, readTrustedCache(${JSON.stringify(join(dir, CACHE_NAME))}));\n` +
    `process.stdout.write(String(c.cachedDataRejected ?? 'none'));\n` +
    `runRuntime(${JSON.stringify(mainUrl())});\n`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

test('without a cache the bundle runs as the module main.js', () => {
  runRuntime(mainUrl());
  expect(ran()).toBe('one main.js main.js 2,4');
});

test('a cache written for the bundle is accepted and the bundle runs', () => {
  writeTopLevelCodeCache(mainUrl());
  expect(freshRejected()).toBe('false');
  expect(ran()).toBe('one main.js main.js 2,4');
});

test('a corrupt cache is rejected and the bundle still runs', () => {
  writeTopLevelCodeCache(mainUrl());
  const cache = readFileSync(join(dir, CACHE_NAME));
  // past our header (magic + key): V8 itself must refuse the damaged data (its checksum)
  for (let i = 64; i < cache.length; i += 7) cache[i] ^= 0x5a;
  writeFileSync(join(dir, CACHE_NAME), cache, { mode: 0o644 });
  expect(freshRejected()).toBe('true');
  expect(ran()).toBe('one main.js main.js 2,4');
});

test('garbage and truncated caches are rejected and the bundle still runs', () => {
  for (const bytes of [Buffer.from('not a code cache'), Buffer.alloc(1, 0)]) {
    writeFileSync(join(dir, CACHE_NAME), bytes, { mode: 0o644 });
    rmSync(out(), { force: true });
    expect(freshRejected()).toBe('true');
    expect(ran()).toBe('one main.js main.js 2,4');
  }
});

test("another bundle's cache (a stale cache after an update) is rejected and the new bundle runs", () => {
  writeTopLevelCodeCache(mainUrl());
  writeFileSync(join(dir, BUNDLE_NAME), bundleSource('two'));
  expect(freshRejected()).toBe('true');
  expect(ran()).toBe('two main.js main.js 2,4');
});

test('an untrusted cache (group/world-writable, a symlink, foreign owner) is never offered to V8', () => {
  writeTopLevelCodeCache(mainUrl());
  const cache = join(dir, CACHE_NAME);
  expect(readTrustedCache(cache)).toBeDefined();
  chmodSync(cache, 0o666);
  expect(readTrustedCache(cache)).toBeUndefined();
  chmodSync(cache, 0o620);
  expect(readTrustedCache(cache)).toBeUndefined();
  chmodSync(cache, 0o644);
  const link = join(dir, 'link.cache');
  symlinkSync(cache, link);
  expect(readTrustedCache(link)).toBeUndefined();
  // owned by someone who is neither root nor us
  if (process.geteuid?.() === 0) expect(readTrustedCache(cache, 12345)).toEqual(readTrustedCache(cache)); // root-owned: trusted for anyone
  expect(readTrustedCache(join(dir, 'missing.cache'))).toBeUndefined();
  chmodSync(cache, 0o666);
  expect(freshRejected()).toBe('none');
  expect(ran()).toBe('one main.js main.js 2,4');
});

test('a cache owned by another user is ignored', () => {
  if (process.geteuid?.() !== 0) return; // needs chown
  writeTopLevelCodeCache(mainUrl());
  chownSync(join(dir, CACHE_NAME), 12345, 12345);
  expect(readTrustedCache(join(dir, CACHE_NAME))).toBeUndefined();
  expect(freshRejected()).toBe('none');
  expect(ran()).toBe('one main.js main.js 2,4');
});
