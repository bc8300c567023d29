/**
 * The fingerprint of a host snapshot (src/host/inventory.ts): a string of the identities (src/launcher-contract.ts
 * identityOf: dev, ino, mode, uid, size, mtime ns, ctime ns) of the files whose change means the snapshot may be
 * stale — a driver install or upgrade rewrites ld.so.cache and libnvidia-ml, a module load or MIG change adds,
 * removes or re-creates device nodes and /proc entries; the directories holding every driver file the snapshot
 * found (a library, binary, firmware, config file) must be unchanged (a file added, removed or replaced there
 * changes its directory's mtime), and so must every IPC endpoint candidate. The warm path's in-memory cache (src/serve/caches.ts) and
 * the cold path's on-disk cache (snapshot-cache.ts) keep a snapshot only while it is unchanged.
 */
import { readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import { lstatIdentity, statIdentity } from '../launcher-contract.js';
import { CAPABILITIES, ipcsFor } from './capabilities.js';
import { fastAddon } from './fast-addon.js';
import type { HostInventory } from './inventory.js';
import { hostPathOf, normalizeRoot } from './root.js';

/**
 * "path=identity" lines (stat, or lstat when !follow: a link itself, a device node), undefined when any identity
 * cannot be taken. One addon call for the whole list when the addon loads; else statIdentity/lstatIdentity each.
 */
export function identities(paths: Iterable<string>, follow = true): string | undefined {
  const list = [...paths];
  const ids = identityList(list, follow);
  const out: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const id = ids[i];
    if (id === undefined) return undefined;
    out.push(`${list[i]}=${id}`);
  }
  return out.join('\n');
}

/** statIdentity (or lstatIdentity when !follow) of each path, in one addon call when it loads. */
export function identityList(paths: readonly string[], follow = true): Array<string | undefined> {
  const ids = fastAddon()?.identities(paths, follow);
  if (ids) return ids.map((id) => id ?? undefined);
  return paths.map((p) => (follow ? statIdentity(p) : lstatIdentity(p)));
}

/** The MIG state: proc/driver/nvidia/capabilities/gpu<N>/mig/gi<N>/ci<N> entries under the driver root. */
function migEntries(root: string): string[] {
  const base = join(root, 'proc/driver/nvidia/capabilities');
  const out: string[] = [];
  const list = (dir: string, re: RegExp): string[] => {
    try {
      return readdirSync(dir).filter((n) => re.test(n)).sort();
    } catch {
      return [];
    }
  };
  for (const gpu of list(base, /^gpu\d+$/)) {
    for (const gi of list(join(base, gpu, 'mig'), /^gi\d+$/)) {
      out.push(`${gpu}/mig/${gi}`);
      for (const ci of list(join(base, gpu, 'mig', gi), /^ci\d+$/)) out.push(`${gpu}/mig/${gi}/${ci}`);
    }
  }
  return out;
}

/** Every device node host path the snapshot recorded (its major:minor and mode go into the edits). */
function snapshotNodes(inv: HostInventory): string[] {
  const paths = new Set<string>();
  for (const n of Object.values(inv.nodes)) paths.add(n.hostPath);
  for (const caps of Object.values(inv.migCapabilities)) for (const c of caps) if (c.node) paths.add(c.node.hostPath);
  for (const n of Object.values(inv.imexChannels)) paths.add(n.hostPath);
  for (const c of Object.values(inv.migAdmin)) if (c?.node) paths.add(c.node.hostPath);
  for (const d of Object.values(inv.drm)) for (const n of d.nodes) if (n.hostPath) paths.add(n.hostPath);
  return [...paths].sort();
}

/**
 * The directories of every driver file the snapshot recorded (in-root paths under its root); the IPC endpoints are
 * every candidate, present or not (a daemon's socket comes and goes; its directory, /tmp for
 * MPS, changes all the time).
 */
function snapshotFiles(inv: HostInventory): { dirs: string[]; ipcs: string[] } {
  const inRoot = new Set<string>([
    ...Object.values(inv.libraries), ...Object.values(inv.libraries32), ...Object.values(inv.binaries), ...inv.firmware,
    ...[...inv.graphicsConfigs, ...inv.xorgConfigs, ...inv.xorgModules].map((m) => m.source),
    ...Object.values(inv.features).flatMap((f) => f.mounts),
  ]);
  const files = [...inRoot].map((p) => hostPathOf(inv.root, p)).sort();
  const ipcs = ipcsFor(CAPABILITIES).map((p) => hostPathOf(inv.root, p));
  return { dirs: [...new Set(files.map((f) => posix.dirname(f)))].sort(), ipcs };
}

/**
 * The fingerprint of a snapshot of `driverRoot`: the identities of its etc/ld.so.cache, the queried libnvidia-ml,
 * the dev root's /dev, /dev/nvidia-caps, /dev/dri (and by-path) directories, proc/devices and
 * proc/driver/nvidia-caps/mig-minors, the list of MIG gi/ci capability entries, every device node it recorded, the
 * directory of every driver file it found, and the IPC endpoint candidates.
 */
export function inventoryFingerprint(inv: HostInventory, driverRoot: string): string | undefined {
  const root = normalizeRoot(driverRoot);
  const under = (r: string, p: string): string => posix.join(r, p);
  const files = identities([
    under(root, 'etc/ld.so.cache'),
    inv.nvmlLibrary,
    under(inv.devRoot, 'dev'),
    under(inv.devRoot, 'dev/nvidia-caps'),
    under(inv.devRoot, 'dev/dri'),
    under(inv.devRoot, 'dev/dri/by-path'),
    under(inv.devRoot, 'dev/nvidia-caps-imex-channels'),
    under(root, 'proc/devices'),
    under(root, 'proc/driver/nvidia-caps/mig-minors'),
  ]);
  const nodes = identities(snapshotNodes(inv), false);
  // The driver files' directories, not each file: a file added, removed, renamed over or re-linked there changes
  // its directory's mtime, and only a file's presence goes into the edits (bind mounts by path); libnvidia-ml,
  // whose content is the NVML answer, is fingerprinted itself above.
  const found = snapshotFiles(inv);
  const driverDirs = identities(found.dirs);
  const ipcs = identities(found.ipcs, false);
  if (files === undefined || nodes === undefined || driverDirs === undefined || ipcs === undefined) return undefined;
  return `${files}\n${nodes}\n${driverDirs}\n${ipcs}\nmig:${migEntries(root).join(',')}`;
}

/**
 * The newest ctime (ns) among a fingerprint's identities, undefined when it holds none. A snapshot whose fingerprinted
 * files changed at or after its computation began may have read a half-changed host: callers do not keep it.
 */
export function newestChangeNs(print: string): bigint | undefined {
  let newest: bigint | undefined;
  for (const line of print.split('\n')) {
    const id = line.slice(line.lastIndexOf('=') + 1);
    const fields = id.split(',');
    if (fields.length !== 7) continue;
    const ctime = BigInt(fields[6]!);
    if (newest === undefined || ctime > newest) newest = ctime;
  }
  return newest;
}
