/**
 * Doctor, config.toml: the runtime's own reader (readTrustedConfigFile: root-owned, not group/world-writable, in a
 * trusted directory) and parser (parseConfig: schema, unknown keys, unused keys), then the effective values that
 * decide what containers get, and the low-level runtime those values find (findLowLevelRuntime). An untrusted file
 * is still parsed (plainly) so its other problems show, but the runtime refuses it: that is the FAIL.
 */
import { readFileSync } from 'node:fs';
import { configFilePath, parseConfig, readTrustedConfigFile } from '../config/load.js';
import { defaultConfig } from '../config/defaults.js';
import type { FrozenRuntimeConfig } from '../config/schema.js';
import { NvrError } from '../errors.js';
import { findLowLevelRuntime } from '../runtime/find-runc.js';
import { CONFIG_PATH_ENV } from '../launcher-contract.js';
import { fail, info, pass, warn, type CheckResult } from './types.js';

export interface ConfigFacts {
  file: string;
  /** Where the path came from. */
  source: 'flag' | 'env' | 'default';
  exists: boolean;
  /** The runtime's refusal of the file (trust, unreadable), when it refuses it. */
  trustError?: NvrError;
  /** The parser's refusal (TOML syntax, a wrong type). */
  parseError?: NvrError;
  /** The values in effect for the doctor's other checks: the file's (even when untrusted), else the defaults. */
  config: FrozenRuntimeConfig;
  /** True when the runtime would load exactly `config` (the file is trusted and valid, or absent). */
  usable: boolean;
  runc?: { path: string; realPath: string };
  runcError?: NvrError;
}

export interface ConfigOptions {
  env: Readonly<Record<string, string | undefined>>;
  /** --config: must exist. */
  file?: string;
  /** Our own executable, never chosen as runc (as the runtime passes its own). */
  self: string;
}

const nvr = (e: unknown): NvrError => {
  if (e instanceof NvrError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  return new NvrError('CONFIG', `cannot read the file${code ? ` (${code})` : ''}`, { fix: 'make it a readable regular file', cause: e });
};

export function gatherConfig(o: ConfigOptions): ConfigFacts {
  const source: ConfigFacts['source'] = o.file !== undefined ? 'flag' : o.env[CONFIG_PATH_ENV] ? 'env' : 'default';
  const file = o.file ?? configFilePath(o.env);
  let text: string | undefined;
  let trustError: NvrError | undefined;
  try {
    text = readTrustedConfigFile(file).text;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if ((code === 'ENOENT' || code === 'ENOTDIR') && o.file === undefined) {
      return withRunc({ file, source, exists: false, config: defaultConfig(), usable: true }, o);
    }
    if ((code === 'ENOENT' || code === 'ENOTDIR')) {
      throw new NvrError('INPUT', `--config ${file}: no such file`, { fix: 'name an existing config.toml, or leave --config out to use the default' });
    }
    trustError = nvr(e);
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      text = undefined; // nothing to parse: the trust error says it all
    }
  }
  const facts: ConfigFacts = { file, source, exists: true, config: defaultConfig(), usable: false, ...(trustError ? { trustError } : {}) };
  if (text !== undefined) {
    try {
      facts.config = parseConfig(text, file);
      facts.usable = trustError === undefined;
    } catch (e) {
      facts.parseError = nvr(e);
    }
  }
  return withRunc(facts, o);
}

function withRunc(f: ConfigFacts, o: ConfigOptions): ConfigFacts {
  try {
    const r = findLowLevelRuntime(f.config.runtime.runtimes, o.env.PATH, { self: o.self });
    return { ...f, runc: { path: r.path, realPath: r.realPath } };
  } catch (e) {
    if (!(e instanceof NvrError)) throw e;
    return { ...f, runcError: e };
  }
}

const FROM: Record<ConfigFacts['source'], string> = { flag: '--config', env: `$${CONFIG_PATH_ENV}`, default: 'default location' };

export function checkConfigTrust(f: ConfigFacts): CheckResult {
  const details = { file: f.file, source: f.source, exists: f.exists };
  if (!f.exists) return info('config.file', `${f.file} (${FROM[f.source]}) does not exist: the runtime uses the defaults`, { details });
  if (f.trustError) return fail('config.file', f.trustError.message, f.trustError.fix ?? `chown root ${f.file} && chmod go-w ${f.file}`, details);
  return pass('config.file', `${f.file} (${FROM[f.source]}): root-owned, not writable by group or others`, { details });
}

export function checkConfigParse(f: ConfigFacts): CheckResult | undefined {
  if (!f.exists) return undefined;
  if (f.parseError) return fail('config.parse', f.parseError.message, f.parseError.fix ?? 'correct the file', { file: f.file });
  if (f.config.file === undefined) return undefined; // unreadable: nothing was parsed
  if (f.config.warnings.length > 0) {
    return warn('config.keys', `${f.file}: ${f.config.warnings.join('; ')}`,
      'remove or correct those keys (`nvidia-ctk config default` lists the known ones; docs/configuration.md)', { warnings: [...f.config.warnings] });
  }
  return pass('config.keys', `${f.file}: valid, no unknown keys`, { details: { warnings: [] } });
}

/** The values that decide what a container gets, as the runtime will read them (pure). */
export function effectiveValues(c: FrozenRuntimeConfig): Record<string, unknown> {
  return {
    mode: c.runtime.mode,
    runtimes: [...c.runtime.runtimes],
    driverRoot: c.cli.root,
    'accept-nvidia-visible-devices-envvar-when-unprivileged': c.acceptEnvvarWhenUnprivileged,
    'accept-nvidia-visible-devices-as-volume-mounts': c.acceptVolumeMounts,
    'cdi.spec-dirs': [...c.runtime.cdi.specDirs],
    'cdi.default-kind': c.runtime.cdi.defaultKind,
    'cuda-compat-mode': c.runtime.legacy.cudaCompatMode,
    'disable-require': c.disableRequire,
    'supported-driver-capabilities': [...c.supportedCapabilities],
    'no-cgroups': c.cli.noCgroups,
    debug: c.runtime.debug,
  };
}

export function checkConfigValues(f: ConfigFacts): CheckResult {
  const v = effectiveValues(f.config);
  const msg = `mode=${v.mode}, driver root ${v.driverRoot}, runtimes ${(v.runtimes as string[]).join(',')}, ` +
    `accept-envvar-when-unprivileged=${v['accept-nvidia-visible-devices-envvar-when-unprivileged']}, ` +
    `volume-mounts=${v['accept-nvidia-visible-devices-as-volume-mounts']}, cdi spec dirs ${(v['cdi.spec-dirs'] as string[]).join(',')}` +
    (f.config.disableRequire ? ', disable-require=true (NVIDIA_REQUIRE_* ignored)' : '');
  return info('config.values', `${f.usable ? '' : 'in the file (the runtime refuses it): '}${msg}`, { details: v });
}

export function checkRunc(f: ConfigFacts): CheckResult {
  if (f.runcError) return fail('config.runc', f.runcError.message, f.runcError.fix ?? 'install runc', { runtimes: [...f.config.runtime.runtimes] });
  return pass('config.runc', `low-level runtime ${f.runc!.path}${f.runc!.realPath !== f.runc!.path ? ` (${f.runc!.realPath})` : ''}`, { details: { ...f.runc } });
}

export function configChecks(f: ConfigFacts): CheckResult[] {
  return [checkConfigTrust(f), checkConfigParse(f), checkConfigValues(f), checkRunc(f)].filter((c): c is CheckResult => c !== undefined);
}
