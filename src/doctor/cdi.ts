/**
 * Doctor, CDI specs: every spec file of the configured spec dirs read by the runtime's own reader (readSpecFile:
 * trust, syntax, schema and CDI rules), its hooks' trust (they run as root), and whether it still describes this
 * host: a spec written before a driver upgrade names libcuda.so.<old version>, host paths that are gone, GPUs that
 * are not there. Pure staleness rules over the spec and a host summary; the gathering does the reading.
 */
import { existsSync } from 'node:fs';
import { posix } from 'node:path';
import { listSpecFiles, readSpecFile } from '../cdi/load.js';
import { loadCdiRegistry, listCdiDevices } from '../cdi/registry.js';
import type { CdiContainerEdits, CdiSpec } from '../cdi/types.js';
import { NvrError } from '../errors.js';
import { ALL_LIBRARY_PREFIXES, EGL_PLATFORM_LIBS } from '../host/capabilities.js';
import type { HostInventory } from '../host/inventory.js';
import { trustProblem } from '../trust.js';
import { fail, info, pass, warn, type CheckResult } from './types.js';

/** What a spec is compared with. */
export interface HostSummary {
  driverVersion: string;
  gpuUuids: string[];
  /** GPU and MIG UUIDs. */
  deviceUuids: string[];
  gpuMinors: number[];
}

export interface SpecFact {
  file: string;
  spec?: CdiSpec;
  error?: NvrError;
  /** Host paths the spec names that do not exist. */
  missingPaths: string[];
  /** Hook binaries that are not trusted (someone other than root could replace them), with why. */
  untrustedHooks: string[];
}

export interface CdiFacts {
  specDirs: string[];
  /** Directories that could not be used (untrusted, unreadable), with why. */
  dirErrors: { dir: string; error: NvrError }[];
  specs: SpecFact[];
  host?: HostSummary;
  /** Fully-qualified device names the runtime resolves, and the registry's per-file errors (conflicts). */
  devices: string[];
  registryErrors: { file: string; reason: string }[];
}

const allEdits = (s: CdiSpec): CdiContainerEdits[] => [...(s.containerEdits ? [s.containerEdits] : []), ...s.devices.map((d) => d.containerEdits)];

/** Every host path a spec names: mount sources, device nodes (hostPath, else path), hook binaries. */
export function specHostPaths(s: CdiSpec): string[] {
  const out = new Set<string>();
  for (const e of allEdits(s)) {
    for (const m of e.mounts ?? []) if (m.hostPath) out.add(m.hostPath);
    for (const d of e.deviceNodes ?? []) out.add(d.hostPath || d.path);
    for (const h of e.hooks ?? []) out.add(h.path);
  }
  return [...out];
}

export function hostSummary(inv: HostInventory): HostSummary {
  const gpus = inv.driver.gpus;
  return {
    driverVersion: inv.driver.driverVersion,
    gpuUuids: gpus.map((g) => g.uuid),
    deviceUuids: gpus.flatMap((g) => [g.uuid, ...g.migDevices.map((m) => m.uuid)]),
    gpuMinors: gpus.map((g) => g.minor),
  };
}

const VERSIONED_PREFIXES = ALL_LIBRARY_PREFIXES.filter((p) => !(EGL_PLATFORM_LIBS as readonly string[]).includes(p));

/**
 * Why a spec no longer matches the host (pure): driver libraries of another version, device names that are UUIDs
 * of no GPU here, /dev/nvidia<N> of no GPU here, host paths that are gone. Empty: it matches.
 */
export function specStaleness(s: CdiSpec, host: HostSummary, missingPaths: readonly string[]): string[] {
  const reasons: string[] = [];
  const nvidia = s.kind.startsWith('nvidia.com/');
  if (nvidia) {
    const versions = new Set<string>();
    for (const e of allEdits(s)) {
      for (const m of e.mounts ?? []) {
        const base = posix.basename(m.hostPath ?? '');
        const prefix = VERSIONED_PREFIXES.find((p) => base.startsWith(`${p}.`));
        const v = prefix === undefined ? undefined : /^\.(\d+\.\d+(?:\.\d+)?)$/.exec(base.slice(prefix.length))?.[1];
        if (v !== undefined && v !== host.driverVersion) versions.add(`${base}`);
      }
    }
    if (versions.size > 0) reasons.push(`names ${[...versions].slice(0, 3).join(', ')}${versions.size > 3 ? ` and ${versions.size - 3} more` : ''} but the driver is ${host.driverVersion}`);
    const unknown = s.devices.map((d) => d.name).filter((n) => /^(GPU|MIG)-/.test(n) && !host.deviceUuids.includes(n));
    if (unknown.length > 0) reasons.push(`device(s) ${unknown.slice(0, 3).join(', ')}${unknown.length > 3 ? ` and ${unknown.length - 3} more` : ''} are not GPUs of this host`);
    const named = s.devices.map((d) => d.name);
    if (named.some((n) => n.startsWith('GPU-'))) {
      const absent = host.gpuUuids.filter((u) => !named.includes(u));
      if (absent.length > 0) reasons.push(`does not have this host's GPU(s) ${absent.join(', ')}`);
    }
    const minors = new Set<number>();
    for (const e of allEdits(s)) {
      for (const d of e.deviceNodes ?? []) {
        const m = /^\/dev\/nvidia(\d+)$/.exec(d.path);
        if (m && !host.gpuMinors.includes(Number(m[1]))) minors.add(Number(m[1]));
      }
    }
    if (minors.size > 0) reasons.push(`grants /dev/nvidia${[...minors].join(', /dev/nvidia')} but this host has no such GPU`);
  }
  if (missingPaths.length > 0) {
    reasons.push(`names ${missingPaths.length} host path(s) that do not exist: ${missingPaths.slice(0, 3).join(', ')}${missingPaths.length > 3 ? ', …' : ''}`);
  }
  return reasons;
}

export function gatherCdi(specDirs: readonly string[], inventory: HostInventory | undefined): CdiFacts {
  const dirErrors: CdiFacts['dirErrors'] = [];
  const specs: SpecFact[] = [];
  for (const dir of specDirs) {
    let files: string[];
    try {
      files = listSpecFiles(dir);
    } catch (e) {
      if (!(e instanceof NvrError)) throw e;
      dirErrors.push({ dir, error: e });
      continue;
    }
    for (const file of files) {
      try {
        const spec = readSpecFile(file, { cache: false });
        const paths = specHostPaths(spec);
        const hooks = new Set(allEdits(spec).flatMap((e) => (e.hooks ?? []).map((h) => h.path)));
        specs.push({
          file,
          spec,
          missingPaths: paths.filter((p) => !existsSync(p)),
          untrustedHooks: [...hooks].filter((h) => existsSync(h)).flatMap((h) => {
            const t = trustProblem(h);
            return t ? [t.problem] : [];
          }),
        });
      } catch (e) {
        if (!(e instanceof NvrError)) throw e;
        specs.push({ file, error: e, missingPaths: [], untrustedHooks: [] });
      }
    }
  }
  const registry = loadCdiRegistry(specDirs, { cache: false });
  // Per-file read errors are reported above; the registry adds what only it knows (conflicting definitions).
  const registryErrors = registry.errors.filter((r) => r.reason.startsWith('conflicting definitions'));
  return {
    specDirs: [...specDirs], dirErrors, specs, ...(inventory ? { host: hostSummary(inventory) } : {}),
    devices: listCdiDevices(registry), registryErrors,
  };
}

const REGENERATE = 'regenerate it for this host: nvidia-ctk cdi generate --output FILE (for the file named), or remove it';

export function checkSpec(s: SpecFact, host: HostSummary | undefined): CheckResult {
  const id = `cdi.spec.${s.file}`;
  if (s.error) {
    return fail(id, `${s.error.message} (the runtime ignores it)`, s.error.fix ?? 'fix or remove the file', { file: s.file });
  }
  const spec = s.spec!;
  const details = { file: s.file, kind: spec.kind, cdiVersion: spec.cdiVersion, devices: spec.devices.map((d) => d.name), missingPaths: s.missingPaths };
  if (s.untrustedHooks.length > 0) {
    return fail(id, `hook(s) not trusted, so devices of this spec are refused: ${s.untrustedHooks.join('; ')}`, 'chown root and chmod go-w the hook binaries (and their directories)', details);
  }
  const stale = host ? specStaleness(spec, host, s.missingPaths) : s.missingPaths.length ? [`names ${s.missingPaths.length} host path(s) that do not exist`] : [];
  if (stale.length > 0) {
    return warn(id, `${spec.kind} spec is stale: ${stale.join('; ')}`, REGENERATE.replace('FILE', s.file), { ...details, stale });
  }
  return pass(id, `${spec.kind}, ${spec.devices.length} device(s), cdiVersion ${spec.cdiVersion}${host ? `, matches driver ${host.driverVersion}` : ''}`, { details });
}

export function cdiChecks(f: CdiFacts): CheckResult[] {
  const out: CheckResult[] = [];
  for (const d of f.dirErrors) out.push(fail(`cdi.dir.${d.dir}`, d.error.message, d.error.fix ?? `chown root ${d.dir} && chmod go-w ${d.dir}`, { dir: d.dir }));
  out.push(...f.specs.map((s) => checkSpec(s, f.host)));
  for (const r of f.registryErrors) out.push(warn(`cdi.conflict.${r.file}`, `${r.file}: ${r.reason}`, 'keep one definition of each device name per spec directory', { ...r }));
  const devices = f.devices.length ? `${f.devices.length} device name(s): ${f.devices.slice(0, 6).join(', ')}${f.devices.length > 6 ? ', …' : ''}` : 'no CDI devices defined';
  out.push(info('cdi.devices', `spec dirs ${f.specDirs.join(', ')}: ${f.specs.length} spec file(s), ${devices}`, { details: { specDirs: f.specDirs, devices: f.devices } }));
  return out;
}
