/**
 * `nvidia-ctk config` (PEER.md §3.4 `config`, §3.7; docs/configuration.md "nvidia-ctk config"):
 *
 *   nvidia-ctk config default|create-default|generate-default [-o FILE]
 *   nvidia-ctk config [--config-file|--config|-c FILE] [--set KEY[=VALUE]]... [--set-list-separator SEP] [--in-place|-i | --output|-o FILE]
 *
 * `--set` keys are the dotted key paths of config.toml; which keys exist and the type of each value come from the
 * one schema (src/config/schema.ts CONFIG_SCHEMA), the result is checked by the loader's own validator
 * (parseConfig), so a file this command writes is one the runtime loads. The file is edited as text: the line of
 * the key is replaced (its trailing comment kept), a missing key is added to its table (after a commented
 * `#key = …` example when there is one), so every other line — comments, unknown keys, layout — stays as it was.
 * Only when the file's layout defeats that (dotted keys spanning tables, inline tables, …) is the document
 * re-serialised with smol-toml's stringify, which drops comments; a warning says so.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Argv, CommandModule } from 'yargs';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { renderDefaultConfigToml } from '../config/defaults.js';
import { configFilePath, MAX_CONFIG_BYTES, parseConfig } from '../config/load.js';
import { CONFIG_SCHEMA, isPlainTable } from '../config/schema.js';
import { NvrError, isNvrError } from '../errors.js';
import { writeFileAtomic } from '../oci/atomic-write.js';

// ---------------------------------------------------------------------------------------------------------------
// The keys, from the schema.

export type ConfigValueKind = 'boolean' | 'string' | 'string[]';
export type SetValue = boolean | string | string[];

export interface ConfigKey {
  key: string;
  path: string[];
  kind: ConfigValueKind;
  /** Unset by default (the toolkit's pointer fields, i.e. `[features]`): `KEY=nil` removes it from the file. */
  removable: boolean;
}

type Schema = Record<string, unknown>;

function walkSchema(schema: Schema, prefix: string[], keys: Map<string, ConfigKey>, tables: Set<string>): void {
  const props = (schema.properties ?? {}) as Record<string, Schema>;
  for (const [name, sub] of Object.entries(props)) {
    const path = [...prefix, name];
    const key = path.join('.');
    if (sub.type === 'object') {
      tables.add(key);
      walkSchema(sub, path, keys, tables);
      continue;
    }
    const kind: ConfigValueKind | undefined =
      sub.type === 'boolean' ? 'boolean' : sub.type === 'string' ? 'string' : sub.type === 'array' && (sub.items as Schema | undefined)?.type === 'string' ? 'string[]' : undefined;
    if (kind) keys.set(key, { key, path, kind, removable: path[0] === 'features' });
  }
}

const KEYS = new Map<string, ConfigKey>();
const TABLES = new Set<string>();
walkSchema(CONFIG_SCHEMA, [], KEYS, TABLES);

/** Every settable key (dotted path → type), in schema order. */
export function configKeys(): ReadonlyMap<string, ConfigKey> {
  return KEYS;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The error for a key that is not a value of config.toml: names it, the nearest known key, and its table's keys. */
function unknownKey(flag: string, key: string): NvrError {
  const all = [...KEYS.keys()];
  if (TABLES.has(key)) {
    const under = all.filter((k) => k.startsWith(`${key}.`)).map((k) => k.slice(key.length + 1));
    return new NvrError('INPUT', `--set ${flag}: ${JSON.stringify(key)} is a table, not a value`, { fix: `set one of its keys: ${under.map((k) => `${key}.${k}`).join(', ')}` });
  }
  const parts = key.split('.');
  let table = '';
  for (let i = parts.length - 1; i > 0 && table === ''; i--) if (TABLES.has(parts.slice(0, i).join('.'))) table = parts.slice(0, i).join('.');
  const siblings = table === '' ? all : all.filter((k) => k.startsWith(`${table}.`));
  let best: string | undefined;
  let bestDistance = Math.max(3, Math.floor(key.length / 4)) + 1;
  for (const k of all) {
    const dist = editDistance(key, k);
    if (dist < bestDistance) [best, bestDistance] = [k, dist];
  }
  const known = siblings.map((k) => (table ? k.slice(table.length + 1) : k)).join(', ');
  return new NvrError('INPUT', `--set ${flag}: unknown config key ${JSON.stringify(key)}`, {
    fix: `${best ? `did you mean ${best}? ` : ''}known keys${table ? ` under ${table}` : ''}: ${known}`,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// --set KEY[=VALUE]

/** Without --set-list-separator a list value is split at `:` (the toolkit's separator) and at `,`. */
export const DEFAULT_LIST_SEPARATORS = /[:,]/;

export interface ConfigSet {
  /** The --set argument as given. */
  flag: string;
  key: string;
  path: string[];
  kind: ConfigValueKind;
  /** undefined: remove the key (`features.X=nil`). */
  value: SetValue | undefined;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const GO_TRUE = ['1', 't', 'T', 'TRUE', 'true', 'True'];
const GO_FALSE = ['0', 'f', 'F', 'FALSE', 'false', 'False'];

/**
 * One --set argument → key and typed value (the toolkit's setFlagToKeyValue): `KEY` alone means true for a boolean
 * key; booleans take Go's ParseBool spellings; a string is taken verbatim (it may contain `=`); a list is split at
 * `listSeparator` (default `:` and `,`), an empty value being the empty list; `nil` removes a `[features]` key.
 */
export function parseSetFlag(flag: string, listSeparator?: string): ConfigSet {
  const eq = flag.indexOf('=');
  const key = eq < 0 ? flag : flag.slice(0, eq);
  const raw = eq < 0 ? undefined : flag.slice(eq + 1);
  const known = KEYS.get(key);
  if (!known) throw unknownKey(flag, key);
  const base = { flag, key, path: [...known.path], kind: known.kind };
  if (raw !== undefined && LONE_SURROGATE.test(raw)) {
    throw new NvrError('INPUT', `--set ${key}=…: the value is not valid Unicode`, { fix: 'give the value as UTF-8 text' });
  }
  if (raw === undefined) {
    if (known.kind === 'boolean') return { ...base, value: true };
    throw new NvrError('INPUT', `--set ${flag}: expected ${key}=VALUE`, { fix: `give a value, e.g. --set ${key}=${known.kind === 'string[]' ? 'A:B' : 'VALUE'}` });
  }
  if (raw === 'nil' && known.removable) return { ...base, value: undefined };
  switch (known.kind) {
    case 'boolean':
      if (GO_TRUE.includes(raw)) return { ...base, value: true };
      if (GO_FALSE.includes(raw)) return { ...base, value: false };
      throw new NvrError('INPUT', `--set ${flag}: ${key} is a boolean, not ${JSON.stringify(raw)}`, {
        fix: `use ${key}=true or ${key}=false${known.removable ? `, or ${key}=nil to remove it` : ''}`,
      });
    case 'string':
      return { ...base, value: raw };
    case 'string[]': {
      if (listSeparator === '') throw new NvrError('INPUT', '--set-list-separator must not be empty', { fix: 'give a separator such as ";"' });
      return { ...base, value: raw === '' ? [] : raw.split(listSeparator ?? DEFAULT_LIST_SEPARATORS) };
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Editing config.toml as text.

/** A TOML basic string: JSON's escapes are TOML's, plus DEL, which TOML does not allow raw. */
export function tomlString(s: string): string {
  return JSON.stringify(s).replace(/\x7f/g, '\\u007f');
}

export function renderTomlValue(v: SetValue): string {
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return tomlString(v);
  return `[${v.map(tomlString).join(', ')}]`;
}

const renderKeyPart = (k: string): string => (/^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k));

interface Statement {
  kind: 'table' | 'array-table' | 'keyval';
  /** Full dotted path; undefined for key/values inside an array of tables (never edited). */
  path: string[] | undefined;
  start: number;
  /** Last line of the statement (a multi-line array or string spans several). */
  end: number;
  /** keyval: column where the value starts on line `start`. */
  valueColumn?: number;
}

const BARE = /[A-Za-z0-9_-]+/y;
const BASIC = /"((?:[^"\\\n]|\\.)*)"/y;
const LITERAL = /'([^'\n]*)'/y;
const DOT = /[ \t]*\.[ \t]*/y;

/** A dotted key starting at `pos`: its parts and where it ends; undefined when it is not one we can read. */
function readKey(line: string, pos: number): { parts: string[]; end: number } | undefined {
  const parts: string[] = [];
  let i = pos;
  for (;;) {
    let m: RegExpExecArray | null;
    BARE.lastIndex = BASIC.lastIndex = LITERAL.lastIndex = i;
    if ((m = BARE.exec(line))) parts.push(m[0]);
    else if ((m = BASIC.exec(line))) {
      try {
        parts.push(JSON.parse(`"${m[1]}"`) as string);
      } catch {
        return undefined; // a TOML-only escape (\U, \e): leave such files to the re-serialiser
      }
    } else if ((m = LITERAL.exec(line))) parts.push(m[1]);
    else return undefined;
    i += m[0].length;
    DOT.lastIndex = i;
    const dot = DOT.exec(line);
    if (!dot) return { parts, end: i };
    i += dot[0].length;
  }
}

function parsesAsValue(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: (parseToml(`v = ${text}\n`) as Record<string, unknown>).v };
  } catch {
    return { ok: false };
  }
}

/** The statements of a document that parses, line by line; undefined when a line is beyond this reader. */
function scan(lines: string[]): Statement[] | undefined {
  const out: Statement[] = [];
  let table: string[] | undefined = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const indent = /^[ \t]*/.exec(line)![0].length;
    const rest = line.slice(indent);
    if (rest === '' || rest.startsWith('#')) continue;
    if (rest.startsWith('[')) {
      const arrayTable = rest.startsWith('[[');
      let p = indent + (arrayTable ? 2 : 1);
      while (line[p] === ' ' || line[p] === '\t') p++;
      const k = readKey(line, p);
      if (!k) return undefined;
      const close = new RegExp(`^[ \\t]*${arrayTable ? '\\]\\]' : '\\]'}[ \\t]*(#.*)?$`).exec(line.slice(k.end));
      if (!close) return undefined;
      table = arrayTable ? undefined : k.parts;
      out.push({ kind: arrayTable ? 'array-table' : 'table', path: k.parts, start: i, end: i });
      continue;
    }
    const k = readKey(line, indent);
    if (!k) return undefined;
    const eq = /^[ \t]*=[ \t]*/.exec(line.slice(k.end));
    if (!eq) return undefined;
    const valueColumn = k.end + eq[0].length;
    let end = i;
    let text = line.slice(valueColumn);
    while (!parsesAsValue(text).ok) {
      if (++end >= lines.length) return undefined;
      text += `\n${lines[end]}`;
    }
    out.push({ kind: 'keyval', path: table ? [...table, ...k.parts] : undefined, start: i, end, valueColumn });
    i = end;
  }
  return out;
}

const samePath = (a: readonly string[] | undefined, b: readonly string[]): boolean => a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

/** The replacement of a key/value statement's value, keeping what precedes it and a trailing comment. */
function replaceValue(lines: string[], st: Statement, rendered: string): string[] {
  const first = lines[st.start].slice(0, st.valueColumn);
  const value = [lines[st.start].slice(st.valueColumn!), ...lines.slice(st.start + 1, st.end + 1)].join('\n');
  const full = parsesAsValue(value);
  const lastStart = value.lastIndexOf('\n') + 1;
  let comment = '';
  for (let k = value.indexOf('#', lastStart); k >= 0; k = value.indexOf('#', k + 1)) {
    const cut = parsesAsValue(value.slice(0, k));
    if (cut.ok && full.ok && isDeepStrictEqual(cut.value, full.value)) {
      comment = `${/[ \t]*$/.exec(value.slice(0, k))![0] || ' '}${value.slice(k)}`;
      break;
    }
  }
  return [`${first}${rendered}${comment}`];
}

/**
 * `text` with the value at `path` set to `value` (undefined: the key removed), everything else kept; undefined
 * when the layout is beyond a line edit. The caller checks the result (see applyConfigSets).
 */
export function editTomlText(text: string, path: readonly string[], value: SetValue | undefined): string | undefined {
  const lines = text.split('\n');
  const statements = scan(lines);
  if (!statements) return undefined;
  const splice = (start: number, deleteCount: number, add: string[]): string => {
    lines.splice(start, deleteCount, ...add);
    return lines.join('\n');
  };
  const existing = statements.find((s) => s.kind === 'keyval' && samePath(s.path, path));
  if (existing) {
    if (value === undefined) return splice(existing.start, existing.end - existing.start + 1, []);
    return splice(existing.start, existing.end - existing.start + 1, replaceValue(lines, existing, renderTomlValue(value)));
  }
  if (value === undefined) return text;

  const parent = path.slice(0, -1);
  const leaf = path[path.length - 1];
  const line = `${renderKeyPart(leaf)} = ${renderTomlValue(value)}`;
  const headers = statements.filter((s) => s.kind !== 'keyval');
  const header = parent.length === 0 ? undefined : headers.find((s) => s.kind === 'table' && samePath(s.path, parent));
  if (parent.length > 0 && !header) {
    // No [parent] table: add one at the end.
    const tail = text === '' || text.endsWith('\n') ? '' : '\n';
    const gap = text.trim() === '' ? '' : '\n';
    return `${text}${tail}${gap}[${parent.map(renderKeyPart).join('.')}]\n${line}\n`;
  }
  const sectionStart = header ? header.start + 1 : 0;
  const next = headers.find((s) => s.start >= sectionStart);
  const sectionEnd = next ? next.start : lines.length; // exclusive
  // After a commented example of the same key (`#key = …`), as the default file has them.
  const example = new RegExp(`^[ \\t]*#[ \\t]*${leaf.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[ \\t]*=`);
  for (let i = sectionEnd - 1; i >= sectionStart; i--) if (example.test(lines[i])) return splice(i + 1, 0, [line]);
  const last = statements.filter((s) => s.kind === 'keyval' && s.start >= sectionStart && s.start < sectionEnd).pop();
  if (last) return splice(last.end + 1, 0, [line]);
  if (header) return splice(header.start + 1, 0, [line]);
  // A top-level key in a file without top-level keys: before the first table and the comment block above it.
  if (!next) {
    const tail = text === '' || text.endsWith('\n') ? '' : '\n';
    return `${text}${tail}${line}\n`;
  }
  let at = next.start;
  while (at > 0 && /^[ \t]*#/.test(lines[at - 1])) at--;
  return splice(at, 0, [line, '']);
}

// ---------------------------------------------------------------------------------------------------------------
// Applying --set to a document.

function getPath(doc: Record<string, unknown>, path: readonly string[], file: string): unknown {
  let cur: unknown = doc;
  for (const [i, p] of path.entries()) {
    if (!isPlainTable(cur)) {
      throw new NvrError('CONFIG', `config.toml ${file}: ${path.slice(0, i).join('.')} is not a table, so ${path.join('.')} cannot be set`, { fix: `make ${path.slice(0, i).join('.')} a table in ${file}` });
    }
    cur = Object.hasOwn(cur, p) ? cur[p] : undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

function setPath(doc: Record<string, unknown>, path: readonly string[], value: SetValue | undefined): void {
  let cur = doc;
  for (const p of path.slice(0, -1)) {
    if (!Object.hasOwn(cur, p)) {
      if (value === undefined) return;
      cur[p] = Object.create(null) as Record<string, unknown>; // like smol-toml's tables, so documents compare equal
    }
    cur = cur[p] as Record<string, unknown>; // getPath checked it is a table
  }
  const leaf = path[path.length - 1];
  if (value === undefined) delete cur[leaf];
  else cur[leaf] = Array.isArray(value) ? [...value] : value;
}

function parseDocument(text: string, file: string): Record<string, unknown> {
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch {
    parseConfig(text, file); // throws the loader's one-line error (size, or where the syntax is wrong)
    throw new NvrError('CONFIG', `config.toml ${file}: invalid TOML`, { fix: 'correct the syntax (see `nvidia-ctk config default`)' });
  }
}

/** Checks one value alone with the loader's validator, so an error names the --set that caused it. */
function checkSet(set: ConfigSet): void {
  if (set.value === undefined) return;
  const single: Record<string, unknown> = {};
  setPath(single, set.path, set.value);
  const label = `--set ${set.key}`;
  try {
    parseConfig(stringifyToml(single), label);
  } catch (e) {
    if (!isNvrError(e)) throw e;
    const prefix = `config.toml ${label}: `;
    const what = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
    throw new NvrError('INPUT', `--set ${set.flag}: ${what}`, { fix: 'see `nvidia-ctk config default` and docs/configuration.md for the values each key takes' });
  }
}

export interface SetResult {
  text: string;
  /** The layout could not be edited line by line: the document was re-serialised (comments dropped). */
  reserialised: boolean;
  /** The loader's warnings for the result (unknown keys kept from the file, …). */
  warnings: string[];
}

/** `text` (config.toml `file`) with every set applied in order, checked as the runtime would load it. */
export function applyConfigSets(text: string, file: string, sets: readonly ConfigSet[]): SetResult {
  for (const s of sets) checkSet(s);
  const doc = parseDocument(text, file);
  let edited: string | undefined = text;
  for (const s of sets) {
    const current = getPath(doc, s.path, file);
    if (isDeepStrictEqual(current, s.value)) continue; // already so: the file is left as it is
    setPath(doc, s.path, s.value);
    if (edited !== undefined) edited = editTomlText(edited, s.path, s.value);
  }
  let reserialised = false;
  let out = edited;
  if (out === undefined || !sameDocument(out, doc)) {
    out = stringifyToml(doc);
    reserialised = true;
  }
  const config = parseConfig(out, file);
  return { text: out, reserialised, warnings: [...config.warnings] };
}

function sameDocument(text: string, doc: Record<string, unknown>): boolean {
  try {
    return isDeepStrictEqual(parseToml(text), doc);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The command.

export interface ConfigDeps {
  env: Readonly<Record<string, string | undefined>>;
  /** Reads config.toml; throws an errno-style error (`code: 'ENOENT'`) or NvrError. */
  readFile: (file: string) => string;
  /** Writes atomically (creating the directory). */
  writeFile: (file: string, text: string) => void;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

function readConfigText(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    if (st.size > MAX_CONFIG_BYTES) throw new NvrError('CONFIG', `config.toml ${file}: larger than ${MAX_CONFIG_BYTES} bytes`, { fix: 'this is not a config file; check the path' });
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

const defaultDeps: ConfigDeps = {
  env: process.env,
  readFile: readConfigText,
  writeFile: (file, text) => {
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    writeFileAtomic(file, text); // keeps an existing file's owner and mode; a new one is 0644
  },
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

interface ConfigArgs {
  'config-file'?: string;
  set?: string[];
  'set-list-separator'?: string;
  'in-place'?: boolean;
  output?: string;
}

interface DefaultArgs {
  output?: string;
}

const toStdout = (output: string | undefined): boolean => output === undefined || output === '' || output === '-';

function defaultCommand(d: ConfigDeps): CommandModule<object, DefaultArgs> {
  return {
    command: 'default',
    aliases: ['create-default', 'generate-default'],
    describe: 'print (or write with -o) the default config.toml, every key with a comment',
    builder: (y: Argv<object>) =>
      y.option('output', { alias: 'o', type: 'string', describe: 'file to write (atomically); default stdout' }) as unknown as Argv<DefaultArgs>,
    handler: (args) => {
      const text = renderDefaultConfigToml();
      if (toStdout(args.output)) d.stdout(text);
      else d.writeFile(args.output!, text);
    },
  };
}

export function createConfigCommand(deps: Partial<ConfigDeps> = {}): CommandModule<object, ConfigArgs> {
  const d: ConfigDeps = { ...defaultDeps, ...deps };
  return {
    command: 'config',
    describe: 'show config.toml, set keys in it (--set KEY=VALUE, --in-place), or print the defaults (config default)',
    builder: (y: Argv<object>) =>
      y
        .command(defaultCommand(d) as unknown as CommandModule<object, object>)
        .option('config-file', { alias: ['config', 'c'], type: 'string', describe: 'the config.toml to read (default $NVIDIA_CTK_CONFIG_FILE_PATH, else /etc/nvidia-container-runtime/config.toml)' })
        .option('set', { type: 'string', array: true, global: false, describe: 'KEY[=VALUE]: set a dotted key (repeatable; KEY alone = true for a boolean; lists split at : or ,; features.X=nil removes X)' })
        .option('set-list-separator', { type: 'string', global: false, describe: 'split list values at this string only (e.g. ";" for env values containing ":")' })
        .option('in-place', { alias: 'i', type: 'boolean', global: false, describe: 'write the result back to the config file (atomically)' })
        .option('output', { alias: 'o', type: 'string', global: false, describe: 'write the result to this file (atomically); default stdout' }) as unknown as Argv<ConfigArgs>,
    handler: (args) => {
      if (args['in-place'] && !toStdout(args.output)) {
        throw new NvrError('INPUT', 'cannot specify both --in-place and --output', { fix: 'use --in-place to rewrite the config file, or --output FILE to write elsewhere' });
      }
      if (args['config-file'] === '') throw new NvrError('INPUT', '--config-file is empty', { fix: 'name the config.toml to read, or leave the flag out for the default' });
      if (args.set !== undefined && args.set.length === 0) throw new NvrError('INPUT', '--set needs KEY[=VALUE]', { fix: 'e.g. --set nvidia-container-runtime.mode=cdi' });
      if (args['set-list-separator'] === '') throw new NvrError('INPUT', '--set-list-separator is empty', { fix: 'give a separator such as ";"' });
      const file = args['config-file'] ?? configFilePath(d.env);
      const sets = (args.set ?? []).map((f) => parseSetFlag(f, args['set-list-separator']));
      let text: string;
      let exists = true;
      try {
        text = d.readFile(file);
      } catch (e) {
        if (isNvrError(e)) throw e;
        const code = (e as NodeJS.ErrnoException | undefined)?.code;
        if (code !== 'ENOENT') {
          throw new NvrError('CONFIG', `config.toml ${file}: cannot read${code ? ` (${code})` : ''}`, { fix: 'make it a readable regular file, or name another one with --config-file', cause: e });
        }
        text = renderDefaultConfigToml(); // like the toolkit: no file means the defaults
        exists = false;
      }
      const result = applyConfigSets(text, file, sets);
      for (const w of result.warnings) d.stderr(`nvidia-ctk: warning: config.toml ${file}: ${w}\n`);
      if (result.reserialised) {
        d.stderr(`nvidia-ctk: warning: config.toml ${file}: its layout could not be edited line by line, so it was re-serialised and its comments dropped\n`);
      }
      if (args['in-place']) {
        if (!exists || result.text !== text) d.writeFile(file, result.text);
      } else if (toStdout(args.output)) d.stdout(result.text);
      else d.writeFile(args.output!, result.text);
    },
  };
}

export const configCommand = createConfigCommand();
