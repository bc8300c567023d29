import { NvrError } from '../../../src/errors.js';
import type { CdiSpec } from '../../../src/cdi/types.js';
import { compareVersions, fieldPath, minimumVersion, parseVersion, specProblem, validateCdiSpec } from '../../../src/cdi/validate.js';

const base = (): CdiSpec => ({
  cdiVersion: '0.3.0',
  kind: 'vendor.com/dev',
  devices: [{ name: 'a', containerEdits: { deviceNodes: [{ path: '/dev/a' }] } }],
});
const withDevice = (edits: CdiSpec['devices'][number]['containerEdits'], version = '1.1.0'): CdiSpec => ({ ...base(), cdiVersion: version, devices: [{ name: 'a', containerEdits: edits }] });

describe('minimumVersion', () => {
  it.each<[string, CdiSpec]>([
    ['0.3.0', base()],
    ['0.4.0', withDevice({ mounts: [{ hostPath: '/a', containerPath: '/a', type: 'bind' }] })],
    ['0.4.0', { ...base(), containerEdits: { mounts: [{ hostPath: '/a', containerPath: '/a', type: 'bind' }] } }],
    ['0.3.0', withDevice({ mounts: [{ hostPath: '/a', containerPath: '/a' }] })],
    ['0.5.0', withDevice({ deviceNodes: [{ path: '/dev/a', hostPath: '/host/dev/a' }] })],
    ['0.5.0', { ...base(), devices: [{ name: '0', containerEdits: { env: ['A=1'] } }] }],
    ['0.6.0', { ...base(), annotations: { a: 'b' } }],
    ['0.6.0', { ...base(), devices: [{ name: 'a', annotations: { a: 'b' }, containerEdits: { env: ['A=1'] } }] }],
    ['0.6.0', { ...base(), kind: 'vendor.com/dev.x' }],
    ['0.3.0', { ...base(), annotations: {} }],
    ['0.7.0', withDevice({ additionalGids: [44] })],
    ['0.7.0', withDevice({ env: ['A=1'], intelRdt: { closID: 'x' } })],
    ['1.1.0', withDevice({ netDevices: [{ hostInterfaceName: 'eth1', name: 'net0' }] })],
    ['1.1.0', withDevice({ env: ['A=1'], intelRdt: { schemata: ['L3:0=f'] } })],
  ])('%s for %j', (want, spec) => {
    expect(minimumVersion(spec)).toBe(want);
  });
});

describe('versions', () => {
  it('parses with or without v and compares', () => {
    expect(parseVersion('v0.5.0')).toEqual([0, 5, 0]);
    expect(parseVersion('0.5')).toBeUndefined();
    expect(compareVersions('0.10.0', '0.9.0')).toBeGreaterThan(0);
    expect(compareVersions('v1.0.0', '1.0.0')).toBe(0);
  });
});

describe('specProblem / validateCdiSpec', () => {
  it('accepts a minimal spec and a v-prefixed version', () => {
    expect(specProblem(base())).toBeUndefined();
    expect(specProblem({ ...base(), cdiVersion: 'v0.3.0' })).toBeUndefined();
  });

  it.each<[string, unknown, string, RegExp]>([
    ['unknown top-level field', { ...base(), extra: 1 }, 'extra', /unknown field/],
    ['unknown nested field', withDevice({ deviceNodes: [{ path: '/dev/a', bogus: true } as never] }), 'devices[0].containerEdits.deviceNodes[0].bogus', /unknown field/],
    ['missing devices', { cdiVersion: '0.3.0', kind: 'a/b' }, 'devices', /required/],
    ['no devices', { ...base(), devices: [] }, 'devices', /fewer than 1/],
    ['wrong type', { ...base(), cdiVersion: 5 }, 'cdiVersion', /string/],
    ['bad node type', withDevice({ deviceNodes: [{ path: '/dev/a', type: 'x' }] }), 'devices[0].containerEdits.deviceNodes[0].type', /allowed/],
    ['negative gid', withDevice({ additionalGids: [-1] }), 'devices[0].containerEdits.additionalGids[0]', /must be >= 0/],
    ['unknown version', { ...base(), cdiVersion: '0.9.0' }, 'cdiVersion', /not a known CDI version/],
    ['too old a version', { ...base(), cdiVersion: '0.2.0' }, 'cdiVersion', /older than/],
    ['bad kind', { ...base(), kind: 'vendor' }, 'kind', /vendor\/class/],
    ['bad device name', { ...base(), devices: [{ name: 'a/b', containerEdits: { env: ['A=1'] } }] }, 'devices[0].name', /device name/],
    ['duplicate device', { ...base(), devices: [base().devices[0], base().devices[0]] }, 'devices[1].name', /more than once/],
    ['empty device edits', { ...base(), devices: [{ name: 'a', containerEdits: { env: [] } }] }, 'devices[0].containerEdits', /at least one edit/],
    ['bad env', withDevice({ env: ['NOEQUALS'] }), 'devices[0].containerEdits.env[0]', /KEY=VALUE/],
    ['bad hook name', withDevice({ hooks: [{ hookName: 'later', path: '/bin/x' }] }), 'devices[0].containerEdits.hooks[0].hookName', /not one of/],
    ['relative hook path', withDevice({ hooks: [{ hookName: 'createContainer', path: 'x' }] }), 'devices[0].containerEdits.hooks[0].path', /absolute/],
    ['zero timeout', withDevice({ hooks: [{ hookName: 'createContainer', path: '/x', timeout: 0 }] }), 'devices[0].containerEdits.hooks[0].timeout', /> 0/],
    ['bad permissions', withDevice({ deviceNodes: [{ path: '/dev/a', permissions: 'rwx' }] }), 'devices[0].containerEdits.deviceNodes[0].permissions', /r, w, m/],
    ['hostPath in a 0.4.0 spec', withDevice({ deviceNodes: [{ path: '/dev/a', hostPath: '/h/dev/a' }] }, '0.4.0'), 'cdiVersion', /needs at least 0\.5\.0/],
    ['digit-leading name in 0.4.0', { ...base(), cdiVersion: '0.4.0', devices: [{ name: '0', containerEdits: { env: ['A=1'] } }] }, 'cdiVersion', /needs at least 0\.5\.0/],
    ['annotations in 0.5.0', { ...base(), cdiVersion: '0.5.0', annotations: { a: 'b' } }, 'cdiVersion', /needs at least 0\.6\.0/],
    ['additionalGids in 0.6.0', withDevice({ additionalGids: [1] }, '0.6.0'), 'cdiVersion', /needs at least 0\.7\.0/],
  ])('rejects %s', (_what, doc, field, reason) => {
    const p = specProblem(doc);
    expect(p?.field).toBe(field);
    expect(p?.reason).toMatch(reason);
  });

  it('validateCdiSpec throws NvrError INPUT naming file and field', () => {
    let err: unknown;
    try {
      validateCdiSpec({ ...base(), cdiVersion: '0.4.0', devices: [{ name: '0', containerEdits: { env: ['A=1'] } }] }, '/etc/cdi/x.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NvrError);
    expect((err as NvrError).code).toBe('INPUT');
    expect((err as NvrError).message).toBe('CDI spec /etc/cdi/x.yaml: cdiVersion: "0.4.0" is too old for the fields this spec uses: it needs at least 0.5.0');
  });

  it('fieldPath turns JSON pointers into dotted paths', () => {
    expect(fieldPath('/devices/0/containerEdits/env/2')).toBe('devices[0].containerEdits.env[2]');
    expect(fieldPath('')).toBe('');
  });
});
