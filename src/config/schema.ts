/**
 * config.toml: the typed result and the JSON schema (ajv) for the peer-compatible file (PEER.md §3.7).
 * The schema checks types and closed value sets only; it deliberately allows additional properties, because an
 * unknown key is a warning (forward compatibility with newer peer files), not an error. Unknown keys are found
 * by walking the document against `properties` (see unknownKeys).
 */
import { CAPABILITIES, type Capability, type DriverOption } from '../host/capabilities.js';

export type RuntimeMode = 'auto' | 'legacy' | 'cdi' | 'csv';
export const RUNTIME_MODES: readonly RuntimeMode[] = ['auto', 'legacy', 'cdi', 'csv'];

export type CudaCompatMode = 'ldconfig' | 'mount' | 'hook' | 'disabled';
export const CUDA_COMPAT_MODES: readonly CudaCompatMode[] = ['ldconfig', 'mount', 'hook', 'disabled'];

/** logrus level names (what the peer accepts); logger.ts maps them onto winston's levels. */
export const LOG_LEVELS = ['panic', 'fatal', 'error', 'warn', 'warning', 'info', 'debug', 'trace'] as const;

/** The driver capabilities the peer knows (`all` expands to these). */
/** The capabilities config.toml may name (the one list, src/host/capabilities.ts), sorted. */
export const KNOWN_CAPABILITIES: readonly Capability[] = Object.freeze([...CAPABILITIES].sort());

/** `[features]` names: v1.17.9 plus the booleans HEAD added. Anything else under [features] warns. */
export const KNOWN_FEATURES = [
  'allow-cuda-compat-libs-from-container',
  'allow-ldconfig-from-container',
  'disable-cuda-compat-lib-hook',
  'disable-imex-channel-creation',
  'ignore-imex-channel-requests',
  'allow-unknown-oci-spec-fields',
  'no-additional-gids-for-device-nodes',
] as const;

export interface CliConfig {
  /** Driver root; an empty value in the file means "/". Always absolute here. */
  root: string;
  /** nvidia-container-cli binary; empty means PATH lookup. */
  path: string;
  environment: string[];
  /** cli log file; empty means none. */
  debug: string;
  /** ld.so.cache path; empty means /etc/ld.so.cache under the driver root. */
  ldcache: string;
  loadKmods: boolean;
  noCgroups: boolean;
  user: string;
  /** "@/sbin/ldconfig": a leading @ means a host path; otherwise a container path. */
  ldconfig: string;
  noPivot: boolean;
  /** libnvidia-container's driver options (no-glvnd, no-uvm, …) for every container; ours, not the toolkit's key. */
  driverOptions: DriverOption[];
}

export interface RuntimeSection {
  /** Runtime log file; "/dev/null" or empty means no log. */
  debug: string;
  logLevel: string;
  mode: RuntimeMode;
  /** Low-level runtimes, tried in order. */
  runtimes: string[];
  cdi: { specDirs: string[]; defaultKind: string; annotationPrefixes: string[] };
  csv: { mountSpecPath: string };
  legacy: { cudaCompatMode: CudaCompatMode };
}

export interface RuntimeConfig {
  /** The file the values came from; absent when no file existed and these are the defaults. */
  file?: string;
  /** Identity (src/launcher-contract.ts identityOf) of the config file as it was read, "-" when it did not exist;
   *  absent when the reader could not tell (tests). The launcher view records it. */
  fileIdentity?: string;
  /** Non-fatal findings (unknown keys, unknown capabilities), one line each, for the caller to log. */
  warnings: string[];
  disableRequire: boolean;
  /** Comma-separated env names that replace NVIDIA_VISIBLE_DEVICES when present. */
  swarmResource: string;
  acceptEnvvarWhenUnprivileged: boolean;
  acceptVolumeMounts: boolean;
  supportedCapabilities: Capability[];
  cli: CliConfig;
  runtime: RuntimeSection;
  hook: { path: string; skipModeDetection: boolean };
  ctk: { path: string };
  /** Only the features the file sets. */
  features: Record<string, boolean>;
}

/** Deeply read-only view: what loadConfig returns (and Object.freeze enforces at run time). */
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
export type FrozenRuntimeConfig = DeepReadonly<RuntimeConfig>;

// ---------------------------------------------------------------------------------------------------------------
// JSON schema. `expect` is an annotation (registered as a vocabulary word) used to phrase pattern errors.

type Schema = Record<string, unknown>;

const str: Schema = { type: 'string' };
const bool: Schema = { type: 'boolean' };
const strList: Schema = { type: 'array', items: { type: 'string' } };
const absPathOrEmpty: Schema = { type: 'string', pattern: '^(/.*)?$', expect: 'an absolute path (or empty)' };
const table = (properties: Record<string, Schema>): Schema => ({ type: 'object', properties });

export const CONFIG_SCHEMA: Schema = table({
  'disable-require': bool,
  'swarm-resource': str,
  'accept-nvidia-visible-devices-envvar-when-unprivileged': bool,
  'accept-nvidia-visible-devices-as-volume-mounts': bool,
  'supported-driver-capabilities': str,
  'nvidia-container-cli': table({
    root: absPathOrEmpty,
    path: str,
    environment: strList,
    debug: absPathOrEmpty,
    ldcache: absPathOrEmpty,
    'load-kmods': bool,
    'no-cgroups': bool,
    user: str,
    ldconfig: { type: 'string', pattern: '^(@?/.*)?$', expect: 'an absolute path, "@" + an absolute host path, or empty' },
    'no-pivot': bool,
    'driver-options': strList,
  }),
  'nvidia-container-runtime': table({
    debug: absPathOrEmpty,
    'log-level': { type: 'string', enum: [...LOG_LEVELS] },
    mode: { type: 'string', enum: [...RUNTIME_MODES] },
    runtimes: strList,
    modes: table({
      cdi: table({ 'spec-dirs': strList, 'default-kind': str, 'annotation-prefixes': strList }),
      csv: table({ 'mount-spec-path': absPathOrEmpty }),
      legacy: table({ 'cuda-compat-mode': { type: 'string', enum: [...CUDA_COMPAT_MODES] } }),
    }),
  }),
  'nvidia-container-runtime-hook': table({ path: str, 'skip-mode-detection': bool }),
  'nvidia-ctk': table({ path: str }),
  features: table(Object.fromEntries(KNOWN_FEATURES.map((f) => [f, bool]))),
});

/**
 * Dotted paths of keys the schema does not know, in document order. Tables inside unknown keys are not
 * descended into (the whole subtree is reported once). Values of the wrong type are left to the validator.
 */
export function unknownKeys(doc: unknown, schema: Schema = CONFIG_SCHEMA, prefix = ''): string[] {
  if (!isPlainTable(doc)) return [];
  const props = (schema.properties ?? {}) as Record<string, Schema>;
  const out: string[] = [];
  for (const key of Object.keys(doc)) {
    const keyPath = prefix ? `${prefix}.${key}` : key;
    // hasOwn: a key named "__proto__" or "constructor" must not match Object.prototype members.
    if (!Object.hasOwn(props, key)) out.push(keyPath);
    else if (props[key].type === 'object') out.push(...unknownKeys(doc[key], props[key], keyPath));
  }
  return out;
}

export function isPlainTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}
