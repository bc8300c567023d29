/**
 * The create pipeline, without side effects: read → request → host → resolve → check requirements → edits →
 * apply. `nvidia-runtime create` writes the result; `nvidia-ctk explain` prints it. Both share this one function,
 * so what explain shows is exactly what create does.
 */
import { dirname, resolve } from 'node:path';
import type { FrozenRuntimeConfig } from '../config/schema.js';
import { applyEdits } from '../edits/apply.js';
import { buildEdits } from '../edits/build.js';
import type { ContainerEdits } from '../edits/types.js';
import type { HostInventory } from '../host/inventory.js';
import { getAnnotations, getBoundingCapabilities, getEnv, getMounts, getRootPath, parseSpec, readSpec, serializeSpec, type SpecFile } from '../oci/spec-file.js';
import type { OciSpec } from '../oci/types.js';
import { parseRequest } from '../request/parse.js';
import { resolveDevices, selectedGpus, type ResolvedDevices } from '../request/resolve.js';
import type { Capability, DeviceRequest, RequestPolicy } from '../request/types.js';
import { evaluateRequirements } from '../require/evaluate.js';
import { NvrError } from '../errors.js';
import { readFileSync } from 'node:fs';

export interface PlanDeps {
  loadInventory: (driverRoot: string) => HostInventory;
  /** Absolute path of nvidia-runtime-hook. */
  hookPath: string;
}

export interface CreatePlan {
  specFile: SpecFile;
  request: DeviceRequest;
  /** Present for GPU containers. */
  inventory?: HostInventory;
  resolved?: ResolvedDevices;
  edits?: ContainerEdits;
  granted?: string;
  spec: OciSpec;
  /** The new config.json text; undefined when the file must stay byte-identical. */
  newText?: string;
}

export function requestPolicy(config: FrozenRuntimeConfig): RequestPolicy {
  return {
    acceptEnvvarWhenUnprivileged: config.acceptEnvvarWhenUnprivileged,
    acceptVolumeMounts: config.acceptVolumeMounts,
    supportedCapabilities: [...config.supportedCapabilities] as Capability[],
    disableRequire: config.disableRequire,
  };
}

/** config.json of a bundle, or the file runc's newer `--config` names. */
export function readBundleSpec(bundle: string, configPath?: string): SpecFile {
  if (!configPath || resolve(bundle, configPath) === resolve(bundle, 'config.json')) return readSpec(bundle);
  const file = resolve(bundle, configPath);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new NvrError('SPEC', `${file}: cannot be read`, { fix: 'check --config', cause: e });
  }
  return { path: file, text, spec: parseSpec(text, file) };
}

export function planCreate(bundle: string, config: FrozenRuntimeConfig, deps: PlanDeps, configPath?: string): CreatePlan {
  const specFile = readBundleSpec(bundle, configPath);
  const spec = specFile.spec;
  const request = parseRequest(
    {
      env: getEnv(spec, specFile.path),
      mounts: getMounts(spec, specFile.path).map((m) => ({ source: typeof m.source === 'string' ? m.source : undefined, destination: String(m.destination) })),
      boundingCapabilities: getBoundingCapabilities(spec, specFile.path),
      annotations: getAnnotations(spec, specFile.path),
    },
    requestPolicy(config),
  );
  if (!request.gpu) return { specFile, request, spec };

  const inventory = deps.loadInventory(config.cli.root);
  const resolved = resolveDevices(request, inventory.driver);
  if (resolved.cdi.length > 0) {
    throw new NvrError('DEVICE', `CDI device names (${resolved.cdi.join(', ')}) are not supported by this runtime yet`, {
      fix: 'request GPUs by index or UUID in NVIDIA_VISIBLE_DEVICES',
    });
  }
  const driver = inventory.driver;
  evaluateRequirements(request.requirements, {
    cudaVersion: driver.cudaVersion,
    driverVersion: driver.driverVersion,
    devices: selectedGpus(resolved).map((g) => ({ computeCapability: g.computeCapability, brand: g.brand, label: `GPU ${g.index}` })),
  });
  const rootPath = getRootPath(spec, specFile.path);
  if (!rootPath) throw new NvrError('SPEC', `${specFile.path}: root.path is missing`, { fix: 'the bundle must name its rootfs in root.path' });
  const rootfs = resolve(dirname(specFile.path), rootPath);
  const { edits, granted } = buildEdits({ inventory, request, resolved, hookPath: deps.hookPath, rootfs });
  const newSpec = applyEdits(spec, edits);
  const newText = serializeSpec(newSpec);
  return { specFile, request, inventory, resolved, edits, granted, spec: newSpec, newText: newText === specFile.text ? undefined : newText };
}
