import { NvrError } from '../../../src/errors.js';
import { compareVersions, parseAllTerms, parseRequirement } from '../../../src/require/grammar.js';

describe('parseRequirement', () => {
  it('parses OR-groups (space) of AND-terms (comma)', () => {
    const r = parseRequirement(' cuda>=12.0  brand=tesla,arch>=8.0 ');
    expect(r.text).toBe('cuda>=12.0  brand=tesla,arch>=8.0');
    expect(r.groups).toEqual([['cuda>=12.0'], ['brand=tesla', 'arch>=8.0']]);
    expect(parseAllTerms(r).map((g) => g.map((t) => [t.key, t.op, t.value]))).toEqual([
      [['cuda', '>=', '12.0']],
      [['brand', '=', 'tesla'], ['arch', '>=', '8.0']],
    ]);
  });

  it.each([
    ['cuda=12', 'cuda', '='],
    ['CUDA!=12', 'cuda', '!='],
    ['driver<550', 'driver', '<'],
    ['Driver<=550.54.15', 'driver', '<='],
    ['arch>7.5', 'arch', '>'],
    ['arch>=8', 'arch', '>='],
    ['brand!=GeForce', 'brand', '!='],
  ])('accepts %s', (text, key, op) => {
    expect(parseAllTerms(parseRequirement(text))).toEqual([[{ key, op, value: text.slice(key.length + op.length), text }]]);
  });

  it('splitting never throws: terms are read when their alternative is evaluated', () => {
    expect(parseRequirement('cuda>=11.6 foo=bar').groups).toEqual([['cuda>=11.6'], ['foo=bar']]);
  });

  it('skips empty tokens; blank is no constraint', () => {
    expect(parseRequirement('cuda>=12,,driver>=500,').groups[0]).toHaveLength(2);
    expect(parseRequirement('   ').groups).toEqual([]);
    expect(parseRequirement('').groups).toEqual([]);
  });

  it.each([
    ['cuda==12', /invalid operator "=="/],
    ['cuda=>12', /invalid operator "=>"/],
    ['cuda<>12', /invalid operator "<>"/],
    ['cuda!12', /invalid operator "!"/],
    ['cuda>=', /has no value/],
    ['>=12', /has no key/],
    ['cuda12', /has no operator/],
    ['os=linux', /unknown key/],
    ['arch=x86_64', /not a dotted number/],
    ['cuda>=12.x', /not a dotted number/],
    ['cuda>=12.', /not a dotted number/],
    ['driver>=.5', /not a dotted number/],
    ['brand>=tesla', /only = and !=/],
    ['cuda>=12 brand=tesla,cuda==1', /"cuda==1"/],
  ])('rejects %s', (text, why) => {
    let err: unknown;
    try {
      parseAllTerms(parseRequirement(text, 'NVIDIA_REQUIRE_X'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NvrError);
    expect((err as NvrError).code).toBe('INPUT');
    expect((err as NvrError).message).toMatch(/^NVIDIA_REQUIRE_X: invalid requirement /);
    expect((err as NvrError).message).toMatch(why);
  });
});

describe('compareVersions', () => {
  it.each([
    ['12', '12.0', 0],
    ['12.0.0', '12', 0],
    ['12.4', '12.4.1', -1],
    ['12.4.1', '12.4', 1],
    ['12.10', '12.9', 1],
    ['9', '10', -1],
    ['010.2', '10.2', 0],
    ['550.54.15', '550.54.14', 1],
    ['0', '0.0', 0],
    ['99999999999999999999999', '99999999999999999999998', 1],
  ])('%s vs %s → %i', (a, b, expected) => {
    expect(Math.sign(compareVersions(a, b))).toBe(expected);
    expect(Math.sign(compareVersions(b, a))).toBe(-expected || 0);
  });
});
