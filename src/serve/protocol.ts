/**
 * The warm path's wire format (docs/warm-path.md "Messages"), pure: NUL-terminated records, the first one
 * SERVE_MAGIC, at most SERVE_MAX_MESSAGE_BYTES in all. The launcher's C client (native/launcher/serve_client.c) is
 * the other side; this module parses requests and formats answers for the service, and does the reverse for tests.
 * Parsing never throws: anything that is not exactly a well-formed message is `{ ok: false, reason }`, which the
 * service answers with `cold` (or by closing).
 */
import { SERVE_MAGIC, SERVE_MAX_MESSAGE_BYTES } from '../launcher-contract.js';

export interface ServeRequest {
  /** The launcher's working directory (a relative --bundle is resolved against it). */
  cwd: string;
  /** $NVIDIA_CTK_CONFIG_FILE_PATH as the launcher has it; undefined when unset or empty ("c" alone). */
  configPath: string | undefined;
  /** The launcher's PATH; undefined when unset ("P"). */
  path: string | undefined;
  /** argv[1..]. */
  args: string[];
}

export type ServeAnswer =
  | { kind: 'cold'; reason: string }
  | { kind: 'runc'; runc: string }
  | { kind: 'write'; runc: string; file: string; identity: string; text: Buffer };

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

const NUL = 0;
const bad = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

/** Splits `buf` into NUL-terminated records; undefined when the last one is not terminated. */
function splitRecords(buf: Buffer, from = 0): { records: Buffer[]; end: number } | undefined {
  const records: Buffer[] = [];
  let at = from;
  while (at < buf.length) {
    const nul = buf.indexOf(NUL, at);
    if (nul < 0) return undefined;
    records.push(buf.subarray(at, nul));
    at = nul + 1;
  }
  return { records, end: at };
}

/** A record as text: only valid UTF-8 (what the launcher sends is what the OS gave it; paths are bytes, but Node
 *  can only use them as strings, so anything that does not survive the round trip goes cold). */
function text(record: Buffer): string | undefined {
  const s = record.toString('utf8');
  return Buffer.byteLength(s) === record.length && Buffer.from(s, 'utf8').equals(record) ? s : undefined;
}

/** Parses one complete request. */
export function parseRequest(buf: Buffer): Parsed<ServeRequest> {
  try {
    if (buf.length > SERVE_MAX_MESSAGE_BYTES) return bad(`request larger than ${SERVE_MAX_MESSAGE_BYTES} bytes`);
    const split = splitRecords(buf);
    if (!split) return bad('request truncated (a record without its NUL)');
    const records: string[] = [];
    for (const r of split.records) {
      const s = text(r);
      if (s === undefined) return bad('request holds a record that is not UTF-8');
      records.push(s);
    }
    let i = 0;
    const next = (): string | undefined => records[i++];
    if (next() !== SERVE_MAGIC) return bad('request does not start with the magic');
    const d = next();
    if (d === undefined || d[0] !== 'd') return bad('request lacks the d (cwd) record');
    const c = next();
    if (c === undefined || c[0] !== 'c') return bad('request lacks the c (config path) record');
    const p = next();
    if (p === undefined || (p[0] !== 'p' && p !== 'P')) return bad('request lacks the p/P (PATH) record');
    const args: string[] = [];
    for (;;) {
      const r = next();
      if (r === undefined) return bad('request truncated (no end record)');
      if (r === '.') break;
      if (r[0] !== 'a') return bad(`request holds an unknown record ${JSON.stringify(r.slice(0, 1))}`);
      args.push(r.slice(1));
    }
    if (i !== records.length) return bad('request has bytes after its end record');
    return {
      ok: true,
      value: { cwd: d.slice(1), configPath: c.length > 1 ? c.slice(1) : undefined, path: p === 'P' ? undefined : p.slice(1), args },
    };
  } catch (e) {
    return bad(`request unreadable: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** True once `buf` holds at least a whole request (it ends with the end record); the service then stops reading. */
export function requestComplete(buf: Buffer): boolean {
  return buf.length >= 3 && buf[buf.length - 1] === NUL && buf[buf.length - 2] === 0x2e && buf[buf.length - 3] === NUL;
}

const rec = (s: string | Buffer): Buffer => Buffer.concat([Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8'), Buffer.from([NUL])]);
const hasNul = (s: string): boolean => s.includes('\0');

/** The bytes the launcher sends (tests, and the reference for the C client). */
export function formatRequest(r: ServeRequest): Buffer {
  for (const s of [r.cwd, r.configPath ?? '', r.path ?? '', ...r.args]) if (hasNul(s)) throw new Error('a request value cannot hold NUL');
  return Buffer.concat([
    rec(SERVE_MAGIC),
    rec(`d${r.cwd}`),
    rec(`c${r.configPath ?? ''}`),
    rec(r.path === undefined ? 'P' : `p${r.path}`),
    ...r.args.map((a) => rec(`a${a}`)),
    rec('.'),
  ]);
}

/** A cold reason as one record: no NUL, never the end record, at most 1 KiB. */
function reasonRecord(reason: string): string {
  let s = reason.replace(/\0/g, ' ').replace(/[\r\n]+/g, ' ');
  if (Buffer.byteLength(s) > 1024) s = Buffer.from(s).subarray(0, 1024).toString('utf8').replace(/\uFFFD+$/, '');
  return s === '.' || s === '' ? `(${s})` : s;
}

function formatCold(reason: string): Buffer {
  return Buffer.concat([rec(SERVE_MAGIC), rec('cold'), rec(reasonRecord(reason)), rec('.')]);
}

/**
 * The answer's bytes. An answer that cannot be said exactly (a NUL in a path, a relative runc or file, more than
 * SERVE_MAX_MESSAGE_BYTES) becomes `cold`: the launcher would refuse it anyway.
 */
export function formatAnswer(a: ServeAnswer): Buffer {
  if (a.kind === 'cold') return formatCold(a.reason);
  if (hasNul(a.runc) || !a.runc.startsWith('/')) return formatCold('runc path not sayable');
  if (a.kind === 'runc') return Buffer.concat([rec(SERVE_MAGIC), rec('runc'), rec(`r${a.runc}`), rec('.')]);
  if (hasNul(a.file) || !a.file.startsWith('/') || hasNul(a.identity) || a.identity === '') return formatCold('write answer not sayable');
  const out = Buffer.concat([
    rec(SERVE_MAGIC), rec('write'), rec(`r${a.runc}`), rec(`f${a.file}`), rec(`i${a.identity}`), rec(`n${a.text.length}`),
    a.text, Buffer.from('.\0'),
  ]);
  return out.length > SERVE_MAX_MESSAGE_BYTES ? formatCold(`answer larger than ${SERVE_MAX_MESSAGE_BYTES} bytes`) : out;
}

/** Parses an answer as strictly as the launcher does (tests; the reference for serve_client.c parse_answer). */
export function parseAnswer(buf: Buffer): Parsed<ServeAnswer> {
  try {
    if (buf.length > SERVE_MAX_MESSAGE_BYTES) return bad('answer oversized');
    let at = 0;
    const next = (): string | undefined => {
      const nul = buf.indexOf(NUL, at);
      if (nul < 0) return undefined;
      const s = buf.subarray(at, nul).toString('utf8');
      at = nul + 1;
      return s;
    };
    if (next() !== SERVE_MAGIC) return bad('answer lacks the magic');
    const kind = next();
    if (kind === 'cold') {
      const reason = next();
      if (reason === undefined || next() !== '.' || at !== buf.length) return bad('malformed cold answer');
      return { ok: true, value: { kind: 'cold', reason } };
    }
    if (kind !== 'runc' && kind !== 'write') return bad('unknown answer kind');
    const r = next();
    if (r === undefined || !r.startsWith('r/')) return bad('answer lacks r');
    if (kind === 'runc') {
      if (next() !== '.' || at !== buf.length) return bad('malformed runc answer');
      return { ok: true, value: { kind: 'runc', runc: r.slice(1) } };
    }
    const f = next();
    if (f === undefined || !f.startsWith('f/')) return bad('answer lacks f');
    const i = next();
    if (i === undefined || i.length < 2 || i[0] !== 'i') return bad('answer lacks i');
    const n = next();
    if (n === undefined || !/^n(0|[1-9][0-9]*)$/.test(n)) return bad('answer lacks n');
    const len = Number(n.slice(1));
    if (!Number.isSafeInteger(len) || buf.length - at !== len + 2 || buf[at + len] !== 0x2e || buf[at + len + 1] !== NUL) return bad('answer text length mismatch');
    return { ok: true, value: { kind: 'write', runc: r.slice(1), file: f.slice(1), identity: i.slice(1), text: Buffer.from(buf.subarray(at, at + len)) } };
  } catch (e) {
    return bad(`answer unreadable: ${e instanceof Error ? e.message : String(e)}`);
  }
}

