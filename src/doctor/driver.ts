/**
 * Doctor, driver area: NVML through the runtime's own host snapshot (loadHostInventory, the addon), the driver and
 * CUDA versions, the GPUs, each GPU's persistence mode, and the driver libraries the ld cache offers (or fails to:
 * a stale ld.so.cache after a driver upgrade is the usual reason for libraries missing in containers).
 * `gatherDriver` does the I/O once; the check functions below are pure over its facts.
 */
import { readdirSync } from 'node:fs';
import { posix } from 'node:path';
import { NvrError } from '../errors.js';
import { ALL_LIBRARY_PREFIXES, EGL_PLATFORM_LIBS } from '../host/capabilities.js';
import { listDriverFiles, loadHostInventory, type HostInventory } from '../host/inventory.js';
import { ARCH_X86_64, entryMatchesArch } from '../host/ldcache.js';
import { loadAddon, type AddonNvmlResult, type NvmlAddon } from '../host/nvml.js';
import { normalizeRoot, resolveInRoot } from '../host/root.js';
import { fail, info, pass, warn, type CheckResult } from './types.js';

export interface LdCacheFacts {
  /** Driver libraries (`<prefix>.<driver version>`) in the directory of libnvidia-ml that the ld cache does not offer. */
  notInCache: string[];
  /** ld cache entries of NVIDIA libraries whose file does not exist (in-root paths). */
  dangling: string[];
  /** ld cache entries of NVIDIA libraries that resolve to another driver version (in-root paths). */
  otherVersion: string[];
}

export interface DriverFacts {
  driverRoot: string;
  /** The runtime's host snapshot; absent when it could not be taken (see `error`). */
  inventory?: HostInventory;
  error?: NvrError;
  /** nvmlDeviceGetPersistenceMode per GPU UUID, as the addon reported it: 1 on, 0 off, absent when NVML cannot tell. */
  persistence: Record<string, number | undefined>;
  /** How long the NVML query (init, enumerate, shutdown) took. */
  nvmlMs?: number;
  ldcache?: LdCacheFacts;
}

export interface DriverDeps {
  /** Default: the native addon (the runtime's). */
  addon?: NvmlAddon;
  now?: () => number;
}

/** Every driver library soname prefix whose files carry the driver's version (the EGL platform ones carry their own). */
const VERSIONED_PREFIXES = ALL_LIBRARY_PREFIXES.filter((p) => !(EGL_PLATFORM_LIBS as readonly string[]).includes(p));
const versionOf = (base: string, prefix: string): string | undefined => /^\.(\d+(?:\.\d+)+)$/.exec(base.slice(prefix.length))?.[1];

/**
 * The ld cache's NVIDIA entries against the files on disk (pure over its inputs): what a `ldconfig` run would
 * change. `dirFiles` are the names in the directory of the queried libnvidia-ml; `resolve` answers for an in-root
 * path whether it exists and what it resolves to.
 */
export function ldCacheFacts(
  inv: Pick<HostInventory, 'driver' | 'libraries' | 'ldcache'>,
  dirFiles: readonly string[],
  resolve: (path: string) => { exists: boolean; path: string },
): LdCacheFacts {
  const version = inv.driver.driverVersion;
  const found = new Set(Object.keys(inv.libraries));
  const notInCache = VERSIONED_PREFIXES.filter((p) => !found.has(p) && dirFiles.includes(`${p}.${version}`)).map((p) => `${p}.${version}`);
  const dangling: string[] = [];
  const otherVersion: string[] = [];
  for (const e of inv.ldcache.entries) {
    if (!entryMatchesArch(e, ARCH_X86_64)) continue;
    const prefix = VERSIONED_PREFIXES.find((p) => e.key.startsWith(p));
    if (prefix === undefined) continue;
    const r = resolve(e.value);
    if (!r.exists) dangling.push(e.value);
    else {
      const v = versionOf(posix.basename(r.path), prefix);
      if (v !== undefined && v !== version && !found.has(prefix)) otherVersion.push(`${e.value} -> ${r.path}`);
    }
  }
  return { notInCache, dangling: [...new Set(dangling)], otherVersion: [...new Set(otherVersion)] };
}

/** Takes the runtime's host snapshot with a recording addon, so the raw NVML answer (persistence mode) is seen too. */
export function gatherDriver(driverRoot: string, deps: DriverDeps = {}): DriverFacts {
  const root = normalizeRoot(driverRoot);
  const now = deps.now ?? (() => performance.now());
  const facts: DriverFacts = { driverRoot: root, persistence: {} };
  let raw: AddonNvmlResult | undefined;
  try {
    const real = deps.addon ?? loadAddon();
    const recording: NvmlAddon = {
      nvmlQuery(libraryPath) {
        const t0 = now();
        const r = real.nvmlQuery(libraryPath);
        facts.nvmlMs = Math.round(now() - t0);
        if (!('error' in r)) raw = r;
        return r;
      },
    };
    facts.inventory = loadHostInventory({ driverRoot: root, addon: recording });
  } catch (e) {
    if (!(e instanceof NvrError)) throw e;
    facts.error = e;
    return facts;
  }
  for (const d of raw?.devices ?? []) facts.persistence[d.uuid] = d.persistenceMode;
  const inv = facts.inventory;
  const libDir = posix.dirname(inv.nvmlLibrary);
  let dirFiles: string[] = [];
  try {
    dirFiles = readdirSync(libDir);
  } catch {
    // no listing: only the cache's own entries are judged
  }
  facts.ldcache = ldCacheFacts(inv, dirFiles, (p) => resolveInRoot(root, p));
  return facts;
}

const rootWords = (root: string): string => (root === '/' ? '' : ` under driver root ${root}`);

export function checkNvml(f: DriverFacts): CheckResult {
  if (f.error) {
    return fail('driver.nvml', `cannot use the driver${rootWords(f.driverRoot)}: ${f.error.message}`, f.error.fix ?? 'check the driver with nvidia-smi', { code: f.error.code });
  }
  const inv = f.inventory!;
  return pass('driver.nvml', `NVML ${inv.nvmlLibrary} answered in ${f.nvmlMs ?? '?'} ms${rootWords(f.driverRoot)}`, {
    details: { library: inv.nvmlLibrary, ms: f.nvmlMs ?? null, driverRoot: f.driverRoot },
  });
}

export function checkDriverVersion(f: DriverFacts): CheckResult | undefined {
  const d = f.inventory?.driver;
  if (!d) return undefined;
  return pass('driver.version', `driver ${d.driverVersion}${d.nvmlVersion ? ` (NVML ${d.nvmlVersion})` : ''}`, {
    details: { driverVersion: d.driverVersion, nvmlVersion: d.nvmlVersion ?? null },
  });
}

/** The host's CUDA version is what every `NVIDIA_REQUIRE_CUDA=cuda>=X.Y` is compared with ("unsatisfied condition"). */
export function checkCuda(f: DriverFacts): CheckResult | undefined {
  const d = f.inventory?.driver;
  if (!d) return undefined;
  if (d.cudaVersion === undefined) {
    return warn('driver.cuda', 'NVML does not report the CUDA version this driver supports: every image with NVIDIA_REQUIRE_CUDA fails with "unsatisfied condition: cuda>=…"',
      'use a driver whose NVML has nvmlSystemGetCudaDriverVersion, or set NVIDIA_DISABLE_REQUIRE=true in the container', { cudaVersion: null });
  }
  return pass('driver.cuda', `CUDA ${d.cudaVersion}: images requiring a newer CUDA (NVIDIA_REQUIRE_CUDA "cuda>=X.Y" with X.Y > ${d.cudaVersion}) fail with "unsatisfied condition: cuda>=X.Y"`, {
    details: { cudaVersion: d.cudaVersion },
  });
}

export function checkDevices(f: DriverFacts): CheckResult | undefined {
  const gpus = f.inventory?.driver.gpus;
  if (!gpus) return undefined;
  const details = { gpus: gpus.map((g) => ({ index: g.index, name: g.name, uuid: g.uuid, pciBusId: g.pciBusId, migDevices: g.migDevices.map((m) => m.uuid) })) };
  if (gpus.length === 0) {
    return fail('driver.devices', 'NVML lists no GPU: containers cannot get one', 'check the driver with nvidia-smi (is the GPU bound to the nvidia driver? lspci -k), and that /dev/nvidia<N> exist', details);
  }
  const list = gpus.map((g) => `${g.index}: ${g.name} (${g.uuid})${g.migDevices.length ? ` with ${g.migDevices.length} MIG device(s)` : ''}`).join('; ');
  return pass('driver.devices', `${gpus.length} GPU${gpus.length === 1 ? '' : 's'}: ${list}`, { details });
}

/**
 * One line per GPU. Persistence mode off: each NVML init (every GPU container's create, its nvidia-smi) waits for
 * the driver to bring the GPU up, 100 ms to 2 s, which is behind the toolkit's "driver rpc error: timed out".
 */
export function checkPersistence(f: DriverFacts): CheckResult[] {
  const gpus = f.inventory?.driver.gpus ?? [];
  return gpus.map((g) => {
    const id = `driver.persistence.${g.index}`;
    const mode = f.persistence[g.uuid];
    const details = { index: g.index, uuid: g.uuid, persistenceMode: mode === undefined ? null : mode === 1 };
    if (mode === 1) return pass(id, `GPU ${g.index} (${g.uuid}): persistence mode on`, { details });
    if (mode === undefined) return info(id, `GPU ${g.index} (${g.uuid}): NVML does not report persistence mode`, { details });
    return warn(id, `GPU ${g.index} (${g.uuid}): persistence mode off: every container's NVML init waits 100 ms–2 s for the GPU, behind "driver rpc error: timed out"`,
      `nvidia-smi -i ${g.index} -pm 1, or run nvidia-persistenced (systemctl enable --now nvidia-persistenced)`, details);
  });
}

/** The libraries a default (compute, utility) container gets; libcuda and libnvidia-ml are the ones it cannot do without. */
export function checkLibraries(f: DriverFacts): CheckResult | undefined {
  const inv = f.inventory;
  if (!inv) return undefined;
  const libs = listDriverFiles(inv, ['compute', 'utility'], []).libraries;
  const essential = ['libcuda.so', 'libnvidia-ml.so'].filter((p) => libs.missing.includes(p));
  const details = { found: libs.libraries, missing: libs.missing };
  const fix = inv.root === '/' ? 'reinstall the driver, or run `ldconfig` if the files exist' : `reinstall the driver, or run \`ldconfig -r ${inv.root}\` if the files exist`;
  if (essential.length > 0) {
    return fail('driver.libraries', `the ld cache offers no ${essential.join(', ')} of driver ${inv.driver.driverVersion}: GPU containers will fail to load CUDA/NVML`, fix, details);
  }
  const optional = libs.missing.length ? `; not installed (optional, containers get them only where present): ${libs.missing.join(', ')}` : '';
  return pass('driver.libraries', `${libs.libraries.length} compute/utility driver libraries of ${inv.driver.driverVersion} found${optional}`, { details });
}

/** A stale ld.so.cache (a driver upgrade without ldconfig) is what makes libraries go missing in containers. */
export function checkLdCache(f: DriverFacts): CheckResult | undefined {
  const inv = f.inventory;
  const c = f.ldcache;
  if (!inv || !c) return undefined;
  const problems = [
    ...(c.notInCache.length ? [`not in the cache although installed: ${c.notInCache.join(', ')}`] : []),
    ...(c.otherVersion.length ? [`entries of another driver version: ${c.otherVersion.join(', ')}`] : []),
    ...(c.dangling.length ? [`entries whose file is gone: ${c.dangling.join(', ')}`] : []),
  ];
  const cacheFile = resolveInRoot(inv.root, '/etc/ld.so.cache').hostPath;
  if (problems.length === 0) return pass('driver.ldcache', `${cacheFile} agrees with the installed driver libraries`, { details: { ...c } });
  return warn('driver.ldcache', `${cacheFile} is stale (containers miss these libraries): ${problems.join('; ')}`,
    inv.root === '/' ? 'run `ldconfig`' : `run \`ldconfig -r ${inv.root}\``, { ...c });
}

export function driverChecks(f: DriverFacts): CheckResult[] {
  return [checkNvml(f), checkDriverVersion(f), checkCuda(f), checkDevices(f), ...checkPersistence(f), checkLibraries(f), checkLdCache(f)].filter(
    (c): c is CheckResult => c !== undefined,
  );
}
