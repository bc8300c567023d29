/**
 * Backups of the engine config files we change: `<file>.<UTC time>.bak` next to the file (e.g.
 * daemon.json.20250102T030405Z.bak), a byte copy with the same mode, never overwritten — every change keeps the
 * file it replaced, so the pristine original is always the oldest one. Idempotent re-runs change nothing and so
 * make no backup. The suffix keeps backups out of containerd's `*.toml` import globs.
 */
import * as nodeFs from 'node:fs';
import { NvrError } from '../errors.js';

export function backupStamp(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

export function backupName(file: string, now: Date, attempt = 0): string {
  return `${file}.${backupStamp(now)}${attempt ? `-${attempt}` : ''}.bak`;
}

/** Copies `file` to a new backup name (exclusive create: two runs in one second get -1, -2…) and returns it. */
export function backupFile(file: string, now: Date = new Date(), fs: Pick<typeof nodeFs, 'copyFileSync'> = nodeFs): string {
  for (let attempt = 0; attempt < 100; attempt++) {
    const target = backupName(file, now, attempt);
    try {
      fs.copyFileSync(file, target, nodeFs.constants.COPYFILE_EXCL);
      return target;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new NvrError('IO', `backing up ${file} to ${target} failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, {
        fix: 'check that the directory is writable; nothing was changed',
        cause: e,
      });
    }
  }
  throw new NvrError('IO', `backing up ${file}: too many backups this second`, { fix: 'run the command again' });
}
