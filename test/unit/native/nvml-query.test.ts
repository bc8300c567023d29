/**
 * The addon's nvmlQuery against the fake libnvidia-ml: topology from a text file ($NVIDIA_MOCK_TOPOLOGY),
 * device visibility from real char devices under a tmp root ($NVIDIA_MOCK_ROOT), and every error path.
 *
 * The fake reads getenv(), but jest gives each test file a *copy* of process.env (writes never reach the
 * C environment), so queries that depend on those variables run the addon in a child `node` with that env.
 */
import { execa } from 'execa';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddonDevice, AddonNvmlError, AddonNvmlResult } from '../../../src/host/nvml.js';

// The addon's result types are the ones src/host/nvml.ts declares for it (the contract of native/README.md).
type HostOut = AddonNvmlResult;
type GpuOut = AddonDevice;
type ErrorOut = AddonNvmlError;

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const RELEASE = join(REPO, 'build/Release');
const MOCK = join(RELEASE, 'libnvidia-ml-mock.so');
const MOCK_MINIMAL = join(RELEASE, 'libnvidia-ml-mock-minimal.so');
const STUB = join(RELEASE, 'libnvidia-stub.so');
const addon = createRequire(import.meta.url)(join(RELEASE, 'nvidia_runtime.node')) as {
  nvmlQuery(path: unknown): HostOut | ErrorOut;
};

interface GpuSpec {
  minor: number;
  uuid?: string;
  name?: string;
  bus?: number;
  mig?: 0 | 1;
}

const gpuLine = (g: GpuSpec): string =>
  [
    'gpu',
    g.minor,
    g.uuid ?? `GPU-00000000-0000-0000-0000-${g.minor.toString(16).padStart(12, '0')}`,
    g.name ?? 'NVIDIA H100 80GB HBM3',
    14,
    '0',
    (g.bus ?? g.minor + 1).toString(16),
    '0',
    '233010DE',
    9,
    0,
    9,
    85899345920,
    g.mig ?? 0,
  ].join('\t');

const topology = (gpus: GpuSpec[], extra: string[] = []): string =>
  ['driver\t550.54.15', 'nvml\t12.550.54.15', 'cuda\t12040', ...gpus.map(gpuLine), ...extra].join('\n') + '\n';

let tmp: string;
let root: string;
let env: Record<string, string | undefined>;

const CHILD = `const a = require(process.argv[1]);
process.stdout.write(JSON.stringify(a.nvmlQuery(process.argv[2])));`;

/** nvmlQuery(lib) in a child node whose environment has exactly our NVIDIA_MOCK_* variables. */
async function nvmlQueryIn(lib: string): Promise<HostOut | ErrorOut> {
  const r = await execa(process.execPath, ['-e', CHILD, join(RELEASE, 'nvidia_runtime.node'), lib], { env });
  return JSON.parse(r.stdout) as HostOut | ErrorOut;
}

async function makeDevNodes(minors: number[]): Promise<void> {
  mkdirSync(join(root, 'dev'), { recursive: true });
  for (const m of minors) await execa('mknod', [join(root, 'dev', `nvidia${m}`), 'c', '195', String(m)]);
}

function useTopology(text: string | Buffer): void {
  const file = join(tmp, 'topology.txt');
  writeFileSync(file, text);
  env.NVIDIA_MOCK_TOPOLOGY = file;
}

async function query(lib = MOCK): Promise<HostOut> {
  const r = await nvmlQueryIn(lib);
  if ('error' in r) throw new Error(`unexpected NVML error ${JSON.stringify(r.error)}`);
  return r;
}

async function queryError(lib = MOCK): Promise<ErrorOut['error']> {
  const r = await nvmlQueryIn(lib);
  if (!('error' in r)) throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return r.error;
}

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'nvr-native-'));
  root = join(tmp, 'root');
  mkdirSync(root);
  env = { NVIDIA_MOCK_ROOT: root, NVIDIA_MOCK_TOPOLOGY: undefined };
});

afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('nvmlQuery on the fake NVML', () => {
  test('one GPU: every field', async () => {
    await makeDevNodes([0]);
    useTopology(topology([{ minor: 0, uuid: 'GPU-11111111-2222-3333-4444-555555555555', bus: 0x07 }]));
    expect(await query()).toEqual({
      nvmlVersion: '12.550.54.15',
      driverVersion: '550.54.15',
      cudaDriverVersion: 12040,
      devices: [
        {
          index: 0,
          minor: 0,
          uuid: 'GPU-11111111-2222-3333-4444-555555555555',
          name: 'NVIDIA H100 80GB HBM3',
          brand: 14,
          pciBusId: '00000000:07:00.0',
          domain: 0,
          bus: 7,
          device: 0,
          pciDeviceId: 0x233010de,
          ccMajor: 9,
          ccMinor: 0,
          architecture: 9,
          memoryTotal: 85899345920,
          migCurrent: 0,
          migPending: 0,
          migDevices: [],
        },
      ],
    });
  });

  test('8 GPUs whose minors differ from their indices keep topology order', async () => {
    const minors = [4, 5, 6, 7, 0, 1, 2, 3];
    await makeDevNodes(minors);
    useTopology(topology(minors.map((minor) => ({ minor }))));
    const devices = (await query()).devices;
    expect(devices.map((d) => d.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(devices.map((d) => d.minor)).toEqual(minors);
    expect(devices.map((d) => d.pciBusId)).toEqual(minors.map((m) => `00000000:0${(m + 1).toString(16).toUpperCase()}:00.0`));
    expect(new Set(devices.map((d) => d.uuid)).size).toBe(8);
  });

  test('64 GPUs', async () => {
    const minors = Array.from({ length: 64 }, (_, i) => i);
    await makeDevNodes(minors);
    useTopology(topology(minors.map((minor) => ({ minor }))));
    const devices = (await query()).devices;
    expect(devices).toHaveLength(64);
    expect(devices[63]).toMatchObject({ index: 63, minor: 63, pciBusId: '00000000:40:00.0' });
  });

  test('a GPU without its /dev/nvidia<minor> is invisible and indices are renumbered', async () => {
    await makeDevNodes([0, 2]);
    useTopology(topology([{ minor: 0 }, { minor: 1 }, { minor: 2 }]));
    expect((await query()).devices.map((d) => [d.index, d.minor])).toEqual([
      [0, 0],
      [1, 2],
    ]);
  });

  test('MIG devices of a GPU in MIG mode, with GI/CI ids, names and memory', async () => {
    await makeDevNodes([0, 1]);
    const name = 'NVIDIA H100 80GB HBM3';
    useTopology(
      topology(
        [
          { minor: 0, mig: 1 },
          { minor: 1, mig: 0 },
        ],
        [
          `mig\t0\t1\t0\tMIG-aaaaaaaa-0000-0000-0000-000000000001\t${name} MIG 3g.40gb\t42949672960`,
          `mig\t0\t2\t0\tMIG-aaaaaaaa-0000-0000-0000-000000000002\t${name} MIG 1g.10gb\t10737418240`,
          // MIG records of a GPU that is not in MIG mode are not devices.
          `mig\t1\t1\t0\tMIG-bbbbbbbb-0000-0000-0000-000000000001\t${name} MIG 7g.80gb\t85899345920`,
        ],
      ),
    );
    const [gpu0, gpu1] = (await query()).devices;
    expect(gpu0.migCurrent).toBe(1);
    expect(gpu0.migPending).toBe(1);
    expect(gpu0.migDevices).toEqual([
      {
        index: 0,
        gpuInstanceId: 1,
        computeInstanceId: 0,
        uuid: 'MIG-aaaaaaaa-0000-0000-0000-000000000001',
        name: `${name} MIG 3g.40gb`,
        memoryTotal: 42949672960,
      },
      {
        index: 1,
        gpuInstanceId: 2,
        computeInstanceId: 0,
        uuid: 'MIG-aaaaaaaa-0000-0000-0000-000000000002',
        name: `${name} MIG 1g.10gb`,
        memoryTotal: 10737418240,
      },
    ]);
    expect(gpu1.migCurrent).toBe(0);
    expect(gpu1.migDevices).toEqual([]);
  });

  test('more MIG devices on one GPU than supported is a clean error', async () => {
    await makeDevNodes([0]);
    const migs = Array.from({ length: 9 }, (_, i) => `mig\t0\t${i + 1}\t0\tMIG-${i}\tX MIG 1g.10gb\t1`);
    useTopology(topology([{ minor: 0, mig: 1 }], migs));
    expect(await queryError()).toMatchObject({ code: 7, call: 'nvmlDeviceGetMigDeviceHandleByIndex' });
  });

  test('the topology embedded in a patched copy of the library, root derived from its path', async () => {
    // What mock-driver does: copy the library under <root>/usr/lib/…, write the text after the marker line.
    await makeDevNodes([1]);
    env = { NVIDIA_MOCK_ROOT: undefined, NVIDIA_MOCK_TOPOLOGY: undefined };
    const lib = readFileSync(MOCK);
    const marker = Buffer.from('NVMOCK-TOPOLOGY-V1\n');
    const at = lib.indexOf(marker);
    expect(at).toBeGreaterThan(0);
    expect(lib.indexOf(marker, at + 1)).toBe(-1); // exactly one marker: patching the first one is safe
    Buffer.from(topology([{ minor: 0 }, { minor: 1, uuid: 'GPU-embedded' }]) + '\0').copy(lib, at + marker.length);
    const dir = join(root, 'usr/lib/x86_64-linux-gnu');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'libnvidia-ml.so.550.54.15'), lib);
    expect((await query(join(dir, 'libnvidia-ml.so.550.54.15'))).devices.map((d) => [d.index, d.minor, d.uuid])).toEqual([
      [0, 1, 'GPU-embedded'],
    ]);
  });
});

describe('nvmlQuery error paths', () => {
  test('a fail record makes that function fail with its code', async () => {
    await makeDevNodes([0]);
    useTopology(topology([{ minor: 0 }], ['fail\tnvmlDeviceGetUUID\t15']));
    expect(await queryError()).toEqual({ code: 15, call: 'nvmlDeviceGetUUID', message: 'GPU is lost' });
  });

  test('a fail record with the unversioned name also fails the versioned call', async () => {
    await makeDevNodes([0]);
    useTopology(topology([{ minor: 0 }], ['fail\tnvmlDeviceGetCount\t999']));
    expect(await queryError()).toMatchObject({ code: 999, call: 'nvmlDeviceGetCount_v2' });
  });

  test('fail on nvmlInit_v2', async () => {
    useTopology(topology([], ['fail\tnvmlInit_v2\t4']));
    expect(await queryError()).toMatchObject({ code: 4, call: 'nvmlInit_v2' });
  });

  test('NOT_SUPPORTED from an optional function leaves that field absent', async () => {
    await makeDevNodes([0]);
    useTopology(topology([{ minor: 0 }], ['fail\tnvmlDeviceGetArchitecture\t3']));
    const [gpu] = (await query()).devices;
    expect(gpu).not.toHaveProperty('architecture');
    expect(gpu.ccMajor).toBe(9);
  });

  test('a missing library: code 12, call dlopen', async () => {
    const e = await queryError(join(tmp, 'no-such-libnvidia-ml.so.1'));
    expect(e).toMatchObject({ code: 12, call: 'dlopen' });
    expect(e.message).toContain('no-such-libnvidia-ml.so.1');
  });

  test('a library without NVML symbols: code 13, call nvmlInit_v2', async () => {
    expect(await queryError(STUB)).toMatchObject({ code: 13, call: 'nvmlInit_v2' });
  });

  test('the minimal fake (no optional symbols): optional fields absent, no error', async () => {
    await makeDevNodes([0]);
    useTopology(topology([{ minor: 0, mig: 1 }], ['mig\t0\t1\t0\tMIG-x\tX MIG 7g.80gb\t1']));
    const host = await query(MOCK_MINIMAL);
    expect(Object.keys(host).sort()).toEqual(['devices', 'driverVersion']);
    expect(host.devices).toHaveLength(1);
    expect(Object.keys(host.devices[0]).sort()).toEqual(
      ['bus', 'device', 'domain', 'index', 'migDevices', 'minor', 'name', 'pciBusId', 'pciDeviceId', 'uuid'].sort(),
    );
    expect(host.devices[0].migDevices).toEqual([]);
  });

  test('no topology at all: DRIVER_NOT_LOADED from nvmlInit_v2', async () => {
    expect(await queryError()).toMatchObject({ code: 9, call: 'nvmlInit_v2', message: 'Driver Not Loaded' });
  });

  test('a topology file that does not exist: DRIVER_NOT_LOADED', async () => {
    env.NVIDIA_MOCK_TOPOLOGY = join(tmp, 'missing.txt');
    expect(await queryError()).toMatchObject({ code: 9, call: 'nvmlInit_v2' });
  });

  const good = gpuLine({ minor: 0 });
  test.each([
    ['a truncated gpu line', `driver\t550.54.15\n${good.split('\t').slice(0, 7).join('\t')}`],
    ['a non-numeric minor', `driver\t550.54.15\n${good.replace('gpu\t0', 'gpu\tzero')}`],
    ['a PCI bus above 0xff', `driver\t550.54.15\n${good.replace('\t0\t1\t0\t', '\t0\t100\t0\t')}`],
    ['a mig record for a GPU that does not exist', `driver\t550.54.15\n${good}\nmig\t5\t1\t0\tMIG-x\tX\t1`],
    ['no driver record', `${good}\n`],
    ['two GPUs with one minor', `driver\t550.54.15\n${good}\n${good}\n`],
    ['an empty uuid', `driver\t550.54.15\n${good.replace(/GPU-[0-9a-f-]+/, '')}`],
    ['binary garbage', Buffer.from([0x64, 0x72, 0x00, 0xff, 0x09, 0x0a, 0x01])],
    ['random text', 'lorem\tipsum\ngpu\n'],
  ])('%s: UNKNOWN (999), not a crash', async (_what, text) => {
    await makeDevNodes([0]);
    useTopology(text);
    expect(await queryError()).toMatchObject({ code: 999, call: 'nvmlInit_v2' });
  });

  test('unknown record types are ignored', async () => {
    await makeDevNodes([0]);
    useTopology(topology([{ minor: 0 }], ['future\tsomething\tnew']));
    expect((await query()).devices).toHaveLength(1);
  });

  test('a non-string argument throws a TypeError', () => {
    // The addon's TypeError comes from the main realm, not jest's sandbox: compare by name.
    for (const call of [() => addon.nvmlQuery(42), () => (addon.nvmlQuery as () => unknown)()]) {
      expect(call).toThrow(/libraryPath must be a string/);
      try {
        call();
      } catch (e) {
        expect((e as Error).name).toBe('TypeError');
      }
    }
  });

  test('in process too: a missing library is an error object, not a throw', () => {
    expect(addon.nvmlQuery(join(tmp, 'missing.so'))).toMatchObject({ error: { code: 12, call: 'dlopen' } });
  });
});

describe('built artifacts', () => {
  test('the stub library carries the 64-byte SONAME placeholder', () => {
    const placeholder = 'NVMOCK_SONAME_' + 'X'.repeat(50);
    expect(placeholder).toHaveLength(64);
    expect(readFileSync(STUB).includes(Buffer.from(placeholder + '\0'))).toBe(true);
  });

  test('a copy of the fake library works from a path outside any lib dir', async () => {
    await makeDevNodes([0]);
    useTopology(topology([{ minor: 0 }]));
    const copy = join(tmp, 'copy.so');
    copyFileSync(MOCK, copy);
    expect((await query(copy)).devices).toHaveLength(1);
  });
});
