/**
 * containerd's config.toml (FACTS §4.3): a CRI runtime handler running our runtime under the runc v2 shim.
 * Pure functions over the parsed TOML document; configure.ts does the I/O.
 *
 * Two facts of containerd 1.6 (checked with `containerd config dump`) shape this module:
 * - a `runtimes` table in a config replaces the built-in one, so adding `nvidia` to a config that defines no
 *   handler would drop the default `runc` handler: we add `runc` too in that case;
 * - an imported file replaces each plugin's table as a whole (no deep merge), so a drop-in carries the complete
 *   CRI plugin table of the main config, with our handler added.
 */
import { parse, stringify, TomlError, type TomlTable } from 'smol-toml';
import { NvrError } from '../errors.js';
import type { EngineOptions } from './configure.js';

export type { TomlTable };
export type ContainerdConfigVersion = 2 | 3;

/** config version → the CRI plugin that owns `containerd.runtimes` (v2: containerd 1.x, v3: containerd 2.x). */
export const CRI_PLUGIN: Record<ContainerdConfigVersion, string> = { 2: 'io.containerd.grpc.v1.cri', 3: 'io.containerd.cri.v1.runtime' };
export const RUNC_SHIM = 'io.containerd.runc.v2';
/** What we add when the config has no handler table at all (the built-in default handler, spelled out). */
const DEFAULT_RUNC_HANDLER = { runtime_type: RUNC_SHIM };

export const isTable = (v: unknown): v is TomlTable =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

/** Deep copy of tables and arrays; leaf values (TomlDate, bigint…) are immutable and shared. */
export function cloneTable<T extends TomlTable>(t: T): T {
  const copy = (v: unknown): unknown => (Array.isArray(v) ? v.map(copy) : isTable(v) ? cloneTable(v) : v);
  const out: TomlTable = {};
  for (const [k, v] of Object.entries(t)) out[k] = copy(v) as TomlTable[string];
  return out as T;
}

export function parseToml(text: string, file: string): TomlTable {
  try {
    // 64-bit integers (IoUid, oom_score…) survive as bigint instead of being rounded.
    return parse(text, { integersAsBigInt: 'asNeeded' }) as TomlTable;
  } catch (e) {
    const why = e instanceof TomlError
      ? `${e.message.split('\n')[0].replace(/^Invalid TOML document: /, '')} at line ${e.line}, column ${e.column}`
      : (e as Error).message;
    throw new NvrError('INPUT', `${file}: not valid TOML: ${why}`, { fix: 'fix the file by hand (it was left untouched) and run the command again' });
  }
}

export function formatToml(doc: TomlTable): string {
  const text = stringify(doc);
  return text === '' || text.endsWith('\n') ? text : text + '\n';
}

/** A key path as TOML spells it: `plugins."io.containerd.grpc.v1.cri".containerd`. */
const tomlPath = (keys: readonly string[]): string => keys.map((k) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k))).join('.');

/** The table at `path` under `doc`, created when missing; a non-table in the way is the user's to fix. */
export function subTable(doc: TomlTable, path: string[], file: string): TomlTable {
  let t = doc;
  for (const [i, key] of path.entries()) {
    const v = t[key];
    if (v === undefined) t[key] = {};
    else if (!isTable(v)) {
      const where = tomlPath(path.slice(0, i + 1));
      throw new NvrError('INPUT', `${file}: ${where} is not a table`, { fix: `make ${where} a TOML table or remove it` });
    }
    t = t[key] as TomlTable;
  }
  return t;
}

/** The table at `path`, or undefined (never creates anything). */
export function findTable(doc: TomlTable, path: string[]): TomlTable | undefined {
  let t: unknown = doc;
  for (const key of path) t = isTable(t) ? t[key] : undefined;
  return isTable(t) ? t : undefined;
}

/** Deletes the now-empty tables along `path`, deepest first. */
export function pruneEmpty(doc: TomlTable, path: string[]): void {
  for (let n = path.length; n > 0; n--) {
    const parent = findTable(doc, path.slice(0, n - 1));
    const child = parent?.[path[n - 1]];
    if (!parent || !isTable(child) || Object.keys(child).length > 0) return;
    delete parent[path[n - 1]];
  }
}

/**
 * The config version a document is written for. Version 1 (plugin id `cri`) is refused rather than guessed at; a
 * document without `version` is new or empty, so it gets the version of the installed containerd (`fallback`).
 */
export function containerdConfigVersion(doc: TomlTable, file: string, fallback: ContainerdConfigVersion): ContainerdConfigVersion {
  const v = doc.version;
  if (v === undefined) {
    // Version 1 names plugins by short id (`[plugins.cri]`, `[plugins.linux]`); 2 and 3 by full id.
    if (Object.keys(findTable(doc, ['plugins']) ?? {}).some((id) => !id.includes('.'))) throw v1Error(file);
    return fallback;
  }
  if (v === 2 || v === 2n) return 2;
  if (v === 3 || v === 3n) return 3;
  if (v === 1 || v === 1n) throw v1Error(file);
  throw new NvrError('INPUT', `${file}: unsupported config version ${String(v)}`, { fix: 'containerd configs are version 2 (containerd 1.x) or 3 (containerd 2.x)' });
}

function v1Error(file: string): NvrError {
  return new NvrError('INPUT', `${file}: containerd config version 1 is not supported`, {
    fix: 'convert it to version 2 (plugin ids such as "io.containerd.grpc.v1.cri"; `containerd config default` shows the layout)',
  });
}


const runtimesPath = (version: ContainerdConfigVersion) => ['plugins', CRI_PLUGIN[version], 'containerd', 'runtimes'];

/** The handler whose settings ours inherits: the default handler when it is a runc shim, else `runc`. */
function baseHandler(containerd: TomlTable, runtimes: TomlTable, ours: string): TomlTable | undefined {
  const name = typeof containerd.default_runtime_name === 'string' ? containerd.default_runtime_name : 'runc';
  for (const candidate of [name, 'runc']) {
    const h = runtimes[candidate];
    if (candidate !== ours && isTable(h) && (h.runtime_type === undefined || h.runtime_type === RUNC_SHIM)) return h;
  }
  return undefined;
}

/**
 * Adds (or updates) the handler `plugins.<cri>.containerd.runtimes.<name>`: runc v2 shim, BinaryName = our
 * runtime, the other keys and `options` (SystemdCgroup, Root…) inherited from the runc handler. Keys already set
 * on our handler win over inherited ones, so hand edits survive a re-run. `container_annotations` gains a glob
 * for each CDI annotation prefix, so that the CDI-annotations device-plugin strategy reaches the runtime. Sets
 * `version` when it was missing.
 */
export function configureContainerd(
  input: TomlTable,
  opts: EngineOptions & { version: ContainerdConfigVersion; cdiAnnotationPrefixes: readonly string[]; file?: string },
): TomlTable {
  const file = opts.file ?? 'config.toml';
  // `version` first: containerd reads a config without it as version 1.
  const doc = input.version === undefined ? { version: opts.version, ...cloneTable(input) } : cloneTable(input);
  const path = runtimesPath(opts.version);
  const cri = subTable(doc, path.slice(0, 2), file);
  const containerd = subTable(doc, path.slice(0, 3), file);
  const hadRuntimes = isTable(containerd.runtimes);
  const runtimes = subTable(doc, path, file);
  if (!hadRuntimes) runtimes.runc = { ...DEFAULT_RUNC_HANDLER };

  const base = baseHandler(containerd, runtimes, opts.runtimeName);
  const existing = runtimes[opts.runtimeName];
  const mine = isTable(existing) ? existing : {};
  const inherited = base ? cloneTable(base) : {};
  const options = { ...(isTable(inherited.options) ? inherited.options : {}), ...(isTable(mine.options) ? cloneTable(mine.options) : {}), BinaryName: opts.runtimePath };
  const handler: TomlTable = { ...inherited, ...cloneTable(mine), runtime_type: RUNC_SHIM, options };
  const annotations = withCdiAnnotations(handler.container_annotations, opts.cdiAnnotationPrefixes, tomlPath([...path, opts.runtimeName]), file);
  if (annotations.length > 0) handler.container_annotations = annotations;
  runtimes[opts.runtimeName] = handler;

  if (opts.setAsDefault) containerd.default_runtime_name = opts.runtimeName;
  if (opts.cdiEnabled) cri.enable_cdi = true;
  return doc;
}

/**
 * The handler's `container_annotations` with a `<prefix>*` glob for each CDI annotation prefix the runtime reads
 * (containerd drops every other pod annotation before the runtime sees it). Entries already there are kept, first.
 */
function withCdiAnnotations(current: unknown, prefixes: readonly string[], where: string, file: string): string[] {
  if (current !== undefined && !(Array.isArray(current) && current.every((a) => typeof a === 'string'))) {
    throw new NvrError('INPUT', `${file}: ${where}.container_annotations is not a list of strings`, { fix: 'make it an array of annotation globs such as "cdi.k8s.io/*", or remove it' });
  }
  const kept = (current ?? []) as string[];
  return [...kept, ...prefixes.map((p) => `${p}*`).filter((glob) => !kept.includes(glob))];
}

/**
 * Removes what configureContainerd adds: our handler, `default_runtime_name` when it names it, the spelled-out
 * default `runc` handler when it is all that is left, and tables left empty. `enable_cdi` stays (engine-wide).
 */
export function unconfigureContainerd(input: TomlTable, opts: Pick<EngineOptions, 'runtimeName'>): TomlTable {
  const doc = cloneTable(input);
  for (const version of [2, 3] as const) {
    const path = runtimesPath(version);
    const runtimes = findTable(doc, path);
    const containerd = findTable(doc, path.slice(0, -1));
    if (!runtimes || !containerd || !(opts.runtimeName in runtimes)) continue;
    delete runtimes[opts.runtimeName];
    if (containerd.default_runtime_name === opts.runtimeName) delete containerd.default_runtime_name;
    const left = Object.keys(runtimes);
    if (left.length === 1 && left[0] === 'runc' && isTable(runtimes.runc) && Object.keys(runtimes.runc).length === 1 && runtimes.runc.runtime_type === RUNC_SHIM) {
      delete runtimes.runc;
    }
    pruneEmpty(doc, path);
  }
  return doc;
}

/**
 * The drop-in file for a configured main document: its version and the complete CRI plugin table (containerd
 * 1.x replaces a plugin's table with the imported one; a copy makes the result the same as editing the main file).
 */
export function containerdDropIn(configured: TomlTable, version: ContainerdConfigVersion): TomlTable {
  const cri = findTable(configured, ['plugins', CRI_PLUGIN[version]]) ?? {};
  return { version, plugins: { [CRI_PLUGIN[version]]: cloneTable(cri) } };
}

/**
 * `*` and `?` within one path component, as Go's filepath.Match / path.Match that containerd uses for imports and
 * for `container_annotations`.
 */
export function globMatches(pattern: string, path: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${re}$`).test(path);
}

/** Adds `dropIn` to the main document's `imports` unless an entry (a path or a glob) already covers it. */
export function addContainerdImport(input: TomlTable, dropIn: string, version: ContainerdConfigVersion, file: string): TomlTable {
  const doc = cloneTable(input);
  if (doc.version === undefined) doc.version = version;
  const imports = doc.imports ?? [];
  if (!Array.isArray(imports) || imports.some((i) => typeof i !== 'string')) {
    throw new NvrError('INPUT', `${file}: imports is not a list of paths`, { fix: 'make imports an array of strings' });
  }
  if (!imports.some((i) => globMatches(i as string, dropIn))) doc.imports = [...imports, dropIn];
  return doc;
}

/** Removes the exact `dropIn` entry from `imports` (a glob the user wrote stays). */
export function removeContainerdImport(input: TomlTable, dropIn: string): TomlTable {
  const doc = cloneTable(input);
  if (!Array.isArray(doc.imports) || !doc.imports.includes(dropIn)) return doc;
  const left = doc.imports.filter((i) => i !== dropIn);
  if (left.length === 0) delete doc.imports;
  else doc.imports = left;
  return doc;
}

/** `containerd --version` → its config version: 1.x reads version 2, 2.x reads version 3. */
export function configVersionForContainerd(versionOutput: string | undefined): ContainerdConfigVersion {
  const m = /\sv?(\d+)\.\d+/.exec(versionOutput ?? '');
  return m && Number(m[1]) >= 2 ? 3 : 2;
}
