import * as fs from 'node:fs';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendRuncLogError, formatRuncLogError, type RuncLogFs } from '../../../src/log/runc-log.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nvr-runclog-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const T = new Date('2024-05-01T12:00:00.123Z');
const now = () => T;

describe('appendRuncLogError', () => {
  it('appends one JSON error line that containerd can decode, creating the file 0600', () => {
    const file = join(dir, 'log.json');
    writeFileSync(file, '{"level":"info","msg":"earlier","time":"x"}\n');
    expect(appendRuncLogError(file, 'json', 'nvidia-runtime: GPU 7 "not" found\nsecond line', { now })).toBe(true);
    const last = readFileSync(file, 'utf8').split('\n').slice(-2);
    expect(last[1]).toBe('');
    expect(JSON.parse(last[0])).toEqual({ level: 'error', msg: 'nvidia-runtime: GPU 7 "not" found\nsecond line', time: '2024-05-01T12:00:00.123Z' });

    const fresh = join(dir, 'new.json');
    const old = process.umask(0);
    try {
      appendRuncLogError(fresh, 'json', 'x', { now });
    } finally {
      process.umask(old);
    }
    expect(statSync(fresh).mode & 0o777).toBe(0o600);
  });

  it('writes logrus text format otherwise', () => {
    const file = join(dir, 'log');
    appendRuncLogError(file, 'text', 'bad "device"', { now });
    appendRuncLogError(file, undefined, 'again', { now });
    expect(readFileSync(file, 'utf8')).toBe(
      'time="2024-05-01T12:00:00.123Z" level=error msg="bad \\"device\\""\n' + 'time="2024-05-01T12:00:00.123Z" level=error msg="again"\n',
    );
  });

  it('uses exactly one write', () => {
    const writes: string[] = [];
    const spy: RuncLogFs = { ...fs, writeSync: ((fd: number, s: string) => (writes.push(s), fs.writeSync(fd, s))) as typeof fs.writeSync };
    appendRuncLogError(join(dir, 'l'), 'json', 'm', { fs: spy, now });
    expect(writes).toEqual([formatRuncLogError('json', 'm', T)]);
  });

  it('never throws: no file, a symlink, a missing directory', () => {
    expect(appendRuncLogError(undefined, 'json', 'm')).toBe(false);
    expect(appendRuncLogError('', 'json', 'm')).toBe(false);
    const target = join(dir, 'target');
    writeFileSync(target, '');
    symlinkSync(target, join(dir, 'link'));
    expect(appendRuncLogError(join(dir, 'link'), 'json', 'm')).toBe(false);
    expect(readFileSync(target, 'utf8')).toBe('');
    expect(appendRuncLogError(join(dir, 'no', 'such', 'log'), 'json', 'm')).toBe(false);
  });

  it('closes the fd even when the write fails', () => {
    const closed: number[] = [];
    const bad: RuncLogFs = {
      ...fs,
      writeSync: (() => {
        throw new Error('EIO');
      }) as typeof fs.writeSync,
      closeSync: ((fd: number) => (closed.push(fd), fs.closeSync(fd))) as typeof fs.closeSync,
    };
    expect(appendRuncLogError(join(dir, 'l'), 'json', 'm', { fs: bad })).toBe(false);
    expect(closed).toHaveLength(1);
  });
});
