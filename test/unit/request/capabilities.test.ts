import { NvrError } from '../../../src/errors.js';
import { ALL_CAPABILITIES, parseCapabilities } from '../../../src/request/capabilities.js';
import type { Capability } from '../../../src/request/types.js';

describe('parseCapabilities', () => {
  it.each([
    ['unset', undefined],
    ['empty', ''],
    ['blank', ' , '],
  ])('%s → compute,utility', (_n, value) => {
    expect(parseCapabilities(value)).toEqual(['compute', 'utility']);
  });

  it('uses the given defaults when unset (legacy images get everything supported)', () => {
    expect(parseCapabilities(undefined, ALL_CAPABILITIES, ALL_CAPABILITIES)).toEqual([...ALL_CAPABILITIES]);
  });

  it('limits the default to the supported set', () => {
    expect(parseCapabilities(undefined, ['utility', 'video'])).toEqual(['utility']);
  });

  it('all → the supported set', () => {
    expect(parseCapabilities('all')).toEqual([
      'compat32', 'compute', 'display', 'graphics', 'ngx', 'utility', 'video',
    ]);
    expect(parseCapabilities('all', ['video', 'compute'])).toEqual(['compute', 'video']);
    expect(parseCapabilities('compute,ALL')).toHaveLength(7);
  });

  it.each(ALL_CAPABILITIES)('accepts %s', (cap) => {
    expect(parseCapabilities(` ${cap} `)).toEqual([cap]);
  });

  it('sorts, de-duplicates and skips empty items', () => {
    expect(parseCapabilities('video,,compute, video,graphics')).toEqual(['compute', 'graphics', 'video']);
  });

  it('rejects an unknown capability with the supported list', () => {
    expect(() => parseCapabilities('compute,bogus')).toThrow(
      'NVIDIA_DRIVER_CAPABILITIES: unsupported capability "bogus" (supported: compat32,compute,display,graphics,ngx,utility,video)',
    );
    try {
      parseCapabilities('bogus');
    } catch (e) {
      expect(e).toBeInstanceOf(NvrError);
      expect((e as NvrError).code).toBe('INPUT');
    }
  });

  it('rejects a known capability that config.toml does not support', () => {
    const supported: Capability[] = ['utility', 'compute'];
    expect(() => parseCapabilities('graphics', supported)).toThrow(
      'NVIDIA_DRIVER_CAPABILITIES: unsupported capability "graphics" (supported: compute,utility)',
    );
  });
});
