import * as fs from 'node:fs';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type winston from 'winston';
import { NvrError } from '../../../src/errors.js';
import { createLogger, formatLine, openLogFile, winstonLevel, type LoggerFs } from '../../../src/log/logger.js';
import { thrown } from '../../helpers/errors.js';

let dir: string;
const loggers: winston.Logger[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nvr-log-'));
});
afterEach(() => {
  for (const l of loggers.splice(0)) l.close();
  rmSync(dir, { recursive: true, force: true });
});

function make(file: string, level?: string, extra: Partial<Parameters<typeof createLogger>[0]> = {}): winston.Logger {
  const l = createLogger({ file, level, now: () => new Date('2024-05-01T12:00:00.000Z'), ...extra });
  loggers.push(l);
  return l;
}

/** Asserts fn throws an NvrError with code IO and returns it. */
function ioError(fn: () => unknown): NvrError {
  const e = thrown(fn);
  expect(e.code).toBe('IO');
  return e;
}

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').slice(0, -1);

describe('createLogger', () => {
  it('creates the file with mode 0600 regardless of a permissive umask', () => {
    const file = join(dir, 'rt.log');
    const old = process.umask(0);
    try {
      make(file).info('hello');
    } finally {
      process.umask(old);
    }
    expect(statSync(file).mode & 0o7777).toBe(0o600);
  });

  it('keeps the mode of an existing file and appends to it', () => {
    const file = join(dir, 'rt.log');
    writeFileSync(file, 'old line\n', { mode: 0o640 });
    chmodSync(file, 0o640);
    make(file).info('new');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(lines(file)).toEqual(['old line', '2024-05-01T12:00:00.000Z info new']);
  });

  it('writes synchronously: the line is on disk when the call returns', () => {
    const file = join(dir, 'rt.log');
    const log = make(file);
    log.warn('first');
    expect(lines(file)).toEqual(['2024-05-01T12:00:00.000Z warn first']);
    log.error('second', { bundle: '/b', n: 1 });
    expect(lines(file)[1]).toBe('2024-05-01T12:00:00.000Z error second {"bundle":"/b","n":1}');
  });

  it('one record is one line, even with newlines in the message, and one write(2) each', () => {
    const file = join(dir, 'rt.log');
    const writes: string[] = [];
    const spyFs: LoggerFs = { ...fs, writeSync: ((fd: number, s: string) => (writes.push(s), fs.writeSync(fd, s))) as typeof fs.writeSync };
    const log = make(file, 'info', { fs: spyFs });
    log.info('a\nforged 2024 error line', { k: 'x\ny' });
    log.info('b');
    expect(writes).toHaveLength(2);
    expect(writes.every((w) => w.endsWith('\n') && w.indexOf('\n') === w.length - 1)).toBe(true);
    expect(lines(file)).toEqual([
      '2024-05-01T12:00:00.000Z info a\\nforged 2024 error line {"k":"x\\ny"}',
      '2024-05-01T12:00:00.000Z info b',
    ]);
  });

  it('filters by level, accepting logrus names', () => {
    const file = join(dir, 'rt.log');
    const log = make(file, 'warning');
    log.debug('no');
    log.info('no');
    log.warn('yes-warn');
    log.error('yes-error');
    expect(lines(file).map((l) => l.split(' ')[2])).toEqual(['yes-warn', 'yes-error']);

    const file2 = join(dir, 'debug.log');
    const dbg = make(file2, 'DEBUG');
    dbg.debug('d');
    dbg.silly('s');
    expect(lines(file2)).toEqual(['2024-05-01T12:00:00.000Z debug d']);
  });

  it('maps logrus level names onto winston levels and rejects unknown ones', () => {
    expect(['panic', 'fatal', 'error', 'warning', 'info', 'debug', 'trace'].map(winstonLevel)).toEqual(['error', 'error', 'error', 'warn', 'info', 'debug', 'silly']);
    expect(winstonLevel(undefined)).toBe('info');
    expect(() => winstonLevel('loud')).toThrow(NvrError);
  });

  it('refuses a symlink at the log path (ELOOP) and leaves its target alone', () => {
    const target = join(dir, 'target');
    writeFileSync(target, 'secret\n');
    const file = join(dir, 'rt.log');
    symlinkSync(target, file);
    const e = ioError(() => make(file));
    expect(e.message).toContain('(ELOOP)');
    expect(e.fix).toContain('symbolic link');
    expect(readFileSync(target, 'utf8')).toBe('secret\n');
  });

  it('refuses a dangling symlink without creating its target', () => {
    const file = join(dir, 'rt.log');
    symlinkSync(join(dir, 'created-through-link'), file);
    ioError(() => make(file));
    expect(fs.existsSync(join(dir, 'created-through-link'))).toBe(false);
  });

  it('refuses a FIFO at the log path without blocking', () => {
    const file = join(dir, 'fifo');
    execFileSync('mkfifo', [file]);
    ioError(() => make(file));
  });

  it('requires the directory to exist (no mkdir -p), and to be a directory', () => {
    const e = ioError(() => make(join(dir, 'missing', 'rt.log')));
    expect(e.message).toContain(join(dir, 'missing'));
    expect(fs.existsSync(join(dir, 'missing'))).toBe(false);
    writeFileSync(join(dir, 'plain'), '');
    ioError(() => make(join(dir, 'plain', 'rt.log')));
  });

  it('refuses a group/world-writable directory unless it is sticky', () => {
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(ioError(() => make(join(open, 'rt.log'))).message).toContain('writable by group or others');
    chmodSync(open, 0o1777);
    make(join(open, 'rt.log')).info('ok');
    expect(lines(join(open, 'rt.log'))).toHaveLength(1);
  });

  it('refuses a directory owned by another user', () => {
    const fakeFs: LoggerFs = { ...fs, statSync: ((p: string) => Object.assign(fs.statSync(p), { uid: 4242 })) as typeof fs.statSync };
    expect(ioError(() => openLogFile(join(dir, 'rt.log'), fakeFs)).message).toContain('uid 4242');
  });

  it('refuses a relative path', () => {
    ioError(() => make('rt.log'));
  });

  it('opens the fd O_APPEND and O_CLOEXEC', () => {
    const fd = openLogFile(join(dir, 'rt.log'));
    try {
      const flags = parseInt(/flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1], 8);
      expect(flags & 0o2000).toBe(0o2000); // O_APPEND
      expect(flags & 0o2000000).toBe(0o2000000); // O_CLOEXEC
    } finally {
      fs.closeSync(fd);
    }
  });

  it('"/dev/null", "" and no file give a logger that opens nothing and drops everything', () => {
    const spyFs: LoggerFs = {
      ...fs,
      openSync: (() => {
        throw new Error('must not open');
      }) as typeof fs.openSync,
      statSync: (() => {
        throw new Error('must not stat');
      }) as typeof fs.statSync,
    };
    for (const file of ['/dev/null', '', undefined]) {
      const log = createLogger({ file, level: 'debug', fs: spyFs });
      loggers.push(log);
      expect(() => log.error('dropped')).not.toThrow();
    }
  });

  it('a failing write does not throw into the caller', () => {
    const badFs: LoggerFs = {
      ...fs,
      writeSync: (() => {
        throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' });
      }) as typeof fs.writeSync,
    };
    const log = make(join(dir, 'rt.log'), 'info', { fs: badFs });
    expect(() => log.error('lost')).not.toThrow();
  });

  it('close() closes the fd', () => {
    const closed: number[] = [];
    const spyFs: LoggerFs = { ...fs, closeSync: ((fd: number) => (closed.push(fd), fs.closeSync(fd))) as typeof fs.closeSync };
    const log = createLogger({ file: join(dir, 'rt.log'), fs: spyFs });
    log.close();
    expect(closed).toHaveLength(1);
  });
});

describe('formatLine', () => {
  it('is "<ISO time> <level> <message> <json meta>" and omits empty meta', () => {
    const t = new Date('2024-01-02T03:04:05.006Z');
    expect(formatLine(t, { level: 'info', message: 'm' })).toBe('2024-01-02T03:04:05.006Z info m\n');
    expect(formatLine(t, { level: 'warn', message: 'm', big: 10n, err: new Error('boom') })).toBe(
      '2024-01-02T03:04:05.006Z warn m {"big":"10","err":{"message":"boom"}}\n',
    );
  });
});
