/**
 * The cold path's host snapshot cache (src/host/snapshot-cache.ts) and the fingerprint it shares with the warm path
 * (src/host/fingerprint.ts), against real mock driver roots: unchanged → the cached snapshot (deep-equal to a fresh
 * one); every kind of change the fingerprint covers → taken again; a snapshot whose files changed just before it was
 * taken is never stored; untrusted, foreign and damaged entries are ignored.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { newestChangeNs } from '../../../src/host/fingerprint.js';
import { loadHostInventory, type HostInventory } from '../../../src/host/inventory.js';
import { cachedHostInventory, HOST_CACHE_FORMAT, SETTLE_NS, type SnapshotCacheOptions } from '../../../src/host/snapshot-cache.js';
import { distBin, tempDir } from '../../helpers/dist.js';

let dir: string;
let root: string;
let cacheDir: string;
let loads: number;
/** "Now" well after every file of the mock was written, so snapshots are stored (SETTLE_NS). */
const future = (): bigint => BigInt(Date.now()) * 1_000_000n + 10n * SETTLE_NS;
const opts = (extra: Partial<SnapshotCacheOptions> = {}): SnapshotCacheOptions => ({
  dir: cacheDir,
  nowNs: future,
  load: (r) => { loads++; return loadHostInventory({ driverRoot: r }); },
  ...extra,
});
const entries = (): string[] => { try { return readdirSync(cacheDir); } catch { return []; } };
const LIB = 'usr/lib/x86_64-linux-gnu';

beforeAll(() => {
  dir = tempDir('snapshot-cache');
  chmodSync(dir, 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
beforeEach(() => {
  root = join(dir, `driver${++n}`);
  execFileSync(distBin('nvidia-ctk'), ['mock-driver', '--root', root, '--gpus', '2'], { stdio: 'ignore' });
  cacheDir = join(dir, `cache${n}`);
  loads = 0;
});

test('unchanged: the second create takes the stored snapshot, equal to a fresh one', () => {
  const a = cachedHostInventory(root, opts());
  expect(loads).toBe(1);
  expect(entries()).toHaveLength(1);
  const b = cachedHostInventory(root, opts());
  expect(loads).toBe(1);
  expect(b).toEqual(a);
  expect(b).toEqual(loadHostInventory({ driverRoot: root }));
  expect(cachedHostInventory(`${root}/`, opts())).toEqual(a); // the normalised root is the key
  expect(loads).toBe(1);
});

const changes: Array<[string, (r: string) => void]> = [
  ['ld.so.cache rewritten', (r) => { const t = new Date(Date.now() + 5000); utimesSync(join(r, 'etc/ld.so.cache'), t, t); }],
  ['a driver library replaced', (r) => { const f = join(r, LIB, 'libcuda.so.550.54.15'); const b = readFileSync(f); rmSync(f); writeFileSync(f, b); }],
  ['a driver library removed', (r) => rmSync(join(r, LIB, 'libnvidia-ptxjitcompiler.so.550.54.15'))],
  ['a file added to a library directory', (r) => writeFileSync(join(r, LIB, 'libnvidia-new.so.550.54.15'), '')],
  ['a binary removed', (r) => rmSync(join(r, 'usr/bin/nvidia-smi'))],
  ['a device node removed', (r) => rmSync(join(r, 'dev/nvidia1'))],
  ['a device node mode changed', (r) => chmodSync(join(r, 'dev/nvidia0'), 0o660)],
  ['the persistenced socket appears', (r) => { mkdirSync(join(r, 'var/run/nvidia-persistenced'), { recursive: true }); writeFileSync(join(r, 'var/run/nvidia-persistenced/socket'), ''); }],
  ['a MIG compute instance appears', (r) => mkdirSync(join(r, 'proc/driver/nvidia/capabilities/gpu0/mig/gi1/ci0'), { recursive: true })],
];
test.each(changes)('%s: taken again, and the new snapshot is what loadHostInventory sees', (_name, change) => {
  cachedHostInventory(root, opts());
  change(root);
  const fresh = loadHostInventory({ driverRoot: root });
  expect(cachedHostInventory(root, opts())).toEqual(fresh);
  expect(loads).toBe(2);
  expect(cachedHostInventory(root, opts())).toEqual(fresh);
  expect(loads).toBe(2);
});

test('files changed shortly before the snapshot was taken: used for this create, never stored', () => {
  const now = (): bigint => BigInt(Date.now()) * 1_000_000n; // the mock was written just now
  const a = cachedHostInventory(root, opts({ nowNs: now }));
  expect(a).toEqual(loadHostInventory({ driverRoot: root }));
  expect(entries()).toHaveLength(0);
  cachedHostInventory(root, opts({ nowNs: now }));
  expect(loads).toBe(2);
});

describe('entries that are not trusted or not this root\'s are ignored', () => {
  const entryFile = (): string => join(cacheDir, entries()[0]!);
  test('group/world-readable entry, or a cache directory that is not 0700', () => {
    cachedHostInventory(root, opts());
    chmodSync(entryFile(), 0o644);
    cachedHostInventory(root, opts());
    expect(loads).toBe(2);
    chmodSync(cacheDir, 0o755);
    cachedHostInventory(root, opts());
    cachedHostInventory(root, opts());
    expect(loads).toBe(4); // never read from, never written into
  });
  test('an entry owned by someone else', () => {
    cachedHostInventory(root, opts());
    chownSync(entryFile(), 1234, 1234);
    cachedHostInventory(root, opts());
    expect(loads).toBe(2);
  });
  test('garbage, another format, another root, a forged fingerprint', () => {
    cachedHostInventory(root, opts());
    const file = entryFile();
    const good = JSON.parse(readFileSync(file, 'utf8')) as { format: string; root: string; fingerprint: string; inventory: HostInventory };
    expect(good.format).toBe(HOST_CACHE_FORMAT);
    const forged = [
      '{not json',
      JSON.stringify({ ...good, format: 'nvidia-runtime host-cache 0' }),
      JSON.stringify({ ...good, root: '/elsewhere' }),
      JSON.stringify({ ...good, inventory: { ...good.inventory, nvmlLibrary: '/nonexistent' } }),
      JSON.stringify({ ...good, fingerprint: `${good.fingerprint}x` }),
    ];
    let expected = 1;
    for (const text of forged) {
      writeFileSync(file, text, { mode: 0o600 });
      expect(cachedHostInventory(root, opts())).toEqual(good.inventory);
      expect(loads).toBe(++expected);
    }
  });
});

test('newestChangeNs: the largest ctime among the identities of a fingerprint', () => {
  const ident = fc.tuple(fc.bigUintN(40), fc.bigUintN(40), fc.nat(), fc.nat(), fc.nat(), fc.bigUintN(62), fc.bigUintN(62)).map((f) => f.join(','));
  const line = fc.tuple(fc.stringMatching(/^\/[a-z=/]{0,12}$/), fc.oneof(ident, fc.constant('-'))).map(([p, id]) => `${p}=${id}`);
  fc.assert(fc.property(fc.array(line, { maxLength: 12 }), (lines) => {
    const print = [...lines, 'mig:gpu0/mig/gi1'].join('\n');
    const ctimes = lines.map((l) => l.slice(l.lastIndexOf('=') + 1)).filter((id) => id !== '-').map((id) => BigInt(id.split(',')[6]!));
    const want = ctimes.length === 0 ? undefined : ctimes.reduce((a, b) => (b > a ? b : a));
    expect(newestChangeNs(print)).toBe(want);
  }));
});
