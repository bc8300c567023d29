/**
 * The Kubernetes node path, through CRI: a private containerd 1.6 with its CRI plugin (config written by our own
 * `nvidia-ctk runtime configure --runtime=containerd`, as a drop-in its main file imports), driven over gRPC by a
 * small CRI v1 client the way the kubelet drives it: RunPodSandbox with `runtime_handler: "nvidia"`, then
 * CreateContainer/StartContainer for a container carrying what k8s-device-plugin's Allocate answer adds for each
 * DEVICE_LIST_STRATEGY. The container prints its /dev, `nvidia-smi -L` (the mock driver's) and its env, and exits;
 * the test reads its CRI log file. The runtime reads a config.toml pointing at a mock driver root with 4 GPUs,
 * named by NVIDIA_CTK_CONFIG_FILE_PATH in containerd's environment (shim → runtime inherit it); the default config
 * first, then containerd restarted with the recommended secure one. Pods use the host network (no CNI).
 */
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { distBin, tempDir } from '../helpers/dist.js';
import { makeBusyboxRootfs, makeGlibcRootfs } from '../helpers/images.js';
import { makeGpuHost, type GpuHost } from '../helpers/runtime-env.js';
import { parseCriLog, type ContainerConfig, type KeyValue, type Mount, type PodSandboxConfig } from '../helpers/cri/client.js';
import {
  cleanupContainerd, containerdPaths, CRI_PLUGIN, importImage, startContainerd, stopContainerd, writeMainConfig,
  type ContainerdPaths, type RunningContainerd,
} from '../helpers/cri/containerd.js';
import { writeDockerArchive } from '../helpers/cri/image-archive.js';

const PAUSE_IMAGE = 'localhost/nvr-pause:1';
const GPU_IMAGE = 'localhost/nvr-cuda:1';
/** What a CUDA base image bakes in: the threat the secure config answers. */
const IMAGE_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_DRIVER_CAPABILITIES=compute,utility'];
const DEVICE_LIST_ROOT = '/var/run/nvidia-container-devices';
const RESPONSE_ID = '3f1c2e8a-5b7d-4e21-9a0c-6d4b8e2f1a90'; // the plugin's per-Allocate id in the annotation key
const PLUGIN_GPU = 2;
const SCRIPT = 'ls /dev; echo ---; nvidia-smi -L 2>&1; echo ---; env; echo ---end';

type Strategy = 'envvar' | 'volume-mounts' | 'cdi-annotations';
type ConfigName = 'default' | 'secure';

let host: GpuHost;
let p: ContainerdPaths;
let containerd: RunningContainerd | undefined;
let uuid: string;
let specDir: string;
let runningConfig: ConfigName | undefined;
const configs: Record<ConfigName, string> = { default: '', secure: '' };
const livePods = new Set<string>();
let podCount = 0;

const ctk = (...args: string[]) => execa(distBin('nvidia-ctk'), args);
const cri = () => containerd!.cri;

function writeRuntimeConfig(name: ConfigName, top: string): string {
  const file = join(host.dir, `${name}.toml`);
  writeFileSync(
    file,
    `${top}\n[nvidia-container-cli]\nroot = "${host.driverRoot}"\n\n[nvidia-container-runtime]\ndebug = "${file}.log"\n\n` +
      `[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["${specDir}"]\n`,
    { mode: 0o644 },
  );
  return file;
}

async function useConfig(name: ConfigName): Promise<void> {
  if (runningConfig === name) return;
  await stopContainerd(containerd);
  containerd = undefined;
  runningConfig = undefined;
  containerd = await startContainerd(p, { NVIDIA_CTK_CONFIG_FILE_PATH: configs[name] });
  runningConfig = name;
}

beforeAll(async () => {
  host = await makeGpuHost(4);
  uuid = host.topology.gpus[PLUGIN_GPU]!.uuid;
  p = containerdPaths(tempDir('cri')); // short: the socket path must stay below 108 bytes

  // `nvidia-ctk cdi generate` for the mock host (devices by index and by UUID, as the plugin names them).
  specDir = join(host.dir, 'cdi');
  mkdirSync(specDir);
  await ctk('cdi', 'generate', '--driver-root', host.driverRoot, '--output', join(specDir, 'nvidia.yaml'));
  configs.default = writeRuntimeConfig('default', '');
  configs.secure = writeRuntimeConfig('secure',
    'accept-nvidia-visible-devices-envvar-when-unprivileged = false\naccept-nvidia-visible-devices-as-volume-mounts = true');

  // The images, built here: a pause image (sleeps until killed) and a small glibc "CUDA" image.
  const pause = makeBusyboxRootfs(join(host.dir, 'pause-rootfs'));
  await writeDockerArchive(pause, join(host.dir, 'pause.tar'), {
    ref: PAUSE_IMAGE, entrypoint: ['/bin/sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"],
  });
  const cuda = await makeGlibcRootfs(join(host.dir, 'cuda-rootfs'));
  await writeDockerArchive(cuda, join(host.dir, 'cuda.tar'), { ref: GPU_IMAGE, env: IMAGE_ENV, cmd: ['sh'] });

  // The node's config, then our handler through `nvidia-ctk runtime configure` (drop-in + imports), reading the
  // runtime's config.toml as the runtime will: the pod's CDI annotations reach the runtime only through the
  // handler's container_annotations (containerd 1.6 has no CDI support of its own), one glob per prefix it names.
  writeMainConfig(p, { sandboxImage: PAUSE_IMAGE });
  await execa(distBin('nvidia-ctk'), ['runtime', 'configure', '--runtime=containerd', '--config', p.configFile, '--drop-in-config', p.dropIn,
    '--nvidia-runtime-path', distBin('nvidia-runtime')], { env: { NVIDIA_CTK_CONFIG_FILE_PATH: configs.default } });

  await useConfig('default');
  await importImage(p, join(host.dir, 'pause.tar'));
  await importImage(p, join(host.dir, 'cuda.tar'));
}, 600000);

afterAll(async () => {
  const problems: string[] = [];
  if (containerd) {
    for (const id of livePods) {
      await cri().stopPodSandbox(id).then(() => cri().removePodSandbox(id)).catch((e: Error) => problems.push(e.message));
    }
  }
  await stopContainerd(containerd);
  if (p) problems.push(...(await cleanupContainerd(p)));
  if (host) rmSync(host.dir, { recursive: true, force: true });
  if (problems.length) console.warn(`cri.test.ts cleanup:\n${problems.join('\n')}`);
}, 120000);

interface PodRequest {
  handler: string;
  envs?: KeyValue[];
  mounts?: Mount[];
  annotations?: Record<string, string>;
}

interface PodResult {
  containerId: string;
  exitCode: number;
  /** /dev/nvidia<N> the container saw. */
  gpus: string[];
  smi: string;
  env: string[];
}

/** What the device plugin's Allocate answer adds to the container, per strategy (docs/kubernetes.md §2). */
function allocate(strategy: Strategy): Omit<PodRequest, 'handler'> {
  switch (strategy) {
    case 'envvar':
      return { envs: [{ key: 'NVIDIA_VISIBLE_DEVICES', value: uuid }] };
    case 'volume-mounts':
      return {
        envs: [{ key: 'NVIDIA_VISIBLE_DEVICES', value: DEVICE_LIST_ROOT }],
        mounts: [{ container_path: `${DEVICE_LIST_ROOT}/${uuid}`, host_path: '/dev/null', readonly: true }],
      };
    case 'cdi-annotations':
      return { annotations: { [`cdi.k8s.io/nvidia-device-plugin_${RESPONSE_ID}`]: `nvidia.com/gpu=${uuid}` } };
  }
}

/**
 * One pod as the kubelet runs it: sandbox (host network), the container (unprivileged, containerd's default
 * capabilities), started, waited for, its CRI log read; the pod stopped and removed whatever happened.
 */
async function runPod(req: PodRequest): Promise<PodResult> {
  const name = `gpu-pod-${++podCount}`;
  const logDir = join(p.dir, 'logs', name);
  mkdirSync(logDir, { recursive: true });
  const hostNetwork = { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } as const;
  const sandbox: PodSandboxConfig = {
    metadata: { name, uid: `${process.pid}-${podCount}`, namespace: 'default', attempt: 0 },
    // No hostname: the kubelet sets none for a host-network pod (it shares the node's UTS namespace).
    log_directory: logDir,
    labels: { 'io.kubernetes.pod.name': name },
    linux: { security_context: { namespace_options: hostNetwork } },
  };
  const podId = await cri().runPodSandbox(sandbox, req.handler);
  livePods.add(podId);
  try {
    const container: ContainerConfig = {
      metadata: { name: 'cuda', attempt: 0 },
      image: { image: GPU_IMAGE },
      command: ['sh', '-c', SCRIPT],
      envs: req.envs ?? [],
      mounts: req.mounts ?? [],
      annotations: req.annotations ?? {},
      log_path: 'cuda/0.log',
      linux: { security_context: { namespace_options: hostNetwork } },
    };
    const containerId = await cri().createContainer(podId, container, sandbox);
    await cri().startContainer(containerId);
    const status = await cri().waitExited(containerId);
    const logFile = join(logDir, 'cuda', '0.log');
    let out = '';
    // The log is complete once the last line is in (containerd copies the container's stdout asynchronously).
    for (let i = 0; i < 50 && !out.includes('---end'); i++) {
      if (i) await new Promise((r) => setTimeout(r, 100));
      out = existsSync(logFile) ? parseCriLog(readFileSync(logFile, 'utf8')).stdout : '';
    }
    const [dev = '', smi = '', env = ''] = out.split('---\n');
    return {
      containerId,
      exitCode: status.exit_code,
      gpus: dev.split('\n').filter((l) => /^nvidia\d+$/.test(l)).sort(),
      smi: smi.trim(),
      env: env.split('\n').filter((l) => l.startsWith('NVIDIA_')),
    };
  } finally {
    await cri().stopPodSandbox(podId);
    await cri().removePodSandbox(podId);
    livePods.delete(podId);
  }
}

/** The runtime's debug log of `config`: proof that the runtime containerd ran read that config.toml. */
const runtimeLog = (config: ConfigName) => (existsSync(`${configs[config]}.log`) ? readFileSync(`${configs[config]}.log`, 'utf8') : '');
const smiLine = (i: number) => `GPU 0: ${host.topology.gpus[i]!.name} (UUID: ${host.topology.gpus[i]!.uuid})`;

function expectOnlyPluginGpu(r: PodResult, config: ConfigName): void {
  expect(r.exitCode).toBe(0);
  expect(r.gpus).toEqual([`nvidia${PLUGIN_GPU}`]);
  expect(r.smi).toBe(smiLine(PLUGIN_GPU));
  expect(runtimeLog(config)).toContain(r.containerId);
}

function expectNoGpu(r: PodResult): void {
  expect(r.exitCode).toBe(0);
  expect(r.gpus).toEqual([]);
  expect(r.smi).toMatch(/nvidia-smi: not found/); // no driver files either: the container ran as under runc
}

test('the node: configure wrote a drop-in the main config imports; containerd serves CRI v1 with the nvidia handler', async () => {
  const main = parseToml(readFileSync(p.configFile, 'utf8')) as Record<string, unknown>;
  expect(main.imports).toEqual([p.dropIn]);
  const dropIn = parseToml(readFileSync(p.dropIn, 'utf8')) as { plugins: Record<string, { containerd: { runtimes: Record<string, Record<string, unknown>> } }> };
  const nvidia = dropIn.plugins[CRI_PLUGIN]!.containerd.runtimes.nvidia!;
  expect(nvidia).toEqual({
    runtime_type: 'io.containerd.runc.v2',
    container_annotations: ['cdi.k8s.io/*'], // the runtime config's annotation-prefixes
    options: { SystemdCgroup: false, Root: p.runcRoot, BinaryName: distBin('nvidia-runtime') }, // inherited from runc, + ours
  });
  // containerd itself reads it so: the drop-in's CRI table (with the main file's sandbox image and runc handler).
  const dump = (await execa('containerd', ['--config', p.configFile, 'config', 'dump'])).stdout;
  expect(dump).toContain(`[plugins."${CRI_PLUGIN}".containerd.runtimes.nvidia]`);
  expect(dump).toContain(`BinaryName = "${distBin('nvidia-runtime')}"`);
  expect(dump).toContain(`sandbox_image = "${PAUSE_IMAGE}"`);
  expect(dump).toContain(`[plugins."${CRI_PLUGIN}".containerd.runtimes.runc]`);

  const v = await cri().version();
  expect(v.runtime_name).toBe('containerd');
  expect(v.runtime_api_version).toBe('v1');
  for (const image of [PAUSE_IMAGE, GPU_IMAGE]) expect((await cri().imageStatus(image))?.repo_tags).toContain(image);
});

describe('default config.toml', () => {
  beforeAll(() => useConfig('default'), 180000);

  test('envvar strategy: NVIDIA_VISIBLE_DEVICES=<uuid> from the plugin overrides the image\'s "all": only its GPU', async () => {
    const r = await runPod({ handler: 'nvidia', ...allocate('envvar') });
    expectOnlyPluginGpu(r, 'default');
  });

  test('envvar strategy by index (DEVICE_ID_STRATEGY=index): only that GPU', async () => {
    const r = await runPod({ handler: 'nvidia', envs: [{ key: 'NVIDIA_VISIBLE_DEVICES', value: String(PLUGIN_GPU) }] });
    expectOnlyPluginGpu(r, 'default');
  });

  test('cdi-annotations strategy: the annotation reaches the runtime, which injects the GPU from the CDI spec', async () => {
    const r = await runPod({ handler: 'nvidia', ...allocate('cdi-annotations') });
    expectOnlyPluginGpu(r, 'default');
    expect(r.env).toContain('NVIDIA_VISIBLE_DEVICES=void'); // the spec's own env: nothing downstream injects again
  });

  test('the image alone under the nvidia handler gets every GPU (why the secure config exists)', async () => {
    const r = await runPod({ handler: 'nvidia' });
    expect(r.exitCode).toBe(0);
    expect(r.gpus).toEqual(['nvidia0', 'nvidia1', 'nvidia2', 'nvidia3']);
  });

  test('a pod without the handler (the default runc handler) gets no GPU, even with NVIDIA_VISIBLE_DEVICES=all', async () => {
    const before = runtimeLog('default');
    const r = await runPod({ handler: '', envs: [{ key: 'NVIDIA_VISIBLE_DEVICES', value: 'all' }] });
    expectNoGpu(r);
    expect(r.env).toContain('NVIDIA_VISIBLE_DEVICES=all');
    expect(runtimeLog('default').slice(before.length)).not.toContain(r.containerId); // nvidia-runtime never ran
  });

  test('volume-mounts strategy: StartContainer fails with the runtime\'s message naming the setting', async () => {
    const err = await runPod({ handler: 'nvidia', ...allocate('volume-mounts') }).then(() => null, (e: Error) => e);
    expect(err).not.toBeNull();
    expect(err!.message).toMatch(/^CRI StartContainer: .*OCI runtime create failed/);
    expect(err!.message).toContain('accept-nvidia-visible-devices-as-volume-mounts = false; set accept-nvidia-visible-devices-as-volume-mounts = true');
  });
});

describe('secure config.toml (accept-…-envvar-when-unprivileged = false, accept-…-as-volume-mounts = true)', () => {
  beforeAll(() => useConfig('secure'), 180000);

  test('envvar strategy: an unprivileged container\'s env is not trusted: no GPU', async () => {
    const r = await runPod({ handler: 'nvidia', ...allocate('envvar') });
    expectNoGpu(r);
    expect(r.env).toContain(`NVIDIA_VISIBLE_DEVICES=${uuid}`); // the spec left as it was
    expect(runtimeLog('secure')).toMatch(new RegExp(`create ${r.containerId}: not a GPU container .*accept-nvidia-visible-devices-envvar-when-unprivileged = false`));
  });

  test('the image alone gets no GPU', async () => {
    const r = await runPod({ handler: 'nvidia' });
    expectNoGpu(r);
    expect(r.env).toContain('NVIDIA_VISIBLE_DEVICES=all');
  });

  test('volume-mounts strategy: the /dev/null mount names the GPU: only that GPU', async () => {
    const r = await runPod({ handler: 'nvidia', ...allocate('volume-mounts') });
    expectOnlyPluginGpu(r, 'secure');
  });

  test('cdi-annotations strategy: only the plugin\'s GPU', async () => {
    const r = await runPod({ handler: 'nvidia', ...allocate('cdi-annotations') });
    expectOnlyPluginGpu(r, 'secure');
  });

  test('a pod without the handler gets no GPU', async () => {
    expectNoGpu(await runPod({ handler: '', ...allocate('volume-mounts') }));
  });
});
