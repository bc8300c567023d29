import { envToMap } from '../../../src/request/env.js';

describe('envToMap', () => {
  it('splits at the first "=" and keeps the rest of the value', () => {
    const m = envToMap(['A=1', 'B=x=y', 'C=']);
    expect(m.get('A')).toBe('1');
    expect(m.get('B')).toBe('x=y');
    expect(m.get('C')).toBe('');
  });

  it('ignores entries without "=", with an empty name, and non-strings', () => {
    const m = envToMap(['NOEQ', '=value', 42, null, 'OK=1']);
    expect([...m.keys()]).toEqual(['OK']);
  });

  it('lets the last duplicate win, as runc does', () => {
    const m = envToMap(['NVIDIA_VISIBLE_DEVICES=all', 'X=1', 'NVIDIA_VISIBLE_DEVICES=0']);
    expect(m.get('NVIDIA_VISIBLE_DEVICES')).toBe('0');
    expect([...m.keys()]).toEqual(['X', 'NVIDIA_VISIBLE_DEVICES']);
  });

  it('treats a missing env as empty', () => {
    expect(envToMap(undefined).size).toBe(0);
  });
});
