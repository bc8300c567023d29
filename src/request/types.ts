/**
 * What a container asks for, decided from its OCI spec alone (env, mounts, capabilities, annotations).
 * Pure data: src/request/parse.ts produces it, the runtime and `nvidia-ctk explain` consume it.
 */

import type { RuntimeMode } from '../config/schema.js';

/** Driver capabilities (NVIDIA_DRIVER_CAPABILITIES); each selects a group of driver files (src/host/capabilities.ts). */
export type { Capability } from '../host/capabilities.js';
import type { Capability } from '../host/capabilities.js';
import type { Feature } from '../host/graphics.js';

/** One item of a device request, normalised (lowercase hex, 8-digit PCI domain, decimal indices). */
export type DeviceSelector =
  | { kind: 'all' }
  | { kind: 'index'; index: number }
  | { kind: 'uuid'; uuid: string }
  | { kind: 'pci'; busId: string }
  | { kind: 'mig-index'; gpu: number; mig: number }
  | { kind: 'mig-uuid'; uuid: string }
  | { kind: 'cdi'; name: string }; // fully-qualified CDI name, resolved by the CDI layer

export interface DeviceRequest {
  gpu: boolean; // false → not a GPU container: the runtime passes the spec to runc untouched
  devices: DeviceSelector[]; // empty with gpu=true means NVIDIA_VISIBLE_DEVICES=none (driver files, no GPU)
  capabilities: Capability[]; // sorted, unique
  requirements: string[]; // NVIDIA_REQUIRE_* values (empty when disabled)
  source: 'annotations' | 'env' | 'volume-mounts' | 'legacy-cuda' | 'none';
  reasons: string[]; // human sentences: why this was decided (shown by `nvidia-ctk explain`)
  /**
   * Present when the devices are injected from CDI specs (src/request/mode.ts decides): the fully-qualified
   * names to resolve, request order, unique. Capabilities and requirements are then empty: the spec decides.
   */
  cdiDevices?: string[];
  /**
   * IMEX channels (/dev/nvidia-caps-imex-channels/channel<N>) for the direct path, ascending and unique; absent when
   * none (NVIDIA_IMEX_CHANNELS or imex/<ch> volume mounts; src/request/imex.ts).
   */
  imexChannels?: number[];
  /** Privileged MIG administration: the global `config` and/or `monitor` capability (NVIDIA_MIG_CONFIG_DEVICES,
   *  NVIDIA_MIG_MONITOR_DEVICES); absent when not asked. */
  migAdmin?: Array<'config' | 'monitor'>;
  /** GPU companions asked for with NVIDIA_GDS / NVIDIA_MOFED / NVIDIA_NVSWITCH / NVIDIA_GDRCOPY = enabled (direct path,
   *  with devices only); absent when none. */
  features?: Feature[];
}

/** The config.toml keys (peer names) that govern how requests are read. */
export interface RequestPolicy {
  acceptEnvvarWhenUnprivileged: boolean; // accept-nvidia-visible-devices-envvar-when-unprivileged, default true
  acceptVolumeMounts: boolean; // accept-nvidia-visible-devices-as-volume-mounts, default false
  supportedCapabilities: Capability[]; // supported-driver-capabilities, default all seven
  disableRequire: boolean; // disable-require, default false
  /** [nvidia-container-runtime] mode, default auto (which injection path; see src/request/mode.ts). */
  mode?: RuntimeMode;
  /** [nvidia-container-runtime.modes.cdi] annotation-prefixes, default ["cdi.k8s.io/"]. */
  annotationPrefixes?: readonly string[];
  /** [nvidia-container-runtime.modes.cdi] default-kind, default "nvidia.com/gpu". */
  defaultKind?: string;
  /** swarm-resource: env names read before NVIDIA_VISIBLE_DEVICES (Docker Swarm generic resources), default none. */
  swarmResource?: readonly string[];
  /** [features] ignore-imex-channel-requests, default false. */
  ignoreImexChannelRequests?: boolean;
}

/** The parts of the OCI spec a request is read from. */
export interface ContainerFacts {
  env: string[];
  mounts: { source?: string; destination: string }[];
  boundingCapabilities: string[];
  annotations: Record<string, string>;
}
