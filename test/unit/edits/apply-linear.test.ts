/**
 * applyEdits de-duplicates through maps and sets (no pairwise search): the same output as the pairwise algorithm it
 * replaced — kept here as the reference — on random specs and edits with colliding destinations, env keys, device
 * paths, rules and GIDs, and on a spec with 64 GPUs' worth of edits.
 */
import fc from 'fast-check';
import { posix } from 'node:path';
import { LosslessNumber } from 'lossless-json';
import { applyEdits } from '../../../src/edits/apply.js';
import type { ContainerEdits } from '../../../src/edits/types.js';
import { jsonNumberText, parseSpec, serializeSpec } from '../../../src/oci/spec-file.js';
import type { JsonValue, OciSpec } from '../../../src/oci/types.js';

// ---- the reference: the pairwise de-duplication applyEdits did before (env, devices, rules, mounts, GIDs) ----
type J = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const isObj = (v: unknown): boolean => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof LosslessNumber);
const envKey = (kv: string): string => (kv.indexOf('=') < 0 ? kv : kv.slice(0, kv.indexOf('=')));
const norm = (p: string): string => posix.normalize(p).replace(/(.)\/+$/, '$1');
const sameNumber = (a: J, b: number | undefined): boolean =>
  b === undefined ? a === undefined : a !== undefined && (typeof a === 'number' || a instanceof LosslessNumber) && jsonNumberText(a) === String(b);
const sameRule = (r: J, w: J): boolean =>
  isObj(r) && r.allow === true && r.type === w.type && sameNumber(r.major, w.major) && sameNumber(r.minor, w.minor) && r.access === w.access;

function reference(spec: OciSpec, edits: ContainerEdits): J {
  const out: J = parseSpec(serializeSpec(spec), 'ref');
  const env = edits.env ?? [];
  if (env.length) {
    out.process ??= {};
    const list: J[] = (out.process.env ??= []);
    for (const kv of env) {
      const key = envKey(kv);
      const first = list.findIndex((e) => typeof e === 'string' && envKey(e) === key);
      if (first < 0) { list.push(kv); continue; }
      list[first] = kv;
      for (let i = list.length - 1; i > first; i--) if (typeof list[i] === 'string' && envKey(list[i]) === key) list.splice(i, 1);
    }
  }
  const nodes = edits.deviceNodes ?? [];
  if (nodes.length) {
    out.linux ??= {};
    const devices: J[] = (out.linux.devices ??= []);
    for (const d of nodes) {
      const dev: J = { path: d.path, type: d.type };
      for (const k of ['major', 'minor', 'fileMode', 'uid', 'gid'] as const) if (d[k] !== undefined) dev[k] = d[k];
      const i = devices.findIndex((x) => isObj(x) && x.path === dev.path);
      if (i < 0) devices.push(dev); else devices[i] = dev;
    }
    const rules = nodes.filter((d) => d.type !== 'p' && d.permissions !== 'none')
      .map((d) => ({ allow: true, type: d.type === 'u' ? 'c' : d.type, major: d.major, minor: d.minor, access: d.permissions ?? 'rwm' }));
    const existing = out.linux.resources;
    const existingRules: J[] = isObj(existing) && Array.isArray(existing.devices) ? existing.devices : [];
    const missing = rules.filter((r, i) => !existingRules.some((x) => sameRule(x, r)) && !rules.slice(0, i).some((x) => sameRule(x, r)));
    if (missing.length) { out.linux.resources ??= {}; (out.linux.resources.devices ??= []).push(...missing); }
  }
  const mounts = edits.mounts ?? [];
  if (mounts.length) {
    const list: J[] = (out.mounts ??= []);
    for (const m of mounts) {
      const oci: J = { destination: m.containerPath, type: m.type ?? 'bind', source: m.hostPath };
      if (m.options) oci.options = [...m.options];
      const same = (x: J): boolean => isObj(x) && typeof x.destination === 'string' && norm(x.destination) === norm(m.containerPath);
      const first = list.findIndex(same);
      if (first < 0) { list.push(oci); continue; }
      list[first] = oci;
      for (let i = list.length - 1; i > first; i--) if (same(list[i])) list.splice(i, 1);
    }
  }
  const gids = edits.additionalGids ?? [];
  const wanted = gids.filter((g, i) => g !== 0 && gids.indexOf(g) === i);
  if (wanted.length) {
    out.process ??= {};
    out.process.user ??= {};
    const list: J[] = (out.process.user.additionalGids ??= []);
    for (const g of wanted) if (!list.some((x) => sameNumber(x, g))) list.push(g);
  }
  return out;
}

// ---- generators with many collisions ----
const dirs = ['/usr/lib', '/usr/lib/', '/usr//lib', '/usr/bin', '/dev/shm', '/etc/x', '/etc/x/.', '/a/../usr/bin', '/'];
const destination = fc.constantFrom(...dirs);
const envEntry = fc.tuple(fc.constantFrom('A', 'B', 'NVIDIA_VISIBLE_DEVICES', 'PATH'), fc.constantFrom('', '1', '2', 'x=y')).map(([k, v]) => `${k}=${v}`);
const devPath = fc.constantFrom('/dev/nvidia0', '/dev/nvidia1', '/dev/nvidiactl', '/dev/fuse');
const nodeEdit = fc.record({
  path: devPath,
  type: fc.constantFrom('c' as const, 'b' as const, 'u' as const, 'p' as const),
  major: fc.constantFrom(195, 10, 0),
  minor: fc.constantFrom(0, 1, 255),
  permissions: fc.option(fc.constantFrom('rw', 'rwm', 'none', 'r'), { nil: undefined }),
}).map((d) => (d.permissions === undefined ? { path: d.path, type: d.type, major: d.major, minor: d.minor } : d));
const mountEdit = fc.record({ hostPath: fc.constantFrom('/h/a', '/h/b'), containerPath: destination, options: fc.option(fc.constant(['ro', 'bind']), { nil: undefined }) })
  .map((m) => (m.options === undefined ? { hostPath: m.hostPath, containerPath: m.containerPath } : m));
const edits = fc.record({
  env: fc.array(envEntry, { maxLength: 8 }),
  deviceNodes: fc.array(nodeEdit, { maxLength: 8 }),
  mounts: fc.array(mountEdit, { maxLength: 10 }),
  additionalGids: fc.array(fc.constantFrom(0, 44, 107, 5), { maxLength: 6 }),
});
const specMount = fc.oneof(
  fc.record({ destination, type: fc.constant('bind'), source: fc.constantFrom('/s1', '/s2') }),
  fc.constant({ destination: 7 }),
  fc.constant('not a mount'),
);
const specRule = fc.oneof(
  fc.record({ allow: fc.boolean(), type: fc.constantFrom('c', 'b', 'a'), major: fc.constantFrom(195, 10), minor: fc.constantFrom(0, 255, 1), access: fc.constantFrom('rw', 'rwm') }),
  fc.constant({ allow: false, access: 'rwm' }),
);
const specText = fc.record({
  env: fc.array(fc.oneof(envEntry, fc.constant('NOEQUALS'), fc.constant(3 as unknown as string)), { maxLength: 8 }),
  mounts: fc.array(specMount, { maxLength: 8 }),
  devices: fc.array(fc.record({ path: devPath, type: fc.constant('c'), major: fc.constant(1), minor: fc.constant(1) }), { maxLength: 4 }),
  rules: fc.array(specRule, { maxLength: 5 }),
  gids: fc.array(fc.constantFrom('44', '107', '107.0', '1e2', '"44"'), { maxLength: 4 }),
}).map((s) => `{"ociVersion":"1.0.2","process":{"env":${JSON.stringify(s.env)},"user":{"uid":0,"gid":0,"additionalGids":[${s.gids.join(',')}]}},` +
  `"mounts":${JSON.stringify(s.mounts)},"linux":{"devices":${JSON.stringify(s.devices)},"resources":{"devices":${JSON.stringify(s.rules)}}}}`);

test('applyEdits equals the pairwise reference on random specs and colliding edits', () => {
  fc.assert(
    fc.property(specText, edits, (text, e) => {
      const spec = parseSpec(text, 'config.json');
      expect(serializeSpec(applyEdits(spec, e as ContainerEdits))).toBe(serializeSpec(reference(spec, e as ContainerEdits)));
    }),
    { numRuns: 1500 },
  );
});

test('a spec with 64 GPUs worth of edits: every node, rule and mount once, in order, as the reference', () => {
  const gpus = Array.from({ length: 64 }, (_, i) => i);
  const libs = Array.from({ length: 60 }, (_, i) => `/usr/lib/x86_64-linux-gnu/libnvidia-${i}.so.550.54.15`);
  const e: ContainerEdits = {
    env: ['NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_DRIVER_CAPABILITIES=all'],
    deviceNodes: [
      ...['/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools', '/dev/nvidia-modeset'].map((path, i) => ({ path, type: 'c' as const, major: 195, minor: 250 + i })),
      ...gpus.map((i) => ({ path: `/dev/nvidia${i}`, type: 'c' as const, major: 195, minor: i })),
      ...gpus.flatMap((i) => [0, 1].map((k) => ({ path: `/dev/nvidia-caps/nvidia-cap${i * 2 + k}`, type: 'c' as const, major: 234, minor: i * 2 + k, permissions: 'r' }))),
    ],
    mounts: [
      ...libs.map((p) => ({ hostPath: `/driver${p}`, containerPath: p, options: ['ro', 'nosuid', 'nodev', 'bind'] })),
      ...gpus.map((i) => ({ hostPath: `/proc/driver/nvidia/gpus/0000:${i.toString(16).padStart(2, '0')}:00.0`, containerPath: `/proc/driver/nvidia/gpus/0000:${i.toString(16).padStart(2, '0')}:00.0`, options: ['ro', 'nosuid', 'nodev', 'bind'] })),
      ...libs.slice(0, 10).map((p) => ({ hostPath: `/driver2${p}`, containerPath: `${p}/`, options: ['ro', 'bind'] })), // same destinations again: replace
    ],
    hooks: [{ hookName: 'createContainer', path: '/usr/bin/nvidia-runtime-hook', args: ['nvidia-runtime-hook', 'ldcache'] }],
    additionalGids: [44, 107],
  };
  const spec = parseSpec(JSON.stringify({
    ociVersion: '1.0.2', process: { env: ['PATH=/bin', 'NVIDIA_VISIBLE_DEVICES=0'] },
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }, { destination: libs[3], type: 'bind', source: '/old' }],
    linux: { resources: { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 195, minor: 5, access: 'rwm' }] } },
  }), 'config.json');
  const out = applyEdits(spec, e) as J;
  expect(out.linux.devices).toHaveLength(4 + 64 + 128);
  expect(out.linux.resources.devices).toHaveLength(2 + 4 + 63 + 128); // nvidia5's rule was there
  expect(out.mounts).toHaveLength(1 + 60 + 64);
  expect(out.mounts[1]).toEqual({ destination: `${libs[3]}/`, type: 'bind', source: `/driver2${libs[3]}`, options: ['ro', 'bind'] });
  expect(out.process.env).toEqual(['PATH=/bin', 'NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_DRIVER_CAPABILITIES=all']);
  const { hooks: _h, ...withoutHooks } = e;
  void _h;
  const { hooks: _o, ...outWithoutHooks } = out;
  void _o;
  expect(serializeSpec(outWithoutHooks as OciSpec)).toBe(serializeSpec(reference(spec, withoutHooks) as OciSpec));
  expect(serializeSpec(applyEdits(out, e))).toBe(serializeSpec(out)); // idempotent
});

void (null as unknown as JsonValue);
