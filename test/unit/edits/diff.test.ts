import { applyEdits } from '../../../src/edits/apply.js';
import { diffLines, specDiff } from '../../../src/edits/diff.js';
import { parseSpec } from '../../../src/oci/spec-file.js';

const spec = parseSpec(
  '{"ociVersion":"1.2.0","process":{"env":["PATH=/bin","NVIDIA_VISIBLE_DEVICES=all"]},"root":{"path":"rootfs"},' +
    '"linux":{"resources":{"memory":{"limit":18446744073709551615}}}}',
  'config.json',
);

describe('specDiff', () => {
  it('is empty for identical specs', () => {
    expect(specDiff(spec, applyEdits(spec, {}))).toBe('');
  });

  it('shows -/+ lines for a changed field with context, in 2-space JSON', () => {
    const after = applyEdits(spec, { env: ['NVIDIA_VISIBLE_DEVICES=0'] });
    const d = specDiff(spec, after, { fromLabel: 'config.json', toLabel: 'config.json (edited)' });
    expect(d).toBe(
      [
        '--- config.json',
        '+++ config.json (edited)',
        '@@ -3,7 +3,7 @@',
        '   "process": {',
        '     "env": [',
        '       "PATH=/bin",',
        '-      "NVIDIA_VISIBLE_DEVICES=all"',
        '+      "NVIDIA_VISIBLE_DEVICES=0"',
        '     ]',
        '   },',
        '   "root": {',
        '',
      ].join('\n'),
    );
  });

  it('shows added objects and keeps exact numbers', () => {
    const after = applyEdits(spec, { deviceNodes: [{ path: '/dev/nvidia0', type: 'c', major: 195, minor: 0 }] });
    const d = specDiff(spec, after);
    expect(d).toContain('+    "devices": [');
    expect(d).toContain('+        "path": "/dev/nvidia0",');
    expect(d).toContain('"limit": 18446744073709551615');
    expect(d.split('\n').filter((l) => l.startsWith('-') && !l.startsWith('---'))).toEqual(['-    }']) // a minimal diff: one closing brace moves;
  });
});

describe('diffLines', () => {
  it('splits distant changes into separate hunks with correct ranges', () => {
    const a = Array.from({ length: 20 }, (_, i) => `l${i}`);
    const b = [...a];
    b[2] = 'X';
    b.splice(15, 1);
    expect(diffLines(a, b, { context: 1 })).toBe(
      ['--- before', '+++ after', '@@ -2,3 +2,3 @@', ' l1', '-l2', '+X', ' l3', '@@ -15,3 +15,2 @@', ' l14', '-l15', ' l16', ''].join('\n'),
    );
  });

  it('handles pure insertion at the start', () => {
    expect(diffLines(['a'], ['n', 'a'], { context: 0 })).toBe(['--- before', '+++ after', '@@ -0,0 +1,1 @@', '+n', ''].join('\n'));
  });
});
