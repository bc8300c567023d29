/**
 * The runtime's log (SECURITY R11, R12). stdout and stderr belong to runc and the engine, so the only sink is a
 * file, written synchronously: the process may execve(runc) right after logging, and a buffered line would be
 * lost. Each record is one complete line in one write(2) on an O_APPEND fd, so concurrent runtimes sharing the
 * file never interleave. The file is opened once, O_NOFOLLOW (a planted symlink is refused, never followed),
 * O_CREAT with mode 0600, in a directory that must already exist and be safe (unlike the peer, which
 * MkdirAll()s the parent and creates the file 0644). An existing file keeps its mode: it may have been made
 * 0640 for a log reader group on purpose, and chmod-ing someone else's choice is not ours to do.
 */
import * as nodeFs from 'node:fs';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import type winston from 'winston';
import { NvrError } from '../errors.js';

/** The fs calls used here, injectable for tests. */
export type LoggerFs = Pick<typeof nodeFs, 'openSync' | 'writeSync' | 'closeSync' | 'fstatSync' | 'statSync'>;

export interface LoggerOptions {
  /** Log file (absolute). "", "/dev/null" or undefined: a logger that drops everything and opens nothing. */
  file?: string;
  /** logrus names (panic, fatal, error, warn, warning, info, debug, trace) or winston's. Default: info. */
  level?: string;
  fs?: LoggerFs;
  /** Clock, for tests. */
  now?: () => Date;
}

/** Node does not export O_CLOEXEC (libuv adds it to every open on Linux anyway); spelled out for the record. */
const O_CLOEXEC: number = (nodeFs.constants as unknown as Record<string, number | undefined>).O_CLOEXEC ?? 0o2000000;
const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW, O_NONBLOCK } = nodeFs.constants;
/** O_NONBLOCK: a FIFO planted at the log path must fail the open (ENXIO), not hang the runtime. */
export const LOG_OPEN_FLAGS = O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
export const LOG_FILE_MODE = 0o600;

const LEVEL_MAP: Record<string, string> = {
  panic: 'error',
  fatal: 'error',
  error: 'error',
  warn: 'warn',
  warning: 'warn',
  info: 'info',
  http: 'http',
  verbose: 'verbose',
  debug: 'debug',
  trace: 'silly',
  silly: 'silly',
};

/** Map a configured level name onto winston's npm levels. */
export function winstonLevel(level: string | undefined): string {
  const mapped = LEVEL_MAP[(level ?? 'info').toLowerCase()];
  if (!mapped) {
    throw new NvrError('CONFIG', `log level ${JSON.stringify(level)} is not one of ${Object.keys(LEVEL_MAP).join(', ')}`, {
      fix: 'set nvidia-container-runtime.log-level to a valid level',
    });
  }
  return mapped;
}

export function isNullLogFile(file: string | undefined): boolean {
  return file === undefined || file === '' || file === '/dev/null';
}

export function createLogger(options: LoggerOptions): winston.Logger {
  const level = winstonLevel(options.level);
  if (isNullLogFile(options.file)) {
    return nullLogger(level);
  }
  const fs = options.fs ?? nodeFs;
  const fd = openLogFile(options.file as string, fs);
  const now = options.now ?? (() => new Date());
  const { winston: w, SyncFileTransport } = loadWinston();
  return w.createLogger({ level, transports: [new SyncFileTransport(fd, fs, now)], exitOnError: false });
}

/**
 * Open (creating if needed) the log file safely; returns the fd. The directory must exist, be a directory,
 * belong to root or to us, and not be writable by others unless sticky (else another user could swap the file).
 */
export function openLogFile(file: string, fs: LoggerFs = nodeFs): number {
  if (!file.startsWith('/')) {
    throw new NvrError('IO', `log file ${JSON.stringify(file)} is not an absolute path`, { fix: 'configure an absolute log path' });
  }
  const dir = dirname(file);
  let st: nodeFs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw new NvrError('IO', `log directory ${dir} does not exist or cannot be read (${errno(e)})`, {
      fix: `create ${dir} (owned by root, mode 0755 or stricter) or configure another log file`,
      cause: e,
    });
  }
  if (!st.isDirectory()) {
    throw new NvrError('IO', `log directory ${dir} is not a directory`, { fix: 'configure another log file' });
  }
  const euid = process.geteuid?.() ?? 0;
  if (st.uid !== 0 && st.uid !== euid) {
    throw new NvrError('IO', `log directory ${dir} is owned by uid ${st.uid}, not root`, {
      fix: `chown root ${dir}, or configure a log file in a root-owned directory`,
    });
  }
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    throw new NvrError('IO', `log directory ${dir} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`, {
      fix: `chmod go-w ${dir}, or configure a log file in a directory only root can write`,
    });
  }

  let fd: number;
  try {
    fd = fs.openSync(file, LOG_OPEN_FLAGS, LOG_FILE_MODE);
  } catch (e) {
    const code = errno(e);
    throw new NvrError('IO', `opening log file ${file} failed (${code})`, {
      fix:
        code === 'ELOOP'
          ? 'the log path is a symbolic link, which is refused; remove it or point the config at the real file'
          : 'check the path and permissions, or configure another log file',
      cause: e,
    });
  }
  try {
    if (!fs.fstatSync(fd).isFile()) {
      throw new NvrError('IO', `log file ${file} is not a regular file`, { fix: 'remove it, or configure another log file' });
    }
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return fd;
}

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException | undefined)?.code ?? String(e);
}

/** The Symbol.for key triple-beam (winston's own) uses for the bare level, without depending on it directly. */
const LEVEL = Symbol.for('level');

/** `<ISO time> <level> <message> <json meta>`, newlines escaped: one record is always exactly one line. */
export function formatLine(time: Date, info: Record<string | symbol, unknown>): string {
  const { level, message, ...meta } = info;
  const msg = oneLine(typeof message === 'string' ? message : safeJson(message));
  const metaText = Object.keys(meta).length > 0 ? ` ${safeJson(meta)}` : '';
  return `${time.toISOString()} ${String(info[LEVEL] ?? level)} ${msg}${metaText}\n`;
}

function oneLine(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x instanceof Error ? { message: x.message, code: (x as NodeJS.ErrnoException).code } : x)) ?? String(v);
  } catch {
    return '"[unserialisable]"';
  }
}

// winston re-exports winston-transport's base class at run time as `winston.Transport`, but its typings only
// expose it as a namespace; type it through LoggerOptions instead of importing winston-transport (not our dep).
type TransportInstance = Exclude<NonNullable<winston.LoggerOptions['transports']>, unknown[]>;

/**
 * winston is loaded on first use, not at import: the runtime imports this module on every GPU create, and with
 * the default `debug = "/dev/null"` it never needs winston (~60 ms to load).
 */
let loaded: { winston: typeof winston; SyncFileTransport: new (fd: number, fs: LoggerFs, now: () => Date) => TransportInstance } | undefined;
function loadWinston(): NonNullable<typeof loaded> {
  if (loaded) return loaded;
  const w = createRequire(import.meta.url)('winston') as typeof winston;
  const TransportBase = (w as unknown as { Transport: new () => TransportInstance }).Transport;

  class SyncFileTransport extends TransportBase {
  private fd: number | undefined;

  constructor(
    fd: number,
    private readonly fs: LoggerFs,
    private readonly now: () => Date,
  ) {
    super();
    this.fd = fd;
  }

  override log(info: Record<string | symbol, unknown>, callback: () => void): void {
    if (this.fd !== undefined) {
      try {
        // One writeSync of the whole line: O_APPEND makes the append atomic with respect to other writers.
        this.fs.writeSync(this.fd, formatLine(this.now(), info));
      } catch {
        // A full disk must not crash the runtime on its way to exec runc; the record is lost, nothing else.
      }
    }
    callback();
  }

  override close(): void {
    if (this.fd !== undefined) {
      try {
        this.fs.closeSync(this.fd);
      } catch {
        // already closed: nothing to do
      }
      this.fd = undefined;
    }
  }
  }
  loaded = { winston: w, SyncFileTransport };
  return loaded;
}

/** What a "/dev/null" logger is: every call does nothing, nothing is loaded or opened. */
function nullLogger(level: string): winston.Logger {
  const self: Record<string, unknown> = { level, silent: true, transports: [] };
  for (const m of ['log', 'error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly', 'close', 'end']) self[m] = () => self;
  return self as unknown as winston.Logger;
}
