/** CDI spec checks: staleness is pure over the spec and a host summary. */
import fc from 'fast-check';
import { checkSpec, specHostPaths, specStaleness, type HostSummary } from '../../../src/doctor/cdi.js';
import type { CdiSpec } from '../../../src/cdi/types.js';
import { NvrError } from '../../../src/errors.js';

const HOST: HostSummary = { driverVersion: '550.54.15', gpuUuids: ['GPU-a'], deviceUuids: ['GPU-a'], gpuMinors: [0] };
const LIB = '/usr/lib/x86_64-linux-gnu';
const spec = (version: string, over: Partial<CdiSpec> = {}): CdiSpec => ({
  cdiVersion: '0.5.0',
  kind: 'nvidia.com/gpu',
  devices: [{ name: '0', containerEdits: { deviceNodes: [{ path: '/dev/nvidia0', hostPath: '/dev/nvidia0' }] } }, { name: 'GPU-a', containerEdits: { deviceNodes: [{ path: '/dev/nvidia0' }] } }],
  containerEdits: {
    mounts: [{ hostPath: `${LIB}/libcuda.so.${version}`, containerPath: `${LIB}/libcuda.so.${version}`, options: ['ro'] }],
    hooks: [{ hookName: 'createContainer', path: '/usr/bin/nvidia-runtime-hook' }],
  },
  ...over,
});

test('a spec of this driver and these GPUs is not stale', () => {
  expect(specStaleness(spec('550.54.15'), HOST, [])).toEqual([]);
});

test('a spec naming driver libraries of another version is stale, and says which', () => {
  fc.assert(
    fc.property(fc.tuple(fc.nat(999), fc.nat(999), fc.nat(99)), ([a, b, c]) => {
      const v = `${a}.${b}.${c}`;
      const reasons = specStaleness(spec(v), HOST, []);
      return v === HOST.driverVersion ? reasons.length === 0 : reasons.length === 1 && reasons[0]!.includes(`libcuda.so.${v}`) && reasons[0]!.includes('550.54.15');
    }),
  );
});

test('devices of GPUs this host does not have, a host GPU the spec lacks, nodes of no GPU, and paths that are gone', () => {
  const s = spec('550.54.15', {
    devices: [{ name: 'GPU-b', containerEdits: { deviceNodes: [{ path: '/dev/nvidia3' }] } }],
  });
  const reasons = specStaleness(s, HOST, ['/gone']);
  expect(reasons).toEqual([
    'device(s) GPU-b are not GPUs of this host',
    "does not have this host's GPU(s) GPU-a",
    'grants /dev/nvidia3 but this host has no such GPU',
    'names 1 host path(s) that do not exist: /gone',
  ]);
});

test('other vendors\' specs are only checked for paths', () => {
  expect(specStaleness(spec('1.2.3', { kind: 'example.com/fpga' }), HOST, [])).toEqual([]);
});

test('the host paths of a spec: mounts, nodes (hostPath, else path), hooks', () => {
  expect(specHostPaths(spec('550.54.15')).sort()).toEqual([`${LIB}/libcuda.so.550.54.15`, '/dev/nvidia0', '/usr/bin/nvidia-runtime-hook'].sort());
});

test('lines: invalid is FAIL, untrusted hooks FAIL, stale WARN, good PASS', () => {
  const err = new NvrError('INPUT', 'CDI spec /etc/cdi/x.yaml: kind: bad', { fix: 'fix the spec' });
  expect(checkSpec({ file: '/etc/cdi/x.yaml', error: err, missingPaths: [], untrustedHooks: [] }, HOST)).toMatchObject({ id: 'cdi.spec./etc/cdi/x.yaml', status: 'FAIL' });
  expect(checkSpec({ file: 'f', spec: spec('550.54.15'), missingPaths: [], untrustedHooks: ['/h is writable by group or others'] }, HOST).status).toBe('FAIL');
  expect(checkSpec({ file: 'f', spec: spec('535.104.05'), missingPaths: [], untrustedHooks: [] }, HOST)).toMatchObject({ status: 'WARN', fix: expect.stringContaining('nvidia-ctk cdi generate --output f') });
  expect(checkSpec({ file: 'f', spec: spec('550.54.15'), missingPaths: [], untrustedHooks: [] }, HOST).status).toBe('PASS');
});
