/**
 * `docker run --gpus` with plain runc: dockerd finds nvidia-container-runtime-hook on its PATH (our bin directory
 * first), inserts it as a prestart hook, and the hook configures the container live through nvidia-container-cli
 * configure. Real dockerd, real runc, the mock driver root; cgroup v1 device rules checked by open(): with no driver
 * an allowed GPU node fails ENXIO, a denied one EPERM.
 */
import { rmSync } from 'node:fs';
import { startGpuDockerd, type Dockerd } from '../helpers/dockerd.js';
import { makeGpuHost, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let d: Dockerd & { dir: string };
let dockerDir: string;

beforeAll(async () => {
  host = await makeGpuHost(4);
  d = await startGpuDockerd(host, 'dg', { gpusHook: true });
  dockerDir = d.dir;
}, 300000);

afterAll(async () => {
  await d?.stop();
  rmSync(host.dir, { recursive: true, force: true });
  rmSync(dockerDir, { recursive: true, force: true });
});

const run = (args: string[], opts = {}) => d.docker(['run', '--rm', '--network', 'none', ...args], opts);
const nvidiaNodes = (ls: string) => ls.split('\n').filter((l) => l.startsWith('nvidia')).sort();
const CONTROL = ['nvidia-uvm', 'nvidia-uvm-tools', 'nvidiactl'];

test('--gpus device=1: only nvidia1, and the device cgroup allows it and not nvidia0', async () => {
  const { stdout } = await run(['--gpus', 'device=1', 'gpu-test:busybox', 'sh', '-c',
    'ls /dev; echo ---; cat /dev/nvidia1 2>&1; mknod /dev/nvidia0 c 195 0 && cat /dev/nvidia0 2>&1; true']);
  const [ls, opens] = stdout.split('---');
  expect(nvidiaNodes(ls!)).toEqual([...CONTROL, 'nvidia1'].sort());
  expect(opens).toMatch(/nvidia1'?: No such device or address/); // allowed: reaches the (absent) driver
  expect(opens).toMatch(/nvidia0'?: Operation not permitted/); // denied by the cgroup
});

test('--gpus all gives every GPU', async () => {
  const { stdout } = await run(['--gpus', 'all', 'gpu-test:busybox', 'ls', '/dev']);
  expect(nvidiaNodes(stdout)).toEqual([...CONTROL, 'nvidia0', 'nvidia1', 'nvidia2', 'nvidia3'].sort());
});

test('--gpus "device=UUID" gives that GPU', async () => {
  const gpu = host.topology.gpus[2]!;
  const { stdout } = await run(['--gpus', `"device=${gpu.uuid}"`, 'gpu-test:busybox', 'ls', '/dev']);
  expect(nvidiaNodes(stdout)).toEqual([...CONTROL, 'nvidia2'].sort());
});

test('glibc image with --gpus: nvidia-smi sees only its GPU, the ld cache knows libcuda', async () => {
  const { stdout } = await run(['--gpus', 'device=3', 'gpu-test:glibc', 'sh', '-c', 'nvidia-smi -L; ldconfig -p | grep libcuda; dlopen-probe libcuda.so.1']);
  expect(stdout).toContain(`GPU 0: ${host.topology.gpus[3]!.name} (UUID: ${host.topology.gpus[3]!.uuid})`);
  expect(stdout).not.toContain(host.topology.gpus[0]!.uuid);
  expect(stdout).toMatch(/libcuda\.so\.1 \(libc6,x86-64\) => \/usr\/lib\/x86_64-linux-gnu\/libcuda\.so\.1/);
  expect(stdout).toContain('dlopen libcuda.so.1: OK');
});

test('--gpus "capabilities=compute,utility" with NVIDIA_VISIBLE_DEVICES: those capabilities only', async () => {
  const { stdout } = await run(['--gpus', '"capabilities=compute,utility"', '-e', 'NVIDIA_VISIBLE_DEVICES=0', 'gpu-test:glibc', 'sh', '-c',
    'echo $NVIDIA_DRIVER_CAPABILITIES; ls /dev; ls /usr/lib/x86_64-linux-gnu']);
  expect(stdout).toContain('compute,utility');
  expect(nvidiaNodes(stdout)).toEqual([...CONTROL, 'nvidia0'].sort());
  expect(stdout).toContain('libcuda.so.');
  expect(stdout).toContain('libnvidia-ml.so.');
  expect(stdout).not.toContain('libnvidia-encode.so.'); // video
});

test('--gpus with --runtime=nvidia: injected once (the runtime removes the hook)', async () => {
  const { stdout } = await run(['--runtime=nvidia', '--gpus', 'device=0', 'gpu-test:busybox', 'sh', '-c', 'ls /dev; grep -c /libcuda.so. /proc/self/mountinfo']);
  expect(nvidiaNodes(stdout)).toEqual([...CONTROL, 'nvidia0'].sort());
  expect(stdout.trim().split('\n').pop()).toBe('1');
});

test('an unmet requirement fails the start with the requirement named', async () => {
  const r = await run(['--gpus', 'all', '-e', 'NVIDIA_REQUIRE_CUDA=cuda>=99.0', 'gpu-test:busybox', 'true'], { reject: false });
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toMatch(/requirement error: unsatisfied condition: cuda>=99\.0/);
});

test('NVIDIA_MIG_CONFIG_DEVICES in an unprivileged container: the start fails with the reason', async () => {
  const r = await run(['--gpus', 'all', '-e', 'NVIDIA_MIG_CONFIG_DEVICES=all', 'gpu-test:busybox', 'true'], { reject: false });
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toMatch(/nvidia-container-runtime-hook: cannot set NVIDIA_MIG_CONFIG_DEVICES in a non-privileged container/);
});

test('no --gpus: the hook is not involved and the container has no GPU', async () => {
  const { stdout } = await run(['gpu-test:busybox', 'ls', '/dev']);
  expect(nvidiaNodes(stdout)).toEqual([]);
});
