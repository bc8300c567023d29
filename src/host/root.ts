/**
 * Path resolution inside an explicit root, the way a process chrooted into that root would see it:
 * absolute symlink targets restart at the root, `..` never climbs above it. Every lookup under a driver
 * root (or dev root) goes through here, so a symlink in the driver tree can never lead to a host file
 * outside the tree.
 */
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { resolve as resolveHost } from 'node:path';
import { NvrError } from '../errors.js';

/** Linux's own limit on symlinks followed during one lookup (MAXSYMLINKS). */
export const MAX_SYMLINKS = 40;

export interface RootPath {
  /** Absolute path as seen from inside the root, symlinks resolved ("/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15"). */
  path: string;
  /** The same file on the host: root + path. */
  hostPath: string;
  /** False when some component does not exist (or is not a directory where one is needed); the tail is then lexical. */
  exists: boolean;
}

/** Normalise a root: absolute, no trailing slash except for "/" itself. */
export function normalizeRoot(root: string): string {
  return resolveHost(root);
}

/** Host path of an in-root absolute path (no resolution). */
export function hostPathOf(root: string, inRootPath: string): string {
  const r = normalizeRoot(root);
  return r === '/' ? inRootPath : r + inRootPath;
}

function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Resolve `path` (absolute, or relative to "/") inside `root`, following symlinks like a chroot.
 * A missing component stops symlink resolution; the rest is appended lexically and `exists` is false.
 * More than MAX_SYMLINKS links → NvrError DRIVER_ROOT (a loop, or a hostile tree).
 */
export function resolveInRoot(root: string, path: string): RootPath {
  const r = normalizeRoot(root);
  const resolved: string[] = [];
  let pending = components(path);
  let links = 0;
  let exists = true;

  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (name === '..') {
      resolved.pop(); // popping an empty array keeps us at the root, as in a chroot
      continue;
    }
    if (!exists) {
      resolved.push(name);
      continue;
    }
    const inRoot = '/' + [...resolved, name].join('/');
    let isLink = false;
    try {
      const st = lstatSync(hostPathOf(r, inRoot));
      isLink = st.isSymbolicLink();
      // A non-directory followed by more components cannot be traversed (ENOTDIR).
      if (!isLink && !st.isDirectory() && pending.some((c) => c !== '..')) exists = false;
    } catch {
      exists = false;
    }
    if (!isLink) {
      resolved.push(name);
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new NvrError('DRIVER_ROOT', `too many levels of symbolic links resolving ${path} under root ${r}`, {
        fix: `fix the symlink loop under ${r}${inRoot}`,
      });
    }
    const target = readlinkSync(hostPathOf(r, inRoot));
    if (target.startsWith('/')) resolved.length = 0;
    pending = [...components(target), ...pending];
  }
  const p = '/' + resolved.join('/');
  return { path: p, hostPath: hostPathOf(r, p), exists };
}

/** The text of `path` inside `root` (resolved as resolveInRoot does), undefined when absent or unreadable. */
export function readTextInRoot(root: string, path: string): string | undefined {
  const where = resolveInRoot(root, path);
  if (!where.exists) return undefined;
  try {
    return readFileSync(where.hostPath, 'utf8');
  } catch {
    return undefined;
  }
}
