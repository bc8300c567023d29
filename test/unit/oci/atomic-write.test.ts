import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NvrError } from '../../../src/errors.js';
import { type AtomicFs, writeFileAtomic } from '../../../src/oci/atomic-write.js';
import { thrown } from '../../helpers/errors.js';

let dir: string;
let target: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nvr-atomic-'));
  target = path.join(dir, 'config.json');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const mode = (p: string): number => fs.statSync(p).mode & 0o7777;

/** Asserts fn throws an NvrError with code IO and returns it. */
function ioError(fn: () => unknown): NvrError {
  const e = thrown(fn);
  expect(e.code).toBe('IO');
  return e;
}

/** node:fs with one call replaced, recording the order of the calls that matter. */
function fakeFs(override: Partial<AtomicFs> = {}): { fs: AtomicFs; calls: string[] } {
  const calls: string[] = [];
  const wrapped: AtomicFs = {
    ...fs,
    fsyncSync: (fd) => {
      calls.push(`fsync:${fs.fstatSync(fd).isDirectory() ? 'dir' : 'file'}`);
      fs.fsyncSync(fd);
    },
    renameSync: (a, b) => {
      calls.push('rename');
      fs.renameSync(a, b);
    },
    ...override,
  };
  return { fs: wrapped, calls };
}

describe('writeFileAtomic', () => {
  it('replaces the content, keeps mode and owner, and leaves no temp file', () => {
    fs.writeFileSync(target, 'old content that is longer than the new one');
    fs.chmodSync(target, 0o640);
    fs.chownSync(target, 1234, 5678);
    writeFileAtomic(target, '{"new":true}');
    expect(fs.readFileSync(target, 'utf8')).toBe('{"new":true}');
    expect(mode(target)).toBe(0o640);
    expect(fs.statSync(target).uid).toBe(1234);
    expect(fs.statSync(target).gid).toBe(5678);
    expect(fs.readdirSync(dir)).toEqual(['config.json']);
  });

  it('creates a new file with 0644, or the mode given, and accepts bytes', () => {
    writeFileAtomic(target, Buffer.from([1, 2, 3]));
    expect([...fs.readFileSync(target)]).toEqual([1, 2, 3]);
    expect(mode(target)).toBe(0o644);
    const other = path.join(dir, 'b');
    writeFileAtomic(other, 'x', { mode: 0o600 });
    expect(mode(other)).toBe(0o600);
  });

  it('removes the temp files of writers that were killed (SIGKILL during create), and only those', () => {
    const dead = spawnSync('true').pid!; // a pid that has exited
    const stale = path.join(dir, `.config.json.${dead}.0123456789ab.tmp`);
    const live = path.join(dir, `.config.json.${process.ppid}.0123456789ab.tmp`); // a running writer's
    const other = path.join(dir, `.other.json.${dead}.0123456789ab.tmp`);
    for (const f of [stale, live, other]) fs.writeFileSync(f, '');
    writeFileAtomic(target, 'x');
    expect(fs.readdirSync(dir).sort()).toEqual([path.basename(live), path.basename(other), 'config.json'].sort());
  });

  it('fsyncs the file before the rename and the directory after it', () => {
    const { fs: rec, calls } = fakeFs();
    writeFileAtomic(target, 'x', { fs: rec });
    expect(calls).toEqual(['fsync:file', 'rename', 'fsync:dir']);
  });

  it('refuses to replace a symlink, leaving link and target alone', () => {
    const real = path.join(dir, 'real.json');
    fs.writeFileSync(real, 'real');
    fs.symlinkSync(real, target);
    expect(ioError(() => writeFileAtomic(target, 'evil')).message).toMatch(/symbolic link/);
    expect(fs.lstatSync(target).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(real, 'utf8')).toBe('real');
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'real.json']);
  });

  it('refuses a directory at the target path', () => {
    fs.mkdirSync(target);
    expect(ioError(() => writeFileAtomic(target, 'x')).message).toMatch(/not a regular file/);
  });

  it('a failed rename leaves the original intact and removes the temp file', () => {
    fs.writeFileSync(target, 'original');
    const { fs: failing } = fakeFs({
      renameSync: () => {
        throw Object.assign(new Error('rename failed'), { code: 'EXDEV' });
      },
    });
    const e = ioError(() => writeFileAtomic(target, 'new', { fs: failing }));
    expect(e.message).toBe(`writing ${target}: rename over the original failed (EXDEV)`);
    expect(e.fix).toBeTruthy();
    expect(fs.readFileSync(target, 'utf8')).toBe('original');
    expect(fs.readdirSync(dir)).toEqual(['config.json']);
  });

  it('a failed write (disk full) leaves the original intact and removes the temp file', () => {
    fs.writeFileSync(target, 'original');
    const { fs: failing } = fakeFs({
      writeSync: (() => {
        throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
      }) as AtomicFs['writeSync'],
    });
    expect(ioError(() => writeFileAtomic(target, 'new', { fs: failing })).message).toMatch(/write failed \(ENOSPC\)/);
    expect(fs.readFileSync(target, 'utf8')).toBe('original');
    expect(fs.readdirSync(dir)).toEqual(['config.json']);
  });

  it('a missing parent directory fails cleanly (no temp file anywhere)', () => {
    const gone = path.join(dir, 'gone', 'config.json');
    expect(ioError(() => writeFileAtomic(gone, 'x')).message).toMatch(/creating the temporary file failed \(ENOENT\)/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('handles short writes', () => {
    const { fs: short } = fakeFs({
      writeSync: ((fd: number, buf: Uint8Array, off: number, len: number) => fs.writeSync(fd, buf, off, Math.min(len, 3))) as AtomicFs['writeSync'],
    });
    writeFileAtomic(target, 'abcdefghij', { fs: short });
    expect(fs.readFileSync(target, 'utf8')).toBe('abcdefghij');
  });
});
