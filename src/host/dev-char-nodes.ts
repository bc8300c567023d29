/**
 * The NVIDIA char device nodes under a driver root, for their /dev/char links (`nvidia-ctk system
 * create-dev-char-symlinks`, and the doctor's check of them): the nodes that exist, numbers from their st_rdev,
 * and with --create-all those the driver's /proc tables say would exist. Reads only inside the driver root.
 */
import { readdirSync, statSync } from 'node:fs';
import { errnoOf, NvrError } from '../errors.js';
import {
  CAPS_DIR, isCapNodeName, isNvidiaDevName, parseGpuDeviceMinor, parseMigMinors, parseProcDevices, possibleNodes,
  type DevCharNode, type DriverTables,
} from './dev-char.js';
import { lookupDeviceNode, lookupImexChannels, type HostDeviceNode } from './devices.js';
import { normalizeRoot, readTextInRoot, resolveInRoot } from './root.js';

/** The command whose errors these are (its users, the doctor included, report them as they come). */
const COMMAND = 'create-dev-char-symlinks';

/** The NVIDIA nodes found under a driver root, and what was odd about them. */
export interface Discovery {
  nodes: DevCharNode[];
  warnings: string[];
}

/** Entry names of an in-root directory; none when it does not exist. */
function listRootDir(root: string, path: string): string[] {
  const where = resolveInRoot(root, path);
  if (!where.exists) return [];
  try {
    return readdirSync(where.hostPath).sort();
  } catch (e) {
    const code = errnoOf(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new NvrError('DRIVER_ROOT', `${COMMAND}: cannot list ${where.hostPath}: ${code}`, { fix: 'run it as root, or pass the right --driver-root', cause: e });
  }
}

/** What /proc under the driver root says the driver has (for --create-all). */
export function readDriverTables(root: string): DriverTables {
  const devices = readTextInRoot(root, '/proc/devices');
  const gpuMinors = listRootDir(root, '/proc/driver/nvidia/gpus').flatMap((bus) => {
    const text = readTextInRoot(root, `/proc/driver/nvidia/gpus/${bus}/information`);
    const minor = text === undefined ? undefined : parseGpuDeviceMinor(text);
    return minor === undefined ? [] : [minor];
  });
  const migText = readTextInRoot(root, '/proc/driver/nvidia-caps/mig-minors');
  return {
    ...(devices !== undefined ? { majors: parseProcDevices(devices) } : {}),
    gpuMinors,
    migMinors: migText === undefined ? new Map() : parseMigMinors(migText),
  };
}

const fromHost = (n: HostDeviceNode): DevCharNode => ({ path: n.path, hostPath: n.hostPath, major: n.major, minor: n.minor, source: 'stat' });

/**
 * Every NVIDIA char device node under <driver root>/dev, numbers from its st_rdev (the project's device lookup);
 * with `createAll` also the nodes the driver's /proc says would exist, for those that do not.
 */
export function discoverDevCharNodes(driverRoot: string, createAll: boolean): Discovery {
  const root = normalizeRoot(driverRoot);
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) {
    throw new NvrError('DRIVER_ROOT', `${COMMAND}: driver root ${root} does not exist or is not a directory`, {
      fix: 'pass --driver-root with the root the driver is installed under (/ for a host driver, /run/nvidia/driver for a driver container)',
    });
  }
  const warnings: string[] = [];
  const nodes: DevCharNode[] = [];
  const seen = new Set<string>();
  const take = (path: string, node: HostDeviceNode | undefined): void => {
    if (node) {
      nodes.push(fromHost(node));
      seen.add(path);
    } else {
      warnings.push(`${resolveInRoot(root, path).hostPath} is not a character device; no link for it`);
    }
  };
  for (const name of listRootDir(root, '/dev').filter(isNvidiaDevName)) take(`/dev/${name}`, lookupDeviceNode(root, `/dev/${name}`));
  for (const name of listRootDir(root, CAPS_DIR).filter(isCapNodeName)) take(`${CAPS_DIR}/${name}`, lookupDeviceNode(root, `${CAPS_DIR}/${name}`));
  for (const { node } of lookupImexChannels(root)) {
    nodes.push(fromHost(node));
    seen.add(node.path);
  }
  if (!createAll) return { nodes, warnings };

  // The kernel's tables are global: a driver root without its own /proc (a driver container's root seen from the
  // host) is read through the host's, as NVIDIA's nvidia-ctk always does.
  const tablesRoot = root !== '/' && readTextInRoot(root, '/proc/devices') === undefined ? '/' : root;
  const tables = readDriverTables(tablesRoot);
  if (tables.majors === undefined) {
    warnings.push(`--create-all: cannot read ${resolveInRoot(tablesRoot, '/proc/devices').hostPath}, so only the nodes that exist are linked`);
  }
  for (const p of possibleNodes(tables)) {
    if (seen.has(p.path)) continue;
    seen.add(p.path);
    const where = resolveInRoot(root, p.path);
    if (where.exists) {
      // It exists but was not listed: a node the patterns do not cover, or not a char device. Its own numbers win.
      const node = lookupDeviceNode(root, p.path);
      if (node) nodes.push(fromHost(node));
      else warnings.push(`${where.hostPath} is not a character device; no link for it`);
      continue;
    }
    nodes.push({ path: p.path, hostPath: where.hostPath, major: p.major, minor: p.minor, source: 'driver' });
  }
  return { nodes, warnings };
}
