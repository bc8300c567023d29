/**
 * What `nvidia-runtime serve` keeps between requests (docs/warm-path.md "What the service caches"): each value is
 * computed by the very function the cold path calls and kept with a fingerprint (a string of file identities, a few
 * stat(2)s). Every use re-takes the fingerprint; any difference recomputes. A computation that throws is never
 * cached (the error reaches the caller, which answers `cold`), and neither is a value whose fingerprint cannot be
 * taken or does not match what the computation itself recorded having read.
 */
import { dirname } from 'node:path';
import { loadCdiRegistry, type CdiRegistry } from '../cdi/registry.js';
import { listSpecFiles } from '../cdi/load.js';
import { configFilePath, loadConfig } from '../config/load.js';
import type { FrozenRuntimeConfig } from '../config/schema.js';
import { loadHostInventory, type HostInventory } from '../host/inventory.js';
import { identities, identityList, inventoryFingerprint } from '../host/fingerprint.js';
import { normalizeRoot } from '../host/root.js';
import { statIdentity } from '../launcher-contract.js';
import { findLowLevelRuntime, type LowLevelRuntime } from '../runtime/find-runc.js';

export interface Fingerprinted<A extends unknown[], V> {
  /** The cached value when its fingerprint still holds, else a fresh one (cached when fingerprintable). */
  get(...args: A): V;
  /** Counters, for tests and the service's debug log. */
  readonly stats: { hits: number; misses: number };
  clear(): void;
}

/**
 * A cache of `compute` per key (default: the arguments as JSON). `fingerprint(value, ...args)` says what the value
 * depends on now; undefined means "cannot tell", and such a value is not kept. `before`: the fingerprint ignores the
 * value, so it is taken before computing too, and a value is kept only when both agree.
 */
export function fingerprinted<A extends unknown[], V>(
  compute: (...args: A) => V,
  fingerprint: (value: V, ...args: A) => string | undefined,
  key: (...args: A) => string = (...args) => JSON.stringify(args),
  options: { before?: boolean } = {},
): Fingerprinted<A, V> {
  const entries = new Map<string, { value: V; print: string }>();
  const stats = { hits: 0, misses: 0 };
  return {
    stats,
    clear: () => entries.clear(),
    get(...args: A): V {
      const k = key(...args);
      const entry = entries.get(k);
      if (entry !== undefined) {
        const now = fingerprint(entry.value, ...args);
        if (now !== undefined && now === entry.print) {
          stats.hits++;
          return entry.value;
        }
        entries.delete(k);
      }
      stats.misses++;
      // A fingerprint that does not depend on the value is also taken before computing: a change racing the
      // computation then shows as a difference, and the value is not kept.
      const before = options.before ? fingerprint(undefined as V, ...args) : undefined;
      const value = compute(...args);
      const print = fingerprint(value, ...args);
      if (print !== undefined && (!options.before || before === print)) entries.set(k, { value, print });
      return value;
    },
  };
}

// ---- the config -----------------------------------------------------------------------------------------------

export type ConfigEnv = { PATH?: string; NVIDIA_CTK_CONFIG_FILE_PATH?: string };

/**
 * loadConfig by the config file's identity (and its directory's: loadConfig refuses a file in an untrusted one).
 * The identity must be the one loadConfig took from the open file before reading it, so a write racing the read
 * is never cached.
 */
export function configCache(load: (env: ConfigEnv) => FrozenRuntimeConfig = (env) => loadConfig({ env })): Fingerprinted<[ConfigEnv], FrozenRuntimeConfig> {
  return fingerprinted(
    load,
    (config, env) => {
      const file = configFilePath(env);
      const id = statIdentity(file);
      if (id === undefined || config.fileIdentity === undefined || id !== config.fileIdentity) return undefined;
      const dir = statIdentity(dirname(file));
      return dir === undefined ? undefined : `${id}\n${dir}`;
    },
    (env) => configFilePath(env),
  );
}

// ---- the runc lookup ------------------------------------------------------------------------------------------

/**
 * findLowLevelRuntime by PATH, the candidates and our own executable, fingerprinted by every path it consulted
 * (which must still be what it saw) and the chosen file's real path and directory (its trust check).
 */
export function runcCache(
  find: (candidates: readonly string[], envPath: string | undefined, self: string) => LowLevelRuntime = (c, p, self) => findLowLevelRuntime(c, p, { self }),
): Fingerprinted<[readonly string[], string | undefined, string], LowLevelRuntime> {
  return fingerprinted(
    find,
    (runc, _candidates, _path, self) => {
      const paths = [...runc.consulted.map((c) => c.path), runc.realPath, dirname(runc.realPath), self];
      const ids = identityList(paths);
      if (runc.consulted.some((c, i) => ids[i] !== c.identity) || ids.includes(undefined)) return undefined;
      return paths.map((p, i) => `${p}=${ids[i]}`).join('\n');
    },
    (candidates, envPath, self) => JSON.stringify([candidates, envPath ?? null, self]),
  );
}

// ---- the host snapshot ----------------------------------------------------------------------------------------

export function inventoryCache(load: (driverRoot: string) => HostInventory = (driverRoot) => loadHostInventory({ driverRoot })): Fingerprinted<[string], HostInventory> {
  return fingerprinted(load, inventoryFingerprint, (driverRoot) => normalizeRoot(driverRoot));
}

// ---- the CDI registry -----------------------------------------------------------------------------------------

/** The identities of every spec directory and every spec file in them (a new, removed or changed file shows). */
export function cdiFingerprint(specDirs: readonly string[]): string | undefined {
  const paths: string[] = [];
  for (const dir of specDirs) {
    paths.push(dir);
    try {
      paths.push(...listSpecFiles(dir));
    } catch {
      paths.push(`${dir}/(unreadable)`);
    }
  }
  return identities(paths);
}

export function cdiCache(load: (specDirs: readonly string[]) => CdiRegistry = (dirs) => loadCdiRegistry(dirs)): Fingerprinted<[readonly string[]], CdiRegistry> {
  return fingerprinted(load, (_registry, specDirs) => cdiFingerprint(specDirs), undefined, { before: true });
}

/** The four caches of one service. */
export interface ServeCaches {
  config: Fingerprinted<[ConfigEnv], FrozenRuntimeConfig>;
  runc: Fingerprinted<[readonly string[], string | undefined, string], LowLevelRuntime>;
  inventory: Fingerprinted<[string], HostInventory>;
  cdi: Fingerprinted<[readonly string[]], CdiRegistry>;
}

export function serveCaches(): ServeCaches {
  return { config: configCache(), runc: runcCache(), inventory: inventoryCache(), cdi: cdiCache() };
}
