/**
 * The cold path's host snapshot cache: a GPU create without the warm path (docs/warm-path.md) takes the snapshot
 * loadHostInventory made for an earlier create when nothing it depends on changed, instead of redoing ~70 lookups
 * and the NVML query (~15 ms here; 100 ms–2 s per container on a real host without persistence mode). An entry is
 * /run/nvidia-runtime/host-cache/<hash of the driver root>.json holding the root, the snapshot and its fingerprint
 * (src/host/fingerprint.ts: the identities of ld.so.cache, libnvidia-ml, every device node and driver file it
 * recorded and their directories, /proc entries, MIG state); a hit needs the fingerprint taken now to equal the
 * recorded one. The snapshot is then exactly what the warm path's in-memory cache would hand out for the same host.
 * The file mechanics and their trust rules are src/cache/run-cache.ts's.
 *
 * A snapshot is stored only when none of its fingerprinted files changed since shortly before it was taken (a
 * driver upgrade running while it was computed could have been half-seen: such a snapshot serves its own create,
 * as the uncached path would, but is never kept for the next).
 */
import { readRunCacheEntry, writeRunCacheEntry, type RunCacheOptions } from '../cache/run-cache.js';
import { inventoryFingerprint, newestChangeNs } from './fingerprint.js';
import { loadHostInventory, type HostInventory } from './inventory.js';
import { normalizeRoot } from './root.js';

export const DEFAULT_HOST_CACHE_DIR = '/run/nvidia-runtime/host-cache';
export const HOST_CACHE_FORMAT = 'nvidia-runtime host-cache 1';
/** A 64-GPU MIG snapshot is ~200 KB; anything far larger is not ours. */
const MAX_ENTRY_BYTES = 16 << 20;
/** Changes this long before a computation began count as during it: filesystem timestamps are coarse (jiffies). */
export const SETTLE_NS = 2_000_000_000n;

interface Entry {
  format: string;
  root: string;
  fingerprint: string;
  inventory: HostInventory;
}

export interface SnapshotCacheOptions extends RunCacheOptions {
  /** The uncached snapshot (tests); default loadHostInventory. */
  load?: (driverRoot: string) => HostInventory;
  /** Wall-clock now in ns (tests); default Date.now(). */
  nowNs?: () => bigint;
}

/** The host snapshot of `driverRoot`: the cached one while its fingerprint holds, else a fresh one (then cached). */
export function cachedHostInventory(driverRoot: string, options: SnapshotCacheOptions = {}): HostInventory {
  const root = normalizeRoot(driverRoot);
  const dir = options.dir ?? DEFAULT_HOST_CACHE_DIR;
  const entry = readRunCacheEntry(dir, root, MAX_ENTRY_BYTES, options) as Partial<Entry> | null | undefined;
  if (entry && typeof entry === 'object' && entry.format === HOST_CACHE_FORMAT && entry.root === root && typeof entry.fingerprint === 'string' &&
    entry.inventory && typeof entry.inventory === 'object') {
    const now = inventoryFingerprint(entry.inventory, driverRoot);
    if (now !== undefined && now === entry.fingerprint) return entry.inventory;
  }
  const started = (options.nowNs ?? (() => BigInt(Date.now()) * 1_000_000n))();
  const inventory = (options.load ?? ((r: string) => loadHostInventory({ driverRoot: r })))(driverRoot);
  const fingerprint = inventoryFingerprint(inventory, driverRoot);
  if (fingerprint !== undefined) {
    const newest = newestChangeNs(fingerprint);
    if (newest !== undefined && newest < started - SETTLE_NS) {
      writeRunCacheEntry(dir, root, { format: HOST_CACHE_FORMAT, root, fingerprint, inventory } satisfies Entry, options);
    }
  }
  return inventory;
}
