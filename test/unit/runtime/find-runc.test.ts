import { chmodSync, chownSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NvrError } from '../../../src/errors.js';
import { statIdentity } from '../../../src/launcher-contract.js';
import {
  DEFAULT_RUNTIMES, findLowLevelRuntime, type FileInfo, type RuncFs,
} from '../../../src/runtime/find-runc.js';

const isRoot = process.geteuid?.() === 0;
const rootOnly = isRoot ? test : test.skip; // chown needs root

function thrown(f: () => unknown): NvrError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(NvrError);
    return e as NvrError;
  }
  throw new Error('expected an NvrError');
}

describe('findLowLevelRuntime on real files', () => {
  let dir: string;
  let bin1: string;
  let bin2: string;
  let self: string;
  const exe = (path: string, mode = 0o755): string => {
    writeFileSync(path, '#!/bin/sh\n');
    chmodSync(path, mode);
    return path;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'find-runc-'));
    chmodSync(dir, 0o755);
    bin1 = join(dir, 'bin1');
    bin2 = join(dir, 'bin2');
    mkdirSync(bin1);
    mkdirSync(bin2);
    self = exe(join(dir, 'nvidia-runtime'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('a bare name is searched in PATH order', () => {
    exe(join(bin1, 'runc'));
    exe(join(bin2, 'runc'));
    expect(findLowLevelRuntime(['runc'], `${bin1}:${bin2}`, { self })).toEqual({
      path: join(bin1, 'runc'), realPath: join(bin1, 'runc'),
      consulted: [{ path: join(bin1, 'runc'), identity: statIdentity(join(bin1, 'runc')) }],
    });
  });

  test('candidates are tried in order; the first found wins', () => {
    exe(join(bin1, 'crun'));
    exe(join(bin2, 'runc'));
    expect(findLowLevelRuntime(['docker-runc', 'runc', 'crun'], `${bin1}:${bin2}`, { self }).path).toBe(join(bin2, 'runc'));
  });

  test('non-executable files, directories, empty and relative PATH entries are skipped', () => {
    exe(join(bin1, 'runc'), 0o644);
    mkdirSync(join(bin2, 'runc'));
    const bin3 = join(dir, 'bin3');
    mkdirSync(bin3);
    exe(join(bin3, 'runc'));
    expect(findLowLevelRuntime(['runc'], `:.:rel:${bin1}:${bin2}:${bin3}`, { self }).path).toBe(join(bin3, 'runc'));
  });

  test('an absolute candidate is used as is', () => {
    const abs = exe(join(dir, 'my-runc'));
    expect(findLowLevelRuntime([abs, 'runc'], bin1, { self }).path).toBe(abs);
  });

  test('a missing absolute candidate falls through to the next', () => {
    exe(join(bin1, 'runc'));
    expect(findLowLevelRuntime([join(dir, 'nope'), 'runc'], bin1, { self }).path).toBe(join(bin1, 'runc'));
  });

  test('our own executable is skipped, through a symlink or a hard link', () => {
    symlinkSync(self, join(bin1, 'runc'));
    linkSync(self, join(bin2, 'runc'));
    const bin3 = join(dir, 'bin3');
    mkdirSync(bin3);
    exe(join(bin3, 'runc'));
    expect(findLowLevelRuntime(['runc'], `${bin1}:${bin2}:${bin3}`, { self }).path).toBe(join(bin3, 'runc'));
    expect(findLowLevelRuntime(['runc'], `${bin1}:${bin3}`, { self: join(bin1, 'runc') }).path).toBe(join(bin3, 'runc'));
  });

  test('a runtime in a directory others can write is refused: it could be replaced', () => {
    const open = join(dir, 'open');
    mkdirSync(open);
    exe(join(open, 'runc'));
    chmodSync(open, 0o777);
    const e = thrown(() => findLowLevelRuntime(['runc'], open, { self }));
    expect(e.message).toBe(`low-level runtime ${join(open, 'runc')} is in ${open}, which someone other than root can write: refusing to exec it`);
  });

  test('a symlinked runtime is validated at its target and reported with it', () => {
    const real = exe(join(dir, 'runc.real'));
    symlinkSync(real, join(bin1, 'runc'));
    expect(findLowLevelRuntime(['runc'], bin1, { self })).toEqual({
      path: join(bin1, 'runc'), realPath: real, consulted: [{ path: join(bin1, 'runc'), identity: statIdentity(real) }],
    });
    chmodSync(real, 0o775);
    const e = thrown(() => findLowLevelRuntime(['runc'], bin1, { self }));
    expect(e.message).toBe(`low-level runtime ${join(bin1, 'runc')} (-> ${real}) is group-writable: refusing to exec it`);
  });

  test('group-writable is refused, not skipped', () => {
    exe(join(bin1, 'runc'), 0o775);
    exe(join(bin2, 'runc'));
    const e = thrown(() => findLowLevelRuntime(['runc'], `${bin1}:${bin2}`, { self }));
    expect(e.code).toBe('RUNTIME');
    expect(e.message).toBe(`low-level runtime ${join(bin1, 'runc')} is group-writable: refusing to exec it`);
    expect(e.fix).toBe(`chmod go-w ${join(bin1, 'runc')}`);
  });

  test('world-writable is refused', () => {
    exe(join(bin1, 'runc'), 0o757);
    const e = thrown(() => findLowLevelRuntime(['runc'], bin1, { self }));
    expect(e.message).toMatch(/is world-writable: refusing to exec it$/);
  });

  rootOnly('not owned by root (nor by us) is refused', () => {
    const path = exe(join(bin1, 'runc'));
    chownSync(path, 1000, 1000);
    const e = thrown(() => findLowLevelRuntime(['runc'], bin1, { self }));
    expect(e.code).toBe('RUNTIME');
    expect(e.message).toBe(`low-level runtime ${path} is owned by uid 1000, not root: refusing to exec it`);
    // A rootless engine running as that user may use its own runtime.
    expect(findLowLevelRuntime(['runc'], bin1, { self, euid: 1000 }).path).toBe(path);
  });

  test('nothing found names what was tried', () => {
    const e = thrown(() => findLowLevelRuntime([...DEFAULT_RUNTIMES].map((n) => `${n}-absent-xyz`), bin1, { self }));
    expect(e.code).toBe('RUNTIME');
    expect(e.message).toBe(
      'no low-level runtime found: tried docker-runc-absent-xyz, runc-absent-xyz, crun-absent-xyz in PATH and ' +
        '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    );
    expect(e.fix).toBe('install runc or set runtimes in config.toml');
  });

  test('a relative runtimes entry is a config error', () => {
    const e = thrown(() => findLowLevelRuntime(['./runc'], bin1, { self }));
    expect(e.code).toBe('CONFIG');
    expect(e.message).toBe('runtimes entry "./runc" is a relative path');
  });
});

describe('findLowLevelRuntime with an injected fs', () => {
  const file = (over: Partial<FileInfo> = {}): FileInfo => ({ isFile: true, mode: 0o100755, uid: 0, dev: 1, ino: 2, ...over });
  const fakeFs = (files: Record<string, FileInfo>, links: Record<string, string> = {}): RuncFs & { seen: string[] } => {
    const seen: string[] = [];
    return {
      seen,
      stat: (p) => {
        seen.push(p);
        const isDir = Object.keys(files).some((f) => f.startsWith(`${p}/`));
        return files[links[p] ?? p] ?? (isDir ? { isFile: false, mode: 0o40755, uid: 0, dev: 1, ino: 1 } : undefined);
      },
      realpath: (p) => links[p] ?? p,
    };
  };

  test('PATH first, then the system directories, each searched once', () => {
    const fs = fakeFs({ '/usr/bin/runc': file() });
    const r = findLowLevelRuntime(['runc'], '/opt/bin:/usr/bin', { self: '/usr/local/bin/nvidia-runtime', fs, euid: 0 });
    expect(r).toEqual({
      path: '/usr/bin/runc', realPath: '/usr/bin/runc',
      // every path stat'ed for the answer, so the launcher view goes stale when any of them changes
      consulted: [{ path: '/opt/bin/runc', identity: '-' }, { path: '/usr/bin/runc', identity: '?' }],
    });
    expect(fs.seen).toEqual(['/usr/local/bin/nvidia-runtime', '/opt/bin/runc', '/usr/bin/runc', '/usr/bin']); // its directory: trust
  });

  test('falls back to /usr/sbin when PATH is unset', () => {
    const fs = fakeFs({ '/usr/sbin/runc': file({ ino: 7 }) });
    expect(findLowLevelRuntime(['runc'], undefined, { self: '/x/self', fs, euid: 0 }).path).toBe('/usr/sbin/runc');
    expect(fs.seen).toEqual(['/x/self', '/usr/local/sbin/runc', '/usr/local/bin/runc', '/usr/sbin/runc', '/usr/sbin']);
  });

  test('installed as /usr/local/bin/runc, we skip ourselves and find the real one', () => {
    const self = file({ ino: 99 });
    const fs = fakeFs({ '/usr/local/bin/runc': self, '/usr/bin/runc': file({ ino: 3 }) });
    const r = findLowLevelRuntime(['runc'], '/usr/local/bin:/usr/bin', { self: '/usr/local/bin/runc', fs, euid: 0 });
    expect(r.path).toBe('/usr/bin/runc');
  });

  test('same inode on another device is not us', () => {
    const fs = fakeFs({ '/self': file({ dev: 1, ino: 5 }), '/usr/bin/runc': file({ dev: 2, ino: 5 }) });
    expect(findLowLevelRuntime(['runc'], '/usr/bin', { self: '/self', fs, euid: 0 }).path).toBe('/usr/bin/runc');
  });
});
