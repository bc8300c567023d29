/** Driver checks: pure over gathered facts (a literal host snapshot, never NVML). */
import fc from 'fast-check';
import { NvrError } from '../../../src/errors.js';
import { checkCuda, checkDevices, checkLdCache, checkLibraries, checkNvml, checkPersistence, driverChecks, ldCacheFacts, type DriverFacts } from '../../../src/doctor/driver.js';
import type { HostInventory } from '../../../src/host/inventory.js';
import type { GpuInfo } from '../../../src/host/types.js';

const gpu = (index: number): GpuInfo => ({
  index, minor: index, uuid: `GPU-0000000${index}-0000-0000-0000-000000000000`, name: 'NVIDIA H100', brand: 'Nvidia', pciBusId: `00000000:0${index}:00.0`, migDevices: [],
});
const LIB = '/usr/lib/x86_64-linux-gnu';

function inventory(over: Partial<HostInventory> = {}, gpus = [gpu(0), gpu(1)], cuda: string | null = '12.4'): HostInventory {
  return {
    root: '/drv', devRoot: '/drv', ldcache: { entries: [] }, nvmlLibrary: `/drv${LIB}/libnvidia-ml.so.550.54.15`,
    driver: { driverVersion: '550.54.15', ...(cuda ? { cudaVersion: cuda } : {}), gpus },
    libraries: { 'libcuda.so': `${LIB}/libcuda.so.550.54.15`, 'libnvidia-ml.so': `${LIB}/libnvidia-ml.so.550.54.15` }, libraries32: {}, binaries: {}, ipcs: [], firmware: [],
    nodes: {}, nodeProblems: {}, migCapabilities: {}, migProblems: {}, imexChannels: {}, migAdmin: {}, graphicsConfigs: [], xorgConfigs: [], xorgModules: [], drm: {},
    features: { gds: { nodes: [], files: [] }, mofed: { nodes: [], files: [] }, nvswitch: { nodes: [], files: [] }, gdrcopy: { nodes: [], files: [] } },
    ...over,
  } as unknown as HostInventory;
}

const facts = (over: Partial<DriverFacts> = {}): DriverFacts => ({ driverRoot: '/drv', inventory: inventory(), persistence: {}, nvmlMs: 12, ...over });

test('NVML that cannot be used is one FAIL with the runtime\'s own words and fix, and nothing else is claimed', () => {
  const error = new NvrError('NVML', 'NVML (libnvidia-ml.so.1) not found under driver root /drv', { fix: 'install the driver' });
  const f: DriverFacts = { driverRoot: '/drv', error, persistence: {} };
  expect(checkNvml(f)).toMatchObject({ id: 'driver.nvml', status: 'FAIL', fix: 'install the driver' });
  expect(checkNvml(f).message).toContain('not found under driver root /drv');
  expect(driverChecks(f).map((c) => c.id)).toEqual(['driver.nvml']);
});

test('a working NVML: PASS naming the library and the time it took', () => {
  expect(checkNvml(facts())).toMatchObject({ status: 'PASS', details: { ms: 12 } });
  expect(checkNvml(facts()).message).toContain('libnvidia-ml.so.550.54.15 answered in 12 ms');
});

test('the CUDA version is stated (what NVIDIA_REQUIRE_CUDA is compared with); unknown is a WARN', () => {
  expect(checkCuda(facts())).toMatchObject({ status: 'PASS', details: { cudaVersion: '12.4' } });
  expect(checkCuda(facts())!.message).toContain('unsatisfied condition: cuda>=');
  expect(checkCuda(facts({ inventory: inventory({}, [gpu(0)], null) }))!.status).toBe('WARN');
});

test('no GPU is a FAIL; GPUs are listed by index, name and UUID', () => {
  expect(checkDevices(facts({ inventory: inventory({}, []) }))!.status).toBe('FAIL');
  const c = checkDevices(facts())!;
  expect(c.status).toBe('PASS');
  expect(c.message).toContain('2 GPUs: 0: NVIDIA H100 (GPU-00000000-');
});

test('persistence mode: one line per GPU, off is a WARN with the timeout symptom and nvidia-smi -pm 1', () => {
  const inv = inventory();
  const [a, b] = inv.driver.gpus;
  const lines = checkPersistence(facts({ persistence: { [a!.uuid]: 1, [b!.uuid]: 0 } }));
  expect(lines.map((l) => [l.id, l.status])).toEqual([['driver.persistence.0', 'PASS'], ['driver.persistence.1', 'WARN']]);
  expect(lines[1]!.message).toContain('driver rpc error: timed out');
  expect(lines[1]!.fix).toContain('nvidia-smi -i 1 -pm 1');
  expect(checkPersistence(facts())[0]!.status).toBe('INFO'); // NVML does not say
});

test('libcuda or libnvidia-ml missing from the ld cache is a FAIL; optional ones are only listed', () => {
  expect(checkLibraries(facts({ inventory: inventory({ libraries: { 'libnvidia-ml.so': `${LIB}/libnvidia-ml.so.550.54.15` } }) }))).toMatchObject({ status: 'FAIL' });
  const ok = checkLibraries(facts())!;
  expect(ok.status).toBe('PASS');
  expect(ok.message).toContain('libnvidia-cfg.so');
});

describe('ldCacheFacts: the ld cache against the files of the driver', () => {
  const entry = (key: string, value: string) => ({ key, value, flags: 0x0303, arch: 0x0300 });
  const exists = (paths: Record<string, string>) => (p: string) => (p in paths ? { exists: true, path: paths[p]! } : { exists: false, path: p });

  test('in agreement: nothing to report', () => {
    const inv = inventory({ ldcache: { entries: [entry('libcuda.so.1', `${LIB}/libcuda.so.1`)] } });
    const f = ldCacheFacts(inv, ['libcuda.so.550.54.15', 'libnvidia-ml.so.550.54.15'], exists({ [`${LIB}/libcuda.so.1`]: `${LIB}/libcuda.so.550.54.15` }));
    expect(f).toEqual({ notInCache: [], dangling: [], otherVersion: [] });
    expect(checkLdCache(facts({ ldcache: f }))!.status).toBe('PASS');
  });

  test('after an upgrade without ldconfig: new files unknown to the cache, entries of the old version and of removed files', () => {
    const inv = inventory({
      libraries: { 'libnvidia-ml.so': `${LIB}/libnvidia-ml.so.550.54.15` },
      ldcache: { entries: [entry('libcuda.so.1', `${LIB}/libcuda.so.1`), entry('libnvidia-cfg.so.1', `${LIB}/libnvidia-cfg.so.1`)] },
    });
    const f = ldCacheFacts(inv, ['libcuda.so.550.54.15', 'libnvidia-ml.so.550.54.15'], exists({ [`${LIB}/libcuda.so.1`]: `${LIB}/libcuda.so.535.104.05` }));
    expect(f.notInCache).toEqual(['libcuda.so.550.54.15']);
    expect(f.otherVersion).toEqual([`${LIB}/libcuda.so.1 -> ${LIB}/libcuda.so.535.104.05`]);
    expect(f.dangling).toEqual([`${LIB}/libnvidia-cfg.so.1`]);
    const c = checkLdCache(facts({ ldcache: f }))!;
    expect(c).toMatchObject({ status: 'WARN', fix: 'run `ldconfig -r /drv`' });
  });

  test('any other driver version in the cache, for a library the driver lacks, is reported; the driver\'s own never', () => {
    fc.assert(
      fc.property(fc.tuple(fc.nat(999), fc.nat(999), fc.nat(99)), ([a, b, c]) => {
        const v = `${a}.${b}.${c}`;
        const inv = inventory({ libraries: {}, ldcache: { entries: [entry('libcuda.so.1', `${LIB}/libcuda.so.1`)] } });
        const f = ldCacheFacts(inv, [], exists({ [`${LIB}/libcuda.so.1`]: `${LIB}/libcuda.so.${v}` }));
        return (f.otherVersion.length === 1) === (v !== '550.54.15');
      }),
    );
  });
});
