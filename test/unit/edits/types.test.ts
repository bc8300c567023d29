import { mergeEdits, sameDestination } from '../../../src/edits/types.js';

describe('mergeEdits', () => {
  it('merges in order: later entries replace same-identity ones in place, lists de-duplicated, empties omitted', () => {
    const merged = mergeEdits(
      {
        env: ['A=1', 'B=1'],
        deviceNodes: [{ path: '/dev/nvidia0', type: 'c', major: 195, minor: 0 }],
        mounts: [{ hostPath: '/h/a', containerPath: '/a' }],
        hooks: [{ hookName: 'createContainer', path: '/bin/h', args: ['h', 'x'], timeout: 1 }],
        additionalGids: [44, 0],
      },
      undefined,
      {
        env: ['A=2', 'C=3'],
        deviceNodes: [{ path: '/dev/nvidia0', type: 'c', major: 195, minor: 0, fileMode: 438 }, { path: '/dev/nvidiactl', type: 'c', major: 195, minor: 255 }],
        mounts: [{ hostPath: '/h/a2', containerPath: '/a/', options: ['ro'] }],
        hooks: [
          { hookName: 'createContainer', path: '/bin/h', args: ['h', 'x'], timeout: 2 },
          { hookName: 'createContainer', path: '/bin/h', args: ['h', 'y'] },
        ],
        additionalGids: [44, 107],
      },
      { env: [] },
    );
    expect(merged).toEqual({
      env: ['A=2', 'B=1', 'C=3'],
      deviceNodes: [
        { path: '/dev/nvidia0', type: 'c', major: 195, minor: 0, fileMode: 438 },
        { path: '/dev/nvidiactl', type: 'c', major: 195, minor: 255 },
      ],
      mounts: [{ hostPath: '/h/a2', containerPath: '/a/', options: ['ro'] }],
      hooks: [
        { hookName: 'createContainer', path: '/bin/h', args: ['h', 'x'], timeout: 2 },
        { hookName: 'createContainer', path: '/bin/h', args: ['h', 'y'] },
      ],
      additionalGids: [44, 107],
    });
    expect(mergeEdits()).toEqual({});
    expect(mergeEdits({ env: [] }, { additionalGids: [0] })).toEqual({});
  });

  it('does not share arrays with its inputs', () => {
    const input = { mounts: [{ hostPath: '/h', containerPath: '/c', options: ['ro'] }] };
    const merged = mergeEdits(input);
    merged.mounts![0].options!.push('rw');
    expect(input.mounts[0].options).toEqual(['ro']);
  });
});

describe('sameDestination', () => {
  it('compares normalised paths', () => {
    expect(sameDestination('/a/b/', '/a//b')).toBe(true);
    expect(sameDestination('/', '/')).toBe(true);
    expect(sameDestination('/a/b', '/a/bc')).toBe(false);
  });
});
