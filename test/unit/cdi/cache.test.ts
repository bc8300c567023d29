/**
 * The parsed-spec cache (src/cdi/cache.ts, used by readSpecFile for YAML specs): a hit is the parsed document; an
 * entry for another identity or text, a tampered, foreign-owned, too-open or symlinked entry, or one in an untrusted
 * directory is ignored; a parse or validation error is never cached; and CDI stays exactly as strict.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_FORMAT, MAX_ENTRIES, jsonFaithful, lookupCachedSpec, specIdentity, textHash } from '../../../src/cdi/cache.js';
import { readSpecFile } from '../../../src/cdi/load.js';
import { loadCdiRegistry } from '../../../src/cdi/registry.js';
import { tempDir } from '../../helpers/dist.js';

let work: string;
let cacheDir: string;
let specDir: string;
const isRoot = process.geteuid?.() === 0;
beforeEach(() => {
  work = tempDir('cdi-cache');
  cacheDir = join(work, 'run', 'cdi-cache');
  specDir = join(work, 'specs');
  mkdirSync(specDir);
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

const YAML = (kind = 'vendor.com/net', env = 'A=1'): string => `cdiVersion: "0.5.0"
kind: ${kind}
containerEdits:
  env: ["${env}"]
devices:
  - name: "0"
    containerEdits:
      deviceNodes:
        - path: /dev/null
          hostPath: /dev/null
  - name: "1"
    containerEdits:
      mounts:
        - hostPath: /usr/lib/libfoo.so
          containerPath: /usr/lib/libfoo.so
          options: [ro, nosuid, nodev, bind]
`;

function specFile(text: string, name = 'net.yaml'): string {
  const f = join(specDir, name);
  writeFileSync(f, text);
  return f;
}
const entries = (): string[] => (existsSync(cacheDir) ? readdirSync(cacheDir).filter((n) => n.endsWith('.json')) : []);
const entryPath = (): string => join(cacheDir, entries()[0]!);
const opts = () => ({ cache: { dir: cacheDir } });
const identityOf = (f: string): string => specIdentity(statSync(f, { bigint: true }));
function outcome(fn: () => unknown): unknown {
  try {
    return { ok: fn() };
  } catch (e) {
    return { error: (e as Error).message, code: (e as { code?: string }).code };
  }
}

test('a YAML spec is parsed once: the entry (0600 in a 0700 directory) records path, identity and text hash; a hit is the same document', () => {
  const f = specFile(YAML());
  const first = readSpecFile(f, opts());
  expect(entries()).toHaveLength(1);
  expect(statSync(cacheDir).mode & 0o777).toBe(0o700);
  expect(statSync(entryPath()).mode & 0o777).toBe(0o600);
  const entry = JSON.parse(readFileSync(entryPath(), 'utf8'));
  expect(entry).toEqual({ format: CACHE_FORMAT, file: f, identity: identityOf(f), textHash: textHash(YAML()), doc: first });
  expect(lookupCachedSpec(f, identityOf(f), textHash(YAML()), { dir: cacheDir })).toEqual(first);
  expect(readSpecFile(f, opts())).toEqual(first);
  expect(readSpecFile(f, { cache: false })).toEqual(first);
});

test('JSON specs and cache: false write no entry', () => {
  const j = join(specDir, 'a.json');
  writeFileSync(j, JSON.stringify({ cdiVersion: '0.5.0', kind: 'vendor.com/x', devices: [{ name: '0', containerEdits: { env: ['A=1'] } }] }));
  readSpecFile(j, opts());
  readSpecFile(specFile(YAML()), { cache: false });
  expect(entries()).toHaveLength(0);
});

test('an entry for another identity (the spec rewritten, even with the same text; a stale entry) is ignored', () => {
  const f = specFile(YAML());
  readSpecFile(f, opts());
  const old = identityOf(f);
  writeFileSync(f, YAML('vendor.com/net', 'A=2'));
  expect(lookupCachedSpec(f, identityOf(f), textHash(YAML('vendor.com/net', 'A=2')), { dir: cacheDir })).toBeUndefined();
  expect(readSpecFile(f, opts()).containerEdits?.env).toEqual(['A=2']);
  // the same text again, but touched: identity differs, the entry written for the older identity is not used
  writeFileSync(f, YAML());
  utimesSync(f, new Date(2020, 1, 1), new Date(2020, 1, 1));
  expect(identityOf(f)).not.toBe(old);
  expect(lookupCachedSpec(f, old, textHash(YAML()), { dir: cacheDir })).toBeUndefined();
  expect(readSpecFile(f, opts()).containerEdits?.env).toEqual(['A=1']);
});

test('an entry whose text hash differs (a write that kept the identity) is ignored', () => {
  const f = specFile(YAML());
  readSpecFile(f, opts());
  const entry = JSON.parse(readFileSync(entryPath(), 'utf8'));
  entry.textHash = textHash('something else');
  entry.doc.containerEdits.env = ['FORGED=1'];
  writeFileSync(entryPath(), JSON.stringify(entry), { mode: 0o600 });
  expect(readSpecFile(f, opts()).containerEdits?.env).toEqual(['A=1']);
});

test('a tampered entry is ignored: junk, another format, another path, an invalid document', () => {
  const f = specFile(YAML());
  const good = readSpecFile(f, opts());
  const entry = JSON.parse(readFileSync(entryPath(), 'utf8'));
  const variants = [
    '{ not json',
    JSON.stringify({ ...entry, format: 'other 1' }),
    JSON.stringify({ ...entry, file: join(specDir, 'other.yaml') }),
    JSON.stringify({ ...entry, doc: { ...entry.doc, kind: 'not a kind' } }),
    JSON.stringify({ ...entry, doc: { ...entry.doc, devices: [{ name: '0', containerEdits: { deviceNodes: [{ path: 'relative' }] } }] } }),
    JSON.stringify({ ...entry, doc: null }),
    JSON.stringify(null),
  ];
  for (const v of variants) {
    writeFileSync(entryPath(), v, { mode: 0o600 });
    expect(readSpecFile(f, opts())).toEqual(good);
    // and the entry was rewritten from the source
    expect(JSON.parse(readFileSync(entryPath(), 'utf8'))).toEqual(entry);
  }
});

test('an entry that is too open, a symlink, or not owned by root (or us) is ignored', () => {
  const f = specFile(YAML());
  readSpecFile(f, opts());
  const p = entryPath();
  const entry = JSON.parse(readFileSync(p, 'utf8'));
  const forged = JSON.stringify({ ...entry, doc: { ...entry.doc, containerEdits: { env: ['FORGED=1'] } } });
  const id = identityOf(f);
  const hash = textHash(YAML());
  writeFileSync(p, forged);
  chmodSync(p, 0o600);
  expect((lookupCachedSpec(f, id, hash, { dir: cacheDir }) as { containerEdits: unknown }).containerEdits).toEqual({ env: ['FORGED=1'] }); // the forgery is well-formed
  for (const mode of [0o644, 0o640, 0o606, 0o660]) {
    chmodSync(p, mode);
    expect(lookupCachedSpec(f, id, hash, { dir: cacheDir })).toBeUndefined();
  }
  chmodSync(p, 0o600);
  expect(lookupCachedSpec(f, id, hash, { dir: cacheDir, euid: 4242 })).toBeDefined(); // root-owned: trusted
  if (isRoot) {
    chownSync(p, 12345, 12345);
    expect(lookupCachedSpec(f, id, hash, { dir: cacheDir })).toBeUndefined();
    expect(lookupCachedSpec(f, id, hash, { dir: cacheDir, euid: 12345 })).toBeDefined(); // owned by "us"
    expect(readSpecFile(f, opts()).containerEdits?.env).toEqual(['A=1']);
  }
  // a symlink in place of the entry
  const elsewhere = join(work, 'elsewhere.json');
  writeFileSync(elsewhere, forged, { mode: 0o600 });
  rmSync(entryPath(), { force: true });
  for (const n of readdirSync(cacheDir)) rmSync(join(cacheDir, n));
  readSpecFile(f, opts());
  const name = entryPath();
  rmSync(name);
  symlinkSync(elsewhere, name);
  expect(lookupCachedSpec(f, id, hash, { dir: cacheDir })).toBeUndefined();
  expect(readSpecFile(f, opts()).containerEdits?.env).toEqual(['A=1']);
});

test('a cache directory that is too open, a symlink or someone else\'s is neither read nor written', () => {
  const f = specFile(YAML());
  readSpecFile(f, opts());
  const id = identityOf(f);
  const hash = textHash(YAML());
  chmodSync(cacheDir, 0o755);
  expect(lookupCachedSpec(f, id, hash, { dir: cacheDir })).toBeUndefined();
  rmSync(entryPath());
  readSpecFile(f, opts());
  expect(entries()).toHaveLength(0); // not written into a directory others can read
  chmodSync(cacheDir, 0o700);
  readSpecFile(f, opts());
  expect(entries()).toHaveLength(1);
  const link = join(work, 'link-cache');
  symlinkSync(cacheDir, link);
  expect(lookupCachedSpec(f, id, hash, { dir: link })).toBeUndefined();
  if (isRoot) {
    chownSync(cacheDir, 12345, 12345);
    expect(lookupCachedSpec(f, id, hash, { dir: cacheDir })).toBeUndefined();
    rmSync(entryPath());
    readSpecFile(f, opts());
    expect(entries()).toHaveLength(0);
  }
});

test('a parse error or an invalid spec is never cached; the error is the same with and without the cache', () => {
  const bad = [
    'cdiVersion: "0.5.0"\nkind: vendor.com/net\ndevices: [\n',
    'cdiVersion: "0.5.0"\nkind: vendor.com/net\nkind: vendor.com/other\ndevices: []\n', // duplicate key
    'cdiVersion: "0.5.0"\nkind: not-a-kind\ndevices:\n  - name: "0"\n    containerEdits:\n      env: ["A=1"]\n',
    'cdiVersion: "0.5.0"\nkind: vendor.com/net\ndevices: []\n',
    'cdiVersion: "9.9.9"\nkind: vendor.com/net\ndevices:\n  - name: "0"\n    containerEdits:\n      env: ["A=1"]\n',
    YAML().replace('path: /dev/null\n', 'path: dev/null\n'),
  ];
  for (const [i, text] of bad.entries()) {
    const f = specFile(text, `bad${i}.yaml`);
    const a = outcome(() => readSpecFile(f, opts()));
    const b = outcome(() => readSpecFile(f, opts()));
    const c = outcome(() => readSpecFile(f, { cache: false }));
    expect(a).toHaveProperty('error');
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  }
  expect(entries()).toHaveLength(0);
});

test('strictness unchanged: cached or not, every spec gives the same document or error, and the registry the same devices', () => {
  const texts = [YAML(), YAML('vendor.com/gpu', 'B=2'), YAML().replace('"1"', '"1x"'), YAML().replace('bind]', 'bind]\n          type: bind'), YAML().replace('cdiVersion: "0.5.0"', 'cdiVersion: "0.3.0"')];
  texts.forEach((t, i) => specFile(t, `s${i}.yaml`));
  const plain = loadCdiRegistry([specDir], { cache: false });
  const first = loadCdiRegistry([specDir], opts());
  const cached = loadCdiRegistry([specDir], opts());
  for (const r of [first, cached]) {
    expect([...r.devices.keys()]).toEqual([...plain.devices.keys()]);
    expect([...r.devices.values()].map((e) => e.spec)).toEqual([...plain.devices.values()].map((e) => e.spec));
    expect(r.errors).toEqual(plain.errors);
  }
});

test('jsonFaithful: only documents that survive a JSON round trip are cached', () => {
  expect(jsonFaithful({ a: [1, 'x', true, null, { b: 2.5 }] })).toBe(true);
  for (const v of [{ a: Infinity }, { a: NaN }, { a: -0 }, { a: undefined }, { a: new Date(0) }, { a: 1n }, [1, , 2], JSON.parse('{"__proto__": 1}')]) {
    expect(jsonFaithful(v)).toBe(false);
  }
});

test('the cache never grows past MAX_ENTRIES: it is emptied, then the new entry written', () => {
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  chmodSync(cacheDir, 0o700);
  for (let i = 0; i < MAX_ENTRIES; i++) writeFileSync(join(cacheDir, `${i}.json`), '{}', { mode: 0o600 });
  const f = specFile(YAML());
  const doc = readSpecFile(f, opts());
  expect(entries()).toHaveLength(1);
  expect(lookupCachedSpec(f, identityOf(f), textHash(YAML()), { dir: cacheDir })).toEqual(doc);
});
