import { parseDeviceItem } from '../../../src/request/devices.js';
import type { DeviceSelector } from '../../../src/request/types.js';
import { cdiNameOf, cdiOnDirectPathError, chooseInjection } from '../../../src/request/mode.js';
import { thrown } from '../../helpers/errors.js';

const K = 'nvidia.com/gpu';
const sel = (...items: string[]): DeviceSelector[] => items.map((i) => parseDeviceItem(i));

describe('cdiNameOf', () => {
  it.each([
    ['0', 'nvidia.com/gpu=0'],
    ['all', 'nvidia.com/gpu=all'],
    ['GPU-12345678-9ABC-def0-1234-56789abcdef0', 'nvidia.com/gpu=GPU-12345678-9abc-def0-1234-56789abcdef0'],
    ['1:2', 'nvidia.com/gpu=1:2'],
    ['example.com/dev=x', 'example.com/dev=x'],
  ])('%s → %s', (item, name) => {
    expect(cdiNameOf(parseDeviceItem(item), K)).toBe(name);
  });
});

describe('chooseInjection', () => {
  describe('auto', () => {
    it('plain ids (and none) take the direct path', () => {
      expect(chooseInjection('auto', sel('0', 'all'), 'env', K)).toEqual({ path: 'direct' });
      expect(chooseInjection('auto', [], 'env', K)).toEqual({ path: 'direct' });
    });

    it('only fully-qualified names take the CDI path, names kept in order', () => {
      const i = chooseInjection('auto', sel('nvidia.com/gpu=1', 'nvidia.com/gpu=0'), 'env', K);
      expect(i).toMatchObject({ path: 'cdi', names: ['nvidia.com/gpu=1', 'nvidia.com/gpu=0'] });
      expect(chooseInjection('auto', sel('nvidia.com/gpu=1'), 'annotations', K)).toMatchObject({ path: 'cdi', reason: expect.stringMatching(/annotations/) });
    });

    it('a mix of CDI names and plain ids goes to the direct path, which refuses it naming both', () => {
      expect(chooseInjection('auto', sel('0', 'nvidia.com/gpu=1'), 'env', K)).toEqual({ path: 'direct' });
      const e = cdiOnDirectPathError('auto', ['nvidia.com/gpu=1'], ['0']);
      expect(e.code).toBe('DEVICE');
      expect(e.message).toBe('CDI device names (nvidia.com/gpu=1) mixed with other device ids (0) in mode = "auto"');
      expect(e.fix).toMatch(/mode = "cdi"/);
    });
  });

  describe('cdi', () => {
    it('every request is CDI: plain ids get the default kind, all and none too', () => {
      expect(chooseInjection('cdi', sel('0', 'GPU-12345678-9abc-def0-1234-56789abcdef0'), 'env', K)).toMatchObject({
        path: 'cdi',
        names: ['nvidia.com/gpu=0', 'nvidia.com/gpu=GPU-12345678-9abc-def0-1234-56789abcdef0'],
      });
      expect(chooseInjection('cdi', sel('all'), 'legacy-cuda', K)).toMatchObject({ names: ['nvidia.com/gpu=all'] });
      expect(chooseInjection('cdi', [], 'env', K)).toMatchObject({ names: ['nvidia.com/gpu=none'] });
      expect(chooseInjection('cdi', sel('nvidia.com/gpu=1', '1'), 'env', K)).toMatchObject({ names: ['nvidia.com/gpu=1'] });
    });

    it('rejects a default kind that is not vendor/class', () => {
      for (const kind of ['gpu', 'nvidia.com/', '/gpu', 'nvidia.com/gpu=x']) {
        expect(thrown(() => chooseInjection('cdi', sel('0'), 'env', kind)).code).toBe('CONFIG');
      }
    });
  });

  describe('legacy', () => {
    it('always the direct path; CDI names are then refused', () => {
      expect(chooseInjection('legacy', sel('0', 'all'), 'env', K)).toEqual({ path: 'direct' });
      expect(chooseInjection('legacy', sel('nvidia.com/gpu=0'), 'env', K)).toEqual({ path: 'direct' });
      const e = cdiOnDirectPathError('legacy', ['nvidia.com/gpu=0'], []);
      expect(e.code).toBe('DEVICE');
      expect(e.message).toBe('CDI device names ("nvidia.com/gpu=0") cannot be used in mode = "legacy"');
    });
  });

  it('csv is not supported', () => {
    expect(thrown(() => chooseInjection('csv', sel('0'), 'env', K)).code).toBe('CONFIG');
  });
});
