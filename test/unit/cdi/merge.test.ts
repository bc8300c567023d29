/** mergeEdits (one pass through maps) gives exactly what the obvious pairwise merge gives, on colliding random edits. */
import fc from 'fast-check';
import { envKey, mergeEdits, sameDestination, sameHook, type ContainerEdits, type DeviceNode, type Hook, type IntelRdt, type Mount } from '../../../src/edits/types.js';

/** The reference: replace the entry with the same identity in place (later wins), else append. */
function pairwise(...edits: ReadonlyArray<ContainerEdits | undefined>): ContainerEdits {
  const upsert = <T>(list: T[], item: T, same: (a: T, b: T) => boolean): void => {
    const i = list.findIndex((x) => same(x, item));
    if (i < 0) list.push(item);
    else list[i] = item;
  };
  const env: string[] = [];
  const deviceNodes: DeviceNode[] = [];
  const mounts: Mount[] = [];
  const hooks: Hook[] = [];
  const gids: number[] = [];
  let intelRdt: IntelRdt | undefined;
  for (const e of edits) {
    if (!e) continue;
    for (const kv of e.env ?? []) upsert(env, kv, (a, b) => envKey(a) === envKey(b));
    for (const d of e.deviceNodes ?? []) upsert(deviceNodes, { ...d }, (a, b) => a.path === b.path);
    for (const m of e.mounts ?? []) upsert(mounts, { ...m, ...(m.options ? { options: [...m.options] } : {}) }, (a, b) => sameDestination(a.containerPath, b.containerPath));
    for (const h of e.hooks ?? []) upsert(hooks, { ...h }, sameHook);
    for (const g of e.additionalGids ?? []) if (g !== 0 && !gids.includes(g)) gids.push(g);
    if (e.intelRdt) intelRdt = { ...e.intelRdt, ...(e.intelRdt.schemata ? { schemata: [...e.intelRdt.schemata] } : {}) };
  }
  const out: ContainerEdits = {};
  if (env.length) out.env = env;
  if (deviceNodes.length) out.deviceNodes = deviceNodes;
  if (mounts.length) out.mounts = mounts;
  if (hooks.length) out.hooks = hooks;
  if (gids.length) out.additionalGids = gids;
  if (intelRdt) out.intelRdt = intelRdt;
  return out;
}

const dest = fc.constantFrom('/usr/lib', '/usr/lib/', '/usr//lib', '/usr/bin', '/a/../usr/bin', '/', '/etc/x/.');
const edit: fc.Arbitrary<ContainerEdits | undefined> = fc.option(
  fc.record(
    {
      env: fc.array(fc.tuple(fc.constantFrom('A', 'B', 'NVIDIA_VISIBLE_DEVICES'), fc.constantFrom('1', '2', 'x=y', '')).map(([k, v]) => `${k}=${v}`), { maxLength: 5 }),
      deviceNodes: fc.array(fc.record({ path: fc.constantFrom('/dev/nvidia0', '/dev/nvidia1', '/dev/nvidiactl'), permissions: fc.constantFrom('rw', 'rwm') }), { maxLength: 4 }),
      mounts: fc.array(
        fc.record({ hostPath: fc.constantFrom('/h1', '/h2'), containerPath: dest, options: fc.option(fc.constant(['ro', 'bind']), { nil: undefined }) })
          .map((m) => (m.options ? m : { hostPath: m.hostPath, containerPath: m.containerPath })),
        { maxLength: 6 },
      ),
      hooks: fc.array(
        fc.record({
          hookName: fc.constantFrom('createContainer', 'prestart'),
          path: fc.constantFrom('/bin/hook', '/bin/other'),
          args: fc.option(fc.constantFrom(['hook'], ['hook', 'x'], []), { nil: undefined }),
          env: fc.option(fc.constant(['E=1']), { nil: undefined }),
        }).map((h) => Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)) as unknown as Hook),
        { maxLength: 4 },
      ),
      additionalGids: fc.array(fc.constantFrom(0, 44, 107), { maxLength: 4 }),
      intelRdt: fc.option(fc.record({ closID: fc.constantFrom('a', 'b'), schemata: fc.constant(['L3:0=f']) }), { nil: undefined }),
    },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);

test('mergeEdits equals the pairwise merge', () => {
  fc.assert(
    fc.property(fc.array(edit, { maxLength: 8 }), (edits) => {
      const a = mergeEdits(...edits);
      const b = pairwise(...edits);
      expect(JSON.stringify(a)).toBe(JSON.stringify(b));
      expect(a).toEqual(b);
    }),
    { numRuns: 2000 },
  );
});

test('mergeEdits copies: changing the result leaves the inputs alone', () => {
  const input: ContainerEdits = { mounts: [{ hostPath: '/h', containerPath: '/c', options: ['ro'] }], deviceNodes: [{ path: '/dev/x' }] };
  const out = mergeEdits(input);
  out.mounts![0]!.options!.push('bind');
  out.deviceNodes![0]!.path = '/dev/y';
  expect(input).toEqual({ mounts: [{ hostPath: '/h', containerPath: '/c', options: ['ro'] }], deviceNodes: [{ path: '/dev/x' }] });
});
