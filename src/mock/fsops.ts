/**
 * File system steps of `nvidia-ctk mock-driver` (writer.ts, feature-writer.ts): atomic writes, device nodes,
 * links and precise removal, each failing with an NvrError that says how to fix it.
 */
import { accessSync, constants as fsc } from 'node:fs';
import { lstat, mkdir, readFile, rename, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join, relative, sep } from 'node:path';
import { execa } from 'execa';
import { NvrError } from '../errors.js';

export function ioError(what: string, e: unknown, fix: string): NvrError {
  return new NvrError('IO', `mock-driver: ${what}: ${(e as Error).message ?? String(e)}`, { fix, cause: e });
}

/** The first executable `name` on PATH or in the sbin directories (ldconfig lives in /sbin). */
export function findTool(name: string): string {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs.filter(Boolean)) {
    const p = join(dir, name);
    try {
      accessSync(p, fsc.X_OK);
      return p;
    } catch {
      // not here; keep looking
    }
  }
  throw new NvrError('IO', `mock-driver: ${name} not found on PATH`, { fix: `install ${name} (Debian: libc-bin / coreutils)` });
}

/** Write via a temporary file and rename: a re-run replaces files (new inode) even if they are mapped. */
export async function writeAtomic(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.nvmock-tmp-${process.pid}`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

/** `path` as a symbolic link to `target` (written as given, usually relative), replacing whatever was there. */
export async function symlinkFresh(target: string, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await rm(path, { force: true });
  await symlink(target, path);
}

export async function readArtifact(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new NvrError('IO', `native artifacts not built: run npm ci (cannot read ${path}: ${(e as Error).message})`, {
      fix: 'run npm ci in the package directory to build the native mock artifacts',
      cause: e,
    });
  }
}

export async function mknod(path: string, major: number, minor: number, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await rm(path, { force: true });
  try {
    await execa(findTool('mknod'), ['-m', mode.toString(8).padStart(4, '0'), path, 'c', String(major), String(minor)]);
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr;
    throw ioError(`cannot create device node ${path} (${major}:${minor})`, stderr ? new Error(stderr) : e, 'run mock-driver as root (device nodes need CAP_MKNOD)');
  }
}

const exists = async (path: string): Promise<boolean> => lstat(path).then(() => true, () => false);

/** Removes the empty directories from dirname(`path`) up to, not including, `root` (stops at the first non-empty). */
async function pruneEmptyParents(root: string, path: string): Promise<void> {
  for (let dir = dirname(path); dir !== root && relative(root, dir).split(sep)[0] !== '..'; dir = dirname(dir)) {
    try {
      await rmdir(dir);
    } catch {
      return; // not empty (or gone): everything above is in use too
    }
  }
}

/**
 * Removes `rel` under `root` (recursively) and then the directories it leaves empty, so a re-run without a
 * feature leaves no trace of it. Nothing happens, and no parent is touched, when `rel` does not exist.
 */
export async function removeAndPrune(root: string, rel: string): Promise<void> {
  const path = join(root, rel);
  if (!(await exists(path))) return;
  await rm(path, { recursive: true, force: true });
  await pruneEmptyParents(root, path);
}

/** Removes the directory `rel` only if it is empty (the mock made it empty; anything inside is someone else's). */
export async function removeEmptyDirAndPrune(root: string, rel: string): Promise<void> {
  const path = join(root, rel);
  try {
    await rmdir(path);
  } catch {
    return;
  }
  await pruneEmptyParents(root, path);
}
