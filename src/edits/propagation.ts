/**
 * Mount propagation (SECURITY.md §1.3, NVIDIA 42941001): our read-only driver mounts are `rprivate`, but the
 * *creation* of a mount propagates to the peers of the mount it is created under. runc makes every mount of the
 * container's namespace a slave of the host (`rslave`, its default rootfs propagation) unless the spec sets
 * `linux.rootfsPropagation` otherwise; then a bind mount from the spec whose source lies on a shared host mount, and
 * that does not itself ask for slave/private propagation, stays a peer of the host — and every driver file we mount
 * under it appears in the host's mount table, read-write, and outlives the container (measured with runc 1.1.5:
 * rootfsPropagation shared/rshared/slave/private leak, rslave/rprivate/unset do not; a mount option
 * slave/rslave/private/rprivate stops it). That cannot be made safe without changing what the user asked for, so
 * such a create is refused. Pure: the host's mounts are handed in.
 */
import { posix } from 'node:path';
import type { OciSpec } from '../oci/types.js';
import type { ContainerEdits } from './types.js';

/** Root propagation under which no copy of a host mount stays a peer of the host. */
const SAFE_ROOT_PROPAGATION = new Set<string | undefined>([undefined, '', 'rslave', 'rprivate', 'runbindable']);
/** Mount options that take a mount out of its source's peer group. */
const SEPARATING_OPTIONS = new Set(['slave', 'rslave', 'private', 'rprivate', 'unbindable', 'runbindable']);

export interface HostMount {
  mountPoint: string;
  /** The mount is in a shared peer group (mountinfo optional field `shared:N`). */
  shared: boolean;
}

/** /proc/self/mountinfo → mounts (mount point unescaped: `\040` is a space). */
export function parseMountinfo(text: string): HostMount[] {
  const out: HostMount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (fields.length < 7 || sep < 6) continue;
    const mountPoint = fields[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ mountPoint, shared: fields.slice(6, sep).some((f) => f.startsWith('shared:')) });
  }
  return out;
}

const under = (path: string, dir: string): boolean => {
  const p = posix.normalize(path);
  const d = posix.normalize(dir).replace(/(.)\/+$/, '$1');
  return p === d || p.startsWith(d === '/' ? '/' : `${d}/`);
};

/** The host mount holding `path`: the last mounted one with the longest mount point containing it. */
function mountOf(mounts: readonly HostMount[], path: string): HostMount | undefined {
  let best: HostMount | undefined;
  for (const m of mounts) if (under(path, m.mountPoint) && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  return best;
}

export interface PropagationProblem {
  message: string;
  fix: string;
}

/**
 * Why applying `edits` to `spec` would leak mounts to the host, or undefined when it cannot. `realpath` resolves a
 * mount source on the host (for the mount lookup).
 */
export function propagationProblem(
  spec: OciSpec,
  edits: ContainerEdits,
  hostMounts: readonly HostMount[],
  realpath: (p: string) => string = (p) => p,
): PropagationProblem | undefined {
  const rootPropagation = (spec.linux as { rootfsPropagation?: unknown } | undefined)?.rootfsPropagation;
  if (typeof rootPropagation !== 'string' && rootPropagation !== undefined) return undefined; // runc refuses the spec
  if (SAFE_ROOT_PROPAGATION.has(rootPropagation)) return undefined;
  const ours = (edits.mounts ?? []).map((m) => m.containerPath);
  for (const m of spec.mounts ?? []) {
    const options = Array.isArray(m.options) ? m.options.filter((o): o is string => typeof o === 'string') : [];
    const isBind = m.type === 'bind' || options.includes('bind') || options.includes('rbind');
    if (!isBind || typeof m.source !== 'string' || typeof m.destination !== 'string') continue;
    if (options.some((o) => SEPARATING_OPTIONS.has(o))) continue;
    const inside = ours.find((p) => under(p, m.destination as string));
    if (inside === undefined) continue;
    let source = m.source;
    try {
      source = realpath(m.source);
    } catch {
      // a source that does not resolve: runc will fail on it; judge by the path as written
    }
    if (!mountOf(hostMounts, source)?.shared) continue;
    return {
      message: `mount ${m.destination} (source ${m.source}) would carry the driver mounts added under it (${inside}) to the host: ` +
        `${m.source} is on a shared host mount and linux.rootfsPropagation is "${rootPropagation}"`,
      fix: `give that mount rslave or rprivate propagation (Docker: bind-propagation=rslave), or do not mount over ${m.destination} in a GPU container`,
    };
  }
  return undefined;
}
