/**
 * Finding the low-level runtime we hand over to (PEER.md §3.2 step 2, SECURITY.md R6).
 *
 * `runtimes` from config.toml is walked in order: an absolute entry is used as is; a bare name is looked up in
 * PATH, then in the standard system directories. The first executable regular file wins — except our own
 * executable (same device and inode, so symlinks and hard links are caught): installed as `runc`, we would
 * otherwise exec ourselves in a loop. The winner is then validated, before anything is written: root-owned
 * (or owned by the user we run as, for rootless engines), not group- or world-writable. A winner that fails
 * validation is an error, not a reason to try the next candidate: a tampered runc must be looked at.
 *
 * This is the only runc lookup: the native launcher execs what this function chose, as recorded in the launcher
 * view with the identity of every path the lookup stat'ed (`consulted`), and asks us again when any has changed.
 */
import { realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { NvrError } from '../errors.js';
import { identityOf, isTrusted } from '../launcher-contract.js';

export { DEFAULT_RUNTIMES } from '../config/defaults.js';
export const SYSTEM_DIRS: readonly string[] = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** What we need to know about a file (after following symlinks). */
export interface FileInfo {
  isFile: boolean;
  mode: number;
  uid: number;
  dev: number;
  ino: number;
  /** launcher-contract.ts identityOf, when the fs can tell. */
  identity?: string;
}

/** A path the lookup stat'ed, and what it found there ("-": nothing). */
export interface Consulted {
  path: string;
  identity: string;
}

export interface RuncFs {
  /** stat(2), following symlinks; undefined when the path cannot be stat'ed. */
  stat(path: string): FileInfo | undefined;
  realpath(path: string): string;
}

export interface FindRuncDeps {
  /** Our own executable (the launcher or entry point callers exec as `runc`): never chosen. */
  self: string;
  /** Owners accepted besides root; default: the effective uid we run as. */
  euid?: number;
  fs?: RuncFs;
}

export interface LowLevelRuntime {
  /** Where it was found (the path to exec: argv[0] stays meaningful). */
  path: string;
  /** Symlinks resolved: the file that was validated. */
  realPath: string;
  /** Every path stat'ed to reach this answer, in order: the answer holds while none of them changes. */
  consulted: Consulted[];
}

export const nodeRuncFs: RuncFs = {
  stat(path) {
    try {
      const st = statSync(path, { bigint: true });
      return { isFile: st.isFile(), mode: Number(st.mode), uid: Number(st.uid), dev: Number(st.dev), ino: Number(st.ino), identity: identityOf(st) };
    } catch {
      return undefined; // missing, dangling link, unreadable directory: not a candidate
    }
  },
  realpath: (path) => realpathSync(path),
};

/** PATH entries that are absolute; empty and relative entries (which mean "the cwd") are never searched. */
function searchDirs(envPath: string | undefined): string[] {
  const fromEnv = (envPath ?? '').split(':').filter((d) => isAbsolute(d));
  return [...new Set([...fromEnv, ...SYSTEM_DIRS])];
}

function isExecutableFile(info: FileInfo | undefined): info is FileInfo {
  return info !== undefined && info.isFile && (info.mode & 0o111) !== 0;
}

/**
 * Locate and validate the low-level runtime. Throws NvrError('CONFIG') for a relative `runtimes` entry,
 * NvrError('RUNTIME') when none is found or the one found is unsafe to exec.
 */
export function findLowLevelRuntime(
  candidates: readonly string[],
  envPath: string | undefined,
  deps: FindRuncDeps,
): LowLevelRuntime {
  const fs = deps.fs ?? nodeRuncFs;
  const selfInfo = fs.stat(deps.self);
  const consulted: Consulted[] = [];
  const stat = (path: string): FileInfo | undefined => {
    const info = fs.stat(path);
    consulted.push({ path, identity: info === undefined ? '-' : info.identity ?? '?' });
    return info;
  };
  const isSelf = (info: FileInfo): boolean =>
    selfInfo !== undefined && info.dev === selfInfo.dev && info.ino === selfInfo.ino;
  const dirs = searchDirs(envPath);

  for (const candidate of candidates) {
    if (candidate.includes('/') && !isAbsolute(candidate)) {
      throw new NvrError('CONFIG', `runtimes entry "${candidate}" is a relative path`, {
        fix: 'use an absolute path or a bare name in runtimes in config.toml',
      });
    }
    const paths = isAbsolute(candidate) ? [candidate] : dirs.map((d) => join(d, candidate));
    for (const path of paths) {
      const info = stat(path);
      if (!isExecutableFile(info) || isSelf(info)) continue;
      return { ...validate(path, info, fs, deps.euid ?? process.geteuid?.() ?? 0), consulted };
    }
  }
  throw new NvrError(
    'RUNTIME',
    `no low-level runtime found: tried ${candidates.join(', ') || '(none)'} in PATH and ${SYSTEM_DIRS.join(':')}`,
    { fix: 'install runc or set runtimes in config.toml' },
  );
}

function validate(path: string, info: FileInfo, fs: RuncFs, euid: number): Omit<LowLevelRuntime, 'consulted'> {
  const realPath = fs.realpath(path);
  const name = realPath === path ? path : `${path} (-> ${realPath})`;
  const refuse = (why: string, fix: string): NvrError =>
    new NvrError('RUNTIME', `low-level runtime ${name} ${why}: refusing to exec it`, { fix });
  if (!isTrusted(info, euid)) {
    if (info.uid !== 0 && info.uid !== euid) {
      throw refuse(`is owned by uid ${info.uid}, not root`, `chown root ${realPath}, or set runtimes in config.toml`);
    }
    throw refuse(info.mode & 0o002 ? 'is world-writable' : 'is group-writable', `chmod go-w ${realPath}`);
  }
  // Whoever can write its directory can replace it (src/trust.ts: the file and its directory).
  const dir = dirname(realPath);
  const dirInfo = fs.stat(dir);
  if (!dirInfo || !isTrusted(dirInfo, euid)) {
    throw refuse(`is in ${dir}, which someone other than root can write`, `chown root ${dir} && chmod go-w ${dir}, or move the runtime`);
  }
  return { path, realPath };
}
