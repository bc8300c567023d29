/**
 * Lossless config.json: parse and serialise an OCI runtime spec without losing anything we do not own.
 *
 * - Numbers keep their exact source text (uint64 limits, seccomp arg values): see JsonNumber in types.ts.
 * - Key order is kept (objects are insertion-ordered; the serializer walks them in order).
 * - Fail closed on input that runc (Go encoding/json) could read differently from us: duplicate keys, keys that
 *   differ only in case (Go matches struct fields case-insensitively, the last one wins — golang/go#43664), keys
 *   that are case variants of a field runc reads, and prototype keys (`__proto__`, `constructor`, `prototype`).
 * - Size is capped before the file is read, so hostile input cannot exhaust memory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isLosslessNumber, LosslessNumber, stringify } from 'lossless-json';
import { NvrError } from '../errors.js';
import { SPEC_MAX_BYTES } from '../launcher-contract.js';
import { O_CLOEXEC } from './atomic-write.js';
import { JsonProblem, parseStrictJson, type StrictJsonOptions } from './strict-json.js';
import type { JsonNumber, JsonObject, JsonValue, OciMount, OciSpec } from './types.js';

/** runc has no cap; 32 MiB is far above any real spec (a 22 MB spec exists only in stress tests). The launcher
 *  sends a larger file to us (src/launcher-contract.json), and we refuse it. */
export const SPEC_SIZE_LIMIT = SPEC_MAX_BYTES;

const FIX_INVALID = 'the engine that created the bundle wrote an invalid config.json; inspect it (e.g. `jq . config.json`) and recreate the container';
const FIX_AMBIGUOUS = 'remove the duplicate key: runc (Go) and this runtime could read different values from it';

/** Prototype keys are never legitimate in a spec and are rejected outright. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Objects that Go decodes as maps (case-sensitive keys): only exact duplicates are ambiguous there. */
const MAP_VALUED_KEYS = new Set(['annotations', 'sysctl', 'unified', 'rdma', 'netDevices']);

/** Fields runc reads from the objects we touch; a key that folds to one of these but is spelled differently is rejected. */
const KNOWN_FIELDS: Record<string, readonly string[]> = {
  '': ['ociVersion', 'process', 'root', 'hostname', 'domainname', 'mounts', 'hooks', 'annotations', 'linux', 'solaris', 'windows', 'vm', 'zos', 'freebsd'],
  process: ['terminal', 'consoleSize', 'user', 'args', 'commandLine', 'env', 'cwd', 'capabilities', 'rlimits', 'noNewPrivileges', 'apparmorProfile', 'oomScoreAdj', 'scheduler', 'selinuxLabel', 'ioPriority', 'execCPUAffinity'],
  'process.user': ['uid', 'gid', 'umask', 'additionalGids', 'username'],
  'process.capabilities': ['bounding', 'effective', 'inheritable', 'permitted', 'ambient'],
  root: ['path', 'readonly'],
  'mounts[]': ['destination', 'type', 'source', 'options', 'uidMappings', 'gidMappings'],
  hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
  'hooks.*[]': ['path', 'args', 'env', 'timeout'],
  linux: ['devices', 'uidMappings', 'gidMappings', 'sysctl', 'resources', 'cgroupsPath', 'rootfsPropagation', 'seccomp', 'namespaces', 'maskedPaths', 'readonlyPaths', 'mountLabel', 'intelRdt', 'personality', 'timeOffsets', 'netDevices', 'memoryPolicy'],
  'linux.devices[]': ['type', 'path', 'major', 'minor', 'fileMode', 'uid', 'gid'],
  'linux.resources': ['devices', 'memory', 'cpu', 'pids', 'blockIO', 'hugepageLimits', 'network', 'rdma', 'unified'],
  'linux.resources.devices[]': ['allow', 'type', 'major', 'minor', 'access'],
};

/** Go's case-insensitive field match also folds ſ (U+017F) to s and K (U+212A) to k; upper-then-lower covers both. */
const fold = (key: string): string => key.toUpperCase().toLowerCase();

export interface SpecFile {
  /** Absolute path of config.json. */
  path: string;
  /** The text exactly as read (to skip a rewrite when nothing changed). */
  text: string;
  spec: OciSpec;
}

/** A number stays a plain JS number only when that loses nothing, including its spelling. */
function parseNumber(text: string): JsonNumber {
  const n = Number(text);
  return String(n) === text ? n : new LosslessNumber(text);
}

/** Go's encoding/json allows 10000 levels; real specs use fewer than 10 (seccomp args are the deepest). */
export const SPEC_MAX_DEPTH = 256;

const STRICT: StrictJsonOptions = {
  maxDepth: SPEC_MAX_DEPTH, mapValuedKeys: MAP_VALUED_KEYS, forbiddenKeys: FORBIDDEN_KEYS, fold, parseNumber,
};

function lineCol(text: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return `line ${line} column ${offset - lineStart + 1}`;
}

function specError(file: string, problem: string, fix: string, cause?: unknown): NvrError {
  return new NvrError('SPEC', `${file}: ${problem}`, { fix, cause });
}

/** Rejects a key that is a case variant of a field runc reads: Go would take it as that field, we would not. */
function checkKnownFields(value: JsonValue | undefined, pattern: string, file: string): void {
  if (Array.isArray(value)) {
    for (const item of value) checkKnownFields(item, `${pattern}[]`, file);
    return;
  }
  if (value === null || typeof value !== 'object' || isLosslessNumber(value)) return;
  const known = KNOWN_FIELDS[pattern];
  if (!known) return;
  const obj = value as JsonObject;
  for (const key of Object.keys(obj)) {
    const match = known.find((k) => fold(k) === fold(key));
    if (match === undefined) continue;
    const where = pattern || '(top level)';
    if (match !== key) {
      throw specError(file, `key "${key}" in ${where} is a case variant of "${match}"`, `rename it to "${match}": runc would read it as "${match}"`);
    }
    const child = pattern === 'hooks' ? 'hooks.*' : pattern ? `${pattern}.${key}` : key;
    checkKnownFields(obj[key], child, file);
  }
}

/** Parses config.json text. `file` names the file in every error (e.g. `/run/bundle/config.json`). */
export function parseSpec(text: string, file: string): OciSpec {
  if (text.length > SPEC_SIZE_LIMIT || Buffer.byteLength(text, 'utf8') > SPEC_SIZE_LIMIT) {
    throw specError(file, `larger than the ${SPEC_SIZE_LIMIT} byte limit`, FIX_INVALID);
  }
  if (text.charCodeAt(0) === 0xfeff) {
    throw specError(file, 'starts with a byte order mark, which runc rejects', 'save config.json as UTF-8 without a BOM');
  }
  if (text.trim() === '') throw specError(file, 'is empty', FIX_INVALID);
  let value: JsonValue;
  try {
    value = parseStrictJson(text, STRICT);
  } catch (e) {
    if (!(e instanceof JsonProblem)) throw e;
    const at = `at ${lineCol(text, e.offset)}`;
    if (e.kind === 'key') throw specError(file, `${e.message} ${at}`, e.message.startsWith('forbidden') ? 'remove it: prototype keys are never valid in a spec' : FIX_AMBIGUOUS);
    if (e.kind === 'depth') throw specError(file, `${e.message} ${at} (the limit of this runtime)`, 'no real spec nests this deep; inspect the file and recreate the container');
    throw specError(file, `invalid JSON: ${e.message} ${at}`, FIX_INVALID, e);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || isLosslessNumber(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw specError(file, `must be a JSON object, found ${kind}`, FIX_INVALID);
  }
  checkKnownFields(value as JsonObject, '', file);
  return value as OciSpec;
}

/**
 * Reads `<bundleDir>/config.json`: size checked on the open fd before reading, strict UTF-8, then parseSpec.
 */
export function readSpec(bundleDir: string): SpecFile {
  return readSpecFile(path.resolve(bundleDir, 'config.json'));
}

/** Any spec file (runc's `--config` may name another one), with the same checks as the bundle's config.json. */
export function readSpecFile(file: string): SpecFile {
  let fd: number;
  try {
    // O_NOFOLLOW: the file we check must be the file we rewrite, and a link could point anywhere on the host.
    fd = fs.openSync(file, fs.constants.O_RDONLY | O_CLOEXEC | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw specError(file, 'is a symbolic link: refusing to follow it', 'replace the link with the file itself', e);
    const problem = code === 'ENOENT' ? 'does not exist' : `cannot be opened (${code ?? String(e)})`;
    throw specError(file, problem, 'pass the bundle directory that contains config.json (--bundle)', e);
  }
  let bytes: Buffer;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw specError(file, 'is not a regular file', FIX_INVALID);
    if (st.size > SPEC_SIZE_LIMIT) throw specError(file, `is ${st.size} bytes, above the ${SPEC_SIZE_LIMIT} byte limit`, FIX_INVALID);
    // Read at most limit+1 bytes so a file that grows while we read is still caught, with bounded memory.
    const buf = Buffer.alloc(Math.min(st.size, SPEC_SIZE_LIMIT) + 1);
    let n = 0;
    for (;;) {
      const r = fs.readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n === buf.length) break;
    }
    if (n > SPEC_SIZE_LIMIT) throw specError(file, `is above the ${SPEC_SIZE_LIMIT} byte limit`, FIX_INVALID);
    bytes = buf.subarray(0, n);
  } catch (e) {
    if (e instanceof NvrError) throw e;
    throw specError(file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, FIX_INVALID, e);
  } finally {
    fs.closeSync(fd);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (e) {
    throw specError(file, 'is not valid UTF-8', FIX_INVALID, e);
  }
  return { path: file, text, spec: parseSpec(text, file) };
}

/** Compact JSON, like runc and the engines write it; `space` for the readable form (`explain`, diffs). */
export function serializeSpec(spec: OciSpec, space?: number): string {
  return stringify(spec, null, space) as string;
}

/** The exact JSON text of a number (compare numbers by this; `1` and `1.0` stay distinct on purpose). */
export function jsonNumberText(n: JsonNumber): string {
  return isLosslessNumber(n) ? n.toString() : String(n);
}

export function isJsonNumber(v: unknown): v is JsonNumber {
  return typeof v === 'number' || isLosslessNumber(v);
}

// ---- Readers: plain JS values out of a parsed spec, type-checked (a wrong type is a SPEC error, never a crash) ----

function typeError(file: string, field: string, expected: string): NvrError {
  return specError(file, `${field} must be ${expected}`, FIX_INVALID);
}

function objectField(parent: JsonObject | undefined, key: string, field: string, file: string): JsonObject | undefined {
  const v = parent?.[key];
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object' || Array.isArray(v) || isLosslessNumber(v)) throw typeError(file, field, 'an object');
  return v as JsonObject;
}

function stringArrayField(parent: JsonObject | undefined, key: string, field: string, file: string): string[] {
  const v = parent?.[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw typeError(file, field, 'an array of strings');
  return [...(v as string[])];
}

/** process.env (empty when absent). */
export function getEnv(spec: OciSpec, file = 'config.json'): string[] {
  return stringArrayField(objectField(spec, 'process', 'process', file), 'env', 'process.env', file);
}

/** mounts[] as shallow copies (destination required, options copied). */
export function getMounts(spec: OciSpec, file = 'config.json'): OciMount[] {
  const v = spec.mounts;
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw typeError(file, 'mounts', 'an array');
  return v.map((m, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m) || typeof m.destination !== 'string') {
      throw typeError(file, `mounts[${i}]`, 'an object with a string "destination"');
    }
    for (const k of ['type', 'source'] as const) {
      if (m[k] !== undefined && typeof m[k] !== 'string') throw typeError(file, `mounts[${i}].${k}`, 'a string');
    }
    const options = stringArrayField(m, 'options', `mounts[${i}].options`, file);
    return { ...m, ...(m.options !== undefined ? { options } : {}) };
  });
}

/** annotations (empty when absent); values must be strings. */
export function getAnnotations(spec: OciSpec, file = 'config.json'): Record<string, string> {
  const a = objectField(spec, 'annotations', 'annotations', file);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(a ?? {})) {
    if (typeof v !== 'string') throw typeError(file, `annotations["${k}"]`, 'a string');
    out[k] = v;
  }
  return out;
}

/** process.capabilities.bounding (empty when absent). */
export function getBoundingCapabilities(spec: OciSpec, file = 'config.json'): string[] {
  const proc = objectField(spec, 'process', 'process', file);
  const caps = objectField(proc, 'capabilities', 'process.capabilities', file);
  return stringArrayField(caps, 'bounding', 'process.capabilities.bounding', file);
}

/** root.path as written (absolute, or relative to the bundle); undefined when absent. */
export function getRootPath(spec: OciSpec, file = 'config.json'): string | undefined {
  const root = objectField(spec, 'root', 'root', file);
  const p = root?.path;
  if (p === undefined) return undefined;
  if (typeof p !== 'string' || p === '') throw typeError(file, 'root.path', 'a non-empty string');
  return p;
}
