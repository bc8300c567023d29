/**
 * Doctor, device nodes: /dev/nvidiactl, /dev/nvidia-uvm(-tools), /dev/nvidia-modeset and /dev/nvidia<N> of every
 * GPU the driver lists, against the majors of /proc/devices, the driver's fixed minors and the file mode, plus the
 * kernel module's version against NVML's ("Driver/library version mismatch"). Numbers come from lstat of the nodes
 * (the project's lookupDeviceNode) and the driver's own /proc tables (readDriverTables), never assumed.
 */
import { CONTROL_DEVICES } from '../host/capabilities.js';
import { NVIDIACTL_MINOR, NVIDIA_MODESET_MINOR, NVIDIA_UVM_MINOR, NVIDIA_UVM_TOOLS_MINOR } from '../host/dev-char.js';
import { lookupDeviceNode } from '../host/devices.js';
import type { HostInventory } from '../host/inventory.js';
import { normalizeRoot, readTextInRoot, resolveInRoot } from '../host/root.js';
import { readDriverTables } from '../host/dev-char-nodes.js';
import { fail, info, pass, warn, type CheckResult } from './types.js';

export interface NodeFact {
  path: string;
  hostPath: string;
  /** 'char': a character device (numbers and mode set); 'missing'; 'other': something else is there. */
  kind: 'char' | 'missing' | 'other';
  major?: number;
  minor?: number;
  mode?: number;
}

export interface DeviceFacts {
  devRoot: string;
  /** /proc/devices char majors by name; absent when unreadable. */
  majors?: Record<string, number>;
  /** Where /proc was read (the driver root's, or the host's when the root has none). */
  procRoot: string;
  /** Device Minor of each GPU in /proc/driver/nvidia/gpus. */
  driverGpuMinors: number[];
  /** Minors of the GPUs NVML lists. */
  nvmlGpuMinors: number[];
  /** The kernel module's version (/proc/driver/nvidia/version) and NVML's, when known. */
  moduleVersion?: string;
  nvmlDriverVersion?: string;
  nodes: NodeFact[];
}

/** `NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  …` → "550.54.15". */
export function parseModuleVersion(text: string): string | undefined {
  return /^NVRM version:.*?\s(\d+\.\d+(?:\.\d+)?)\s/m.exec(text)?.[1];
}


export function gatherDevices(driverRoot: string, inventory: HostInventory | undefined): DeviceFacts {
  const root = normalizeRoot(driverRoot);
  const devRoot = inventory?.devRoot ?? root;
  // A driver container's root seen from the host has no /proc of its own: the kernel's tables are the host's.
  const procRoot = root !== '/' && readTextInRoot(root, '/proc/devices') === undefined ? '/' : root;
  const tables = readDriverTables(procRoot);
  const nvmlGpuMinors = inventory?.driver.gpus.map((g) => g.minor) ?? [];
  const minors = [...new Set([...tables.gpuMinors, ...nvmlGpuMinors])].sort((a, b) => a - b);
  const nodes = [...CONTROL_DEVICES, ...minors.map((m) => `/dev/nvidia${m}`)].map((path): NodeFact => {
    const where = resolveInRoot(devRoot, path);
    const node = lookupDeviceNode(devRoot, path);
    if (node) return { path, hostPath: node.hostPath, kind: 'char', major: node.major, minor: node.minor, mode: node.fileMode };
    return { path, hostPath: where.hostPath, kind: where.exists ? 'other' : 'missing' };
  });
  const versionText = readTextInRoot(procRoot, '/proc/driver/nvidia/version');
  const moduleVersion = versionText === undefined ? undefined : parseModuleVersion(versionText);
  return {
    devRoot,
    ...(tables.majors ? { majors: Object.fromEntries(tables.majors) } : {}),
    procRoot,
    driverGpuMinors: tables.gpuMinors,
    nvmlGpuMinors,
    ...(moduleVersion !== undefined ? { moduleVersion } : {}),
    ...(inventory ? { nvmlDriverVersion: inventory.driver.driverVersion } : {}),
    nodes,
  };
}

interface Expected {
  /** /proc/devices names that may own the node's major (older drivers say nvidia-frontend). */
  majorNames: string[];
  minor: number;
  /** A CUDA container cannot work without it. */
  required: boolean;
  what: string;
}

/** What each node must be (pure): its driver's major name, its fixed minor, whether CUDA needs it. */
export function expectedNode(path: string): Expected | undefined {
  const gpu = /^\/dev\/nvidia(\d+)$/.exec(path);
  if (gpu) return { majorNames: ['nvidia-frontend', 'nvidia'], minor: Number(gpu[1]), required: true, what: `GPU ${gpu[1]}'s node` };
  switch (path) {
    case '/dev/nvidiactl': return { majorNames: ['nvidia-frontend', 'nvidia'], minor: NVIDIACTL_MINOR, required: true, what: 'the driver control node' };
    case '/dev/nvidia-modeset': return { majorNames: ['nvidia-frontend', 'nvidia'], minor: NVIDIA_MODESET_MINOR, required: false, what: 'needed only by display containers' };
    case '/dev/nvidia-uvm': return { majorNames: ['nvidia-uvm'], minor: NVIDIA_UVM_MINOR, required: true, what: 'CUDA\'s unified memory node' };
    case '/dev/nvidia-uvm-tools': return { majorNames: ['nvidia-uvm'], minor: NVIDIA_UVM_TOOLS_MINOR, required: false, what: 'needed only by CUDA profilers' };
    default: return undefined;
  }
}

const MAKE_NODES = 'load the driver and create its nodes: nvidia-modprobe -c 0 -u (or run nvidia-smi once as root)';

/** One line per node (pure over the facts). */
export function checkNode(n: NodeFact, majors: Record<string, number> | undefined): CheckResult {
  const id = `devices.${n.path.slice('/dev/'.length)}`;
  const e = expectedNode(n.path);
  const details = { path: n.path, hostPath: n.hostPath, kind: n.kind, major: n.major ?? null, minor: n.minor ?? null, mode: n.mode === undefined ? null : n.mode.toString(8) };
  if (!e) return info(id, `${n.hostPath}: not checked`, { details });
  if (n.kind === 'missing') {
    return e.required
      ? fail(id, `${n.hostPath} is missing (${e.what}): GPU containers cannot get it`, MAKE_NODES, details)
      : info(id, `${n.hostPath} is absent (${e.what})`, { details });
  }
  if (n.kind === 'other') return fail(id, `${n.hostPath} is not a character device`, `remove it, then ${MAKE_NODES}`, details);
  const numbers = `${n.major}:${n.minor}`;
  const name = e.majorNames.find((m) => majors?.[m] !== undefined);
  if (majors !== undefined && name === undefined) {
    return warn(id, `${n.hostPath} (${numbers}): no ${e.majorNames.at(-1)} driver in /proc/devices (module not loaded)`,
      e.majorNames.includes('nvidia-uvm') ? 'modprobe nvidia-uvm (or nvidia-modprobe -u -c 0)' : 'modprobe nvidia', details);
  }
  if (name !== undefined && majors![name] !== n.major) {
    return fail(id, `${n.hostPath} has major ${n.major} but /proc/devices says ${name} is ${majors![name]}: a stale node that does not reach the driver`,
      `rm ${n.hostPath}, then ${MAKE_NODES}`, details);
  }
  if (n.minor !== e.minor) return fail(id, `${n.hostPath} has minor ${n.minor}, the driver's is ${e.minor}`, `rm ${n.hostPath}, then ${MAKE_NODES}`, details);
  const mode = (n.mode ?? 0) & 0o777;
  if ((mode & 0o666) !== 0o666) {
    return warn(id, `${n.hostPath} (${numbers}) has mode ${mode.toString(8).padStart(4, '0')}: containers keep it, so processes that are not root in them cannot open it (the driver's default is 0666)`,
      `chmod 0666 ${n.hostPath} (or set the driver's NVreg_DeviceFileMode=0666), unless the restriction is deliberate`, details);
  }
  return pass(id, `${n.hostPath} ${numbers} mode ${mode.toString(8).padStart(4, '0')}`, { details });
}

export function deviceChecks(f: DeviceFacts): CheckResult[] {
  const out: CheckResult[] = [];
  if (f.majors === undefined) {
    out.push(warn('devices.majors', `cannot read ${resolveInRoot(f.procRoot, '/proc/devices').hostPath}: majors are not checked`, 'run the doctor as root on the host the driver runs on'));
  }
  out.push(...f.nodes.map((n) => checkNode(n, f.majors)));
  const unseen = f.driverGpuMinors.filter((m) => !f.nvmlGpuMinors.includes(m));
  if (f.nvmlDriverVersion !== undefined && unseen.length > 0) {
    out.push(warn('devices.gpus', `the driver lists GPU minor(s) ${unseen.join(', ')} in /proc/driver/nvidia/gpus that NVML does not report`,
      'check nvidia-smi -L and dmesg for those GPUs (fallen off the bus, excluded, or their node missing)', { driverGpuMinors: f.driverGpuMinors, nvmlGpuMinors: f.nvmlGpuMinors }));
  }
  if (f.moduleVersion !== undefined && f.nvmlDriverVersion !== undefined) {
    const details = { moduleVersion: f.moduleVersion, nvmlDriverVersion: f.nvmlDriverVersion };
    out.push(f.moduleVersion === f.nvmlDriverVersion
      ? pass('devices.module', `kernel module ${f.moduleVersion} matches the NVML library`, { details })
      : fail('devices.module', `kernel module ${f.moduleVersion} but NVML library ${f.nvmlDriverVersion}: containers fail with "Failed to initialize NVML: Driver/library version mismatch"`,
        'reboot (or unload and reload the nvidia modules) after the driver upgrade', details));
  }
  return out;
}
