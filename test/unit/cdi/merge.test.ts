/** mergeCdiEdits (the registry's one-pass merge) gives exactly what mergeEdits gives, on colliding random edits. */
import fc from 'fast-check';
import { mergeCdiEdits } from '../../../src/cdi/registry.js';
import { mergeEdits, type ContainerEdits, type Hook } from '../../../src/edits/types.js';

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

test('mergeCdiEdits equals mergeEdits', () => {
  fc.assert(
    fc.property(fc.array(edit, { maxLength: 8 }), (edits) => {
      const a = mergeCdiEdits(...edits);
      const b = mergeEdits(...edits);
      expect(JSON.stringify(a)).toBe(JSON.stringify(b));
      expect(a).toEqual(b);
    }),
    { numRuns: 2000 },
  );
});

test('mergeCdiEdits copies: changing the result leaves the inputs alone', () => {
  const input: ContainerEdits = { mounts: [{ hostPath: '/h', containerPath: '/c', options: ['ro'] }], deviceNodes: [{ path: '/dev/x' }] };
  const out = mergeCdiEdits(input);
  out.mounts![0]!.options!.push('bind');
  out.deviceNodes![0]!.path = '/dev/y';
  expect(input).toEqual({ mounts: [{ hostPath: '/h', containerPath: '/c', options: ['ro'] }], deviceNodes: [{ path: '/dev/x' }] });
});
