/**
 * /dev/char/MAJOR:MINOR links for NVIDIA device nodes (`nvidia-ctk system create-dev-char-symlinks`,
 * docs/troubleshooting.md). Pure: which names are NVIDIA nodes, the driver's /proc tables that --create-all reads,
 * the list of nodes that would exist for every device the driver knows, and the plan (create, replace, keep, leave
 * alone) from the nodes and what the link directory already holds. The I/O lives in src/cli/system-command.ts.
 */
import { posix } from 'node:path';

export const DEFAULT_DEV_CHAR_PATH = '/dev/char';

/** Names directly under /dev that are NVIDIA char device nodes. */
const TOP_LEVEL = [
  /^nvidia(0|[1-9]\d*)$/,
  /^nvidiactl$/,
  /^nvidia-uvm$/,
  /^nvidia-uvm-tools$/,
  /^nvidia-modeset$/,
  /^nvidia-nvswitch[^/]*$/,
  /^nvidia-nvlink$/,
];
/** Where the driver's MIG capability nodes live, and their names. */
export const CAPS_DIR = '/dev/nvidia-caps';
const CAP_NAME = /^nvidia-cap(0|[1-9]\d*)$/;

/** True for a name directly under /dev that names an NVIDIA node (nvidia0, nvidiactl, nvidia-nvswitch3, …). */
export function isNvidiaDevName(name: string): boolean {
  return TOP_LEVEL.some((re) => re.test(name));
}

/** True for a name in /dev/nvidia-caps that names a capability node (nvidia-cap<N>). */
export function isCapNodeName(name: string): boolean {
  return CAP_NAME.test(name);
}

/** The link's name: `MAJOR:MINOR`, decimal, as udev names the links it makes itself. */
export const devCharName = (major: number, minor: number): string => `${major}:${minor}`;

/** The char device majors of /proc/devices, by driver name (its "Character devices:" section only). */
export function parseProcDevices(text: string): Map<string, number> {
  const majors = new Map<string, number>();
  let inChar = false;
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === 'Character devices:') inChar = true;
    else if (t.endsWith(':')) inChar = false; // "Block devices:"
    else if (inChar) {
      const m = /^(\d{1,9})\s+(\S.*)$/.exec(t);
      if (m && !majors.has(m[2])) majors.set(m[2], Number(m[1]));
    }
  }
  return majors;
}

/** The driver's /proc/driver/nvidia-caps/mig-minors table ("gpu0/gi1/access 12"): capability name → minor. */
export function parseMigMinors(text: string): Map<string, number> {
  const minors = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(\d{1,9})\s*$/.exec(line.trim());
    if (m && !minors.has(m[1])) minors.set(m[1], Number(m[2]));
  }
  return minors;
}

/** `Device Minor: N` of a /proc/driver/nvidia/gpus/<bus id>/information file. */
export function parseGpuDeviceMinor(text: string): number | undefined {
  const m = /^Device Minor:\s*(\d{1,9})\s*$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** A node that is to get a link: its in-root path, where it is on the host, and its numbers. */
export interface DevCharNode {
  /** In-root path, "/dev/nvidia0". */
  path: string;
  /** Host path (driver root + path, symlinks resolved inside the root), what the link points to. */
  hostPath: string;
  major: number;
  minor: number;
  /** `stat`: the node exists and the numbers are its st_rdev; `driver`: --create-all, the node does not exist
   *  (yet) and the numbers are the driver's (/proc/devices major, the driver's fixed or listed minor). */
  source: 'stat' | 'driver';
}

/** What the driver's /proc says exists, for --create-all. */
export interface DriverTables {
  /** /proc/devices char majors by name; undefined when the file could not be read. */
  majors?: Map<string, number>;
  /** Device Minor of every GPU in /proc/driver/nvidia/gpus. */
  gpuMinors: number[];
  /** /proc/driver/nvidia-caps/mig-minors; empty when absent. */
  migMinors: Map<string, number>;
}

/** The driver's fixed minors of its control nodes (nvidia-modprobe uses the same ones). */
export const NVIDIACTL_MINOR = 255;
export const NVIDIA_MODESET_MINOR = 254;
export const NVIDIA_UVM_MINOR = 0;
export const NVIDIA_UVM_TOOLS_MINOR = 1;

/** Major of the GPU and control nodes: `nvidia-frontend` in older drivers' /proc/devices, `nvidia` in newer ones. */
function gpuMajor(majors: Map<string, number>): number | undefined {
  return majors.get('nvidia-frontend') ?? majors.get('nvidia');
}

/**
 * --create-all: the in-root paths and numbers of every node that would exist for each device the driver lists,
 * as NVIDIA's nvidia-ctk lists them — nvidiactl, nvidia-modeset, nvidia-uvm(-tools), /dev/nvidia<minor> of each GPU,
 * the MIG config/monitor capabilities and every GPU and compute instance capability of each GPU. A node whose
 * driver major is not in /proc/devices (module not loaded) is left out. The numbers here are only used for nodes
 * that do not exist: an existing node's own st_rdev always wins.
 */
export function possibleNodes(t: DriverTables): Array<{ path: string; major: number; minor: number }> {
  const majors = t.majors ?? new Map<string, number>();
  const out: Array<{ path: string; major: number; minor: number }> = [];
  const add = (major: number | undefined, path: string, minor: number): void => {
    if (major !== undefined) out.push({ path, major, minor });
  };
  const gpu = gpuMajor(majors);
  const uvm = majors.get('nvidia-uvm');
  const caps = majors.get('nvidia-caps');
  add(gpu, '/dev/nvidiactl', NVIDIACTL_MINOR);
  add(gpu, '/dev/nvidia-modeset', NVIDIA_MODESET_MINOR);
  add(uvm, '/dev/nvidia-uvm', NVIDIA_UVM_MINOR);
  add(uvm, '/dev/nvidia-uvm-tools', NVIDIA_UVM_TOOLS_MINOR);
  for (const which of ['config', 'monitor']) {
    const minor = t.migMinors.get(which);
    if (minor !== undefined) add(caps, `${CAPS_DIR}/nvidia-cap${minor}`, minor);
  }
  for (const g of [...new Set(t.gpuMinors)].sort((a, b) => a - b)) {
    add(gpu, `/dev/nvidia${g}`, g);
    const instance = new RegExp(`^gpu${g}/gi\\d+/(ci\\d+/)?access$`);
    for (const [name, minor] of t.migMinors) if (instance.test(name)) add(caps, `${CAPS_DIR}/nvidia-cap${minor}`, minor);
  }
  return out;
}

/**
 * What a link points to: relative to the link directory when the driver root is "/" (`../nvidia0` in /dev/char,
 * the form udev uses for the links it makes), else the node's absolute host path (a driver container's root).
 * `linkDir` should be the real path of the link directory so that `..` means what it says.
 */
export function linkTarget(node: Pick<DevCharNode, 'hostPath'>, linkDir: string, driverRoot: string): string {
  return posix.resolve(driverRoot) === '/' ? posix.relative(linkDir, node.hostPath) : node.hostPath;
}

/** What the link directory holds at one MAJOR:MINOR name. */
export type LinkState = { kind: 'absent' } | { kind: 'link'; target: string } | { kind: 'other'; what: string };

export type LinkAction =
  | { kind: 'create'; name: string; target: string; node: DevCharNode }
  | { kind: 'replace'; name: string; target: string; node: DevCharNode; previous: string }
  | { kind: 'keep'; name: string; target: string; node: DevCharNode }
  /** Not a symlink (a file, a directory, a device): never touched. */
  | { kind: 'leave'; name: string; target: string; node: DevCharNode; what: string };

export interface LinkPlan {
  actions: LinkAction[];
  /** One line each, for stderr (without the program prefix). */
  warnings: string[];
}

/**
 * The plan: one action per distinct MAJOR:MINOR, ascending by major then minor. A node whose numbers another node
 * already claimed is dropped with a warning, an existing (stat) node winning over a --create-all one. An existing
 * link is correct when it leads to the node from `linkDir`, however it is spelled (relative or absolute).
 */
export function planLinks(
  nodes: readonly DevCharNode[],
  entry: (name: string) => LinkState,
  linkDir: string,
  driverRoot: string,
): LinkPlan {
  const warnings: string[] = [];
  const byName = new Map<string, DevCharNode>();
  const ordered = [...nodes].sort((a, b) => (a.source === b.source ? 0 : a.source === 'stat' ? -1 : 1));
  for (const node of ordered) {
    const name = devCharName(node.major, node.minor);
    const first = byName.get(name);
    if (first === undefined) byName.set(name, node);
    else if (first.hostPath !== node.hostPath) warnings.push(`${node.hostPath} has the same numbers ${name} as ${first.hostPath}; only ${first.hostPath} is linked`);
  }
  const chosen = [...byName.values()].sort((a, b) => a.major - b.major || a.minor - b.minor);
  const actions = chosen.map((node): LinkAction => {
    const name = devCharName(node.major, node.minor);
    const target = linkTarget(node, linkDir, driverRoot);
    const state = entry(name);
    if (state.kind === 'absent') return { kind: 'create', name, target, node };
    if (state.kind === 'other') {
      const where = posix.join(linkDir, name);
      warnings.push(`${where} exists and is ${state.what}, not a symbolic link; left alone (remove it and run again to link it to ${node.hostPath})`);
      return { kind: 'leave', name, target, node, what: state.what };
    }
    if (posix.resolve(linkDir, state.target) === posix.resolve(linkDir, target)) return { kind: 'keep', name, target, node };
    return { kind: 'replace', name, target, node, previous: state.target };
  });
  return { actions, warnings };
}
