/**
 * The Node-free probe and the mock nvidia-smi, run as real processes against the fake NVML. nvidia-smi-mock
 * finds "libnvidia-ml.so.1" by soname, here through LD_LIBRARY_PATH and a symlink to the fake.
 */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const RELEASE = join(REPO, 'build/Release');
const MOCK = join(RELEASE, 'libnvidia-ml-mock.so');
const PROBE = join(RELEASE, 'nvml-probe');
const SMI = join(RELEASE, 'nvidia-smi-mock');
const ADDON = join(RELEASE, 'nvidia_runtime.node');

const NAME = 'NVIDIA A100-SXM4-80GB';
const TOPOLOGY =
  [
    'driver\t550.54.15',
    'nvml\t12.550.54.15',
    'cuda\t12040',
    `gpu\t2\tGPU-aaaaaaaa-0000-0000-0000-000000000002\t${NAME}\t14\t0\t07\t00\t20B210DE\t8\t0\t7\t85899345920\t1`,
    `gpu\t0\tGPU-aaaaaaaa-0000-0000-0000-000000000000\t${NAME}\t14\t0\t0f\t00\t20B210DE\t8\t0\t7\t85899345920\t0`,
    `mig\t0\t1\t0\tMIG-bbbbbbbb-0000-0000-0000-000000000001\t${NAME} MIG 3g.40gb\t42949672960`,
    `mig\t0\t2\t0\tMIG-bbbbbbbb-0000-0000-0000-000000000002\t${NAME} MIG 1g.10gb\t10737418240`,
  ].join('\n') + '\n';

let tmp: string;
let env: Record<string, string | undefined>;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nvr-native-exe-'));
  mkdirSync(join(tmp, 'root/dev'), { recursive: true });
  for (const minor of [0, 2]) await execa('mknod', [join(tmp, `root/dev/nvidia${minor}`), 'c', '195', String(minor)]);
  mkdirSync(join(tmp, 'lib'));
  symlinkSync(MOCK, join(tmp, 'lib/libnvidia-ml.so.1'));
  writeFileSync(join(tmp, 'topology.txt'), TOPOLOGY);
  env = {
    NVIDIA_MOCK_TOPOLOGY: join(tmp, 'topology.txt'),
    NVIDIA_MOCK_ROOT: join(tmp, 'root'),
    LD_LIBRARY_PATH: join(tmp, 'lib'),
  };
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('nvml-probe', () => {
  test('prints the same JSON as the addon', async () => {
    const probe = await execa(PROBE, [MOCK], { env });
    const viaAddon = await execa(
      process.execPath,
      ['-e', 'process.stdout.write(JSON.stringify(require(process.argv[1]).nvmlQuery(process.argv[2])))', ADDON, MOCK],
      { env },
    );
    const parsed = JSON.parse(probe.stdout);
    expect(parsed).toEqual(JSON.parse(viaAddon.stdout));
    expect(parsed.devices.map((d: { minor: number }) => d.minor)).toEqual([2, 0]);
    expect(parsed.devices[0].migDevices).toHaveLength(2);
  });

  test('accepts a bare soname (resolved by the dynamic loader)', async () => {
    const probe = await execa(PROBE, ['libnvidia-ml.so.1'], { env });
    expect(JSON.parse(probe.stdout).driverVersion).toBe('550.54.15');
  });

  test('exits 1 with a JSON error when the library is missing', async () => {
    const r = await execa(PROBE, [join(tmp, 'missing.so')], { env, reject: false });
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 12, call: 'dlopen' });
  });

  test('exits 1 with a JSON error on usage errors', async () => {
    const r = await execa(PROBE, [], { env, reject: false });
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toHaveProperty('error');
  });
});

describe('nvidia-smi-mock', () => {
  test('-L lists GPUs and their MIG devices', async () => {
    const r = await execa(SMI, ['-L'], { env });
    expect(r.stdout.split('\n')).toEqual([
      `GPU 0: ${NAME} (UUID: GPU-aaaaaaaa-0000-0000-0000-000000000002)`,
      '  MIG 3g.40gb Device 0: (UUID: MIG-bbbbbbbb-0000-0000-0000-000000000001)',
      '  MIG 1g.10gb Device 1: (UUID: MIG-bbbbbbbb-0000-0000-0000-000000000002)',
      `GPU 1: ${NAME} (UUID: GPU-aaaaaaaa-0000-0000-0000-000000000000)`,
    ]);
  });

  test('--query-gpu with all supported fields, csv,noheader', async () => {
    const fields = 'index,uuid,name,pci.bus_id,driver_version,compute_cap,memory.total';
    const r = await execa(SMI, [`--query-gpu=${fields}`, '--format=csv,noheader'], { env });
    expect(r.stdout.split('\n')).toEqual([
      `0, GPU-aaaaaaaa-0000-0000-0000-000000000002, ${NAME}, 00000000:07:00.0, 550.54.15, 8.0, 81920 MiB`,
      `1, GPU-aaaaaaaa-0000-0000-0000-000000000000, ${NAME}, 00000000:0F:00.0, 550.54.15, 8.0, 81920 MiB`,
    ]);
  });

  test('--query-gpu with a subset in the given order, header and nounits', async () => {
    const r = await execa(SMI, ['--query-gpu=memory.total,index', '--format=csv,nounits'], { env });
    expect(r.stdout.split('\n')).toEqual(['memory.total [MiB], index', '81920, 0', '81920, 1']);
  });

  test('an unknown query field is rejected', async () => {
    const r = await execa(SMI, ['--query-gpu=index,fan.speed', '--format=csv'], { env, reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toContain('"fan.speed" is not a valid field');
  });

  test('the default table has the driver/CUDA header and one line per GPU', async () => {
    const r = await execa(SMI, [], { env });
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('NVIDIA-SMI 550.54.15  Driver Version: 550.54.15  CUDA Version: 12.4');
    expect(lines.filter((l) => l.includes(NAME))).toHaveLength(2);
    expect(r.stdout).toMatch(/^\s+1\s+NVIDIA A100-SXM4-80GB\s+00000000:0F:00\.0\s+81920MiB$/m);
  });

  test('exits 9 like the real one when NVML cannot be used', async () => {
    const r = await execa(SMI, ['-L'], {
      env: { ...env, NVIDIA_MOCK_TOPOLOGY: join(tmp, 'missing.txt') },
      reject: false,
    });
    expect(r.exitCode).toBe(9);
    expect(r.stdout).toContain("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.");
  });
});

