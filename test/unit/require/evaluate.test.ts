import { NvrError } from '../../../src/errors.js';
import { parseRequirement } from '../../../src/require/grammar.js';
import {
  evaluateRequirement,
  evaluateRequirements,
  findUnmetRequirement,
} from '../../../src/require/evaluate.js';
import type { RequirementHost } from '../../../src/require/evaluate.js';

const host: RequirementHost = {
  cudaVersion: '12.4',
  driverVersion: '550.54.15',
  devices: [{ computeCapability: '8.0', brand: 'Tesla', label: 'GPU 0' }],
};

const ok = (text: string, h: RequirementHost = host) => evaluateRequirement(parseRequirement(text), h, h.devices[0]);

describe('alternatives are evaluated in order, lazily, as libnvidia-container does', () => {
  it('the first satisfied alternative ends the evaluation: a later unknown key does not matter', () => {
    expect(ok('cuda>=11.6 foo=bar')).toBe(true);
    expect(() => evaluateRequirements(['cuda>=11.6 foo=bar'], host)).not.toThrow();
  });

  it('an alternative that is reached is read whole: an unknown key there is an error naming it', () => {
    const h = { ...host, cudaVersion: '11.0' };
    const e = (() => { try { evaluateRequirements([parseRequirement('cuda>=11.6 foo=bar', 'NVIDIA_REQUIRE_CUDA')], h); } catch (x) { return x as NvrError; } throw new Error('no error'); })();
    expect(e.code).toBe('INPUT');
    expect(e.message).toBe('NVIDIA_REQUIRE_CUDA: invalid requirement "cuda>=11.6 foo=bar": "foo=bar" has an unknown key (keys: arch, brand, cuda, driver)');
  });

  it('the CUDA images\' forward-compatibility form: cuda>=X or a datacenter GPU on a given driver branch', () => {
    const req = 'cuda>=12.8 brand=tesla,driver>=470,driver<471 brand=tesla,driver>=550,driver<551';
    expect(ok(req)).toBe(true); // Tesla on 550.54.15 although CUDA 12.4 < 12.8
    expect(ok(req, { ...host, devices: [{ computeCapability: '8.0', brand: 'GeForce' }] })).toBe(false);
  });
});

describe('evaluateRequirement', () => {
  it.each([
    ['cuda>=12.4', true],
    ['cuda=12.4.0', true],
    ['cuda>12.4', false],
    ['cuda<12.4.1', true],
    ['cuda>=13.0', false],
    ['cuda!=12.4', false],
    ['driver>=550', true],
    ['driver<550.54.15', false],
    ['driver<=550.54.15', true],
    ['arch>=8.0', true],
    ['arch>=9', false],
    ['arch=8', true],
    ['brand=tesla', true],
    ['brand=TESLA', true],
    ['brand!=tesla', false],
    ['brand=geforce', false],
  ])('%s → %s', (text, expected) => {
    expect(ok(text)).toBe(expected);
  });

  it('ORs groups and ANDs terms', () => {
    expect(ok('cuda>=13 brand=tesla')).toBe(true);
    expect(ok('cuda>=13 brand=tesla,arch>=9.0')).toBe(false);
    expect(ok('cuda>=12,driver>=550 cuda>=99')).toBe(true);
    expect(ok('cuda>=12,driver>=560')).toBe(false);
  });

  it('passes terms whose host value is missing', () => {
    const bare: RequirementHost = { devices: [] };
    expect(ok('cuda>=99,driver>=999,arch>=99,brand=nope', bare)).toBe(true);
    expect(evaluateRequirement(parseRequirement('arch>=9.0'), host)).toBe(true); // no device
  });

  it('refuses to compare an unparseable host value', () => {
    expect(() => ok('driver>=500', { driverVersion: 'abc', devices: [] })).toThrow(NvrError);
  });
});

describe('evaluateRequirements', () => {
  it('passes when every requirement holds on every device', () => {
    expect(() => evaluateRequirements(['cuda>=12.0', 'arch>=7.0'], host)).not.toThrow();
    expect(() => evaluateRequirements([], host)).not.toThrow();
  });

  it('names the unmet requirement and what the host has', () => {
    let err: NvrError | undefined;
    try {
      evaluateRequirements(['driver>=500', 'cuda>=13.0'], host);
    } catch (e) {
      err = e as NvrError;
    }
    expect(err).toBeInstanceOf(NvrError);
    expect(err!.code).toBe('REQUIREMENT');
    expect(err!.message).toBe('unsatisfied condition: cuda>=13.0 (host CUDA 12.4, driver 550.54.15)');
    expect(err!.fix).toBe(
      'update the driver or use an image built for an older CUDA; set NVIDIA_DISABLE_REQUIRE=true to skip the check',
    );
  });

  it('checks every selected device and names the one that fails', () => {
    const two: RequirementHost = {
      ...host,
      devices: [
        { computeCapability: '9.0', brand: 'Nvidia', label: 'GPU 0' },
        { computeCapability: '7.5', brand: 'GeForce', label: 'GPU 1' },
      ],
    };
    expect(findUnmetRequirement(['arch>=8.0'], two)?.device?.label).toBe('GPU 1');
    expect(() => evaluateRequirements(['arch>=8.0'], two)).toThrow(
      'unsatisfied condition: arch>=8.0 (host CUDA 12.4, driver 550.54.15, GPU 1: arch 7.5)',
    );
    expect(() => evaluateRequirements(['brand=nvidia'], two)).toThrow(/GPU 1: brand GeForce\)$/);
  });

  it('runs once without a device when none is selected', () => {
    const none: RequirementHost = { ...host, devices: [] };
    expect(() => evaluateRequirements(['arch>=99', 'brand=x'], none)).not.toThrow();
    expect(() => evaluateRequirements(['cuda>=99'], none)).toThrow(/unsatisfied condition: cuda>=99/);
  });

  it('says "unknown" for values the host does not report', () => {
    expect(() => evaluateRequirements(['driver>=999'], { driverVersion: '550.54.15', devices: [] })).toThrow(
      'unsatisfied condition: driver>=999 (host CUDA unknown, driver 550.54.15)',
    );
  });

  it('rejects invalid predicates as INPUT errors', () => {
    try {
      evaluateRequirements(['cuda==12'], host);
      throw new Error('expected a throw');
    } catch (e) {
      expect((e as NvrError).code).toBe('INPUT');
    }
  });
});
