/**
 * The error line in runc's own log. Engines call runc with `--log FILE --log-format json`; when create fails,
 * containerd reads the last error record of that file and shows it to the user ("OCI runtime create failed:
 * <msg>"). When we fail before exec'ing runc, runc never runs, so we write that record ourselves, shaped as
 * runc's logrus writes it. This is the error path: it must never throw, and it writes one line in one write(2).
 */
import * as nodeFs from 'node:fs';

const O_CLOEXEC: number = (nodeFs.constants as unknown as Record<string, number | undefined>).O_CLOEXEC ?? 0o2000000;
const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW, O_NONBLOCK } = nodeFs.constants;
const FLAGS = O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;

export type RuncLogFs = Pick<typeof nodeFs, 'openSync' | 'writeSync' | 'closeSync'>;

/** The line for `format` ("json"; anything else is runc's default, logrus "text"). */
export function formatRuncLogError(format: string | undefined, message: string, time: Date = new Date()): string {
  const ts = time.toISOString(); // RFC 3339 with milliseconds, UTC
  if (format === 'json') return `${JSON.stringify({ level: 'error', msg: message, time: ts })}\n`;
  // logrus TextFormatter quotes with Go's %q; JSON string escaping is the same for what a message contains.
  return `time=${JSON.stringify(ts)} level=error msg=${JSON.stringify(message)}\n`;
}

/**
 * Append one error record to runc's `--log` file. No file → nothing. Returns whether the line was written;
 * failures (symlink at the path, no directory, full disk) are swallowed because there is no one left to tell.
 */
export function appendRuncLogError(
  file: string | undefined,
  format: string | undefined,
  message: string,
  options: { fs?: RuncLogFs; now?: () => Date } = {},
): boolean {
  if (!file) return false;
  const fs = options.fs ?? nodeFs;
  let fd: number | undefined;
  try {
    const line = formatRuncLogError(format, message, (options.now ?? (() => new Date()))());
    fd = fs.openSync(file, FLAGS, 0o600);
    fs.writeSync(fd, line);
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // nothing to do
      }
    }
  }
}
