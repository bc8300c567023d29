import { isQualifiedName, kindProblem, parseQualifiedName, qualify } from '../../../src/cdi/names.js';

describe('CDI qualified names', () => {
  it.each([
    ['nvidia.com/gpu=all', { vendor: 'nvidia.com', class: 'gpu', name: 'all', kind: 'nvidia.com/gpu' }],
    ['nvidia.com/gpu=0', { vendor: 'nvidia.com', class: 'gpu', name: '0', kind: 'nvidia.com/gpu' }],
    ['nvidia.com/gpu=0:1', { vendor: 'nvidia.com', class: 'gpu', name: '0:1', kind: 'nvidia.com/gpu' }],
    ['nvidia.com/gpu=GPU-5662ab5c-9bf3-6e92', { vendor: 'nvidia.com', class: 'gpu', name: 'GPU-5662ab5c-9bf3-6e92', kind: 'nvidia.com/gpu' }],
    ['a/b=c', { vendor: 'a', class: 'b', name: 'c', kind: 'a/b' }],
    // split on the first '=' then the first '/': the name keeps later '=' — and is then invalid
  ])('parses %s', (text, want) => {
    expect(parseQualifiedName(text)).toEqual(want);
    expect(isQualifiedName(text)).toBe(true);
  });

  it.each([
    '/dev/nvidia0', // a path, never a CDI name
    'nvidia.com/gpu', // no name
    'gpu=0', // no vendor/class
    'nvidia.com/gpu=', // empty name
    'nvidia.com/=0', // empty class
    '/gpu=0',
    '1nvidia.com/gpu=0', // vendor must start with a letter
    'nvidia.com/gpu-=0', // class must end with a letter or digit
    'nvidia.com/gpu=-0', // name must start with a letter or digit
    'nvidia.com/gpu=0:', // ... and end with one
    'nvidia.com/gpu=a=b', // '=' is not allowed in a name
    'nvidia.com/gpu=a/b',
    'nvidia.com/gpu=a b',
  ])('rejects %s', (text) => {
    expect(parseQualifiedName(text)).toBeUndefined();
    expect(isQualifiedName(text)).toBe(false);
  });

  it('class may contain dots and underscores, vendor may be a single letter', () => {
    expect(isQualifiedName('x/my_class.v2=dev_1.a')).toBe(true);
  });

  it('qualify joins kind and name', () => {
    expect(qualify('nvidia.com/gpu', '3')).toBe('nvidia.com/gpu=3');
  });

  it('kindProblem explains', () => {
    expect(kindProblem('nvidia.com/gpu')).toBeUndefined();
    expect(kindProblem('nvidia.com')).toMatch(/vendor\/class/);
    expect(kindProblem('nvidia.com/-gpu')).toMatch(/class "-gpu"/);
  });
});
