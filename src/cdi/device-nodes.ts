/**
 * CDI device nodes may name only `path` (and `hostPath`): type, major and minor are then filled from the host node,
 * as the CDI library does (tags.cncf.io/container-device-interface, `DeviceNode.fillMissingInfo`): `hostPath`
 * defaults to `path`; the node is lstat'ed (never followed); a given type must match it; a FIFO has no numbers.
 * NVIDIA's `nvidia-ctk cdi generate` writes such nodes, so every host with an existing /etc/cdi/nvidia.yaml needs this.
 */
import { lstatSync } from 'node:fs';
import type { ContainerEdits, DeviceNode } from '../edits/types.js';
import { NvrError } from '../errors.js';
import { decodeRdev } from '../host/devices.js';

export interface HostNodeInfo {
  type: 'b' | 'c' | 'p';
  major: number;
  minor: number;
}

/** The node at a host path, or a reason it is not one. */
export function hostNodeInfo(path: string): HostNodeInfo | string {
  let st;
  try {
    st = lstatSync(path, { bigint: true });
  } catch (e) {
    return `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
  const { major, minor } = decodeRdev(st.rdev);
  if (st.isCharacterDevice()) return { type: 'c', major, minor };
  if (st.isBlockDevice()) return { type: 'b', major, minor };
  if (st.isFIFO()) return { type: 'p', major: 0, minor: 0 };
  return 'is not a device node';
}

function fillNode(d: DeviceNode, lookup: (path: string) => HostNodeInfo | string): DeviceNode {
  const complete = d.type !== undefined && d.type !== '' && (d.type === 'p' || (d.major ?? 0) !== 0);
  if (complete) return d;
  const hostPath = d.hostPath || d.path;
  const info = lookup(hostPath);
  const fail = (why: string): never => {
    throw new NvrError('DEVICE', `CDI device node ${d.path}: the host node ${hostPath} ${why}`, {
      fix: 'check that the driver is loaded and its device nodes exist, or regenerate the CDI spec',
    });
  };
  if (typeof info === 'string') return fail(info);
  const type = d.type === 'u' ? 'c' : d.type; // an unbuffered char device is a char device on the host
  if (type && type !== info.type) fail(`is of type ${info.type}, not ${d.type}`);
  const out: DeviceNode = { ...d, type: d.type || info.type };
  if (info.type !== 'p' && (d.major ?? 0) === 0) {
    out.major = info.major;
    out.minor = info.minor;
  }
  return out;
}

/** The edits with every device node complete; nodes that are already complete are left as they are. */
export function fillDeviceNodes(edits: ContainerEdits, lookup: (path: string) => HostNodeInfo | string = hostNodeInfo): ContainerEdits {
  if (!edits.deviceNodes?.some((d) => !d.type || (d.type !== 'p' && !d.major))) return edits;
  return { ...edits, deviceNodes: edits.deviceNodes.map((d) => fillNode(d, lookup)) };
}
