/**
 * ContainerFacts + RequestPolicy → DeviceRequest (PEER §3.8, SECURITY R4). Pure: no I/O.
 *
 * Order of decision (the peer's HEAD, in every mode but legacy):
 *   1. CDI annotations (keys with an annotation prefix; set by the engine or kubelet, so not privilege-gated);
 *   2. accepted volume mounts (/dev/null → /var/run/nvidia-container-devices/<id>) win over the env;
 *   3. otherwise the env (NVIDIA_VISIBLE_DEVICES, or a legacy CUDA image meaning "all"), unless the
 *      container is unprivileged and the policy refuses env requests from unprivileged containers;
 *   4. nothing asked → not a GPU container, and nothing else is validated (it must run untouched).
 * Then the mode (src/request/mode.ts) picks the injection path. On the CDI path the spec decides what is
 * injected: NVIDIA_DRIVER_CAPABILITIES and NVIDIA_REQUIRE_* are not read (NVML is not queried either).
 */
import { posix } from 'node:path';
import { NvrError } from '../errors.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, parseCapabilities } from './capabilities.js';
import { formatSelector, parseDeviceList, parseVisibleDevices, quote } from './devices.js';
import type { VisibleDevices } from './devices.js';
import { envToMap } from './env.js';
import type { ContainerFacts, DeviceRequest, RequestPolicy } from './types.js';
import { parseRequirement } from '../require/grammar.js';
import { chooseInjection } from './mode.js';
import { IMEX_ENV, imexChannelsRequested } from './imex.js';
import { FEATURES, type Feature } from '../host/graphics.js';
import { cdiAnnotationKeys, cdiDevicesFromAnnotations, DEFAULT_ANNOTATION_PREFIXES, DEFAULT_CDI_KIND } from './cdi-requests.js';

export const DEFAULT_REQUEST_POLICY: Readonly<RequestPolicy> = Object.freeze({
  acceptEnvvarWhenUnprivileged: true,
  acceptVolumeMounts: false,
  supportedCapabilities: [...ALL_CAPABILITIES],
  disableRequire: false,
  mode: 'auto',
  annotationPrefixes: DEFAULT_ANNOTATION_PREFIXES,
  defaultKind: DEFAULT_CDI_KIND,
});

export const DEVICE_LIST_MOUNT_ROOT = '/var/run/nvidia-container-devices';
const NVD = 'NVIDIA_VISIBLE_DEVICES';
const REQUIRE_PREFIX = 'NVIDIA_REQUIRE_';
// Read by the Jetson CSV mode, not requirements: every name starting with this (cuda_image.go).
const NOT_A_REQUIREMENT_PREFIX = 'NVIDIA_REQUIRE_JETPACK';
const MIG_VARS = ['NVIDIA_MIG_CONFIG_DEVICES', 'NVIDIA_MIG_MONITOR_DEVICES'] as const;

/** "Privileged" as the peer means it: CAP_SYS_ADMIN in the bounding set. */
export function isPrivileged(boundingCapabilities: readonly string[] | undefined): boolean {
  return (boundingCapabilities ?? []).includes('CAP_SYS_ADMIN');
}

/** Go's strconv.ParseBool; undefined when the text is not a boolean. */
export function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

/** CUDA_VERSION (e.g. "11.2.1", "v12", "12.4.0-rc1") → "major.minor", as the peer's semver-based parse. */
/** Components of a CUDA version are uint32, as the toolkit's parser reads them. */
const UINT32_MAX = 4294967295;

export function cudaMajorMinor(version: string): string {
  const m = /^v?(\d{1,10})(?:\.(\d{1,10})(?:\.(\d{1,10}))?)?(?:[-+][0-9A-Za-z.+-]*)?$/.exec(version.trim());
  if (!m || m.slice(1, 4).some((c) => c !== undefined && Number(c) > UINT32_MAX)) {
    throw new NvrError('INPUT', `CUDA_VERSION: ${quote(version)} is not a CUDA version (expected e.g. 12.4.1)`, {
      fix: 'fix CUDA_VERSION in the image, set NVIDIA_REQUIRE_CUDA to state the requirement, or set NVIDIA_DISABLE_REQUIRE=true',
    });
  }
  return `${Number(m[1])}.${Number(m[2] ?? 0)}`;
}

/**
 * Device ids requested through volume mounts: mounts of /dev/null onto DEVICE_LIST_MOUNT_ROOT/<id>.
 * `cdi/<vendor>/<class>/<name>` becomes the CDI name `vendor/class=name`; IMEX channel mounts
 * (`imex/<ch>`) are not GPU requests: src/request/imex.ts reads them.
 */
export function deviceIdsFromMounts(mounts: ContainerFacts['mounts']): string[] {
  const ids: string[] = [];
  for (const mount of mounts ?? []) {
    if (typeof mount?.source !== 'string' || typeof mount.destination !== 'string') continue;
    if (posix.normalize(mount.source) !== '/dev/null') continue;
    const dest = posix.normalize(mount.destination).replace(/\/+$/, '');
    if (!dest.startsWith(`${DEVICE_LIST_MOUNT_ROOT}/`)) continue;
    const id = dest.slice(DEVICE_LIST_MOUNT_ROOT.length + 1);
    const parts = id.split('/');
    if (parts[0] === 'imex') continue;
    if (parts[0] === 'cdi') {
      if (parts.length !== 4) {
        throw new NvrError('DEVICE', `volume mount ${quote(mount.destination)}: expected ${DEVICE_LIST_MOUNT_ROOT}/cdi/<vendor>/<class>/<name>`, {
          fix: 'mount /dev/null onto /var/run/nvidia-container-devices/cdi/nvidia.com/gpu/<device>',
        });
      }
      ids.push(`${parts[1]}/${parts[2]}=${parts[3]}`);
    } else {
      ids.push(id);
    }
  }
  return ids;
}

/** NVIDIA_VISIBLE_DEVICES=/var/run/nvidia-container-devices: "the devices are the mounts under this root". */
function namesMountRoot(nvd: string): boolean {
  const v = nvd.trim();
  return v.startsWith('/') && posix.normalize(v).replace(/\/+$/, '') === DEVICE_LIST_MOUNT_ROOT;
}

function describeDevices(v: VisibleDevices): string {
  if (!v.gpu) return 'no GPU';
  return v.devices.length === 0 ? 'no devices (driver files only)' : v.devices.map(formatSelector).join(', ');
}

const NOT_GPU = (reasons: string[]): DeviceRequest => ({
  gpu: false,
  devices: [],
  capabilities: [],
  requirements: [],
  source: 'none',
  reasons,
});

export function parseRequest(facts: ContainerFacts, policy: RequestPolicy = DEFAULT_REQUEST_POLICY): DeviceRequest {
  const env = envToMap(facts.env);
  const privileged = isPrivileged(facts.boundingCapabilities);
  const reasons: string[] = [];
  const cudaVersion = env.get('CUDA_VERSION') ?? '';
  const legacyImage = cudaVersion !== '' && (env.get('NVIDIA_REQUIRE_CUDA') ?? '') === '';

  const mode = policy.mode ?? 'auto';
  let visible: VisibleDevices | undefined;
  let source: DeviceRequest['source'] = 'none';

  // 1. CDI annotations.
  const prefixes = policy.annotationPrefixes ?? DEFAULT_ANNOTATION_PREFIXES;
  if (mode === 'legacy') {
    const keys = cdiAnnotationKeys(facts.annotations ?? {}, prefixes);
    if (keys.length > 0) reasons.push(`CDI annotations ignored (${keys.join(', ')}): mode = "legacy"`);
  } else {
    const asked = cdiDevicesFromAnnotations(facts.annotations ?? {}, prefixes);
    if (asked.names.length > 0) {
      visible = { gpu: true, devices: asked.names.map((name) => ({ kind: 'cdi', name })) };
      source = 'annotations';
      reasons.push(
        `devices requested by CDI annotations (${asked.keys.join(', ')}): ${describeDevices(visible)}; ` +
          `volume mounts and ${NVD} are not consulted`,
      );
    }
  }

  // 2. Volume mounts.
  const mountIds = visible === undefined ? deviceIdsFromMounts(facts.mounts) : [];
  if (mountIds.length > 0 && !policy.acceptVolumeMounts) {
    reasons.push(
      `${mountIds.length} device volume mount(s) ignored: accept-nvidia-visible-devices-as-volume-mounts = false`,
    );
  } else if (mountIds.length > 0) {
    visible = parseDeviceList(mountIds, `volume mount under ${DEVICE_LIST_MOUNT_ROOT}`);
    source = 'volume-mounts';
    reasons.push(`devices requested by volume mounts: ${describeDevices(visible)}; ${NVD} is not consulted`);
  }

  // 3. The environment: the first present of the swarm-resource names (Docker Swarm's DOCKER_RESOURCE_*), then
  //    NVIDIA_VISIBLE_DEVICES, as the toolkit reads them.
  if (visible === undefined) {
    const devicesVar = [...(policy.swarmResource ?? []), NVD].find((n) => env.has(n)) ?? NVD;
    const nvd = env.get(devicesVar);
    const asksByEnv = nvd !== undefined || legacyImage;
    if (asksByEnv && !privileged && !policy.acceptEnvvarWhenUnprivileged) {
      reasons.push(
        `${devicesVar} ignored: container is unprivileged and accept-nvidia-visible-devices-envvar-when-unprivileged = false`,
      );
    } else if (nvd === undefined && legacyImage) {
      visible = { gpu: true, devices: [{ kind: 'all' }] };
      source = 'legacy-cuda';
      reasons.push(`legacy CUDA image (CUDA_VERSION=${quote(cudaVersion)} without NVIDIA_REQUIRE_CUDA): all GPUs`);
    } else if (nvd === undefined) {
      reasons.push(`${NVD} is unset: not a GPU container`);
    } else if (namesMountRoot(nvd)) {
      // The k8s-device-plugin's volume-mounts strategy sets this value next to its /dev/null mounts.
      if (!policy.acceptVolumeMounts) {
        throw new NvrError('INPUT', `${NVD}=${quote(nvd)} asks for the devices mounted under it (the device plugin's volume-mounts strategy), but accept-nvidia-visible-devices-as-volume-mounts = false`, {
          fix: 'set accept-nvidia-visible-devices-as-volume-mounts = true in config.toml, or use another DEVICE_LIST_STRATEGY',
        });
      }
      reasons.push(`${NVD}=${quote(nvd)} names the device-list mount root, but no device is mounted there: not a GPU container`);
    } else {
      visible = parseVisibleDevices(nvd, devicesVar);
      source = visible.gpu ? 'env' : 'none';
      const swarm = devicesVar === NVD ? '' : ` (swarm-resource; ${NVD} is not consulted)`;
      reasons.push(
        visible.gpu
          ? `${devicesVar}=${quote(nvd)}${swarm}: ${describeDevices(visible)}`
          : `${devicesVar}=${quote(nvd)}${swarm}: not a GPU container`,
      );
    }
  }

  // 4. Nothing asked: not a GPU container; validate nothing else.
  if (visible === undefined || !visible.gpu) return NOT_GPU(reasons);

  if (!privileged) {
    for (const name of MIG_VARS) {
      if ((env.get(name) ?? '') !== '') {
        throw new NvrError('INPUT', `cannot set ${name} in a non-privileged container`, {
          fix: `unset ${name}, or run the container privileged (CAP_SYS_ADMIN in its bounding set)`,
        });
      }
    }
  }

  const injection = chooseInjection(mode, visible.devices, source, policy.defaultKind ?? DEFAULT_CDI_KIND);
  if (injection.path === 'cdi') {
    reasons.push(
      injection.reason,
      'NVIDIA_DRIVER_CAPABILITIES is ignored on the CDI path: the CDI spec decides which driver files are injected',
      'requirements (NVIDIA_REQUIRE_*) are not checked on the CDI path: NVML is not queried, the CDI spec is the source of truth',
    );
    if ((env.get(IMEX_ENV) ?? '').trim() !== '') {
      reasons.push(`${IMEX_ENV} ignored on the CDI path (as NVIDIA's toolkit v1.17.9): request nvidia.com/imex-channel=<N> devices instead`);
    }
    for (const f of featuresAsked(env)) reasons.push(`${featureVar(f)} ignored on the CDI path (as NVIDIA's toolkit v1.17.9): request nvidia.com/${f}=all from a spec made by cdi generate --mode ${f}`);
    return { gpu: true, devices: visible.devices, capabilities: [], requirements: [], source, reasons, cdiDevices: injection.names };
  }

  const capsText = env.get('NVIDIA_DRIVER_CAPABILITIES');
  // A legacy image gets every supported capability only when the variable is unset; set but empty means the
  // default, as in the toolkit (image.GetDriverCapabilities).
  const legacyAll = legacyImage && capsText === undefined;
  const capabilities = parseCapabilities(capsText, policy.supportedCapabilities, legacyAll ? policy.supportedCapabilities : DEFAULT_CAPABILITIES);
  reasons.push(
    capsText === undefined || capsText.trim() === ''
      ? `NVIDIA_DRIVER_CAPABILITIES ${capsText === undefined ? 'unset' : 'empty'}: ${legacyAll ? 'all supported for a legacy CUDA image' : 'default'} ${capabilities.join(',')}`
      : `capabilities: ${capabilities.join(',')}`,
  );

  const requirements = requirementsOf(env, legacyImage, policy, reasons);
  const imexChannels = imexChannelsRequested(env, facts.mounts, privileged, policy, reasons);
  // MIG administration (privileged only, checked above): the global config/monitor capabilities, as the toolkit's
  // --mig-config / --mig-monitor give them. Any value asks for the capability; MIG devices are selected by NVD.
  const migAdmin = MIG_VARS.flatMap((name) => ((env.get(name) ?? '') !== '' ? [name === 'NVIDIA_MIG_CONFIG_DEVICES' ? 'config' as const : 'monitor' as const] : []));
  for (const which of migAdmin) reasons.push(`MIG ${which} capability requested (privileged container)`);
  // GDS/MOFED/NVSwitch/GDRCopy come with GPUs only, as NVIDIA's runtime adds them (its feature-gated modifier).
  const asked = featuresAsked(env);
  const features = visible.devices.length > 0 ? asked : [];
  for (const f of asked) reasons.push(features.includes(f) ? `${featureVar(f)}=enabled: its device nodes are added when the host has them` : `${featureVar(f)} ignored: NVIDIA_VISIBLE_DEVICES selects no GPU`);
  return {
    gpu: true,
    devices: visible.devices,
    capabilities,
    requirements,
    source,
    reasons,
    ...(imexChannels.length > 0 ? { imexChannels } : {}),
    ...(migAdmin.length > 0 ? { migAdmin } : {}),
    ...(features.length > 0 ? { features } : {}),
  };
}

const featureVar = (f: Feature): string => `NVIDIA_${f.toUpperCase()}`;
/** NVIDIA_GDS, NVIDIA_MOFED, NVIDIA_NVSWITCH, NVIDIA_GDRCOPY: exactly "enabled" asks (the toolkit's comparison). */
const featuresAsked = (env: Map<string, string>): Feature[] => FEATURES.filter((f) => env.get(featureVar(f)) === 'enabled');

function requirementsOf(env: Map<string, string>, legacyImage: boolean, policy: RequestPolicy, reasons: string[]): string[] {
  if (policy.disableRequire) {
    reasons.push('requirements not checked: disable-require = true in config.toml');
    return [];
  }
  const disable = env.get('NVIDIA_DISABLE_REQUIRE');
  if (disable !== undefined && disable !== '') {
    const parsed = parseGoBool(disable);
    if (parsed === true) {
      reasons.push(`requirements not checked: NVIDIA_DISABLE_REQUIRE=${quote(disable)}`);
      return [];
    }
    if (parsed === undefined) reasons.push(`NVIDIA_DISABLE_REQUIRE=${quote(disable)} is not a boolean: requirements are checked`);
  }
  const names = [...env.keys()].filter((k) => k.startsWith(REQUIRE_PREFIX) && !k.startsWith(NOT_A_REQUIREMENT_PREFIX)).sort();
  const requirements: string[] = [];
  for (const name of names) {
    const value = env.get(name)!;
    if (parseRequirement(value, name).groups.length === 0) continue; // blank: no constraint
    requirements.push(value.trim());
    reasons.push(`requirement from ${name}: ${value.trim()}`);
  }
  if (legacyImage) {
    const req = `cuda>=${cudaMajorMinor(env.get('CUDA_VERSION')!)}`;
    requirements.push(req);
    reasons.push(`requirement from the legacy CUDA image's CUDA_VERSION: ${req}`);
  }
  return requirements;
}
