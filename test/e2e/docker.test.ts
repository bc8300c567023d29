/**
 * `docker run --runtime=nvidia` (and nvidia as Docker's default runtime, and Compose's `runtime: nvidia`) with a
 * real dockerd, real runc and the mock driver root. Images are built locally with `docker import`.
 */
import { execa } from 'execa';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGpuDockerd, type Dockerd } from '../helpers/dockerd.js';
import { makeGpuHost, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let d: Dockerd & { dir: string };
let dockerDir: string;

beforeAll(async () => {
  host = await makeGpuHost(4);
  d = await startGpuDockerd(host, 'dk');
  dockerDir = d.dir;
}, 300000);

afterAll(async () => {
  await d?.stop();
  rmSync(host.dir, { recursive: true, force: true });
  rmSync(dockerDir, { recursive: true, force: true });
});

const run = (args: string[], opts = {}) => d.docker(['run', '--rm', '--network', 'none', ...args], opts);
const nvidiaNodes = (ls: string) => ls.split('\n').filter((l) => l.startsWith('nvidia')).sort();

test('--runtime=nvidia with NVIDIA_VISIBLE_DEVICES=1 sees nvidia1 and not nvidia0', async () => {
  const { stdout } = await run(['--runtime=nvidia', '-e', 'NVIDIA_VISIBLE_DEVICES=1', 'gpu-test:busybox', 'ls', '/dev']);
  expect(nvidiaNodes(stdout)).toEqual(['nvidia-uvm', 'nvidia-uvm-tools', 'nvidia1', 'nvidiactl']);
});

test('nvidia as the default runtime', async () => {
  const { stdout } = await run(['-e', 'NVIDIA_VISIBLE_DEVICES=2,3', 'gpu-test:busybox', 'ls', '/dev']);
  expect(nvidiaNodes(stdout)).toEqual(['nvidia-uvm', 'nvidia-uvm-tools', 'nvidia2', 'nvidia3', 'nvidiactl']);
});

test('a container that asks for no GPU gets none (default runtime and plain runc alike)', async () => {
  for (const runtime of ['nvidia', 'runc']) {
    const { stdout } = await run([`--runtime=${runtime}`, 'gpu-test:busybox', 'ls', '/dev']);
    expect(nvidiaNodes(stdout)).toEqual([]);
  }
});

test('glibc image: the mock nvidia-smi sees only the requested GPU, and the ld cache knows libcuda', async () => {
  const { stdout } = await run(['--runtime=nvidia', '-e', 'NVIDIA_VISIBLE_DEVICES=3', 'gpu-test:glibc', 'sh', '-c',
    'nvidia-smi -L; ldconfig -p | grep libcuda; dlopen-probe libcuda.so.1']);
  expect(stdout).toContain(`GPU 0: ${host.topology.gpus[3].name} (UUID: ${host.topology.gpus[3].uuid})`);
  expect(stdout).not.toContain(host.topology.gpus[0].uuid);
  expect(stdout).toMatch(/libcuda\.so\.1 \(libc6,x86-64\) => \/usr\/lib\/x86_64-linux-gnu\/libcuda\.so\.1/);
  expect(stdout).toContain('dlopen libcuda.so.1: OK');
});

test('an unmet NVIDIA_REQUIRE_CUDA makes docker run fail with our message', async () => {
  const r = await run(['--runtime=nvidia', '-e', 'NVIDIA_VISIBLE_DEVICES=0', '-e', 'NVIDIA_REQUIRE_CUDA=cuda>=13.0', 'gpu-test:busybox', 'true'], { reject: false });
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toMatch(/nvidia-runtime: unsatisfied condition: cuda>=13\.0 \(host CUDA 12\.4/);
});

test('Compose: runtime: nvidia', async () => {
  const file = join(host.dir, 'compose.yaml');
  writeFileSync(file, [
    "version: '2.4'",
    'services:',
    '  gpu:',
    '    image: gpu-test:busybox',
    '    runtime: nvidia',
    '    network_mode: none',
    '    environment:',
    '      - NVIDIA_VISIBLE_DEVICES=0',
    '    command: ls /dev',
    '',
  ].join('\n'));
  const r = await execa('docker-compose', ['-f', file, '-p', 'nvrtest', 'run', '--rm', '-T', 'gpu'], { env: { DOCKER_HOST: d.host } });
  expect(nvidiaNodes(r.stdout)).toEqual(['nvidia-uvm', 'nvidia-uvm-tools', 'nvidia0', 'nvidiactl']);
});
