/**
 * Load config.toml: locate (explicit file > $NVIDIA_CTK_CONFIG_FILE_PATH > /etc/...), read, parse (smol-toml),
 * validate (ajv, first error only, one line naming the key path), overlay on the defaults, freeze.
 * A missing default file means the defaults; unknown keys are warnings in the result, never errors.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { isAbsolute } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv as AjvClass, ErrorObject, ValidateFunction } from 'ajv';
import { parse as parseToml, TomlError } from 'smol-toml';
import { NvrError } from '../errors.js';
import { DRIVER_OPTIONS, isCapability, type Capability, type DriverOption } from '../host/capabilities.js';
import { trustProblem } from '../trust.js';
import { CONFIG_PATH_ENV, DEFAULT_CONFIG_PATH, identityOf, isTrusted, statIdentity } from '../launcher-contract.js';
import { deepFreeze, mutableDefaults, renderDefaultConfigToml } from './defaults.js';
import {
  CONFIG_SCHEMA,
  KNOWN_CAPABILITIES,
  KNOWN_FEATURES,
  isPlainTable,
  unknownKeys,
  type CudaCompatMode,
  type FrozenRuntimeConfig,
  type RuntimeConfig,
  type RuntimeMode,
} from './schema.js';

export { CONFIG_PATH_ENV };
/** A config file is a few KiB; anything this large is not one (fail closed rather than parse it). */
export const MAX_CONFIG_BYTES = 1 << 20;

export interface LoadConfigOptions {
  env: Readonly<Record<string, string | undefined>>;
  /** Reads a file as UTF-8; throws an errno-style error (`code: 'ENOENT'`…) on failure. Default: readTrustedConfigFile. */
  readFile?: (path: string) => string | ConfigSource;
  /** A file named on the command line (`--config`): it must exist, unlike the default location. */
  file?: string;
}

/** Which file to read: $NVIDIA_CTK_CONFIG_FILE_PATH when set and non-empty, else the default location. */
export function configFilePath(env: Readonly<Record<string, string | undefined>>): string {
  const fromEnv = env[CONFIG_PATH_ENV];
  if (fromEnv === undefined || fromEnv === '') return DEFAULT_CONFIG_PATH;
  // The runtime's cwd is the bundle, so a relative path would silently depend on the container.
  if (!isAbsolute(fromEnv)) {
    throw new NvrError('CONFIG', `${CONFIG_PATH_ENV} must be an absolute path (got ${JSON.stringify(fromEnv)})`, {
      fix: `set ${CONFIG_PATH_ENV} to an absolute path, or unset it to use ${DEFAULT_CONFIG_PATH}`,
    });
  }
  return fromEnv;
}

/** What a reader returns: the text, and the identity of the file it came from when known. */
export interface ConfigSource {
  text: string;
  identity?: string;
}

/**
 * Reads config.toml, refusing one that someone other than root (or us) could have written: it names the driver
 * root whose files are bind-mounted into containers and the runc we exec, and the runtime runs as root. The
 * identity is taken from the open file before it is read, so a change during the read makes the view stale.
 */
export function readTrustedConfigFile(file: string): ConfigSource {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd, { bigint: true });
    const euid = process.geteuid?.() ?? 0;
    const fix = `chown root ${file} && chmod go-w ${file}`;
    if (!isTrusted(st, euid)) {
      throw Number(st.uid) !== 0 && Number(st.uid) !== euid
        ? new NvrError('CONFIG', `config.toml ${file}: owned by uid ${st.uid}, not root: refusing to use it`, { fix })
        : new NvrError('CONFIG', `config.toml ${file}: writable by group or others (mode ${(Number(st.mode) & 0o777).toString(8)}): refusing to use it`, { fix });
    }
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: st.isDirectory() ? 'EISDIR' : 'EINVAL' });
    const dir = trustProblem(dirname(realpathSync(file)), { directory: true, euid });
    if (dir) throw new NvrError('CONFIG', `config.toml ${file}: not trusted: ${dir.problem}: refusing to use it`, { fix: dir.fix });
    if (st.size > BigInt(MAX_CONFIG_BYTES)) throw tooLarge(file);
    return { text: readFileSync(fd, 'utf8'), identity: identityOf(st) };
  } finally {
    closeSync(fd);
  }
}

export function loadConfig(options: LoadConfigOptions): FrozenRuntimeConfig {
  const readFile = options.readFile ?? readTrustedConfigFile;
  const file = options.file ?? configFilePath(options.env);
  let source: ConfigSource;
  try {
    const read = readFile(file);
    source = typeof read === 'string' ? { text: read } : read;
  } catch (e) {
    if (e instanceof NvrError) throw e;
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    if ((code === 'ENOENT' || code === 'ENOTDIR') && options.file === undefined) {
      // No file: the defaults, and a view that goes stale when the file appears.
      const defaults = mutableDefaults();
      if (options.readFile === undefined) defaults.fileIdentity = statIdentity(file);
      return deepFreeze(defaults);
    }
    throw new NvrError('CONFIG', `config.toml ${file}: cannot read${code ? ` (${code})` : ''}`, {
      fix:
        code === 'ENOENT'
          ? 'check the path, or generate one with `nvidia-ctk config default -o FILE`'
          : `make the file a readable regular file, or point ${CONFIG_PATH_ENV} at another one`,
      cause: e,
    });
  }
  return parseConfig(source.text, file, source.identity);
}

const tooLarge = (file: string): NvrError =>
  new NvrError('CONFIG', `config.toml ${file}: larger than ${MAX_CONFIG_BYTES} bytes`, { fix: 'this is not a config file; check the path' });

/** Parse and validate config.toml text; `file` (and its identity, when known) is recorded in the result. */
export function parseConfig(text: string, file: string, identity?: string): FrozenRuntimeConfig {
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw tooLarge(file);
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    throw new NvrError('CONFIG', `config.toml ${file}: invalid TOML: ${tomlErrorLine(e)}`, {
      fix: 'correct the syntax (see `nvidia-ctk config default` for a valid file)',
      cause: e,
    });
  }
  normaliseLogLevel(doc);
  const validate = validator();
  if (!validate(doc)) {
    const err = (validate.errors ?? [])[0];
    throw new NvrError('CONFIG', `config.toml ${file}: ${describeError(err)}`, {
      fix: `correct the value in ${file}, or remove the key to use its default`,
    });
  }
  const config = build(doc);
  config.file = file;
  if (identity !== undefined) config.fileIdentity = identity;
  config.warnings.unshift(...unknownKeys(doc).map((k) => `unknown key "${k}" ignored`), ...unusedKeys(doc));
  return deepFreeze(config);
}

// ---------------------------------------------------------------------------------------------------------------

let compiled: ValidateFunction | undefined;
const require = createRequire(import.meta.url);
/**
 * The validator, once per process. The build (scripts/build-config-validator.mjs) writes ajv's standalone code
 * for CONFIG_SCHEMA next to this module, so the runtime's hot path (every GPU create) loads a few KB of generated
 * code instead of ajv and a schema compiler (~150 ms). Run from src/ (tests), ajv compiles it at first use.
 */
function validator(): ValidateFunction {
  if (!compiled) {
    try {
      // Relative to dist/<dir>/, so it resolves from dist/config/ and from the bundled dist/runtime/main.js alike.
      compiled = require(fileURLToPath(new URL('../config/config-validator.cjs', import.meta.url))) as ValidateFunction;
    } catch {
      const { Ajv } = require('ajv') as { Ajv: typeof AjvClass };
      compiled = newConfigAjv(Ajv).compile(CONFIG_SCHEMA);
    }
  }
  return compiled;
}

/** The one ajv set-up for CONFIG_SCHEMA, shared with the build script that generates the standalone validator. */
export function newConfigAjv(Ajv: typeof AjvClass, options: Record<string, unknown> = {}): AjvClass {
  const ajv = new Ajv({ allErrors: false, verbose: true, strict: true, ...options });
  ajv.addVocabulary(['expect']);
  return ajv;
}

/** logrus parses levels case-insensitively; so do we. */
function normaliseLogLevel(doc: Record<string, unknown>): void {
  const rt = doc['nvidia-container-runtime'];
  if (isPlainTable(rt) && typeof rt['log-level'] === 'string') rt['log-level'] = rt['log-level'].toLowerCase();
}

function tomlErrorLine(e: unknown): string {
  if (e instanceof TomlError) {
    const first = e.message.split('\n')[0].replace(/^Invalid TOML document: /, '');
    return `${first} at line ${e.line}, column ${e.column}`;
  }
  return e instanceof Error ? e.message.split('\n')[0] : String(e);
}

/** "/nvidia-container-cli/environment/2" → "nvidia-container-cli.environment[2]". */
function keyPath(instancePath: string): string {
  let out = '';
  for (const raw of instancePath.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(seg) ? `[${seg}]` : out ? `.${seg}` : seg;
  }
  return out || '(document)';
}

const TYPE_WORDS: Record<string, string> = {
  boolean: 'a boolean (true or false)',
  string: 'a string',
  array: 'an array',
  object: 'a table',
  number: 'a number',
};

function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Date) return `date ${String(v)}`;
  if (Array.isArray(v)) return 'an array';
  if (isPlainTable(v)) return 'a table';
  return typeof v;
}

function describeError(err: ErrorObject | undefined): string {
  if (!err) return 'invalid';
  const where = keyPath(err.instancePath);
  let what: string;
  switch (err.keyword) {
    case 'type':
      what = `must be ${TYPE_WORDS[String(err.params.type)] ?? String(err.params.type)}`;
      break;
    case 'enum':
      what = `must be one of ${(err.params.allowedValues as unknown[]).join(', ')}`;
      break;
    case 'pattern':
      what = `must be ${String((err.parentSchema as { expect?: string } | undefined)?.expect ?? `match ${err.params.pattern}`)}`;
      break;
    default:
      what = err.message ?? 'is invalid';
  }
  return `${where} ${what} (got ${describeValue(err.data)})`;
}

/**
 * Keys of the toolkit's file that this runtime reads but does not act on (yet), with why: set in a file, each is a
 * warning (shown by `nvidia-ctk explain` and in the runtime log), never silently ignored. docs/configuration.md
 * lists the same status per key.
 */
export const UNUSED_KEYS: Readonly<Record<string, string>> = {
  'nvidia-container-cli.path': 'there is no separate nvidia-container-cli binary to call: the runtime computes the edits itself',
  'nvidia-container-cli.environment': 'there is no nvidia-container-cli process to give an environment to',
  'nvidia-container-cli.debug': 'use [nvidia-container-runtime] debug for the runtime log',
  'nvidia-container-cli.ldcache': 'the driver root\'s /etc/ld.so.cache is always the one read',
  'nvidia-container-cli.load-kmods': 'kernel modules are never loaded: the driver must be loaded on the host',
  'nvidia-container-cli.user': 'no helper process runs as another user',
  'nvidia-container-cli.no-pivot': 'no helper process pivots into the container',
  'nvidia-container-runtime.modes.csv.mount-spec-path': 'mode = "csv" (Tegra) is not supported',
  'nvidia-container-runtime-hook.path': 'the runtime injects its own createContainer hook, never the prestart hook (which only docker --gpus inserts)',
  'nvidia-container-runtime-hook.skip-mode-detection': 'the prestart hook never refuses by mode: the request decides (docs/live.md)',
  'nvidia-ctk.path': 'generated edits name nvidia-runtime-hook, not nvidia-ctk',
  'features.allow-cuda-compat-libs-from-container': 'compat libraries are always taken from the image (cuda-compat-mode decides how), resolved inside its rootfs',
  'features.allow-ldconfig-from-container': 'the image\'s ldconfig never runs as root (CVE-2024-0136)',
  'features.disable-imex-channel-creation': 'IMEX channel nodes are never created on the host (a missing channel fails the create)',
};

const at = (doc: unknown, path: string): unknown => {
  let cur = doc;
  for (const part of path.split('.')) cur = isPlainTable(cur) && Object.hasOwn(cur, part) ? cur[part] : undefined;
  return cur;
};
let defaultDoc: Record<string, unknown> | undefined;

/** Warnings for the keys of UNUSED_KEYS that the file sets to something else than the default (which is harmless). */
function unusedKeys(doc: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [path, why] of Object.entries(UNUSED_KEYS)) {
    const value = at(doc, path);
    if (value === undefined || (isPlainTable(value) && Object.keys(value).length === 0)) continue;
    // Parsed only when a file sets one of these keys: parsing the whole default file costs every GPU create ~3 ms.
    defaultDoc ??= parseToml(renderDefaultConfigToml()) as Record<string, unknown>;
    if (JSON.stringify(value) === JSON.stringify(at(defaultDoc, path))) continue;
    out.push(`${path} is set but not used: ${why}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Overlay the validated document on the defaults. Types were checked by the schema, so the casts are sound.

function section(doc: Record<string, unknown>, ...path: string[]): Record<string, unknown> {
  let cur: unknown = doc;
  for (const p of path) cur = isPlainTable(cur) && Object.hasOwn(cur, p) ? cur[p] : undefined;
  return isPlainTable(cur) ? cur : {};
}

function get<T>(table: Record<string, unknown>, key: string, dflt: T): T {
  return Object.hasOwn(table, key) ? (table[key] as T) : dflt;
}

function build(doc: Record<string, unknown>): RuntimeConfig {
  const c = mutableDefaults();
  c.disableRequire = get(doc, 'disable-require', c.disableRequire);
  c.swarmResource = get(doc, 'swarm-resource', c.swarmResource);
  c.acceptEnvvarWhenUnprivileged = get(doc, 'accept-nvidia-visible-devices-envvar-when-unprivileged', c.acceptEnvvarWhenUnprivileged);
  c.acceptVolumeMounts = get(doc, 'accept-nvidia-visible-devices-as-volume-mounts', c.acceptVolumeMounts);
  if (Object.hasOwn(doc, 'supported-driver-capabilities')) {
    c.supportedCapabilities = parseCapabilities(doc['supported-driver-capabilities'] as string, c.warnings);
  }

  const cli = section(doc, 'nvidia-container-cli');
  c.cli = {
    root: get(cli, 'root', '') || '/',
    path: get(cli, 'path', c.cli.path),
    environment: [...get<string[]>(cli, 'environment', c.cli.environment)],
    debug: get(cli, 'debug', c.cli.debug),
    ldcache: get(cli, 'ldcache', c.cli.ldcache),
    loadKmods: get(cli, 'load-kmods', c.cli.loadKmods),
    noCgroups: get(cli, 'no-cgroups', c.cli.noCgroups),
    user: get(cli, 'user', c.cli.user),
    ldconfig: get(cli, 'ldconfig', c.cli.ldconfig),
    noPivot: get(cli, 'no-pivot', c.cli.noPivot),
    driverOptions: driverOptionsOf(get<string[]>(cli, 'driver-options', []), c.warnings),
  };

  const rt = section(doc, 'nvidia-container-runtime');
  const cdi = section(doc, 'nvidia-container-runtime', 'modes', 'cdi');
  const csv = section(doc, 'nvidia-container-runtime', 'modes', 'csv');
  const legacy = section(doc, 'nvidia-container-runtime', 'modes', 'legacy');
  c.runtime = {
    debug: get(rt, 'debug', c.runtime.debug),
    logLevel: get(rt, 'log-level', c.runtime.logLevel),
    mode: get<RuntimeMode>(rt, 'mode', c.runtime.mode),
    runtimes: [...get<string[]>(rt, 'runtimes', c.runtime.runtimes)],
    cdi: {
      specDirs: [...get<string[]>(cdi, 'spec-dirs', c.runtime.cdi.specDirs)],
      defaultKind: get(cdi, 'default-kind', c.runtime.cdi.defaultKind),
      annotationPrefixes: [...get<string[]>(cdi, 'annotation-prefixes', c.runtime.cdi.annotationPrefixes)],
    },
    csv: { mountSpecPath: get(csv, 'mount-spec-path', c.runtime.csv.mountSpecPath) },
    legacy: { cudaCompatMode: get<CudaCompatMode>(legacy, 'cuda-compat-mode', c.runtime.legacy.cudaCompatMode) },
  };

  const hook = section(doc, 'nvidia-container-runtime-hook');
  c.hook = { path: get(hook, 'path', c.hook.path), skipModeDetection: get(hook, 'skip-mode-detection', c.hook.skipModeDetection) };
  c.ctk = { path: get(section(doc, 'nvidia-ctk'), 'path', c.ctk.path) };

  const features = section(doc, 'features');
  for (const f of KNOWN_FEATURES) if (Object.hasOwn(features, f)) c.features[f] = features[f] as boolean;
  return c;
}

/** Known driver options, in canonical order; unknown names warn and are dropped (like unknown capabilities). */
function driverOptionsOf(names: readonly string[], warnings: string[]): DriverOption[] {
  const known = (n: string): n is DriverOption => (DRIVER_OPTIONS as readonly string[]).includes(n);
  for (const n of names) if (!known(n.trim())) warnings.push(`nvidia-container-cli.driver-options: unknown driver option "${n}" ignored (known: ${DRIVER_OPTIONS.join(', ')})`);
  return DRIVER_OPTIONS.filter((o) => names.some((n) => n.trim() === o));
}

/** "compute, utility" → ["compute","utility"]; "all" → every known one; unknown names warn and are dropped. */
function parseCapabilities(value: string, warnings: string[]): Capability[] {
  const out: Capability[] = [];
  for (const raw of value.split(',')) {
    const cap = raw.trim();
    if (cap === '') continue;
    if (cap === 'all') {
      for (const k of KNOWN_CAPABILITIES) if (!out.includes(k)) out.push(k);
    } else if (isCapability(cap)) {
      if (!out.includes(cap)) out.push(cap);
    } else {
      warnings.push(`supported-driver-capabilities: unknown capability "${cap}" ignored`);
    }
  }
  return out;
}
