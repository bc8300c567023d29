/**
 * applyEdits — the only function that changes a spec (ARCHITECTURE rule 1).
 *
 * Pure (works on a copy), idempotent (applying twice == once) and de-duplicating. It keeps every field it does not
 * own, key order, exact numbers and the order of existing mounts; it creates objects only when it has something to
 * put in them. Where CDI (FACTS §3.5) differs, on purpose: mounts are replaced in place and never re-sorted,
 * cgroup rules are not added twice, hooks are not appended twice.
 */
import { isLosslessNumber } from 'lossless-json';
import { NvrError } from '../errors.js';
import { jsonNumberText } from '../oci/spec-file.js';
import type { JsonNumber, JsonObject, JsonValue, OciDeviceRule, OciHook, OciLinuxDevice, OciMount, OciSpec } from '../oci/types.js';
import { type ContainerEdits, type DeviceNode, envKey, HOOK_NAMES, type Hook, type HookName, type IntelRdt, normalDestination } from './types.js';

const FIX_SPEC = 'the bundle config.json has a field of the wrong type; recreate the container';
const FIX_EDITS = 'fix the CDI spec or configuration that produced this edit';

/** Deep copy that keeps key order and shares the (never mutated) LosslessNumber instances. */
function cloneJson<T extends JsonValue | undefined>(v: T): T {
  if (v === null || typeof v !== 'object' || isLosslessNumber(v)) return v;
  if (Array.isArray(v)) return v.map((x) => cloneJson(x)) as T;
  const out: JsonObject = {};
  for (const k of Object.keys(v)) {
    Object.defineProperty(out, k, { value: cloneJson((v as JsonObject)[k]), enumerable: true, writable: true, configurable: true });
  }
  return out as T;
}

const isObject = (v: unknown): v is JsonObject =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !isLosslessNumber(v);

/** The object at parent[key]; created (appended as the last key) when absent — callers ask only when they will fill it. */
function objectAt(parent: JsonObject, key: string, field: string): JsonObject {
  const v = parent[key];
  if (v === undefined || v === null) return (parent[key] = {});
  if (!isObject(v)) throw new NvrError('SPEC', `config.json: ${field} must be an object`, { fix: FIX_SPEC });
  return v;
}

function arrayAt<T extends JsonValue>(parent: JsonObject, key: string, field: string): T[] {
  const v = parent[key];
  if (v === undefined || v === null) return (parent[key] = []) as T[];
  if (!Array.isArray(v)) throw new NvrError('SPEC', `config.json: ${field} must be an array`, { fix: FIX_SPEC });
  return v as T[];
}

function editError(what: string): NvrError {
  return new NvrError('INPUT', `container edits: ${what}`, { fix: FIX_EDITS });
}

// ---- env ----

function applyEnv(spec: OciSpec, env: readonly string[]): void {
  for (const kv of env) {
    if (typeof kv !== 'string' || kv.indexOf('=') <= 0 || kv.includes('\0')) {
      throw editError(`env entry ${JSON.stringify(kv)} is not KEY=VALUE`);
    }
  }
  if (env.length === 0) return;
  const list = arrayAt<string>(objectAt(spec, 'process', 'process'), 'env', 'process.env');
  // Each key we set ends up once: at its first place in the list (or appended, in the order we first set it), with
  // the last value we give it; every other entry for the same key collapses into it (one NVIDIA_VISIBLE_DEVICES,
  // never two). Linear: a map of our keys instead of a search of the list per entry.
  const ours = new Map<string, string>();
  for (const kv of env) ours.set(envKey(kv), kv);
  replaceContents(list, upsertAll(list, ours, (e) => (typeof e === 'string' ? envKey(e) : undefined)));
}

/**
 * The list after upserting `ours` (key → the entry to keep): an entry whose key is one of ours is replaced by ours
 * at its first occurrence and dropped at later ones; our keys absent from the list are appended in map order.
 */
function upsertAll<T>(list: readonly T[], ours: ReadonlyMap<string, T>, keyOf: (x: T) => string | undefined): T[] {
  const out: T[] = [];
  const placed = new Set<string>();
  for (const x of list) {
    const k = keyOf(x);
    const mine = k === undefined ? undefined : ours.get(k);
    if (mine === undefined) {
      out.push(x);
      continue;
    }
    if (placed.has(k!)) continue;
    placed.add(k!);
    out.push(mine);
  }
  for (const [k, v] of ours) if (!placed.has(k)) out.push(v);
  return out;
}

function replaceContents<T>(list: T[], items: readonly T[]): void {
  list.length = 0;
  for (const x of items) list.push(x);
}

// ---- device nodes ----

const isUint = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;

function ociDevice(d: DeviceNode): OciLinuxDevice {
  if (typeof d.path !== 'string' || !d.path.startsWith('/')) throw editError(`device node path ${JSON.stringify(d.path)} must be absolute`);
  if (!d.type || !['b', 'c', 'u', 'p'].includes(d.type)) {
    throw editError(`device node ${d.path}: type ${JSON.stringify(d.type)} must be b, c, u or p (fill it from a host stat)`);
  }
  if (d.type !== 'p' && (!isUint(d.major) || !isUint(d.minor))) {
    throw editError(`device node ${d.path}: major and minor must be set (fill them from a host stat)`);
  }
  for (const k of ['major', 'minor', 'fileMode', 'uid', 'gid'] as const) {
    if (d[k] !== undefined && !isUint(d[k])) throw editError(`device node ${d.path}: ${k} must be a non-negative integer`);
  }
  if (d.permissions !== undefined && d.permissions !== 'none' && !/^(?!.*(.).*\1)[rwm]+$/.test(d.permissions)) {
    throw editError(`device node ${d.path}: permissions ${JSON.stringify(d.permissions)} must be a subset of "rwm" or "none"`);
  }
  const dev: OciLinuxDevice = { path: d.path, type: d.type };
  for (const k of ['major', 'minor', 'fileMode', 'uid', 'gid'] as const) if (d[k] !== undefined) dev[k] = d[k];
  return dev;
}

function deviceRule(d: DeviceNode): OciDeviceRule | undefined {
  if (d.type === 'p' || d.permissions === 'none') return undefined; // FIFOs are not cgroup-controlled
  return { allow: true, type: d.type === 'u' ? 'c' : d.type, major: d.major, minor: d.minor, access: d.permissions ?? 'rwm' };
}

/** The identity sameRule compares: allow, type, major and minor (as JSON number text) and access. */
const ruleKey = (type: unknown, major: string, minor: string, access: unknown): string => JSON.stringify([type, major, minor, access]);
const numberText = (v: JsonValue | undefined): string | undefined =>
  v !== undefined && (typeof v === 'number' || isLosslessNumber(v)) ? jsonNumberText(v as JsonNumber) : undefined;

/** The key of an existing rule that can equal one of ours (an allow rule with numbers); undefined for any other. */
function existingRuleKey(r: JsonValue): string | undefined {
  if (!isObject(r) || r.allow !== true || typeof r.type !== 'string' || typeof r.access !== 'string') return undefined;
  const major = numberText(r.major);
  const minor = numberText(r.minor);
  return major === undefined || minor === undefined ? undefined : ruleKey(r.type, major, minor, r.access);
}

function applyDeviceNodes(spec: OciSpec, nodes: readonly DeviceNode[]): void {
  const prepared = nodes.map((d) => ({ dev: ociDevice(d), rule: deviceRule(d) }));
  if (prepared.length === 0) return;
  const linux = objectAt(spec, 'linux', 'linux');
  const devices = arrayAt<JsonValue>(linux, 'devices', 'linux.devices');
  // A node replaces the first device with its path (later duplicates already in the spec stay), else is appended.
  const firstByPath = new Map<string, number>();
  devices.forEach((x, i) => {
    if (isObject(x) && typeof x.path === 'string' && !firstByPath.has(x.path)) firstByPath.set(x.path, i);
  });
  for (const { dev } of prepared) {
    const i = firstByPath.get(dev.path);
    if (i === undefined) firstByPath.set(dev.path, devices.push(dev) - 1);
    else devices[i] = dev;
  }
  const rules = prepared.flatMap(({ rule }) => (rule ? [rule] : []));
  const existing = linux.resources;
  const existingRules = isObject(existing) && Array.isArray(existing.devices) ? existing.devices : [];
  // A rule is added unless the spec (or an earlier rule of ours) already has the same one.
  const have = new Set<string>();
  for (const x of existingRules) {
    const k = existingRuleKey(x);
    if (k !== undefined) have.add(k);
  }
  const missing: OciDeviceRule[] = [];
  for (const r of rules) {
    const k = ruleKey(r.type, String(r.major), String(r.minor), r.access);
    if (have.has(k)) continue;
    have.add(k);
    missing.push(r);
  }
  if (missing.length === 0) return;
  arrayAt<JsonValue>(objectAt(linux, 'resources', 'linux.resources'), 'devices', 'linux.resources.devices').push(...missing);
}

// ---- mounts ----

function applyMounts(spec: OciSpec, mounts: ContainerEdits['mounts'] & object): void {
  for (const m of mounts) {
    if (typeof m.hostPath !== 'string' || m.hostPath === '' || typeof m.containerPath !== 'string' || m.containerPath === '') {
      throw editError(`mount ${JSON.stringify(m.containerPath)}: hostPath and containerPath must be non-empty strings`);
    }
  }
  if (mounts.length === 0) return;
  const list = arrayAt<JsonValue>(spec, 'mounts', 'mounts');
  // Each destination we mount ends up once: at the place of the first mount on it (or appended, in the order we
  // first mount it), with our last mount for it; later mounts on it, which would shadow ours, are dropped. Linear:
  // destinations are compared by their normal form (sameDestination), through a map.
  const norm = memoNormalDestination();
  const ours = new Map<string, JsonValue>();
  for (const m of mounts) {
    const oci: OciMount = { destination: m.containerPath, type: m.type ?? 'bind', source: m.hostPath };
    if (m.options) oci.options = [...m.options];
    ours.set(norm(m.containerPath), oci as JsonValue);
  }
  replaceContents(list, upsertAll(list, ours, (x) => (isObject(x) && typeof x.destination === 'string' ? norm(x.destination) : undefined)));
}

/** normalDestination, memoised for one call (a spec names the same few directories many times). */
function memoNormalDestination(): (p: string) => string {
  const seen = new Map<string, string>();
  return (p) => {
    let n = seen.get(p);
    if (n === undefined) seen.set(p, (n = normalDestination(p)));
    return n;
  };
}

// ---- hooks ----

const isHookName = (n: string): n is HookName => (HOOK_NAMES as readonly string[]).includes(n);

function ociHook(h: Hook): OciHook {
  if (!isHookName(h.hookName)) throw editError(`hook name ${JSON.stringify(h.hookName)} must be one of ${HOOK_NAMES.join(', ')}`);
  if (typeof h.path !== 'string' || !h.path.startsWith('/')) throw editError(`${h.hookName} hook path ${JSON.stringify(h.path)} must be absolute`);
  if (h.timeout !== undefined && !(Number.isInteger(h.timeout) && h.timeout > 0)) throw editError(`${h.hookName} hook ${h.path}: timeout must be a positive integer`);
  const hook: OciHook = { path: h.path };
  if (h.args) hook.args = [...h.args];
  if (h.env) hook.env = [...h.env];
  if (h.timeout !== undefined) hook.timeout = h.timeout;
  return hook;
}

const sameArgs = (a: JsonValue | undefined, b: readonly string[] | undefined): boolean => {
  const x = Array.isArray(a) ? a : [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

function applyHooks(spec: OciSpec, hooks: readonly Hook[]): void {
  const prepared = hooks.map((h) => ({ name: h.hookName, hook: ociHook(h) }));
  if (prepared.length === 0) return;
  const all = objectAt(spec, 'hooks', 'hooks');
  for (const { name, hook } of prepared) {
    const list = arrayAt<JsonValue>(all, name, `hooks.${name}`);
    const i = list.findIndex((x) => isObject(x) && x.path === hook.path && sameArgs(x.args, hook.args));
    if (i < 0) list.push(hook);
    else list[i] = hook; // same hook: ours (explicit env, timeout) replaces it, never a second copy
  }
}

/**
 * Removes hooks matching `predicate` (e.g. Docker's `--gpus` prestart hook), pure like applyEdits. A hook list
 * emptied by the removal is deleted; nothing else changes.
 */
export function removeHooks(spec: OciSpec, predicate: (hook: OciHook, hookName: string) => boolean): OciSpec {
  const out = cloneJson(spec);
  const all = out.hooks;
  if (!isObject(all)) return out;
  for (const name of Object.keys(all)) {
    const list = all[name];
    if (!Array.isArray(list)) continue;
    const kept = list.filter((h) => !(isObject(h) && typeof h.path === 'string' && predicate(h as OciHook, name)));
    if (kept.length === list.length) continue;
    if (kept.length === 0) delete all[name];
    else all[name] = kept;
  }
  return out;
}

// ---- additional GIDs ----

function applyGids(spec: OciSpec, gids: readonly number[]): void {
  for (const g of gids) if (!isUint(g) || g > 0xffffffff) throw editError(`additional GID ${JSON.stringify(g)} must be an integer in 0..4294967295`);
  const wanted = [...new Set(gids)].filter((g) => g !== 0);
  if (wanted.length === 0) return;
  const user = objectAt(objectAt(spec, 'process', 'process'), 'user', 'process.user');
  const list = arrayAt<JsonValue>(user, 'additionalGids', 'process.user.additionalGids');
  const have = new Set<string>();
  for (const x of list) {
    const t = numberText(x);
    if (t !== undefined) have.add(t);
  }
  for (const g of wanted) {
    if (have.has(String(g))) continue;
    have.add(String(g));
    list.push(g);
  }
}

// ---- Intel RDT ----

function applyIntelRdt(spec: OciSpec, rdt: IntelRdt | undefined): void {
  if (!rdt) return;
  const linux = objectAt(spec, 'linux', 'linux');
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(rdt) as [string, string | boolean | string[] | undefined][]) {
    if (v !== undefined) out[k] = Array.isArray(v) ? [...v] : v;
  }
  linux.intelRdt = out; // replaced whole, as the CDI library sets it
}

/** Applies `edits` to a copy of `spec` and returns it; `spec` itself is never modified. */
export function applyEdits(spec: OciSpec, edits: ContainerEdits): OciSpec {
  if (!isObject(spec)) throw new NvrError('SPEC', 'config.json: must be a JSON object', { fix: FIX_SPEC });
  const out = cloneJson(spec);
  applyEnv(out, edits.env ?? []);
  applyDeviceNodes(out, edits.deviceNodes ?? []);
  applyMounts(out, edits.mounts ?? []);
  applyHooks(out, edits.hooks ?? []);
  applyGids(out, edits.additionalGids ?? []);
  applyIntelRdt(out, edits.intelRdt);
  return out;
}
