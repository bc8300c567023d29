/**
 * ContainerEdits — the one currency (ARCHITECTURE.md). Exactly CDI's `containerEdits` JSON shape
 * (FACTS §3.1, Go tags of specs-go/config.go), so `cdi generate` can serialise it as is.
 */
import { posix } from 'node:path';

export interface DeviceNode {
  /** Path inside the container. */
  path: string;
  /** Host path when it differs from `path`. */
  hostPath?: string;
  /** b, c, u (unbuffered char) or p (fifo). */
  type?: string;
  major?: number;
  minor?: number;
  /** Permission bits, decimal in JSON (438 = 0o666). */
  fileMode?: number;
  /** Cgroup access: a subset of "rwm", or "none"; default "rwm". */
  permissions?: string;
  uid?: number;
  gid?: number;
}

export interface Mount {
  hostPath: string;
  containerPath: string;
  options?: string[];
  type?: string;
}

export const HOOK_NAMES = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

export interface Hook {
  /** One of HOOK_NAMES; typed as string because CDI specs from disk may carry anything (applyEdits rejects it). */
  hookName: string;
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

/** Intel RDT (CDI ≥ 0.7.0): the container's resctrl class, copied to the spec's `linux.intelRdt` as is. */
export interface IntelRdt {
  closID?: string;
  l3CacheSchema?: string;
  memBwSchema?: string;
  schemata?: string[];
  enableMonitoring?: boolean;
  /** Pre-1.1.0 fields. */
  enableCMT?: boolean;
  enableMBM?: boolean;
}

export interface ContainerEdits {
  env?: string[];
  deviceNodes?: DeviceNode[];
  mounts?: Mount[];
  hooks?: Hook[];
  additionalGids?: number[];
  intelRdt?: IntelRdt;
}

export function envKey(kv: string): string {
  const i = kv.indexOf('=');
  return i < 0 ? kv : kv.slice(0, i);
}

/** Mount destinations are the same when they name the same path (`/a/b/` == `/a//b`). */
/** A mount destination's normal form: two destinations are the same mount when these agree. */
export const normalDestination = (p: string): string => posix.normalize(p).replace(/(.)\/+$/, '$1');

export function sameDestination(a: string, b: string): boolean {
  return normalDestination(a) === normalDestination(b);
}

const sameArgs = (a: readonly string[] | undefined, b: readonly string[] | undefined): boolean =>
  (a ?? []).length === (b ?? []).length && (a ?? []).every((x, i) => x === (b ?? [])[i]);

/** Hooks are the same entry when name, path and args agree (env/timeout of the later one win). */
export function sameHook(a: Pick<Hook, 'hookName' | 'path' | 'args'>, b: Pick<Hook, 'hookName' | 'path' | 'args'>): boolean {
  return a.hookName === b.hookName && a.path === b.path && sameArgs(a.args, b.args);
}


/**
 * Merges edits in order with the same semantics applyEdits has, so that
 * applyEdits(s, mergeEdits(a, b)) equals applyEdits(applyEdits(s, a), b):
 * env by key, device nodes by path, mounts by containerPath and hooks by (name, path, args) are replaced in
 * place by later ones; additional GIDs are de-duplicated (0 dropped); a later intelRdt replaces an earlier one whole
 * (the CDI library sets it). Empty lists are omitted.
 */
export function mergeEdits(...edits: ReadonlyArray<ContainerEdits | undefined>): ContainerEdits {
  // One pass through maps keyed by each entry's identity (a Map keeps the first insertion's place, as the in-place
  // replacement does), not a search of the merged list per entry: a spec of 8 GPUs merges ~100 entries per create.
  const env = new Map<string, string>();
  const deviceNodes = new Map<string, DeviceNode>();
  const mounts = new Map<string, Mount>();
  const hooks = new Map<string, Hook>();
  const gids = new Set<number>();
  let intelRdt: IntelRdt | undefined;
  for (const e of edits) {
    if (!e) continue;
    for (const kv of e.env ?? []) env.set(envKey(kv), kv);
    for (const d of e.deviceNodes ?? []) deviceNodes.set(d.path, { ...d });
    for (const m of e.mounts ?? []) mounts.set(normalDestination(m.containerPath), { ...m, ...(m.options ? { options: [...m.options] } : {}) });
    for (const h of e.hooks ?? []) hooks.set(JSON.stringify([h.hookName, h.path, h.args ?? []]), { ...h });
    for (const g of e.additionalGids ?? []) if (g !== 0) gids.add(g);
    if (e.intelRdt) intelRdt = { ...e.intelRdt, ...(e.intelRdt.schemata ? { schemata: [...e.intelRdt.schemata] } : {}) }; // later wins whole
  }
  const out: ContainerEdits = {};
  if (env.size) out.env = [...env.values()];
  if (deviceNodes.size) out.deviceNodes = [...deviceNodes.values()];
  if (mounts.size) out.mounts = [...mounts.values()];
  if (hooks.size) out.hooks = [...hooks.values()];
  if (gids.size) out.additionalGids = [...gids];
  if (intelRdt) out.intelRdt = intelRdt;
  return out;
}
