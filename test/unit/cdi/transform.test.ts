/** src/cdi/transform.ts: `cdi transform root` as a pure function (cases after the toolkit's own host/container-root tests). */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { normaliseRoot, transformHookArg, transformRootPath, transformSpecRoot, type RelativeTo } from '../../../src/cdi/transform.js';
import type { CdiContainerEdits, CdiSpec } from '../../../src/cdi/types.js';
import { specProblem } from '../../../src/cdi/validate.js';
import { HOOK_NAMES } from '../../../src/edits/types.js';
import { PACKAGE_ROOT } from '../../helpers/dist.js';

/** NVIDIA's own generator output for the default mock root (test/fixtures/nvidia/README.md). */
const FIXTURE = join(PACKAGE_ROOT, 'test', 'fixtures', 'nvidia', 'nvidia-ctk-1.17.9-cdi-mock8.yaml');
const MOCK_ROOT = '/var/lib/nvidia-runtime/mock-driver';

const spec = (containerEdits: CdiContainerEdits): CdiSpec => ({
  cdiVersion: '0.5.0',
  kind: 'example.com/gpu',
  devices: [{ name: 'd0', containerEdits: { env: ['A=1'] } }],
  containerEdits,
});
const host = (s: CdiSpec, from = '/root', to = '/target-root') => transformSpecRoot(s, { from, to }).containerEdits!;

describe('transformRootPath', () => {
  it('replaces the root at a component boundary only', () => {
    expect(transformRootPath('/driver/lib/x.so', '/driver', '/')).toBe('/lib/x.so');
    expect(transformRootPath('/driver-backup/lib/x.so', '/driver', '/')).toBe('/driver-backup/lib/x.so');
    expect(transformRootPath('/driver', '/driver', '/new')).toBe('/new');
    expect(transformRootPath('/driver/', '/driver', '/new')).toBe('/new/');
    expect(transformRootPath('/usr/lib/x.so', '/', '/run/nvidia/driver')).toBe('/run/nvidia/driver/usr/lib/x.so');
    expect(transformRootPath('/', '/', '/new')).toBe('/new');
    expect(transformRootPath('relative/x', '/', '/new')).toBe('relative/x');
    expect(transformRootPath('../libx.so.1', '/driver', '/new')).toBe('../libx.so.1');
  });

  it('keeps the rest of the path byte for byte (no normalisation that could not be undone)', () => {
    expect(transformRootPath('/driver//a/../b', '/driver', '/n')).toBe('/n//a/../b');
  });

  it('normaliseRoot: absolute only, trailing slashes dropped', () => {
    expect(normaliseRoot('/run/nvidia/driver/', '--from')).toBe('/run/nvidia/driver');
    expect(normaliseRoot('//x//y', '--from')).toBe('/x/y');
    expect(normaliseRoot('/', '--to')).toBe('/');
    expect(() => normaliseRoot('run/nvidia', '--from')).toThrow(/--from "run\/nvidia": must be an absolute path/);
    expect(() => normaliseRoot('', '--to')).toThrow(/--to "": must be an absolute path/);
  });

  it('hook arguments: whole, both halves of TARGET::LINK, the value of --flag=PATH', () => {
    const move = (p: string) => transformRootPath(p, '/root', '/t');
    expect(transformHookArg('/root/a', move)).toBe('/t/a');
    expect(transformHookArg('/root/a::/root/b', move)).toBe('/t/a::/t/b');
    expect(transformHookArg('../a.so::/root/b', move)).toBe('../a.so::/t/b');
    expect(transformHookArg('--root=/root/x', move)).toBe('--root=/t/x');
    expect(transformHookArg('--link=/root/a::/root/b', move)).toBe('--link=/t/a::/t/b');
    expect(transformHookArg('--host-driver-version=550.54.15', move)).toBe('--host-driver-version=550.54.15');
    expect(transformHookArg('create-symlinks', move)).toBe('create-symlinks');
  });
});

describe('transformSpecRoot, relative to the host (default)', () => {
  it('device nodes: hostPath moves, path stays; a node without hostPath gets one when its host path moves', () => {
    const e = host(
      spec({
        deviceNodes: [
          { hostPath: '/root/dev/nvidia0', path: '/root/dev/nvidia0' },
          { hostPath: '/target-root/dev/nvidia1', path: '/target-root/dev/nvidia1' },
          { hostPath: '/different-root/dev/nvidia2', path: '/different-root/dev/nvidia2' },
          { path: '/root/dev/nvidia3' },
          { path: '/dev/nvidia4' },
        ],
      }),
    );
    expect(e.deviceNodes).toEqual([
      { hostPath: '/target-root/dev/nvidia0', path: '/root/dev/nvidia0' },
      { hostPath: '/target-root/dev/nvidia1', path: '/target-root/dev/nvidia1' },
      { hostPath: '/different-root/dev/nvidia2', path: '/different-root/dev/nvidia2' },
      { hostPath: '/target-root/dev/nvidia3', path: '/root/dev/nvidia3' },
      { path: '/dev/nvidia4' },
    ]);
  });

  it('mounts: hostPath moves, containerPath and options stay', () => {
    const e = host(
      spec({
        mounts: [
          { hostPath: '/root/lib/lib1.so', containerPath: '/root/lib/lib1.so', options: ['ro', 'bind'] },
          { hostPath: '/different-root/lib/lib3.so', containerPath: '/different-root/lib/lib3.so' },
        ],
      }),
    );
    expect(e.mounts).toEqual([
      { hostPath: '/target-root/lib/lib1.so', containerPath: '/root/lib/lib1.so', options: ['ro', 'bind'] },
      { hostPath: '/different-root/lib/lib3.so', containerPath: '/different-root/lib/lib3.so' },
    ]);
  });

  it('hooks: createContainer moves its path only; startContainer moves nothing; others move path and args', () => {
    const args = ['--link', '/root/path/to/target::/root/path/to/link'];
    const e = host(
      spec({
        hooks: [
          { hookName: 'createContainer', path: '/root/usr/bin/nvidia-ctk', args, env: ['X=/root/y'] },
          { hookName: 'startContainer', path: '/root/usr/bin/nvidia-ctk', args },
          { hookName: 'createRuntime', path: '/root/usr/bin/nvidia-ctk', args },
          { hookName: 'prestart', path: '/different-root/usr/bin/nvidia-ctk', args: ['/different-root/x'] },
        ],
      }),
    );
    expect(e.hooks).toEqual([
      { hookName: 'createContainer', path: '/target-root/usr/bin/nvidia-ctk', args, env: ['X=/root/y'] },
      { hookName: 'startContainer', path: '/root/usr/bin/nvidia-ctk', args },
      { hookName: 'createRuntime', path: '/target-root/usr/bin/nvidia-ctk', args: ['--link', '/target-root/path/to/target::/target-root/path/to/link'] },
      { hookName: 'prestart', path: '/different-root/usr/bin/nvidia-ctk', args: ['/different-root/x'] },
    ]);
  });

  it('moves device-level edits too, keeps unknown fields and env, does not modify its input', () => {
    const s: CdiSpec = {
      cdiVersion: '0.6.0',
      kind: 'example.com/gpu',
      annotations: { a: '/root/x' },
      devices: [{ name: 'd0', annotations: { b: '/root/y' }, containerEdits: { deviceNodes: [{ path: '/dev/x', hostPath: '/root/dev/x', major: 1, minor: 2, type: 'c' }], env: ['P=/root/z'] } }],
    };
    const before = structuredClone(s);
    const out = transformSpecRoot(s, { from: '/root', to: '/' });
    expect(s).toEqual(before);
    expect(out).toEqual({ ...before, devices: [{ ...before.devices[0], containerEdits: { ...before.devices[0].containerEdits, deviceNodes: [{ path: '/dev/x', hostPath: '/dev/x', major: 1, minor: 2, type: 'c' }] } }] });
  });

  it('--from equal to --to is a no-op; so is a root nothing is under', () => {
    const s = spec({ mounts: [{ hostPath: '/root/a', containerPath: '/a' }] });
    expect(transformSpecRoot(s, { from: '/root/', to: '/root' })).toEqual(s);
    expect(transformSpecRoot(s, { from: '/elsewhere', to: '/x' })).toEqual(s);
  });

  it('--from / adds a prefix to every host path (a spec for / moved under a driver container root)', () => {
    const e = host(spec({ deviceNodes: [{ path: '/dev/nvidia0' }], mounts: [{ hostPath: '/usr/lib/x.so', containerPath: '/usr/lib/x.so' }] }), '/', '/run/nvidia/driver');
    expect(e.deviceNodes).toEqual([{ path: '/dev/nvidia0', hostPath: '/run/nvidia/driver/dev/nvidia0' }]);
    expect(e.mounts).toEqual([{ hostPath: '/run/nvidia/driver/usr/lib/x.so', containerPath: '/usr/lib/x.so' }]);
  });

  it('raises cdiVersion to 0.5.0 when it adds a hostPath to an older spec', () => {
    const s: CdiSpec = { cdiVersion: '0.3.0', kind: 'example.com/gpu', devices: [{ name: 'gpu', containerEdits: { deviceNodes: [{ path: '/dev/nvidia0' }] } }] };
    expect(transformSpecRoot(s, { from: '/', to: '/drv' }).cdiVersion).toBe('0.5.0');
    expect(transformSpecRoot(s, { from: '/elsewhere', to: '/drv' }).cdiVersion).toBe('0.3.0');
  });

  it('refuses a relative root and an unknown --relative-to', () => {
    expect(() => transformSpecRoot(spec({}), { from: 'x', to: '/' })).toThrow(/--from "x": must be an absolute path/);
    expect(() => transformSpecRoot(spec({}), { from: '/x', to: '/', relativeTo: 'pod' as RelativeTo })).toThrow(/--relative-to "pod": must be host or container/);
  });
});

describe('transformSpecRoot, relative to the container', () => {
  it('moves container paths: node path (keeping its host side), containerPath, startContainer path, container-side args', () => {
    const args = ['--link', '/root/a::/root/b'];
    const s = spec({
      deviceNodes: [{ path: '/root/dev/x', hostPath: '/root/dev/x' }, { path: '/root/dev/y' }],
      mounts: [{ hostPath: '/root/lib/x.so', containerPath: '/root/lib/x.so' }],
      hooks: [
        { hookName: 'createContainer', path: '/root/bin/h', args },
        { hookName: 'startContainer', path: '/root/bin/h', args },
        { hookName: 'prestart', path: '/root/bin/h', args },
      ],
    });
    const e = transformSpecRoot(s, { from: '/root', to: '/t', relativeTo: 'container' }).containerEdits!;
    expect(e.deviceNodes).toEqual([{ path: '/t/dev/x', hostPath: '/root/dev/x' }, { path: '/t/dev/y', hostPath: '/root/dev/y' }]);
    expect(e.mounts).toEqual([{ hostPath: '/root/lib/x.so', containerPath: '/t/lib/x.so' }]);
    expect(e.hooks).toEqual([
      { hookName: 'createContainer', path: '/root/bin/h', args: ['--link', '/t/a::/t/b'] },
      { hookName: 'startContainer', path: '/t/bin/h', args: ['--link', '/t/a::/t/b'] },
      { hookName: 'prestart', path: '/root/bin/h', args },
    ]);
  });
});

describe('the NVIDIA fixture (nvidia-ctk 1.17.9 cdi generate for the default mock root)', () => {
  const fixture = parseYaml(readFileSync(FIXTURE, 'utf8')) as CdiSpec;

  it('moved to another root equals the fixture with its root prefix replaced, and stays valid', () => {
    const to = '/tmp/elsewhere/mock';
    const out = transformSpecRoot(fixture, { from: MOCK_ROOT, to });
    const text = readFileSync(FIXTURE, 'utf8').split(MOCK_ROOT).join(to);
    expect(out).toEqual(parseYaml(text));
    expect(specProblem(out)).toBeUndefined();
    // The hooks are nvidia-cdi-hook at a host path outside the root: untouched, and so are their container-side args.
    expect(out.containerEdits!.hooks).toEqual(fixture.containerEdits!.hooks);
    expect(JSON.stringify(out)).not.toContain(MOCK_ROOT);
  });

  it('moved to / (the host layout): host paths equal container paths; --from / moves every host path back, hooks too', () => {
    const flat = transformSpecRoot(fixture, { from: MOCK_ROOT, to: '/' });
    expect(flat.devices.find((d) => d.name === '0')!.containerEdits.deviceNodes).toEqual([{ hostPath: '/dev/nvidia0', path: '/dev/nvidia0' }]);
    for (const m of flat.containerEdits!.mounts!) expect(m.hostPath).toBe(m.containerPath);
    const back = transformSpecRoot(flat, { from: '/', to: MOCK_ROOT });
    // /usr/bin/nvidia-cdi-hook was outside the mock root; from / it is under the root like every other host path.
    expect(back.containerEdits!.hooks!.map((h) => h.path)).toEqual(fixture.containerEdits!.hooks!.map(() => `${MOCK_ROOT}/usr/bin/nvidia-cdi-hook`));
    expect({ ...back, containerEdits: { ...back.containerEdits, hooks: fixture.containerEdits!.hooks } }).toEqual(fixture);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Properties: from→to then to→from is the identity on generated specs whose paths outside `from` are not under `to`.

const seg = fc.stringMatching(/^[a-z0-9_-]{1,6}$/);
const segs = fc.array(seg, { minLength: 1, maxLength: 3 }).map((s) => s.join('/'));

function specArb(from: string) {
  const elsewhere = fc.oneof(
    fc.constantFrom('/usr', '/dev', '/lib', '/etc/x').chain((p) => segs.map((s) => `${p}/${s}`)),
    segs.map((s) => `${from === '/' ? '' : from}-x/${s}`), // shares the root's prefix but not at a component boundary
    segs, // relative
  );
  const underFrom = fc.oneof(fc.constant(from), segs.map((s) => `${from === '/' ? '' : from}/${s}`));
  const anyPath = from === '/' ? fc.oneof(underFrom, segs) : fc.oneof(underFrom, elsewhere);
  const arg = fc.oneof(anyPath, fc.tuple(anyPath, anyPath).map(([a, b]) => `${a}::${b}`), anyPath.map((p) => `--folder=${p}`), fc.constantFrom('update-ldcache', '--link', 'x'));
  const node = fc.oneof(
    fc.record({ path: anyPath, hostPath: anyPath }),
    fc.record({ path: from === '/' ? segs.map((s) => `dev-${s}`) : elsewhere }), // no hostPath: its path is not under the root
  );
  const edits = fc.record(
    {
      env: fc.array(anyPath.map((p) => `P=${p}`), { maxLength: 2 }),
      deviceNodes: fc.array(node, { maxLength: 3 }),
      mounts: fc.array(fc.record({ hostPath: anyPath, containerPath: anyPath, options: fc.constant(['ro', 'bind']) }, { requiredKeys: ['hostPath', 'containerPath'] }), { maxLength: 3 }),
      hooks: fc.array(fc.record({ hookName: fc.constantFrom(...HOOK_NAMES), path: anyPath, args: fc.array(arg, { maxLength: 4 }) }, { requiredKeys: ['hookName', 'path'] }), { maxLength: 3 }),
    },
    { requiredKeys: [] },
  );
  return fc.record({
    cdiVersion: fc.constant('0.5.0'),
    kind: fc.constant('example.com/gpu'),
    devices: fc.array(edits, { minLength: 1, maxLength: 3 }).map((es) => es.map((containerEdits, i) => ({ name: `d${i}`, containerEdits }))),
    containerEdits: edits,
  }) as fc.Arbitrary<CdiSpec>;
}

const rootPair = fc.tuple(segs.map((s) => `/r/${s}`), segs.map((s) => `/t/${s}`), fc.constantFrom<RelativeTo>('host', 'container'));

describe('properties', () => {
  it('transform(from→to) then transform(to→from) is the identity, and the input is never modified', () => {
    fc.assert(
      fc.property(rootPair.chain(([from, to, rel]) => fc.tuple(fc.constant(from), fc.constant(to), fc.constant(rel), specArb(from))), ([from, to, relativeTo, s]) => {
        const before = structuredClone(s);
        const there = transformSpecRoot(s, { from, to, relativeTo });
        expect(s).toEqual(before);
        expect(transformSpecRoot(there, { from: to, to: from, relativeTo })).toEqual(s);
      }),
      { numRuns: 300 },
    );
  });

  it('with --from /, the identity holds too (every absolute path moves under --to and back)', () => {
    fc.assert(
      fc.property(segs.map((s) => `/t/${s}`), fc.constantFrom<RelativeTo>('host', 'container'), specArb('/'), (to, relativeTo, s) => {
        expect(transformSpecRoot(transformSpecRoot(s, { from: '/', to, relativeTo }), { from: to, to: '/', relativeTo })).toEqual(s);
      }),
      { numRuns: 200 },
    );
  });

  it('relative to the host, no host path is left under --from and no container path changes', () => {
    fc.assert(
      fc.property(rootPair.chain(([from, to]) => fc.tuple(fc.constant(from), fc.constant(to), specArb(from))), ([from, to, s]) => {
        const out = transformSpecRoot(s, { from, to });
        const under = (p: string) => p === from || p.startsWith(`${from}/`);
        const all = [out.containerEdits!, ...out.devices.map((d) => d.containerEdits)];
        const ins = [s.containerEdits!, ...s.devices.map((d) => d.containerEdits)];
        all.forEach((e, i) => {
          for (const n of e.deviceNodes ?? []) expect(under(n.hostPath ?? n.path)).toBe(false);
          for (const m of e.mounts ?? []) expect(under(m.hostPath)).toBe(false);
          expect((e.mounts ?? []).map((m) => m.containerPath)).toEqual((ins[i].mounts ?? []).map((m) => m.containerPath));
          expect((e.deviceNodes ?? []).map((n) => n.path)).toEqual((ins[i].deviceNodes ?? []).map((n) => n.path));
          expect(e.env).toEqual(ins[i].env);
          (e.hooks ?? []).forEach((h, j) => {
            if (h.hookName === 'createContainer' || h.hookName === 'startContainer') expect(h.args).toEqual(ins[i].hooks![j].args);
            if (h.hookName !== 'startContainer') expect(under(h.path)).toBe(false);
          });
        });
      }),
      { numRuns: 200 },
    );
  });
});
