import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NvrError } from '../../../src/errors.js';
import { applyEdits, removeHooks } from '../../../src/edits/apply.js';
import { type ContainerEdits, mergeEdits } from '../../../src/edits/types.js';
import { getEnv, getMounts, parseSpec, serializeSpec } from '../../../src/oci/spec-file.js';
import type { OciSpec } from '../../../src/oci/types.js';

const load = (name: string): OciSpec =>
  parseSpec(fs.readFileSync(fileURLToPath(new URL(`../../fixtures/specs/${name}`, import.meta.url)), 'utf8'), name);

const GPU_EDITS: ContainerEdits = {
  env: ['NVIDIA_VISIBLE_DEVICES=GPU-11111111-2222-3333-4444-555555555555', 'NVIDIA_NEW=1'],
  deviceNodes: [
    { path: '/dev/nvidia0', type: 'c', major: 195, minor: 0, fileMode: 438, uid: 0, gid: 0 },
    { path: '/dev/nvidiactl', type: 'c', major: 195, minor: 255, fileMode: 438, permissions: 'rw' },
    { path: '/dev/nvidia-uvm', type: 'c', major: 510, minor: 0 },
  ],
  mounts: [
    { hostPath: '/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15', containerPath: '/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15', options: ['ro', 'nosuid', 'nodev', 'rbind', 'rprivate'] },
    { hostPath: '/usr/bin/nvidia-smi', containerPath: '/usr/bin/nvidia-smi', options: ['ro', 'nosuid', 'nodev', 'bind'] },
  ],
  hooks: [
    { hookName: 'createContainer', path: '/usr/bin/nvidia-runtime-hook', args: ['nvidia-runtime-hook', 'ldcache'], env: ['PATH=/usr/bin'], timeout: 10 },
  ],
  additionalGids: [44, 0, 107, 107],
};

function err(fn: () => unknown, code: string): NvrError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NvrError);
    expect((e as NvrError).code).toBe(code);
    return e as NvrError;
  }
  throw new Error('expected an NvrError');
}

describe('applyEdits on a Docker spec', () => {
  const before = load('docker-spec.json');
  const beforeText = serializeSpec(before);
  const after = applyEdits(before, GPU_EDITS);

  it('does not mutate its input', () => {
    expect(serializeSpec(before)).toBe(beforeText);
  });

  it('replaces env in place, collapsing duplicates, and appends new keys', () => {
    const env = getEnv(after);
    expect(env).toEqual([
      'PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/bin:/bin',
      'NVIDIA_VISIBLE_DEVICES=GPU-11111111-2222-3333-4444-555555555555',
      'HOSTNAME=4f0c1a2b3c4d',
      'NVIDIA_DRIVER_CAPABILITIES=compute,utility',
      'CUDA_VERSION=12.4.1',
      'NVIDIA_NEW=1',
    ]);
  });

  it('appends mounts after the existing ones, whose order is untouched', () => {
    const dests = getMounts(after).map((m) => m.destination);
    expect(dests.slice(0, -2)).toEqual(getMounts(before).map((m) => m.destination));
    expect(after.mounts?.slice(-2)).toEqual([
      { destination: '/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15', type: 'bind', source: '/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15', options: ['ro', 'nosuid', 'nodev', 'rbind', 'rprivate'] },
      { destination: '/usr/bin/nvidia-smi', type: 'bind', source: '/usr/bin/nvidia-smi', options: ['ro', 'nosuid', 'nodev', 'bind'] },
    ]);
  });

  it('adds linux.devices and exactly the missing cgroup rules', () => {
    expect(after.linux?.devices).toEqual([
      { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 438, uid: 0, gid: 0 },
      { path: '/dev/nvidia0', type: 'c', major: 195, minor: 0, fileMode: 438, uid: 0, gid: 0 },
      { path: '/dev/nvidiactl', type: 'c', major: 195, minor: 255, fileMode: 438 },
      { path: '/dev/nvidia-uvm', type: 'c', major: 510, minor: 0 },
    ]);
    // 195:255 "rw" was already allowed: not added again.
    expect(after.linux?.resources?.devices).toEqual([
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
      { allow: true, type: 'c', major: 195, minor: 255, access: 'rw' },
      { allow: true, type: 'c', major: 195, minor: 0, access: 'rwm' },
      { allow: true, type: 'c', major: 510, minor: 0, access: 'rwm' },
    ]);
  });

  it('adds the hook with its explicit env and timeout, keeping existing hooks', () => {
    expect(after.hooks?.createContainer).toEqual([
      { path: '/usr/bin/nvidia-runtime-hook', args: ['nvidia-runtime-hook', 'ldcache'], env: ['PATH=/usr/bin'], timeout: 10 },
    ]);
    expect(after.hooks?.prestart).toEqual(before.hooks?.prestart);
    expect(after.hooks?.createRuntime).toEqual(before.hooks?.createRuntime);
  });

  it('adds additional GIDs uniquely, ignoring 0', () => {
    expect(after.process?.user?.additionalGids).toEqual([1000, 44, 107]);
  });

  it('changes nothing else: unknown fields, key order and 64-bit numbers survive', () => {
    const text = serializeSpec(after);
    expect(Object.keys(after)).toEqual(Object.keys(before));
    expect(text).toContain('"memory":{"limit":18446744073709551615,"swap":9223372036854775807,"reservation":-1}');
    expect(text).toContain('"x-vendor":{"enabled":true,"ratio":1.0,"tiny":1e-7,"huge":1.5e300,"negzero":-0,');
    expect(text).toContain('"x-future-process-field":{"z":1,"a":[3,2,1]}');
    // Reverting exactly the owned parts gives the input back byte for byte.
    const reverted = parseSpec(text, 'x');
    reverted.process!.env = before.process!.env;
    reverted.process!.user!.additionalGids = before.process!.user!.additionalGids;
    reverted.mounts = before.mounts;
    reverted.linux!.devices = before.linux!.devices;
    reverted.linux!.resources!.devices = before.linux!.resources!.devices;
    delete reverted.hooks!.createContainer;
    expect(serializeSpec(reverted)).toBe(beforeText);
  });

  it('is idempotent: applying twice equals applying once, text identical', () => {
    const twice = applyEdits(after, GPU_EDITS);
    expect(twice).toEqual(after);
    expect(serializeSpec(twice)).toBe(serializeSpec(after));
  });

  it('applying merged edits equals applying them one after another', () => {
    const a: ContainerEdits = { env: ['A=1', 'NVIDIA_VISIBLE_DEVICES=0'], mounts: [{ hostPath: '/h1', containerPath: '/c' }] };
    const b: ContainerEdits = { env: ['NVIDIA_VISIBLE_DEVICES=1'], mounts: [{ hostPath: '/h2', containerPath: '/c/' }], additionalGids: [5] };
    expect(serializeSpec(applyEdits(before, mergeEdits(a, b)))).toBe(serializeSpec(applyEdits(applyEdits(before, a), b)));
  });
});

describe('applyEdits details', () => {
  const runc = load('runc-spec.json');

  it('a no-op creates nothing', () => {
    const empty = parseSpec('{"ociVersion":"1.2.0"}', 'x');
    const out = applyEdits(empty, { env: [], deviceNodes: [], mounts: [], hooks: [], additionalGids: [0] });
    expect(serializeSpec(out)).toBe('{"ociVersion":"1.2.0"}');
    expect(serializeSpec(applyEdits(runc, {}))).toBe(serializeSpec(runc));
  });

  it('creates only the objects it needs, appended last', () => {
    const empty = parseSpec('{"ociVersion":"1.2.0"}', 'x');
    const fifo = applyEdits(empty, { deviceNodes: [{ path: '/dev/fifo', type: 'p' }] });
    expect(serializeSpec(fifo)).toBe('{"ociVersion":"1.2.0","linux":{"devices":[{"path":"/dev/fifo","type":"p"}]}}');
    const none = applyEdits(empty, { deviceNodes: [{ path: '/dev/x', type: 'c', major: 1, minor: 2, permissions: 'none' }] });
    expect(none.linux?.resources).toBeUndefined();
    const u = applyEdits(empty, { deviceNodes: [{ path: '/dev/u', type: 'u', major: 4, minor: 5, permissions: 'mr' }] });
    expect(u.linux?.resources?.devices).toEqual([{ allow: true, type: 'c', major: 4, minor: 5, access: 'mr' }]);
    const gids = applyEdits(empty, { additionalGids: [7] });
    expect(serializeSpec(gids)).toBe('{"ociVersion":"1.2.0","process":{"user":{"additionalGids":[7]}}}');
  });

  it('does not add a cgroup rule twice within one edit set', () => {
    const out = applyEdits(runc, {
      deviceNodes: [
        { path: '/dev/a', type: 'c', major: 195, minor: 0 },
        { path: '/dev/b', type: 'c', major: 195, minor: 0 },
      ],
    });
    expect(out.linux?.resources?.devices?.filter((r) => r.major === 195)).toHaveLength(1);
  });

  it('replaces a device node with the same path in place', () => {
    const once = applyEdits(runc, { deviceNodes: [{ path: '/dev/nvidia0', type: 'c', major: 195, minor: 0 }, { path: '/dev/z', type: 'c', major: 1, minor: 3 }] });
    const again = applyEdits(once, { deviceNodes: [{ path: '/dev/nvidia0', type: 'c', major: 195, minor: 0, fileMode: 420 }] });
    expect(again.linux?.devices?.map((d) => [d.path, d.fileMode])).toEqual([['/dev/nvidia0', 420], ['/dev/z', undefined]]);
  });

  it('replaces a mount with the same destination in place and drops later shadowing duplicates', () => {
    const spec = parseSpec('{"mounts":[{"destination":"/a","type":"tmpfs","source":"tmpfs","x-keep":1},{"destination":"/b"},{"destination":"/a/","source":"s2"}]}', 'x');
    const out = applyEdits(spec, { mounts: [{ hostPath: '/host/a', containerPath: '/a', type: 'none', options: ['rbind'] }] });
    expect(out.mounts).toEqual([{ destination: '/a', type: 'none', source: '/host/a', options: ['rbind'] }, { destination: '/b' }]);
  });

  it('replaces a hook with the same path and args instead of appending a second one', () => {
    const hook = { hookName: 'prestart', path: '/usr/bin/nvidia-container-runtime-hook', args: ['nvidia-container-runtime-hook', 'prestart'], env: ['PATH=/usr/bin'], timeout: 5 };
    const out = applyEdits(load('docker-spec.json'), { hooks: [hook] });
    expect(out.hooks?.prestart).toEqual([{ path: hook.path, args: hook.args, env: hook.env, timeout: 5 }]);
    const other = applyEdits(out, { hooks: [{ ...hook, args: ['x'] }] });
    expect(other.hooks?.prestart).toHaveLength(2);
  });

  it('rejects bad edits with an INPUT error', () => {
    expect(err(() => applyEdits(runc, { hooks: [{ hookName: 'preStart', path: '/x' }] }), 'INPUT').message).toMatch(/hook name "preStart" must be one of prestart, createRuntime/);
    expect(err(() => applyEdits(runc, { hooks: [{ hookName: 'poststop', path: 'x' }] }), 'INPUT').message).toMatch(/absolute/);
    expect(err(() => applyEdits(runc, { hooks: [{ hookName: 'poststop', path: '/x', timeout: 0 }] }), 'INPUT').message).toMatch(/timeout/);
    expect(err(() => applyEdits(runc, { env: ['NOEQUALS'] }), 'INPUT').message).toMatch(/KEY=VALUE/);
    expect(err(() => applyEdits(runc, { env: ['=x'] }), 'INPUT').message).toMatch(/KEY=VALUE/);
    expect(err(() => applyEdits(runc, { deviceNodes: [{ path: '/dev/x' }] }), 'INPUT').message).toMatch(/type/);
    expect(err(() => applyEdits(runc, { deviceNodes: [{ path: '/dev/x', type: 'c' }] }), 'INPUT').message).toMatch(/major and minor/);
    expect(err(() => applyEdits(runc, { deviceNodes: [{ path: '/dev/x', type: 'c', major: 1, minor: 1, permissions: 'rwx' }] }), 'INPUT').message).toMatch(/permissions/);
    expect(err(() => applyEdits(runc, { additionalGids: [-1] }), 'INPUT').message).toMatch(/GID/);
  });

  it('rejects a spec field of the wrong type with a SPEC error instead of crashing', () => {
    const bad = parseSpec('{"process":{"env":"A=1"},"mounts":{}}', 'x');
    expect(err(() => applyEdits(bad, { env: ['B=2'] }), 'SPEC').message).toMatch(/process\.env must be an array/);
    expect(err(() => applyEdits(bad, { mounts: [{ hostPath: '/a', containerPath: '/b' }] }), 'SPEC').message).toMatch(/mounts must be an array/);
  });
});

describe('applyEdits: intelRdt', () => {
  it('sets linux.intelRdt, replacing what the spec had, and keeps the rest of linux', () => {
    const spec = { ociVersion: '1.0.2', linux: { intelRdt: { closID: 'old', memBwSchema: 'MB:0=50' }, namespaces: [] } } as unknown as OciSpec;
    const out = applyEdits(spec, { intelRdt: { closID: 'gpu', schemata: ['L3:0=f'], enableMonitoring: true } }) as unknown as { linux: Record<string, unknown> };
    expect(out.linux).toEqual({ intelRdt: { closID: 'gpu', schemata: ['L3:0=f'], enableMonitoring: true }, namespaces: [] });
    expect((spec as unknown as { linux: { intelRdt: unknown } }).linux.intelRdt).toEqual({ closID: 'old', memBwSchema: 'MB:0=50' }); // input untouched
    expect(applyEdits(spec, {})).toEqual(spec);
  });

  it('mergeEdits: a later intelRdt replaces an earlier one whole', () => {
    expect(mergeEdits({ intelRdt: { closID: 'a', l3CacheSchema: 'x' } }, { intelRdt: { closID: 'b' } }).intelRdt).toEqual({ closID: 'b' });
  });
});

describe('removeHooks', () => {
  const spec = load('docker-spec.json');

  it('removes matching hooks, deleting a list it empties, and leaves the input alone', () => {
    const out = removeHooks(spec, (h, name) => name === 'prestart' && h.path.endsWith('/nvidia-container-runtime-hook'));
    expect(out.hooks).toEqual({ createRuntime: spec.hooks?.createRuntime });
    expect(spec.hooks?.prestart).toHaveLength(1);
  });

  it('is a no-op when nothing matches', () => {
    expect(serializeSpec(removeHooks(spec, () => false))).toBe(serializeSpec(spec));
  });
});
