/**
 * The built nvidia-container-cli and nvidia-ctk mock-driver, end to end: mock roots of 1, 8 and 64 GPUs and with
 * MIG are created by the shipped command, then `info` and `list` must report exactly what the mock was made with.
 */
import { execa } from 'execa';
import { existsSync, readFileSync, rmSync, unlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { MockTopology } from '../../src/mock/topology-types.js';
import { distBin, tempDir } from '../helpers/dist.js';

const ctk = distBin('nvidia-ctk');
const cli = distBin('nvidia-container-cli');
const dirs: string[] = [];

async function mockRoot(args: string[]): Promise<{ root: string; topology: MockTopology }> {
  const root = join(tempDir('cli'), 'root');
  dirs.push(root);
  await execa(ctk, ['mock-driver', '--root', root, ...args]);
  const topology = JSON.parse(readFileSync(join(root, 'etc/nvidia-mock/topology.json'), 'utf8')) as MockTopology;
  return { root, topology };
}

afterAll(() => dirs.forEach((d) => rmSync(join(d, '..'), { recursive: true, force: true })));

function expectedInfo(t: MockTopology): string {
  const l = (k: string, v: string | number) => `${k.padEnd(15)} ${v}`;
  const lines = [l('NVRM version:', t.driverVersion), l('CUDA version:', t.cudaVersion)];
  t.gpus.forEach((g, i) => {
    lines.push('', l('Device Index:', i), l('Device Minor:', g.minor), l('Model:', g.name), l('Brand:', g.brand),
      l('GPU UUID:', g.uuid), l('Bus Location:', g.pciBusId), l('Architecture:', g.computeCapability));
    g.migDevices.forEach((m, j) => {
      lines.push('', `  ${l('MIG Device:', `${i}:${j}`)}`, `  ${l('MIG UUID:', m.uuid)}`, `  ${l('Model:', `${g.name} MIG ${m.profile}`)}`,
        `  ${l('GPU Instance:', m.gpuInstanceId)}`, `  ${l('Compute Inst.:', m.computeInstanceId)}`);
    });
  });
  return lines.join('\n') + '\n';
}

describe.each([1, 8, 64])('mock root with %i GPUs', (n) => {
  let root: string;
  let topology: MockTopology;
  beforeAll(async () => ({ root, topology } = await mockRoot(['--gpus', String(n)])));

  test('info prints every GPU in the seed format', async () => {
    const { stdout } = await execa(cli, ['--root', root, 'info'], { stripFinalNewline: false });
    expect(topology.gpus).toHaveLength(n);
    expect(stdout).toBe(expectedInfo(topology));
  });

  test('info --json carries the same data', async () => {
    const { stdout } = await execa(cli, ['--root', root, 'info', '--json']);
    const info = JSON.parse(stdout);
    expect(info.driverVersion).toBe(topology.driverVersion);
    expect(info.gpus.map((g: { uuid: string }) => g.uuid)).toEqual(topology.gpus.map((g) => g.uuid));
  });

  test('list prints only paths that exist under the root, and the default is utility+compute', async () => {
    const { stdout } = await execa(cli, ['--root', root, 'list', '--device', 'all']);
    const paths = stdout.split('\n');
    for (const p of paths) {
      expect(p.startsWith(root + '/')).toBe(true);
      expect(existsSync(p)).toBe(true);
    }
    expect(paths.filter((p) => /\/dev\/nvidia\d+$/.test(p))).toHaveLength(n);
    expect(paths).toContain(join(root, 'usr/bin/nvidia-smi'));
    expect(paths).toContain(join(root, `usr/lib/x86_64-linux-gnu/libcuda.so.${topology.driverVersion}`));
    expect(paths).toContain(join(root, `usr/lib/x86_64-linux-gnu/libnvidia-ml.so.${topology.driverVersion}`));
    expect(paths.some((p) => p.includes('libnvidia-encode'))).toBe(false);
  });
});

describe('list filters', () => {
  let root: string;
  let topology: MockTopology;
  beforeAll(async () => ({ root, topology } = await mockRoot(['--gpus', '4'])));

  test('--device selects exactly those GPUs; no --device lists no device nodes', async () => {
    const one = (await execa(cli, ['--root', root, 'list', '--device', `1,${topology.gpus[3].uuid}`])).stdout.split('\n');
    expect(one.filter((p) => /\/dev\/nvidia\d+$/.test(p)).map((p) => p.slice(root.length))).toEqual(['/dev/nvidia1', '/dev/nvidia3']);
    const none = (await execa(cli, ['--root', root, 'list'])).stdout;
    expect(none).not.toContain('/dev/');
  });

  test('each capability brings its own files', async () => {
    const list = async (flag: string) => (await execa(cli, ['--root', root, 'list', flag])).stdout;
    expect(await list('--video')).toContain('libnvidia-encode.so');
    expect(await list('--video')).toContain('libcuda.so'); // video implies compute libraries
    expect(await list('--graphics')).toContain('libGLX_nvidia.so');
    expect(await list('--graphics')).not.toContain('libcuda.so');
    expect(await list('--ngx')).toContain('libnvidia-ngx.so');
    expect(await list('--utility')).toContain('nvidia-smi');
    expect(await list('--utility')).not.toContain('libcuda.so');
    expect(await list('--compute')).toContain('nvidia-cuda-mps-control');
    expect(await list('--compute')).not.toContain('i386-linux-gnu');
    const compat32 = (await execa(cli, ['--root', root, 'list', '--compute', '--compat32'])).stdout;
    expect(compat32).toContain(`usr/lib/i386-linux-gnu/libcuda.so.${topology.driverVersion}`); // 32-bit variants of the compute libraries
  });

  test('--json gives container and host paths', async () => {
    const out = JSON.parse((await execa(cli, ['--root', root, 'list', '--json', '--device', '0'])).stdout);
    const gpu = out.files.find((f: { path: string }) => f.path === '/dev/nvidia0');
    expect(gpu).toEqual({ kind: 'device', path: '/dev/nvidia0', hostPath: join(root, 'dev/nvidia0') });
  });

  test('an unknown device is a one-line error', async () => {
    const r = await execa(cli, ['--root', root, 'list', '--device', '9'], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/unknown device/);
  });
});

describe('list on a graphics root, with driver options', () => {
  let root: string;
  let topology: MockTopology;
  beforeAll(async () => ({ root, topology } = await mockRoot(['--gpus', '2', '--graphics'])));

  test('--graphics --display --device 1: the GPU\'s DRM nodes, modeset, the configuration files and X modules', async () => {
    const out = JSON.parse((await execa(cli, ['--root', root, 'list', '--json', '--device', '1', '--graphics', '--display'])).stdout) as { files: { kind: string; path: string; hostPath: string }[] };
    const of = (kind: string) => out.files.filter((f) => f.kind === kind).map((f) => f.path);
    expect(of('device')).toEqual(['/dev/nvidiactl', '/dev/nvidia-modeset', '/dev/nvidia1', '/dev/dri/card2', '/dev/dri/renderD129']);
    expect(of('config')).toEqual([
      '/usr/share/glvnd/egl_vendor.d/10_nvidia.json', '/usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json',
      '/usr/share/egl/egl_external_platform.d/10_nvidia_wayland.json', '/usr/share/nvidia/nvoptix.bin',
      '/etc/vulkan/icd.d/nvidia_icd.json', '/etc/vulkan/implicit_layer.d/nvidia_layers.json',
      '/usr/share/X11/xorg.conf.d/10-nvidia.conf', '/etc/X11/xorg.conf.d/nvidia-drm-outputclass.conf',
      '/usr/lib/x86_64-linux-gnu/nvidia/xorg/nvidia_drv.so', `/usr/lib/x86_64-linux-gnu/nvidia/xorg/libglxserver_nvidia.so.${topology.driverVersion}`,
    ]);
    // the ICD lives in /usr/share on this host and goes to /etc in the container
    expect(out.files.find((f) => f.path === '/etc/vulkan/icd.d/nvidia_icd.json')!.hostPath).toBe(join(root, 'usr/share/vulkan/icd.d/nvidia_icd.json'));
    expect(of('library')).toContain(`/usr/lib/x86_64-linux-gnu/libnvidia-egl-gbm.so.1.1.1`);
  });

  test('--no-glvnd: NVIDIA\'s libGL and libEGL (they need its GL core), no vendor libraries; --no-uvm --no-mps --no-persistenced', async () => {
    const libs = (await execa(cli, ['--root', root, 'list', '--graphics', '--no-glvnd'])).stdout;
    expect(libs).toContain(`libGL.so.${topology.driverVersion}`);
    expect(libs).toContain(`libEGL.so.${topology.driverVersion}`);
    expect(libs).not.toContain('libGLX_nvidia');
    const opts = (await execa(cli, ['--root', root, 'list', '--device', '0', '--compute', '--utility', '--no-uvm', '--no-mps', '--no-persistenced'])).stdout;
    expect(opts).not.toMatch(/nvidia-uvm|mps|persistenced\/socket/);
    expect(opts).toContain('nvidia-smi');
  });
});

describe('topologies', () => {
  test('minors that differ from indices, and MIG devices', async () => {
    const base = await mockRoot(['--gpus', '2', '--mig']);
    const topo: MockTopology = JSON.parse(JSON.stringify(base.topology));
    topo.gpus[0].minor = 6;
    topo.gpus[1].minor = 2;
    const file = join(base.root, '..', 'topology.json');
    writeFileSync(file, JSON.stringify(topo));
    const { root, topology } = await mockRoot(['--topology', file]);
    expect(topology.gpus.map((g) => g.minor)).toEqual([6, 2]);
    const { stdout } = await execa(cli, ['--root', root, 'info'], { stripFinalNewline: false });
    expect(stdout).toBe(expectedInfo(topology));
    expect(topology.gpus[0].migDevices.length).toBeGreaterThan(0);
    const listed = (await execa(cli, ['--root', root, 'list', '--device', '0'])).stdout;
    expect(listed).toContain(join(root, 'dev/nvidia6'));
    expect(listed).not.toContain(join(root, 'dev/nvidia0'));
    const mig = (await execa(cli, ['--root', root, 'list', '--device', '0:0'])).stdout;
    expect(mig).toMatch(/capabilities\/gpu6\/mig\/gi\d+\/access/);
    expect(mig).toMatch(/nvidia-caps\/nvidia-cap\d+/);
  });

  test('a truncated topology file is a clear error and creates nothing', async () => {
    const dir = tempDir('topo');
    dirs.push(join(dir, 'x'));
    writeFileSync(join(dir, 'topo.json'), '{"driverVersion": "550.54.15", "cudaVersion": "12.4", "gpus": [{"minor": 0,');
    const r = await execa(ctk, ['mock-driver', '--root', join(dir, 'root'), '--topology', join(dir, 'topo.json')], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^nvidia-ctk: topology file .*topo\.json/);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(existsSync(join(dir, 'root', 'dev'))).toBe(false);
  });
});

describe('errors are one clear line, never a stack trace', () => {
  test('a driver root that does not exist', async () => {
    const r = await execa(cli, ['--root', '/nonexistent/driver', 'info'], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe('nvidia-container-cli: driver root /nonexistent/driver does not exist or is not a directory; pass --root with the directory that holds the driver (e.g. /run/nvidia/driver)');
  });

  test('absent NVML', async () => {
    const { root } = await mockRoot(['--gpus', '1']);
    const libdir = join(root, 'usr/lib/x86_64-linux-gnu');
    for (const f of readdirSync(libdir)) if (f.startsWith('libnvidia-ml')) unlinkSync(join(libdir, f));
    await execa('ldconfig', ['-r', root]);
    const r = await execa(cli, ['--root', root, 'info'], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^nvidia-container-cli: NVML \(libnvidia-ml\.so\.1\) not found under driver root/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  test('a corrupt ld.so.cache', async () => {
    const { root } = await mockRoot(['--gpus', '1']);
    writeFileSync(join(root, 'etc/ld.so.cache'), Buffer.from('glibc-ld.so.cache1.1 garbage'));
    const r = await execa(cli, ['--root', root, 'info'], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^nvidia-container-cli: .*ld\.so\.cache.*ldconfig -r/);
    expect(r.stderr.split('\n')).toHaveLength(1);
  });

  test('the driver not answering (NVML init fails) names the cause', async () => {
    const { root } = await mockRoot(['--gpus', '1']);
    // An empty embedded topology is how the fake NVML plays "driver not loaded".
    const lib = readdirSync(join(root, 'usr/lib/x86_64-linux-gnu')).find((f) => /^libnvidia-ml\.so\.\d+\.\d+/.test(f))!;
    const path = join(root, 'usr/lib/x86_64-linux-gnu', lib);
    const bytes = readFileSync(path);
    const at = bytes.indexOf('NVMOCK-TOPOLOGY-V1\n') + 'NVMOCK-TOPOLOGY-V1\n'.length;
    bytes[at] = 0;
    writeFileSync(path, bytes);
    const r = await execa(cli, ['--root', root, 'info'], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^nvidia-container-cli: NVIDIA driver not loaded/);
  });
});
