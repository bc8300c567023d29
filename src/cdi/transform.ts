/**
 * `nvidia-ctk cdi transform root` as a pure function (PEER.md §3.4; the toolkit's pkg/nvcdi/transform/root): move
 * the paths of a CDI spec from one root to another, e.g. a spec written for a driver container
 * (`/run/nvidia/driver/...`) to the host (`/`), or the mock root a spec was generated for to a mock root elsewhere.
 *
 * A path is under the root when it is the root or starts with the root and a `/` (component boundary: a root of
 * `/driver` never matches `/driver-backup/lib.so`); the root is then replaced and the rest of the path kept
 * byte for byte, so transform(from→to) followed by transform(to→from) restores every path it moved.
 *
 * `relativeTo: 'host'` (the default) rewrites what is resolved on the host:
 *   - `deviceNodes[].hostPath` (a node without one has `path` as its host path; it gets a `hostPath` when that moves),
 *   - `mounts[].hostPath`,
 *   - `hooks[].path`, except for `startContainer` hooks (that path is resolved in the container),
 *   - `hooks[].args` of hooks that run in the runtime's namespace on host paths (every hook name except
 *     `createContainer` and `startContainer`, whose arguments are container paths).
 * `relativeTo: 'container'` rewrites what is resolved in the container:
 *   - `deviceNodes[].path` (a node without `hostPath` keeps its host side: it gets `hostPath` = the old `path`),
 *   - `mounts[].containerPath`,
 *   - `hooks[].path` of `startContainer` hooks,
 *   - `hooks[].args` of `createContainer` and `startContainer` hooks.
 * An argument is transformed whole, as both halves of `TARGET::LINK` (create-symlinks' `--link`), or as the value of
 * `--flag=PATH`. Everything else (env, options, annotations, unknown fields, key order) is kept. When a `hostPath`
 * is added, `cdiVersion` is raised to the minimum that allows it (0.5.0) if it was lower.
 */
import { isAbsolute, posix } from 'node:path';
import { NvrError } from '../errors.js';
import type { DeviceNode, Hook } from '../edits/types.js';
import type { CdiContainerEdits, CdiSpec } from './types.js';
import { compareVersions, minimumVersion } from './validate.js';

export type RelativeTo = 'host' | 'container';
export const RELATIVE_TO: readonly RelativeTo[] = ['host', 'container'];

export interface RootTransform {
  /** The root the spec's paths are under now (absolute). */
  from: string;
  /** The root they should be under (absolute). */
  to: string;
  /** Which side's paths move; default host. */
  relativeTo?: RelativeTo;
}

/** An absolute root in canonical form (`posix.normalize`, no trailing `/` except for `/` itself); NvrError otherwise. */
export function normaliseRoot(root: string, flag: string): string {
  if (root === '' || !isAbsolute(root)) {
    throw new NvrError('INPUT', `${flag} ${JSON.stringify(root)}: must be an absolute path`, { fix: `give ${flag} as an absolute directory such as /run/nvidia/driver or /` });
  }
  const n = posix.normalize(root);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

/**
 * `path` with the root `from` replaced by `to` when `path` is `from` or below it (at a component boundary);
 * otherwise `path` unchanged. `from` and `to` must be normalised roots (normaliseRoot).
 */
export function transformRootPath(path: string, from: string, to: string): string {
  if (path === from) return to;
  let rest: string;
  if (from === '/') {
    if (!path.startsWith('/')) return path;
    rest = path.slice(1);
  } else if (path.startsWith(`${from}/`)) rest = path.slice(from.length + 1);
  else return path;
  return to === '/' ? `/${rest}` : `${to}/${rest}`;
}

const FLAG_VALUE = /^(-{1,2}[A-Za-z0-9][A-Za-z0-9_.-]*=)(.*)$/s;

/** A hook argument: whole, `TARGET::LINK` (both halves), or the value of `--flag=...`. */
export function transformHookArg(arg: string, move: (p: string) => string): string {
  const flag = FLAG_VALUE.exec(arg);
  const prefix = flag ? flag[1] : '';
  const value = flag ? flag[2] : arg;
  const sep = value.indexOf('::');
  const moved = sep < 0 ? move(value) : `${move(value.slice(0, sep))}::${move(value.slice(sep + 2))}`;
  return prefix + moved;
}

/** Hooks whose arguments are container paths (they act on the container's filesystem). */
const CONTAINER_ARG_HOOKS = new Set(['createContainer', 'startContainer']);

function transformEdits(edits: CdiContainerEdits | undefined, move: (p: string) => string, relativeTo: RelativeTo): boolean {
  if (!edits) return false;
  let addedHostPath = false;
  const nodes: DeviceNode[] = edits.deviceNodes ?? [];
  for (const node of nodes) {
    if (relativeTo === 'host') {
      const host = node.hostPath ?? node.path;
      const moved = move(host);
      if (moved !== host) {
        if (node.hostPath === undefined) addedHostPath = true;
        node.hostPath = moved;
      }
    } else {
      const moved = move(node.path);
      if (moved !== node.path) {
        if (node.hostPath === undefined) {
          node.hostPath = node.path; // the host side stays where it was
          addedHostPath = true;
        }
        node.path = moved;
      }
    }
  }
  for (const mount of edits.mounts ?? []) {
    if (relativeTo === 'host') mount.hostPath = move(mount.hostPath);
    else mount.containerPath = move(mount.containerPath);
  }
  const hooks: Hook[] = edits.hooks ?? [];
  for (const hook of hooks) {
    const pathInContainer = hook.hookName === 'startContainer';
    if ((relativeTo === 'host') !== pathInContainer) hook.path = move(hook.path);
    const argsInContainer = CONTAINER_ARG_HOOKS.has(hook.hookName);
    if (hook.args && (relativeTo === 'host') !== argsInContainer) hook.args = hook.args.map((a) => transformHookArg(a, move));
  }
  return addedHostPath;
}

/** A new spec with the transform applied; `spec` is not modified. */
export function transformSpecRoot(spec: CdiSpec, t: RootTransform): CdiSpec {
  const from = normaliseRoot(t.from, '--from');
  const to = normaliseRoot(t.to, '--to');
  const relativeTo = t.relativeTo ?? 'host';
  if (!RELATIVE_TO.includes(relativeTo)) {
    throw new NvrError('INPUT', `--relative-to ${JSON.stringify(relativeTo)}: must be host or container`, { fix: 'use --relative-to host (the default) or --relative-to container' });
  }
  const out = structuredClone(spec);
  if (from === to) return out;
  const move = (p: string): string => transformRootPath(p, from, to);
  let added = transformEdits(out.containerEdits, move, relativeTo);
  for (const device of out.devices ?? []) added = transformEdits(device.containerEdits, move, relativeTo) || added;
  if (added) {
    const needed = minimumVersion(out);
    if (compareVersions(out.cdiVersion, needed) < 0) out.cdiVersion = needed;
  }
  return out;
}
