/**
 * `nvidia-ctk cdi generate`: a CDI spec for every GPU and MIG device of the host. One device per GPU (and MIG
 * device) per naming strategy plus `all`; each device carries only its own nodes (with the host's type and
 * major:minor), and the spec-level edits carry everything every GPU container needs: control nodes, read-only bind
 * mounts of the driver files of ALL capabilities, and the createContainer hook that makes the libraries loadable.
 * The hook gets no `--root`: under a CDI engine we do not know the rootfs when the spec is written, so the hook
 * reads it from the OCI state on stdin. cdiVersion is the lowest that expresses what is used (0.5.0 for hostPath
 * and digit-leading names), so engines with old CDI libraries (podman 4.3: ≤ 0.5.0) accept it. Deterministic:
 * the same host gives byte-identical output.
 */
import { posix } from 'node:path';
import { deviceEdits, driverEdits, drmEdits, featureEdits, imexEdits, linksHook } from '../edits/build.js';
import { mergeEdits } from '../edits/types.js';
import { NvrError } from '../errors.js';
import { CAPABILITIES } from '../host/capabilities.js';
import type { Feature } from '../host/graphics.js';
import { migKey, type HostInventory } from '../host/inventory.js';
import type { GpuInfo, MigDeviceInfo } from '../host/types.js';
import { classProblem, vendorProblem } from './names.js';
import type { CdiContainerEdits, CdiDevice, CdiSpec } from './types.js';
import { minimumVersion } from './validate.js';

export const DEVICE_NAME_STRATEGIES = ['index', 'uuid', 'type-index'] as const;
export type DeviceNameStrategy = (typeof DEVICE_NAME_STRATEGIES)[number];

export interface GenerateOptions {
  vendor?: string;
  class?: string;
  /** Default index and uuid (NVIDIA's default). */
  deviceNameStrategies?: readonly string[];
  /** Absolute host path of nvidia-runtime-hook. */
  hookPath: string;
  /** CUDA forward compatibility in the ld cache hook (the toolkit's enable-cuda-compat hook); default on. */
  cudaCompat?: boolean;
}

const input = (message: string, fix: string): NvrError => new NvrError('INPUT', message, { fix });

function strategies(list: readonly string[] | undefined): DeviceNameStrategy[] {
  const wanted = list && list.length > 0 ? list : ['index', 'uuid'];
  const out: DeviceNameStrategy[] = [];
  for (const s of wanted) {
    if (!(DEVICE_NAME_STRATEGIES as readonly string[]).includes(s)) {
      throw input(`unknown device name strategy "${s}"`, `use ${DEVICE_NAME_STRATEGIES.join(', ')}`);
    }
    if (!out.includes(s as DeviceNameStrategy)) out.push(s as DeviceNameStrategy);
  }
  return out;
}

function gpuName(g: GpuInfo, s: DeviceNameStrategy): string {
  return s === 'index' ? String(g.index) : s === 'uuid' ? g.uuid : `gpu${g.index}`;
}

function migName(g: GpuInfo, m: MigDeviceInfo, s: DeviceNameStrategy): string {
  return s === 'index' ? `${g.index}:${m.index}` : s === 'uuid' ? m.uuid : `mig${g.index}:${m.index}`;
}

const enabledMigs = (g: GpuInfo): MigDeviceInfo[] => (g.migEnabled === false ? [] : [...g.migDevices].sort((a, b) => a.index - b.index));

/**
 * The spec-level edits: what the direct path gives a container with every capability (the one builder,
 * src/edits/build.ts), minus the rootfs the hook cannot know yet, plus NVIDIA_VISIBLE_DEVICES=void: engines set it
 * from nothing, and `void` tells a legacy hook or runtime further down the chain that the container is handled.
 */
function commonEdits(inv: HostInventory, hookPath: string, cudaCompat: boolean): CdiContainerEdits {
  return { env: ['NVIDIA_VISIBLE_DEVICES=void'], ...driverEdits(inv, CAPABILITIES, { hookPath, ...(cudaCompat ? { cudaCompat: inv.driver.driverVersion } : {}) }) };
}

export function generateCdiSpec(inventory: HostInventory, opts: GenerateOptions): CdiSpec {
  const vendor = opts.vendor ?? 'nvidia.com';
  const cls = opts.class ?? 'gpu';
  const vp = vendorProblem(vendor);
  if (vp) throw input(`--vendor: ${vp}`, 'use a DNS-like vendor such as nvidia.com');
  const cp = classProblem(cls);
  if (cp) throw input(`--class: ${cp}`, 'use a class such as gpu');
  if (!posix.isAbsolute(opts.hookPath)) throw input(`hook path ${opts.hookPath} is not absolute`, 'pass the absolute path of nvidia-runtime-hook');
  const names = strategies(opts.deviceNameStrategies);
  const inv = inventory;
  const gpus = [...inv.driver.gpus].sort((a, b) => a.index - b.index);

  // A GPU's DRM nodes and a hook for their /dev/dri/by-path links (one hook for the whole set, as for `all`).
  const withDrm = (edits: CdiContainerEdits, of: GpuInfo[]): CdiContainerEdits => {
    const drm = drmEdits(inv, of);
    const hooks = drm.links.length > 0 ? [linksHook(drm.links, { hookPath: opts.hookPath })] : [];
    return mergeEdits(edits, drm.edits, hooks.length > 0 ? { hooks } : {});
  };
  // Missing nodes are an error here, not a silent omission: a spec naming a GPU it cannot grant is worse than none.
  const gpuEdits = (g: GpuInfo): CdiContainerEdits => {
    const problem = inv.nodeProblems[`/dev/nvidia${g.minor}`];
    if (problem) throw problem;
    return deviceEdits(inv, { gpus: [g] });
  };
  const migEdits = (g: GpuInfo, m: MigDeviceInfo): CdiContainerEdits => {
    const problem = inv.nodeProblems[`/dev/nvidia${g.minor}`] ?? inv.migProblems[migKey(g, m)];
    if (problem) throw problem;
    return deviceEdits(inv, { gpus: [g], migDevices: [{ gpu: g, mig: m }] });
  };

  const devices: CdiDevice[] = [];
  const everything: CdiContainerEdits[] = [];
  for (const g of gpus) {
    const edits = gpuEdits(g);
    everything.push(edits);
    const withNodes = withDrm(edits, [g]);
    for (const s of names) devices.push({ name: gpuName(g, s), containerEdits: structuredClone(withNodes) });
  }
  for (const g of gpus) {
    for (const m of enabledMigs(g)) {
      const edits = migEdits(g, m);
      everything.push(edits);
      for (const s of names) devices.push({ name: migName(g, m, s), containerEdits: structuredClone(edits) });
    }
  }
  if (gpus.length > 0) devices.push({ name: 'all', containerEdits: withDrm(mergeEdits(...everything), gpus) });
  if (devices.length === 0) {
    throw new NvrError('DEVICE', `no GPUs found under driver root ${inv.root}: a CDI spec needs at least one device`, {
      fix: 'check that the driver is loaded (nvidia-smi) and --driver-root is right',
    });
  }
  const spec: CdiSpec = { cdiVersion: '', kind: `${vendor}/${cls}`, devices, containerEdits: commonEdits(inv, opts.hookPath, opts.cudaCompat ?? true) };
  spec.cdiVersion = minimumVersion(spec);
  return spec;
}

/**
 * `nvidia-ctk cdi generate --mode imex` (the toolkit's HEAD mode `imex`, a spec of its own): kind
 * `<vendor>/imex-channel`, one device per IMEX channel node the host has, named by its channel number, plus `all`;
 * no spec-level edits. No channels is an error, as no GPUs is for the GPU spec.
 */
export function generateImexSpec(inventory: HostInventory, opts: { vendor?: string; class?: string } = {}): CdiSpec {
  const vendor = opts.vendor ?? 'nvidia.com';
  const cls = opts.class ?? 'imex-channel';
  const vp = vendorProblem(vendor);
  if (vp) throw input(`--vendor: ${vp}`, 'use a DNS-like vendor such as nvidia.com');
  const cp = classProblem(cls);
  if (cp) throw input(`--class: ${cp}`, 'use a class such as imex-channel');
  const channels = Object.keys(inventory.imexChannels).map(Number).sort((a, b) => a - b);
  if (channels.length === 0) {
    throw new NvrError('DEVICE', `no IMEX channels found under ${inventory.devRoot}/dev/nvidia-caps-imex-channels: a CDI spec needs at least one device`, {
      fix: 'create the IMEX channels on the host (driver parameter NVreg_CreateImexChannel0=1, or mknod), or pass the right --dev-root',
    });
  }
  const devices: CdiDevice[] = channels.map((ch) => ({ name: String(ch), containerEdits: imexEdits(inventory, [ch]) }));
  devices.push({ name: 'all', containerEdits: imexEdits(inventory, channels) });
  const spec: CdiSpec = { cdiVersion: '', kind: `${vendor}/${cls}`, devices };
  spec.cdiVersion = minimumVersion(spec);
  return spec;
}

/**
 * `nvidia-ctk cdi generate --mode gds|mofed|nvswitch|gdrcopy` (the toolkit's modes): a spec of its own, kind
 * `<vendor>/<mode>`, one device `all` with the feature's nodes (and GDS's cufile.json and /run/udev). A host without
 * the nodes is an error: the spec would grant nothing.
 */
export function generateFeatureSpec(inventory: HostInventory, feature: Feature, opts: { vendor?: string; class?: string } = {}): CdiSpec {
  const vendor = opts.vendor ?? 'nvidia.com';
  const cls = opts.class ?? feature;
  const vp = vendorProblem(vendor);
  if (vp) throw input(`--vendor: ${vp}`, 'use a DNS-like vendor such as nvidia.com');
  const cp = classProblem(cls);
  if (cp) throw input(`--class: ${cp}`, `use a class such as ${feature}`);
  const edits = featureEdits(inventory, [feature]);
  if (!edits.deviceNodes?.length) {
    throw new NvrError('DEVICE', `no ${FEATURE_NODES[feature]} device nodes found under ${inventory.devRoot}: a CDI spec needs at least one device`, {
      fix: `load the ${FEATURE_DRIVERS[feature]} driver on the host, or pass the right --dev-root`,
    });
  }
  const spec: CdiSpec = { cdiVersion: '', kind: `${vendor}/${cls}`, devices: [{ name: 'all', containerEdits: edits }] };
  spec.cdiVersion = minimumVersion(spec);
  return spec;
}

const FEATURE_NODES: Record<Feature, string> = {
  gds: '/dev/nvidia-fs*',
  mofed: '/dev/infiniband/uverbs* or rdma_cm',
  nvswitch: '/dev/nvidia-nvswitch*',
  gdrcopy: '/dev/gdrdrv',
};
const FEATURE_DRIVERS: Record<Feature, string> = { gds: 'nvidia-fs (GPUDirect Storage)', mofed: 'MOFED (ib_uverbs, rdma_ucm)', nvswitch: 'NVSwitch (nvidia-nvswitch)', gdrcopy: 'gdrdrv (GDRCopy)' };
