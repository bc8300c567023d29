/**
 * Driver files under an explicit driver root: libraries chosen through the root's ld.so.cache, binaries on
 * a fixed PATH, GSP firmware and IPC endpoints (FACTS.md §1.4–1.6). Every path is resolved with
 * resolveInRoot, so nothing outside the root is ever returned. Results are in-root absolute paths (the
 * file lives at root + path on the host); missing items are reported, not thrown, so callers can warn.
 */
import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { binariesFor, EGL_PLATFORM_LIBS, GRAPHICS_LIBS_COMPAT, ipcsFor, libraryPrefixesFor, type Capability } from './capabilities.js';
import { readElfDynamicInfo } from './elf.js';
import { ARCH_I386, ARCH_X86_64, entryMatchesArch, type LdCache } from './ldcache.js';
import { resolveInRoot } from './root.js';

export const BINARY_SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export interface LibraryLookup {
  /** 64-bit libraries, resolved in-root paths ("/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15"), in list order. */
  libraries: string[];
  /** 32-bit libraries (only searched with compat32). */
  libraries32: string[];
  /** Wanted prefixes with no acceptable 64-bit file. */
  missing: string[];
  /** Wanted prefixes with no acceptable 32-bit file (compat32 only). */
  missing32: string[];
}

export interface FileLookup {
  paths: string[];
  missing: string[];
}

function isElfFile(hostPath: string): boolean {
  let fd: number | undefined;
  try {
    if (!statSync(hostPath).isFile()) return false;
    fd = openSync(hostPath, 'r');
    const magic = Buffer.alloc(4);
    return readSync(fd, magic, 0, 4, 0) === 4 && magic.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Whether the resolved file `base` (its basename) is the driver's for `prefix` (libnvidia-container's selector). */
function acceptable(prefix: string, base: string, hostPath: string, driverVersion: string): boolean {
  // The EGL platform libraries carry their own X.Y.Z version, not the driver's.
  if ((EGL_PLATFORM_LIBS as readonly string[]).includes(prefix)) return /^\.\d+(\.\d+)+$/.test(base.slice(prefix.length)) && base.startsWith(prefix);
  // The seed's selector: the real file must be an ELF object whose name ends with the driver version
  // (this drops stale libraries of another driver that are still in the cache).
  if (!base.endsWith(driverVersion)) return false;
  // libGL/libEGL/libGLES*: only NVIDIA's own (they need its GL core), never Mesa's or glvnd's of the same name.
  if ((GRAPHICS_LIBS_COMPAT as readonly string[]).includes(prefix)) {
    const needed = readElfDynamicInfo(hostPath)?.needed ?? [];
    return needed.some((n) => n.startsWith('libnvidia-glcore.so') || n.startsWith('libnvidia-eglcore.so'));
  }
  return true;
}

/**
 * For each soname prefix, the library the root's ld cache offers: x86-64 (or i386) entries whose key starts with
 * the prefix, resolved inside the root, version-filtered; the last acceptable entry in cache order wins.
 */
export function librariesByPrefix(
  root: string,
  ldcache: LdCache,
  prefixes: readonly string[],
  arch: number,
  driverVersion: string,
): Map<string, string> {
  const chosen = new Map<string, string>();
  for (const entry of ldcache.entries) {
    if (!entryMatchesArch(entry, arch)) continue;
    const name = prefixes.find((p) => entry.key.startsWith(p));
    if (name === undefined) continue;
    const file = resolveInRoot(root, entry.value);
    if (!file.exists || !acceptable(name, posix.basename(file.path), file.hostPath, driverVersion) || !isElfFile(file.hostPath)) continue;
    chosen.set(name, file.path);
  }
  return chosen;
}

/** What `wanted` maps to in `found`, in wanted order, without duplicates; the rest is missing. */
export function pick(found: ReadonlyMap<string, string> | Readonly<Record<string, string>>, wanted: readonly string[]): FileLookup {
  const get = (k: string): string | undefined => (found instanceof Map ? found.get(k) : (found as Record<string, string>)[k]);
  const paths: string[] = [];
  const missing: string[] = [];
  for (const w of wanted) {
    const path = get(w);
    if (path === undefined) missing.push(w);
    else if (!paths.includes(path)) paths.push(path);
  }
  return { paths, missing };
}

/**
 * Driver libraries for `caps` from the root's ld cache: soname prefix match, x86-64 entries (and i386 ones
 * when compat32 — default: caps include compat32), resolved inside the root, version-filtered.
 */
export function findLibraries(
  root: string,
  ldcache: LdCache,
  caps: Iterable<Capability>,
  driverVersion: string,
  options: { compat32?: boolean } = {},
): LibraryLookup {
  const capList = [...caps];
  const prefixes = libraryPrefixesFor(capList);
  const compat32 = options.compat32 ?? capList.includes('compat32');
  const lib64 = pick(librariesByPrefix(root, ldcache, prefixes, ARCH_X86_64, driverVersion), prefixes);
  const lib32 = compat32 ? pick(librariesByPrefix(root, ldcache, prefixes, ARCH_I386, driverVersion), prefixes) : { paths: [], missing: [] };
  return { libraries: lib64.paths, libraries32: lib32.paths, missing: lib64.missing, missing32: lib32.missing };
}

/** Find one binary by name on BINARY_SEARCH_PATH inside the root: resolved in-root path of a regular executable. */
export function findBinary(root: string, name: string): string | undefined {
  for (const dir of BINARY_SEARCH_PATH) {
    const file = resolveInRoot(root, `${dir}/${name}`);
    if (!file.exists) continue;
    try {
      const st = statSync(file.hostPath);
      if (st.isFile() && (st.mode & 0o111) !== 0) return file.path;
    } catch {
      // vanished or unreadable: keep searching
    }
  }
  return undefined;
}

/** Driver binaries for `caps` (utility / compute). */
export function findBinaries(root: string, caps: Iterable<Capability>): FileLookup {
  const paths: string[] = [];
  const missing: string[] = [];
  for (const name of binariesFor(caps)) {
    const path = findBinary(root, name);
    if (path === undefined) missing.push(name);
    else if (!paths.includes(path)) paths.push(path);
  }
  return { paths, missing };
}

/**
 * GSP firmware `/lib/firmware/nvidia/<ver>/gsp*.bin`, sorted. Paths are returned as globbed (not resolved):
 * the driver looks them up by that name, so that is where they go in the container.
 */
export function findFirmware(root: string, driverVersion: string): string[] {
  const dir = `/lib/firmware/nvidia/${driverVersion}`;
  const resolvedDir = resolveInRoot(root, dir);
  if (!resolvedDir.exists) return [];
  let names: string[];
  try {
    names = readdirSync(resolvedDir.hostPath);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith('gsp') && n.endsWith('.bin'))
    .sort()
    .filter((n) => {
      const f = resolveInRoot(root, `${dir}/${n}`);
      try {
        return f.exists && statSync(f.hostPath).isFile();
      } catch {
        return false;
      }
    })
    .map((n) => `${dir}/${n}`);
}

/** IPC endpoints for `caps` that exist in the root (as in-root paths, unresolved: they are mounted by name). */
export function findIpcs(root: string, caps: Iterable<Capability>): FileLookup {
  const paths: string[] = [];
  const missing: string[] = [];
  for (const p of ipcsFor(caps)) {
    (resolveInRoot(root, p).exists ? paths : missing).push(p);
  }
  return { paths, missing };
}

