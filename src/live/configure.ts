/**
 * `nvidia-container-cli configure`: the live path. The same request → resolve → requirements → buildEdits as the
 * runtime's spec path (runtime/plan.ts), then livePlan() spells the edits as operations, and the native applier
 * (`nvidia-runtime-hook apply-edits`, single-threaded C) does them inside the container's mount namespace.
 */
import { spawnSync } from 'node:child_process';
import { NvrError } from '../errors.js';
import { buildEdits, type CudaCompat } from '../edits/build.js';
import type { Capability, DriverOption } from '../host/capabilities.js';
import { findCompatLibraries } from '../host/cuda-compat.js';
import type { HostInventory } from '../host/inventory.js';
import { parseDeviceList } from '../request/devices.js';
import { parseImexChannel } from '../request/imex.js';
import { resolveDevices, selectedGpus } from '../request/resolve.js';
import type { DeviceRequest } from '../request/types.js';
import { evaluateRequirements } from '../require/evaluate.js';
import { hostLdconfig } from '../runtime/plan.js';
import { inUserNamespace, readDevicesCgroupDir, readDevicesList, withoutCoveredRules } from './cgroup.js';
import { encodePlan, livePlan } from './plan.js';

/** libnvidia-container's --cuda-compat-mode (its default: mount). */
export const LIVE_CUDA_COMPAT_MODES = ['ldconfig', 'mount', 'disabled'] as const;
export type LiveCudaCompatMode = (typeof LIVE_CUDA_COMPAT_MODES)[number];

export interface ConfigureRequest {
  driverRoot: string;
  /** The container's rootfs, as a path in its mount namespace before pivot_root. */
  rootfs: string;
  /** The container's init pid; absent: standalone (an LXC mount hook), the mount namespace we run in. */
  pid?: string;
  /** --device items (the NVIDIA_VISIBLE_DEVICES grammar); none → driver files only. */
  devices: string[];
  capabilities: Capability[];
  requirements: string[];
  migConfig?: string;
  migMonitor?: string;
  imexChannels: string[];
  /** --ldconfig: "@/host/path" only. */
  ldconfig?: string;
  noCgroups: boolean;
  noDevbind: boolean;
  /** --no-glvnd, --no-persistenced, … (libnvidia-container's driver options). */
  driverOptions: DriverOption[];
  /** --cuda-compat-mode; default mount, as libnvidia-container. */
  cudaCompatMode?: LiveCudaCompatMode;
}

/** The request the flags make, in the runtime's own terms (so resolve/build treat it exactly as a spec's). */
export function requestOf(req: ConfigureRequest): DeviceRequest {
  const visible = parseDeviceList(req.devices, '--device');
  const migAdmin: Array<'config' | 'monitor'> = [];
  for (const [flag, value, which] of [['--mig-config', req.migConfig, 'config'], ['--mig-monitor', req.migMonitor, 'monitor']] as const) {
    if (value === undefined) continue;
    if (value.trim().toLowerCase() !== 'all') {
      throw new NvrError('INPUT', `${flag}=${value}: only 'all' devices are currently supported`, { fix: `pass ${flag}=all` });
    }
    migAdmin.push(which);
  }
  const channels = [...new Set(req.imexChannels.flatMap((c) => c.split(',')).filter((c) => c !== '').map((c) => parseImexChannel(c, '--imex-channel')))].sort((a, b) => a - b);
  return {
    gpu: true,
    devices: visible.gpu ? visible.devices : [],
    capabilities: [...new Set(req.capabilities)].sort(),
    requirements: [...req.requirements],
    source: 'env',
    reasons: [],
    ...(channels.length > 0 ? { imexChannels: channels } : {}),
    ...(migAdmin.length > 0 ? { migAdmin } : {}),
  };
}

export interface LiveEdits {
  request: DeviceRequest;
  /** What NVIDIA_VISIBLE_DEVICES would say: the UUIDs granted, or none. */
  granted: string;
  words: string[];
}

/** Everything configure decides, without touching the container: the plan the applier will run. */
export function planConfigure(req: ConfigureRequest, inventory: HostInventory, userns: boolean): LiveEdits {
  const request = requestOf(req);
  const resolved = resolveDevices(request, inventory.driver);
  if (resolved.cdi.length > 0) {
    throw new NvrError('DEVICE', `--device: CDI names (${resolved.cdi.join(', ')}) cannot be configured into a running container`, {
      fix: 'use indices, UUIDs or MIG devices; CDI devices are injected by the runtime or the engine from the spec',
    });
  }
  evaluateRequirements(request.requirements, {
    cudaVersion: inventory.driver.cudaVersion,
    driverVersion: inventory.driver.driverVersion,
    devices: selectedGpus(resolved).map((g) => ({ computeCapability: g.computeCapability, brand: g.brand, label: `GPU ${g.index}` })),
  });
  const ldconfig = req.ldconfig === undefined ? undefined : hostLdconfig(req.ldconfig, true);
  // hookPath is never run: livePlan turns the hook's arguments into the applier's own ld cache words.
  const built = buildEdits({
    inventory, request, resolved, hookPath: 'nvidia-runtime-hook', rootfs: req.rootfs, ...(ldconfig ? { ldconfig } : {}),
    driverOptions: req.driverOptions, cudaCompat: liveCudaCompat(req, request, inventory.driver.driverVersion),
  });
  const words = livePlan(built.edits, { bindNodes: userns, cgroupRules: !req.noCgroups, nodes: !req.noDevbind });
  return { request, granted: built.granted, words };
}

/** --cuda-compat-mode for this request: only with compute (libnvidia-container's rule); mount reads the rootfs as this
 *  process sees it (the host path of a prestart hook's bundle, or an LXC hook's own mount namespace), in-root. */
function liveCudaCompat(req: ConfigureRequest, request: DeviceRequest, driverVersion: string): CudaCompat {
  const mode = req.cudaCompatMode ?? 'mount';
  if (!request.capabilities.includes('compute') || mode === 'disabled') return { mode: 'disabled' };
  return mode === 'mount' ? { mode, libraries: findCompatLibraries(req.rootfs, driverVersion) } : { mode };
}

export interface ApplyDeps {
  /** Absolute path of nvidia-runtime-hook. */
  applier: string;
  userns: () => boolean;
  devicesCgroupDir: (pid: string) => string;
  /** The cgroup's devices.list. */
  devicesList: (dir: string) => string;
  run: (file: string, args: string[], input: Buffer) => { status: number | null; stderr: string; error?: Error };
}

export const defaultApplyDeps = (applier: string): ApplyDeps => ({
  applier,
  userns: () => inUserNamespace(),
  devicesCgroupDir: readDevicesCgroupDir,
  devicesList: readDevicesList,
  run: (file, args, input) => {
    // An empty environment: the applier is static and reads none; nothing of ours reaches it.
    const r = spawnSync(file, args, { input, env: {}, stdio: ['pipe', 'inherit', 'pipe'], encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stderr: r.stderr ?? '', ...(r.error ? { error: r.error } : {}) };
  },
});

/** Plans and applies. The applier's one-line error becomes ours (it has undone whatever it did). */
export function configure(req: ConfigureRequest, inventory: HostInventory, deps: ApplyDeps): LiveEdits {
  if (!req.rootfs.startsWith('/') || req.rootfs.replace(/\/+$/, '') === '') {
    throw new NvrError('INPUT', `invalid rootfs directory ${JSON.stringify(req.rootfs)}`, { fix: 'pass the container rootfs as an absolute path other than /' });
  }
  if (req.pid !== undefined && !/^[1-9]\d*$/.test(req.pid)) throw new NvrError('INPUT', `--pid ${JSON.stringify(req.pid)} is not a process id`, { fix: 'pass the container\'s init pid' });
  const live = planConfigure(req, inventory, deps.userns());
  // Standalone (no --pid: an LXC mount hook runs in the container's namespaces, where /proc is still the host's and
  // no pid of ours names the container): the applier stays in the mount namespace it inherits from us.
  const args = ['apply-edits', ...(req.pid !== undefined ? ['--pid', req.pid] : []), '--rootfs', req.rootfs.replace(/(.)\/+$/, '$1')];
  let words = live.words;
  if (!req.noCgroups && words.includes('allow')) {
    const dir = deps.devicesCgroupDir(req.pid ?? 'self');
    // Only rules the cgroup lacks: the applier denies what it added if it fails, and must not deny what was there.
    words = withoutCoveredRules(words, deps.devicesList(dir));
    if (words.includes('allow')) args.push('--devices-cgroup', dir);
  }
  const r = deps.run(deps.applier, args, encodePlan(words));
  if (r.error) throw new NvrError('IO', `cannot run ${deps.applier}: ${r.error.message}`, { fix: 'reinstall nvidia-runtime' });
  if (r.status !== 0) {
    const line = r.stderr.trim().split('\n').filter((l) => !l.includes(': warning: ')).pop() ?? `exit status ${r.status}`;
    throw new NvrError('IO', line.replace(/^nvidia-runtime-hook: /, ''), { fix: 'nothing was changed in the container' });
  }
  for (const l of r.stderr.split('\n')) if (l.includes(': warning: ')) process.stderr.write(`${l}\n`);
  return live;
}
