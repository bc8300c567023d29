/**
 * Crash-atomic file replacement (SECURITY R7): a reader sees either the old file or the new one, never a
 * truncated mix. Same-directory temp file opened O_CREAT|O_EXCL|O_WRONLY|O_NOFOLLOW|O_CLOEXEC, full write, fsync,
 * owner and mode copied from the file being replaced, rename(2) over it, fsync of the directory. On any failure
 * the temp file is removed and the original is untouched. NVIDIA's toolkit truncates in place (os.Create); we don't.
 * A writer killed with SIGKILL cannot remove its temp file; the next write of the same file removes every temp file
 * of that name whose writer (the pid in its name) is gone.
 */
import * as nodeFs from 'node:fs';
import * as path from 'node:path';
import { NvrError } from '../errors.js';

/** The fs calls used here, injectable so tests can make any step fail. */
export type AtomicFs = Pick<
  typeof nodeFs,
  'openSync' | 'writeSync' | 'fsyncSync' | 'fchmodSync' | 'fchownSync' | 'fstatSync' | 'closeSync' | 'renameSync' | 'unlinkSync' | 'lstatSync' | 'readdirSync'
>;

export interface WriteAtomicOptions {
  /** Permission bits for the result; default: the replaced file's mode, or 0o644 for a new file. */
  mode?: number;
  fs?: AtomicFs;
}

const { O_CREAT, O_EXCL, O_WRONLY, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = nodeFs.constants;
/** Node does not export O_CLOEXEC (libuv adds it to every open on Linux anyway); spelled out for the record. */
export const O_CLOEXEC: number = (nodeFs.constants as unknown as Record<string, number | undefined>).O_CLOEXEC ?? 0o2000000;

function ioError(target: string, step: string, cause: unknown, fix = 'check that the directory is writable and the filesystem is not full or read-only'): NvrError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new NvrError('IO', `writing ${target}: ${step} failed${code ? ` (${code})` : ''}`, { fix, cause });
}

/** 12 hex digits. Math.random, not node:crypto (loading it costs a cold create ~3 ms): the name only has to differ
 *  from other writers' (O_EXCL|O_NOFOLLOW makes a clash or a planted name an error, never a write elsewhere). */
const randomHex = (): string =>
  Math.floor(Math.random() * 0x1000000).toString(16).padStart(6, '0') + Math.floor(Math.random() * 0x1000000).toString(16).padStart(6, '0');

/** The temp file name for `file` written by `pid`: hidden, unique, and carrying the writer's pid. */
const tempName = (file: string, pid: number): string => `.${path.basename(file)}.${pid}.${randomHex()}.tmp`;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Removes the temp files a killed writer of `file` left in its directory (best effort: never fails the write). */
export function removeStaleTemps(file: string, fs: Pick<AtomicFs, 'readdirSync' | 'lstatSync' | 'unlinkSync'> = nodeFs): string[] {
  const base = path.basename(file);
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(path.dirname(file)) as string[];
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(`.${base}.`) || !name.endsWith('.tmp')) continue;
    const m = /^\.(\d+)\.[0-9a-f]{12}\.tmp$/.exec(name.slice(base.length + 1));
    if (!m || Number(m[1]) === process.pid || isRunning(Number(m[1]))) continue;
    const tmp = path.join(path.dirname(file), name);
    try {
      if (!fs.lstatSync(tmp).isFile()) continue;
      fs.unlinkSync(tmp);
      removed.push(tmp);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}

export function writeFileAtomic(target: string, data: string | Uint8Array, options: WriteAtomicOptions = {}): void {
  const fs = options.fs ?? nodeFs;
  const file = path.resolve(target);
  const dir = path.dirname(file);

  let existing: nodeFs.Stats | undefined;
  try {
    existing = fs.lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(file, 'lstat', e);
  }
  if (existing?.isSymbolicLink()) {
    throw new NvrError('IO', `writing ${file}: refusing to replace a symbolic link`, {
      fix: 'replace the link with the regular file it points to, or write to the real path',
    });
  }
  if (existing && !existing.isFile()) {
    throw new NvrError('IO', `writing ${file}: not a regular file`, { fix: 'remove or rename what is at that path' });
  }
  const mode = options.mode ?? (existing ? existing.mode & 0o7777 : 0o644);

  removeStaleTemps(file, fs);
  const tmp = path.join(dir, tempName(file, process.pid));
  let fd: number | undefined;
  let created = false;
  try {
    try {
      fd = fs.openSync(tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o600);
      created = true;
    } catch (e) {
      throw ioError(file, 'creating the temporary file', e);
    }
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    try {
      for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    } catch (e) {
      throw ioError(file, 'write', e);
    }
    try {
      // Owner first: fchown clears setuid/setgid bits, so the mode goes on afterwards.
      if (existing) {
        const own = fs.fstatSync(fd);
        if (own.uid !== existing.uid || own.gid !== existing.gid) fs.fchownSync(fd, existing.uid, existing.gid);
      }
      fs.fchmodSync(fd, mode);
    } catch (e) {
      throw ioError(file, 'keeping owner and mode', e, 'run as the owner of the file (normally root)');
    }
    try {
      fs.fsyncSync(fd);
    } catch (e) {
      throw ioError(file, 'fsync', e);
    }
    const toClose = fd;
    fd = undefined;
    try {
      fs.closeSync(toClose);
    } catch (e) {
      throw ioError(file, 'close', e);
    }
    try {
      fs.renameSync(tmp, file);
      created = false;
    } catch (e) {
      throw ioError(file, 'rename over the original', e);
    }
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already failing; the original error is the one to report */
      }
    }
    if (created) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        /* best effort: the temp name is unique and hidden; the original error is the one to report */
      }
    }
    throw e;
  }

  // The rename is durable only once the directory entry is on disk.
  let dfd: number | undefined;
  try {
    dfd = fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    fs.fsyncSync(dfd);
  } catch (e) {
    throw ioError(file, 'fsync of the directory', e);
  } finally {
    if (dfd !== undefined) fs.closeSync(dfd);
  }
}
