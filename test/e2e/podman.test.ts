/**
 * CDI with a real engine: podman 4.3 (CDI library v0.5.2, cdiVersion ≤ 0.5.0, unknown fields rejected) consumes the
 * spec generated for a mock driver root. podman 4.3 has no --cdi-spec-dir option, so the spec goes to
 * /etc/cdi/nvidia-test-<pid>.yaml and is removed afterwards. Storage is private (--root/--runroot under a temp
 * dir, vfs driver) so nothing touches the host's podman state.
 */
import { execa } from 'execa';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCdiSpec } from '../../src/cdi/generate.js';
import { DEFAULT_SPEC_DIRS } from '../../src/cdi/load.js';
import { loadCdiRegistry } from '../../src/cdi/registry.js';
import type { CdiSpec } from '../../src/cdi/types.js';
import { formatSpec } from '../../src/cli/cdi-command.js';
import { loadHostInventory } from '../../src/host/inventory.js';
import { distBin, PACKAGE_ROOT, tempDir } from '../helpers/dist.js';
import { makeBusyboxRootfs, makeGlibcRootfs } from '../helpers/images.js';
import { makeGpuHost, type GpuHost } from '../helpers/runtime-env.js';

const SPEC_DIR = '/etc/cdi';
const SPEC_FILE = join(SPEC_DIR, `nvidia-test-${process.pid}.yaml`);
/** NVIDIA's own generated spec (test/fixtures/nvidia), moved to the test's mock root, under a vendor of its own. */
const NVIDIA_SPEC_FILE = join(SPEC_DIR, `nvidia-toolkit-test-${process.pid}.yaml`);
const NVIDIA_KIND = 'nvr-nvidia.nvidia.com/gpu';
let createdSpecDir = false;
let host: GpuHost;
let store: string;
let spec: CdiSpec;
let kind = 'nvidia.com/gpu';

const podman = (args: string[], opts: Record<string, unknown> = {}) =>
  execa('podman', ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', ...args], {
    stdin: 'ignore',
    ...opts,
  });
// This machine's hard rlimits are below podman's defaults (FACTS appendix B).
const run = (args: string[]) =>
  podman(['run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', ...args], { reject: false });
const nvidiaNodes = (ls: string) => ls.split('\n').filter((l) => l.startsWith('nvidia')).sort();

async function importImage(rootfs: string, tag: string): Promise<void> {
  const tar = `${rootfs}.tar`;
  await execa('tar', ['-C', rootfs, '-cf', tar, '.']);
  await podman(['import', tar, tag]);
}

beforeAll(async () => {
  host = await makeGpuHost(4);
  store = tempDir('podman');
  // A host that already defines nvidia.com/gpu devices would make ours a same-directory conflict: use our own vendor then.
  const existing = loadCdiRegistry(DEFAULT_SPEC_DIRS);
  if ([...existing.devices.keys()].some((n) => n.startsWith('nvidia.com/gpu='))) kind = 'nvr-test.nvidia.com/gpu';
  const [vendor, cls] = kind.split('/') as [string, string];
  spec = generateCdiSpec(loadHostInventory({ driverRoot: host.driverRoot }), { hookPath: distBin('nvidia-runtime-hook'), vendor, class: cls });
  if (!existsSync(SPEC_DIR)) {
    mkdirSync(SPEC_DIR, { recursive: true });
    createdSpecDir = true;
  }
  writeFileSync(SPEC_FILE, formatSpec(spec, 'yaml'));
  const moved = join(host.dir, 'nvidia-moved.yaml');
  await execa(distBin('nvidia-ctk'), ['cdi', 'transform', 'root', '--from', '/var/lib/nvidia-runtime/mock-driver', '--to', host.driverRoot,
    '--input', join(PACKAGE_ROOT, 'test/fixtures/nvidia/nvidia-ctk-1.17.9-cdi-mock8.yaml'), '--output', moved]);
  writeFileSync(NVIDIA_SPEC_FILE, readFileSync(moved, 'utf8').replace('kind: nvidia.com/gpu', `kind: ${NVIDIA_KIND}`)
    .split('/usr/bin/nvidia-cdi-hook').join(distBin('nvidia-cdi-hook')));
  await importImage(makeBusyboxRootfs(join(host.dir, 'bb')), 'localhost/nvr-cdi:busybox');
  await importImage(await makeGlibcRootfs(join(host.dir, 'glibc')), 'localhost/nvr-cdi:glibc');
}, 300000);

afterAll(async () => {
  rmSync(SPEC_FILE, { force: true });
  rmSync(NVIDIA_SPEC_FILE, { force: true });
  if (createdSpecDir && readdirSync(SPEC_DIR).length === 0) rmdirSync(SPEC_DIR);
  if (store) {
    await podman(['system', 'reset', '--force'], { reject: false });
    rmSync(store, { recursive: true, force: true });
  }
  if (host) rmSync(host.dir, { recursive: true, force: true });
});

test('the generated spec is one podman 4.3 accepts (cdiVersion ≤ 0.5.0)', () => {
  expect(spec.cdiVersion).toBe('0.5.0');
});

test(`--device <kind>=1 gives /dev/nvidia1, the control nodes and no other GPU`, async () => {
  const r = await run(['--device', `${kind}=1`, 'localhost/nvr-cdi:busybox', 'ls', '/dev']);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  expect(nvidiaNodes(r.stdout)).toEqual(['nvidia-modeset', 'nvidia-uvm', 'nvidia-uvm-tools', 'nvidia1', 'nvidiactl']);
});

test('UUID names and several devices', async () => {
  const uuid = host.topology.gpus[3]!.uuid;
  const r = await run(['--device', `${kind}=0`, '--device', `${kind}=${uuid}`, 'localhost/nvr-cdi:busybox', 'sh', '-c', 'ls /dev; echo NVD=$NVIDIA_VISIBLE_DEVICES']);
  expect(r.exitCode).toBe(0);
  expect(nvidiaNodes(r.stdout)).toEqual(['nvidia-modeset', 'nvidia-uvm', 'nvidia-uvm-tools', 'nvidia0', 'nvidia3', 'nvidiactl']);
  expect(r.stdout).toContain('NVD=void');
});

test('the hook runs under podman: nvidia-smi sees exactly the requested GPU and the ld cache knows libcuda', async () => {
  const r = await run(['--device', `${kind}=2`, 'localhost/nvr-cdi:glibc', 'sh', '-c', 'nvidia-smi -L; ldconfig -p | grep libcuda; dlopen-probe libcuda.so.1']);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toContain(`GPU 0: ${host.topology.gpus[2]!.name} (UUID: ${host.topology.gpus[2]!.uuid})`);
  expect(r.stdout).not.toContain(host.topology.gpus[0]!.uuid);
  expect(r.stdout).toMatch(/libcuda\.so\.1 \(libc6,x86-64\) => \/usr\/lib\/x86_64-linux-gnu\/libcuda\.so\.1/);
  expect(r.stdout).toContain('dlopen libcuda.so.1: OK');
});

test('an unknown device fails the run and names it', async () => {
  const r = await run(['--device', `${kind}=9`, 'localhost/nvr-cdi:busybox', 'true']);
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toContain(`${kind}=9`);
});

test('NVIDIA\'s own generated spec, with our nvidia-cdi-hook: podman gives the GPU, the driver libraries, the links and the ld cache', async () => {
  const r = await run(['--device', `${NVIDIA_KIND}=2`, 'localhost/nvr-cdi:glibc', 'sh', '-c',
    'nvidia-smi -L; ls /dev | grep -E "^nvidia[0-9]"; readlink /usr/lib/x86_64-linux-gnu/libGLX_indirect.so.0; ldconfig -p | grep "libcuda.so.1 "']);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toContain(`GPU 0: ${host.topology.gpus[2]!.name} (UUID: ${host.topology.gpus[2]!.uuid})`);
  expect(r.stdout).toMatch(/^nvidia2$/m);
  expect(r.stdout).not.toMatch(/^nvidia[013]$/m);
  expect(r.stdout).toMatch(/^libGLX_nvidia\.so\.550\.54\.15$/m);
  expect(r.stdout).toMatch(/libcuda\.so\.1 \(libc6,x86-64\) => \/usr\/lib\/x86_64-linux-gnu\/libcuda\.so\.1/);
});
