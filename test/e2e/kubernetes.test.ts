/**
 * Kubernetes without a cluster: for each k8s-device-plugin DEVICE_LIST_STRATEGY, the runtime (real runc, the
 * built nvidia-runtime, a mock driver root with 4 GPUs) gets the config.json that kubelet + containerd + the device
 * plugin produce for a pod asking for one GPU, from an image that bakes in NVIDIA_VISIBLE_DEVICES=all. Under the
 * secure configuration (docs/kubernetes.md) that image must not get every GPU; it gets exactly the plugin's GPU, or
 * nothing when the plugin hands out devices through the environment.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCdiSpec } from '../../src/cdi/generate.js';
import { loadHostInventory } from '../../src/host/inventory.js';
import { distBin } from '../helpers/dist.js';
import { makeBusyboxRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, runtimeRun, type GpuHost } from '../helpers/runtime-env.js';

/** containerd's default capability set for a non-privileged container: no CAP_SYS_ADMIN. */
const CONTAINERD_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];
/** What a CUDA base image bakes in. */
const IMAGE_ENV = ['NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_DRIVER_CAPABILITIES=compute,utility'];
const DEVICE_LIST_ROOT = '/var/run/nvidia-container-devices';
const RESPONSE_ID = '3f1c2e8a-5b7d-4e21-9a0c-6d4b8e2f1a90'; // the plugin's per-Allocate id in the annotation key
const PLUGIN_GPU = 2;

type Strategy = 'envvar' | 'volume-mounts' | 'cdi-annotations';

let host: GpuHost;
let specDir: string;
let uuid: string;
let fresh = 0;
const configs: Record<'default' | 'secure', string> = { default: '', secure: '' };

function writeToml(name: string, top: string): string {
  const file = join(host.dir, `${name}.toml`);
  writeFileSync(
    file,
    `${top}\n[nvidia-container-cli]\nroot = "${host.driverRoot}"\n\n[nvidia-container-runtime]\ndebug = "${file}.log"\n\n` +
      `[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["${specDir}"]\n`,
  );
  return file;
}

beforeAll(async () => {
  host = await makeGpuHost(4);
  uuid = host.topology.gpus[PLUGIN_GPU]!.uuid;
  // What `nvidia-ctk cdi generate` writes for this host (device names by index and by UUID, as the plugin uses).
  specDir = join(host.dir, 'cdi');
  mkdirSync(specDir);
  const spec = generateCdiSpec(loadHostInventory({ driverRoot: host.driverRoot }), { hookPath: distBin('nvidia-runtime-hook') });
  writeFileSync(join(specDir, 'nvidia.json'), JSON.stringify(spec, null, 2));
  configs.default = writeToml('default', '');
  configs.secure = writeToml(
    'secure',
    'accept-nvidia-visible-devices-envvar-when-unprivileged = false\naccept-nvidia-visible-devices-as-volume-mounts = true',
  );
});
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

/** The config.json kubelet + containerd write for the pod's container, with the device plugin's Allocate response. */
async function podBundle(h: GpuHost, strategy: Strategy): Promise<string> {
  const rootfs = makeBusyboxRootfs(join(host.dir, `rootfs-${++fresh}`));
  const env = ['HOSTNAME=gpu-pod', ...IMAGE_ENV, 'KUBERNETES_SERVICE_HOST=10.96.0.1', 'KUBERNETES_SERVICE_PORT=443'];
  // ContainerAllocateResponse.Envs are appended after the image's env.
  if (strategy === 'envvar') env.push(`NVIDIA_VISIBLE_DEVICES=${uuid}`);
  if (strategy === 'volume-mounts') env.push(`NVIDIA_VISIBLE_DEVICES=${DEVICE_LIST_ROOT}`);
  const bundle = await makeBundle(h, rootfs, { env, args: ['ls', '-l', '/dev'], capabilities: CONTAINERD_CAPS });
  const file = join(bundle, 'config.json');
  const spec = JSON.parse(readFileSync(file, 'utf8'));
  spec.annotations = {
    'io.kubernetes.cri.container-type': 'container',
    'io.kubernetes.cri.container-name': 'cuda',
    'io.kubernetes.cri.image-name': 'nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04',
    'io.kubernetes.cri.sandbox-id': '6a1d0c3b9f2e4d5c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c',
    'io.kubernetes.cri.sandbox-name': 'gpu-pod',
    'io.kubernetes.cri.sandbox-namespace': 'default',
  };
  // ContainerAllocateResponse.Mounts: containerd makes them private read-only binds.
  if (strategy === 'volume-mounts') {
    spec.mounts.push({ destination: `${DEVICE_LIST_ROOT}/${uuid}`, type: 'bind', source: '/dev/null', options: ['rbind', 'rprivate', 'ro'] });
  }
  // ContainerAllocateResponse.Annotations, passed through to the runtime (container_annotations = ["cdi.k8s.io/*"]).
  if (strategy === 'cdi-annotations') spec.annotations[`cdi.k8s.io/nvidia-device-plugin_${RESPONSE_ID}`] = `nvidia.com/gpu=${uuid}`;
  writeFileSync(file, JSON.stringify(spec));
  return bundle;
}

const gpuNodes = (out: string) =>
  out.split('\n').filter((l) => /^c.* nvidia\d+$/.test(l)).map((l) => /(\S+)$/.exec(l)![1]).sort();

async function runPod(config: 'default' | 'secure', strategy: Strategy) {
  const h = { ...host, configFile: configs[config] };
  const bundle = await podBundle(h, strategy);
  const before = readFileSync(join(bundle, 'config.json'), 'utf8');
  const r = await runtimeRun(h, bundle);
  return { ...r, gpus: gpuNodes(r.stdout), unchanged: readFileSync(join(bundle, 'config.json'), 'utf8') === before };
}

const PLUGIN = [`nvidia${PLUGIN_GPU}`];
test.each([
  // The plugin's value comes after the image's `all` and wins.
  ['default', 'envvar', PLUGIN],
  // Unprivileged, and the env is not trusted: no GPU at all.
  ['secure', 'envvar', []],
  ['secure', 'volume-mounts', PLUGIN],
  ['default', 'cdi-annotations', PLUGIN],
  ['secure', 'cdi-annotations', PLUGIN],
] as const)('%s config, %s strategy: %j', async (config, strategy, expected) => {
  const r = await runPod(config, strategy);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  expect(r.gpus).toEqual(expected);
  // A container that gets nothing runs exactly as under runc.
  expect(r.unchanged).toBe(expected.length === 0);
});

test('volume-mounts under the default config: refused, naming the setting (never every GPU)', async () => {
  const r = await runPod('default', 'volume-mounts');
  expect(r.exitCode).not.toBe(0);
  expect(r.containerCreated).toBe(false);
  expect(r.unchanged).toBe(true);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^nvidia-runtime: NVIDIA_VISIBLE_DEVICES="\/var\/run\/nvidia-container-devices" .*accept-nvidia-visible-devices-as-volume-mounts = false; set accept-nvidia-visible-devices-as-volume-mounts = true/);
});

test('the image alone (no device plugin) gets no GPU under the secure config', async () => {
  const h = { ...host, configFile: configs.secure };
  const rootfs = makeBusyboxRootfs(join(host.dir, `rootfs-${++fresh}`));
  const bundle = await makeBundle(h, rootfs, { env: IMAGE_ENV, args: ['ls', '-l', '/dev'], capabilities: CONTAINERD_CAPS });
  const r = await runtimeRun(h, bundle);
  expect(r.exitCode).toBe(0);
  expect(gpuNodes(r.stdout)).toEqual([]);
});
