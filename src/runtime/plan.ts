/**
 * The create pipeline, without side effects: read → request → (CDI specs | host → resolve → check
 * requirements) → edits → apply. `nvidia-runtime create` writes the result; `nvidia-ctk explain` prints it. Both
 * share this one function, so what explain shows is exactly what create does.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { loadCdiRegistry, requireTrustedHooks, resolveCdiDevices, type CdiRegistry } from '../cdi/registry.js';
import type { FrozenRuntimeConfig } from '../config/schema.js';
import { applyEdits, removeHooks } from '../edits/apply.js';
import { parseMountinfo, propagationProblem, type HostMount } from '../edits/propagation.js';
import { buildEdits, type CudaCompat } from '../edits/build.js';
import { findCompatLibraries } from '../host/cuda-compat.js';
import { mergeEdits, type ContainerEdits } from '../edits/types.js';
import { NvrError } from '../errors.js';
import type { HostInventory } from '../host/inventory.js';
import { getAnnotations, getBoundingCapabilities, getEnv, getMounts, getRootPath, readSpecFile, serializeSpec, type SpecFile } from '../oci/spec-file.js';
import type { OciHook, OciSpec } from '../oci/types.js';
import { formatSelector } from '../request/devices.js';
import { swarmResourceNames } from '../request/env.js';
import { parseRequest } from '../request/parse.js';
import { resolveDevices, selectedGpus, type ResolvedDevices } from '../request/resolve.js';
import type { DeviceRequest, RequestPolicy } from '../request/types.js';
import { evaluateRequirements } from '../require/evaluate.js';
import { cdiOnDirectPathError } from '../request/mode.js';

export interface PlanDeps {
  loadInventory: (driverRoot: string) => HostInventory;
  /** Absolute path of nvidia-runtime-hook. */
  hookPath: string;
  /** The mounts of the namespace runc runs in; default /proc/self/mountinfo. */
  hostMounts?: () => HostMount[];
  /** The CDI registry of these spec dirs; default loadCdiRegistry (`nvidia-runtime serve` passes its cache). */
  loadCdiRegistry?: (specDirs: readonly string[]) => CdiRegistry;
}

const readHostMounts = (): HostMount[] => parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));

export interface CreatePlan {
  specFile: SpecFile;
  request: DeviceRequest;
  /** Present for GPU containers. */
  inventory?: HostInventory;
  resolved?: ResolvedDevices;
  edits?: ContainerEdits;
  /** Direct path: what NVIDIA_VISIBLE_DEVICES now says (UUIDs or none). CDI path: the CDI device names injected. */
  granted?: string;
  spec: OciSpec;
  /** The new config.json text; undefined when the file must stay byte-identical. */
  newText?: string;
}

export function requestPolicy(config: FrozenRuntimeConfig): RequestPolicy {
  return {
    acceptEnvvarWhenUnprivileged: config.acceptEnvvarWhenUnprivileged,
    acceptVolumeMounts: config.acceptVolumeMounts,
    supportedCapabilities: [...config.supportedCapabilities],
    disableRequire: config.disableRequire,
    mode: config.runtime.mode,
    annotationPrefixes: [...config.runtime.cdi.annotationPrefixes],
    defaultKind: config.runtime.cdi.defaultKind,
    swarmResource: swarmResourceNames(config.swarmResource),
    ignoreImexChannelRequests: config.features['ignore-imex-channel-requests'] === true,
  };
}

/** What `docker run --gpus` inserts: the toolkit's prestart hook (PEER §3.9, the peer's hook remover). */
const DOCKER_GPU_HOOKS = ['nvidia-container-runtime-hook', 'nvidia-container-toolkit'];

/**
 * Removes the prestart hook `docker run --gpus` added, so that a container is never injected twice (once by us,
 * once by that hook through nvidia-container-cli). Done on every spec we modify.
 */
export function removeDockerGpuHooks(spec: OciSpec): OciSpec {
  return removeHooks(spec, (hook: OciHook, hookName: string) => hookName === 'prestart' && DOCKER_GPU_HOOKS.includes(basename(hook.path)));
}

/** config.json of a bundle, or the file runc's newer `--config` names. */
export function readBundleSpec(bundle: string, configPath?: string): SpecFile {
  return readSpecFile(resolve(bundle, configPath ?? 'config.json'));
}

/** What a bundle's spec asks for under this config: the one reading shared by the runtime and the prestart hook. */
export function requestOfSpec(specFile: SpecFile, config: FrozenRuntimeConfig): DeviceRequest {
  const spec = specFile.spec;
  return parseRequest(
    {
      env: getEnv(spec, specFile.path),
      mounts: getMounts(spec, specFile.path).map((m) => ({ source: typeof m.source === 'string' ? m.source : undefined, destination: String(m.destination) })),
      boundingCapabilities: getBoundingCapabilities(spec, specFile.path),
      annotations: getAnnotations(spec, specFile.path),
    },
    requestPolicy(config),
  );
}

/** The host path of the bundle's rootfs (root.path, relative to the bundle). */
export function rootfsOf(specFile: SpecFile): string {
  const rootPath = getRootPath(specFile.spec, specFile.path);
  if (!rootPath) throw new NvrError('SPEC', `${specFile.path}: root.path is missing`, { fix: 'the bundle must name its rootfs in root.path' });
  return resolve(dirname(specFile.path), rootPath);
}

export function planCreate(bundle: string, config: FrozenRuntimeConfig, deps: PlanDeps, configPath?: string): CreatePlan {
  const specFile = readBundleSpec(bundle, configPath);
  const spec = specFile.spec;
  const request = requestOfSpec(specFile, config);
  if (!request.gpu) return { specFile, request, spec };

  const base = removeDockerGpuHooks(spec);
  const done = (edits: ContainerEdits, granted: string, more: Partial<CreatePlan> = {}): CreatePlan => {
    const leak = propagationProblem(base, edits, (deps.hostMounts ?? readHostMounts)(), realpathSync);
    if (leak) throw new NvrError('SPEC', `${specFile.path}: ${leak.message}`, { fix: leak.fix });
    const newSpec = applyEdits(base, edits);
    const newText = serializeSpec(newSpec);
    return { specFile, request, ...more, edits, granted, spec: newSpec, newText: newText === specFile.text ? undefined : newText };
  };

  if (request.cdiDevices) {
    // CDI path: the specs on disk decide everything; no NVML, no driver-root lookups.
    const registry = deps.loadCdiRegistry ? deps.loadCdiRegistry(config.runtime.cdi.specDirs) : loadCdiRegistry(config.runtime.cdi.specDirs);
    request.reasons.push(`CDI devices ${request.cdiDevices.join(', ')} from spec dirs ${registry.specDirs.join(', ')}`);
    for (const e of registry.errors) request.reasons.push(`CDI spec ${e.file} skipped: ${e.reason}`);
    const granted = request.cdiDevices.join(',');
    // The spec's own env edits (if it sets NVIDIA_VISIBLE_DEVICES) win over ours: it is the source of truth.
    const cdiEdits = resolveCdiDevices(registry, request.cdiDevices);
    requireTrustedHooks(cdiEdits);
    return done(mergeEdits({ env: [`NVIDIA_VISIBLE_DEVICES=${granted}`] }, cdiEdits), granted);
  }

  // The direct path cannot inject a CDI device: refuse before touching the host.
  const cdiNames = request.devices.filter((d) => d.kind === 'cdi').map(formatSelector);
  if (cdiNames.length > 0) {
    throw cdiOnDirectPathError(config.runtime.mode, cdiNames, request.devices.filter((d) => d.kind !== 'cdi').map(formatSelector));
  }
  const inventory = deps.loadInventory(config.cli.root);
  const resolved = resolveDevices(request, inventory.driver);
  const driver = inventory.driver;
  evaluateRequirements(request.requirements, {
    cudaVersion: driver.cudaVersion,
    driverVersion: driver.driverVersion,
    devices: selectedGpus(resolved).map((g) => ({ computeCapability: g.computeCapability, brand: g.brand, label: `GPU ${g.index}` })),
  });
  const rootfs = rootfsOf(specFile);
  const ldconfig = hostLdconfig(config.cli.ldconfig);
  const cudaCompat = cudaCompatOf(config, rootfs, driver.driverVersion, request);
  const { edits, granted } = buildEdits({
    inventory, request, resolved, hookPath: deps.hookPath, rootfs, ...(ldconfig ? { ldconfig } : {}),
    driverOptions: config.cli.driverOptions, cudaCompat,
  });
  return done(edits, granted, { inventory, resolved });
}

/**
 * `[nvidia-container-runtime.modes.legacy] cuda-compat-mode` for this container. Forward compatibility is a CUDA
 * (compute) matter, as in libnvidia-container; `features.disable-cuda-compat-lib-hook` turns mode `hook` off as it
 * turns off the toolkit's hook. Mode `mount` reads the image's compat directory now, inside the rootfs.
 */
export function cudaCompatOf(config: FrozenRuntimeConfig, rootfs: string, driverVersion: string, request: DeviceRequest): CudaCompat {
  const mode = config.runtime.legacy.cudaCompatMode;
  if (!request.capabilities.includes('compute') || (mode === 'hook' && config.features['disable-cuda-compat-lib-hook'] === true)) return { mode: 'disabled' };
  return mode === 'mount' ? { mode, libraries: findCompatLibraries(rootfs, driverVersion) } : { mode };
}

/** The toolkit's default: the host's own ldconfig, which the hook finds itself (/sbin/ldconfig.real first). */
const DEFAULT_LDCONFIG = '@/sbin/ldconfig';

/**
 * `[nvidia-container-cli] ldconfig` (or configure's `--ldconfig`, `flag`): "@/host/path" is a host ldconfig the hook runs (sealed, confined); undefined for
 * the default. A container path is refused: running the image's ldconfig as root is CVE-2024-0136.
 */
export function hostLdconfig(value: string, flag = false): string | undefined {
  if (value === '' || value === DEFAULT_LDCONFIG) return undefined;
  if (value.startsWith('@/')) return value.slice(1);
  const said = flag ? `--ldconfig=${value}` : `[nvidia-container-cli] ldconfig = ${JSON.stringify(value)}`;
  throw new NvrError('CONFIG', `${said} names an ldconfig inside the container: nvidia-runtime never runs the image's ldconfig as root (CVE-2024-0136)`, {
    fix: flag ? `use a host ldconfig: --ldconfig=@${value} (or leave it out for the host's default)` : `use a host ldconfig: ldconfig = "@${value}" (or remove the key for the host's default)`,
  });
}
