/**
 * Graphics, display, GDS and MOFED through Docker: a private dockerd with `nvidia` as its default runtime over a
 * mock driver root made with `--gpus 4 --graphics --gds --mofed` (and a second one over a root without GDS), real
 * runc, the gpu-test:glibc image and its dlopen probe; then Compose with three GPU services in the shape of the
 * seed's (compute, an OpenGL/nbody-like one and an EGL/peglgears-like one), each on its own GPU.
 */
import { execa } from 'execa';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGpuDockerd, type Dockerd } from '../helpers/dockerd.js';
import { makeGpuHost, type GpuHost } from '../helpers/runtime-env.js';
import { DRM_MAJOR, drmNodesOf } from '../../src/mock/features.js';

const LIB = '/usr/lib/x86_64-linux-gnu';
const EGL_VENDOR = '/usr/share/glvnd/egl_vendor.d/10_nvidia.json';
const VULKAN_ICD = '/etc/vulkan/icd.d/nvidia_icd.json';

type Daemon = Dockerd & { dir: string };
let host: GpuHost; // --gpus 4 --graphics --gds --mofed
let noGds: GpuHost; // --gpus 2 --graphics --mofed: GDS absent
let d: Daemon;
let dNoGds: Daemon;
let V: string; // the mock's driver version, from its topology

beforeAll(async () => {
  [host, noGds] = await Promise.all([
    makeGpuHost(4, '', ['--graphics', '--gds', '--mofed']),
    makeGpuHost(2, '', ['--graphics', '--mofed']),
  ]);
  V = host.topology.driverVersion;
  [d, dNoGds] = await Promise.all([startGpuDockerd(host, 'gxd'), startGpuDockerd(noGds, 'gxn')]);
}, 300_000);

afterAll(async () => {
  for (const daemon of [d, dNoGds]) await daemon?.stop();
  for (const dir of [host?.dir, noGds?.dir, d?.dir, dNoGds?.dir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The sysfs (and udev by-path) form of a topology bus id: `00000000:2a:00.0` → `0000:2a:00.0`. */
const sysfsBus = (nvmlBusId: string): string => nvmlBusId.toLowerCase().replace(/^0000(?=[0-9a-f]{4}:)/, '');

/** `docker run --rm --network none [env] gpu-test:glibc sh -c script`; throws with everything on a failure. */
async function run(daemon: Daemon, env: string[], script: string): Promise<string> {
  const r = await daemon.docker(['run', '--rm', '--network', 'none', ...env.flatMap((e) => ['-e', e]), 'gpu-test:glibc', 'sh', '-c', script], { reject: false });
  if (r.exitCode !== 0) throw new Error(`docker run ${env.join(' ')} failed (${r.exitCode})\nstderr: ${r.stderr}\nstdout: ${r.stdout}`);
  return r.stdout;
}

/** The char devices of a busybox `ls -l` listing, as `name major:minor` (base names), sorted. */
function charDevices(ls: string): string[] {
  return ls.split('\n').flatMap((l) => {
    const m = /^c\S*\s+\d+\s+\S+\s+\S+\s+(\d+),\s*(\d+)\s.*\s(\S+)$/.exec(l.trim());
    return m ? [`${m[3]!.split('/').pop()} ${m[1]}:${m[2]}`] : [];
  }).sort();
}

/** Every entry name of a busybox `ls -l` listing (no "total" line). */
const entryNames = (ls: string): string[] => ls.split('\n').filter((l) => /^[-bcdlps]/.test(l)).map((l) => l.trim().split(/\s+/).pop()!).sort();

/** Splits output made with `echo ---` between the parts. */
const parts = (out: string): string[] => out.split('---\n');

describe('graphics,utility with NVIDIA_VISIBLE_DEVICES=1', () => {
  let out: string[];
  let raw: string;
  beforeAll(async () => {
    raw = await run(d, ['NVIDIA_VISIBLE_DEVICES=1', 'NVIDIA_DRIVER_CAPABILITIES=graphics,utility'], [
      'ls -l /dev/dri',
      'for l in /dev/dri/by-path/*; do echo "$l -> $(readlink $l)"; done',
      `ls ${EGL_VENDOR} ${VULKAN_ICD}`,
      `dlopen-probe --json ${EGL_VENDOR}`,
      `dlopen-probe --json ${VULKAN_ICD}`,
      `readlink ${LIB}/gbm/nvidia-drm_gbm.so`,
      `ls /dev/nvidia-modeset ${LIB}/nvidia/xorg /usr/share/X11/xorg.conf.d/10-nvidia.conf 2>&1; true`,
      'ls /dev',
    ].join('; echo ---; '));
    out = parts(raw);
  }, 90_000);

  test('/dev/dri holds exactly GPU 1\'s card2 and renderD129 (226:2, 226:129), not the BMC\'s card0 nor other GPUs\'', () => {
    const n = drmNodesOf(1);
    expect([n.card, n.render]).toEqual(['card2', 'renderD129']);
    expect({ devices: charDevices(out[0]!), raw }).toEqual({ devices: [`card2 ${DRM_MAJOR}:2`, `renderD129 ${DRM_MAJOR}:129`], raw });
    expect({ entries: entryNames(out[0]!), raw }).toEqual({ entries: ['by-path', 'card2', 'renderD129'], raw });
  });

  test('/dev/dri/by-path holds exactly GPU 1\'s two udev links', () => {
    const bus = sysfsBus(host.topology.gpus[1]!.pciBusId);
    expect({ links: out[1]!.trim().split('\n').sort(), raw }).toEqual({
      links: [`/dev/dri/by-path/pci-${bus}-card -> ../card2`, `/dev/dri/by-path/pci-${bus}-render -> ../renderD129`],
      raw,
    });
  });

  test('glvnd\'s EGL vendor file and the Vulkan ICD exist, and glibc loads the libraries they name from the driver', () => {
    expect({ ls: out[2]!.trim().split('\n').sort(), raw }).toEqual({ ls: [VULKAN_ICD, EGL_VENDOR], raw });
    expect(out[3]).toContain(`json ${EGL_VENDOR}: libEGL_nvidia.so.0\n`);
    expect(out[3]).toContain(`dlopen libEGL_nvidia.so.0: OK (${LIB}/libEGL_nvidia.so.${V})`);
    expect(out[4]).toContain(`json ${VULKAN_ICD}: libGLX_nvidia.so.0\n`);
    expect(out[4]).toContain(`dlopen libGLX_nvidia.so.0: OK (${LIB}/libGLX_nvidia.so.${V})`);
  });

  test('the GBM backend link names the allocator of this driver version', () => {
    expect(out[5]!.trim()).toBe(`../libnvidia-allocator.so.${V}`);
  });

  test('no display parts: no nvidia-modeset, no X modules, no xorg.conf.d snippet; no GDS/MOFED nodes', () => {
    expect(out[6]).toMatch(/\/dev\/nvidia-modeset: No such file/);
    expect(out[6]).toMatch(/nvidia\/xorg: No such file/);
    expect(out[6]).toMatch(/10-nvidia\.conf: No such file/);
    const dev = out[7]!.split('\n');
    expect(dev).not.toContain('nvidia-modeset');
    expect(dev.filter((e) => /^nvidia/.test(e)).sort()).toEqual(['nvidia1', 'nvidiactl']);
    expect(dev.filter((e) => /nvidia-fs|infiniband/.test(e))).toEqual([]);
  });
});

test('graphics,display: nvidia-modeset 195:254, the X modules with the glxserver link, the xorg.conf.d snippets', async () => {
  const raw = await run(d, ['NVIDIA_VISIBLE_DEVICES=1', 'NVIDIA_DRIVER_CAPABILITIES=graphics,display,utility'], [
    'ls -l /dev/nvidia-modeset /dev/dri',
    `ls ${LIB}/nvidia/xorg; readlink ${LIB}/nvidia/xorg/libglxserver_nvidia.so`,
    'cat /usr/share/X11/xorg.conf.d/10-nvidia.conf; ls /etc/X11/xorg.conf.d',
  ].join('; echo ---; '));
  const [nodes, xorg, conf] = parts(raw);
  expect({ devices: charDevices(nodes!), raw }).toEqual({ devices: ['card2 226:2', 'nvidia-modeset 195:254', 'renderD129 226:129'], raw });
  expect({ xorg: xorg!.trim().split('\n'), raw }).toEqual({
    xorg: ['libglxserver_nvidia.so', `libglxserver_nvidia.so.${V}`, 'nvidia_drv.so', `libglxserver_nvidia.so.${V}`],
    raw,
  });
  expect(conf).toContain('MatchDriver "nvidia-drm"');
  expect(conf).toContain('ModulePath "/usr/lib/x86_64-linux-gnu/nvidia/xorg"');
  expect(conf).toContain('nvidia-drm-outputclass.conf');
}, 90_000);

describe('NVIDIA_GDS / NVIDIA_MOFED', () => {
  const probe = 'ls -l /dev /dev/infiniband 2>&1; echo ---; cat /etc/cufile.json 2>&1; echo; echo ---; ls -d /run/udev/data 2>&1; true';
  const companions = (ls: string) => charDevices(ls).filter((e) => /^(nvidia-fs|uverbs|rdma_cm)/.test(e));

  test('=enabled with a GPU: /dev/nvidia-fs0..3, /dev/infiniband/uverbs0,1 and rdma_cm with the host\'s numbers, /etc/cufile.json', async () => {
    const raw = await run(d, ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_GDS=enabled', 'NVIDIA_MOFED=enabled'], probe);
    const [ls, cufile, udev] = parts(raw);
    expect({ nodes: companions(ls!), raw }).toEqual({
      nodes: ['nvidia-fs0 241:0', 'nvidia-fs1 241:1', 'nvidia-fs2 241:2', 'nvidia-fs3 241:3', 'rdma_cm 10:58', 'uverbs0 231:192', 'uverbs1 231:193'],
      raw,
    });
    expect(JSON.parse(cufile!)).toEqual({ logging: { dir: '/var/log', level: 'ERROR' }, properties: { max_direct_io_size_kb: 16384 } });
    expect(udev!.trim()).toBe('/run/udev/data');
  }, 90_000);

  test('without the variables, or with NVIDIA_VISIBLE_DEVICES=void, none of them', async () => {
    for (const env of [['NVIDIA_VISIBLE_DEVICES=0'], ['NVIDIA_VISIBLE_DEVICES=void', 'NVIDIA_GDS=enabled', 'NVIDIA_MOFED=enabled']]) {
      const raw = await run(d, env, probe);
      const [ls, cufile] = parts(raw);
      expect({ env, nodes: companions(ls!), raw }).toEqual({ env, nodes: [], raw });
      expect(ls).toMatch(/\/dev\/infiniband: No such file/);
      expect(cufile).toMatch(/cufile\.json'?: No such file/);
    }
  }, 90_000);

  test('on a host without GDS, NVIDIA_GDS=enabled adds nothing (MOFED, which it has, still comes)', async () => {
    const raw = await run(dNoGds, ['NVIDIA_VISIBLE_DEVICES=1', 'NVIDIA_GDS=enabled', 'NVIDIA_MOFED=enabled'], probe);
    const [ls, cufile] = parts(raw);
    expect({ nodes: companions(ls!), raw }).toEqual({ nodes: ['rdma_cm 10:58', 'uverbs0 231:192', 'uverbs1 231:193'], raw });
    expect(cufile).toMatch(/cufile\.json'?: No such file/);
  }, 90_000);
});

describe('Compose: three runtime: nvidia services, one GPU each', () => {
  const project = 'nvrgfx';
  const compose = (file: string, args: string[]) =>
    execa('docker-compose', ['-f', file, '-p', project, ...args], { env: { DOCKER_HOST: d.host }, reject: false, stdin: 'ignore' });
  const service = (gpu: number, caps: string, script: string) => ({
    image: 'gpu-test:glibc',
    runtime: 'nvidia',
    network_mode: 'none',
    environment: [`NVIDIA_VISIBLE_DEVICES=${gpu}`, `NVIDIA_DRIVER_CAPABILITIES=${caps}`],
    command: ['sh', '-c', script],
  });
  const logs: Record<string, { exit: string; stdout: string; stderr: string }> = {};
  let upOutput = '';

  beforeAll(async () => {
    const file = join(host.dir, 'compose.yaml');
    // JSON is YAML: no quoting of the shell scripts to get wrong.
    writeFileSync(file, JSON.stringify({
      version: '2.4',
      services: {
        compute: service(0, 'compute,utility', 'nvidia-smi -L; dlopen-probe libcuda.so.1; echo ---; ls /dev; echo ---; ls /dev/dri 2>&1; true'),
        opengl: service(1, 'graphics,compute,utility', `dlopen-probe --json ${EGL_VENDOR}; echo ---; ls /dev; echo ---; ls /dev/dri`),
        egl: service(2, 'graphics,display', `dlopen-probe --json ${VULKAN_ICD}; echo ---; ls /dev; echo ---; ls /dev/dri; echo ---; ls -l /dev/nvidia-modeset`),
      },
    }, null, 2));
    try {
      const up = await compose(file, ['up', '-d', '--no-color']);
      upOutput = `docker-compose up (${up.exitCode})\nstdout: ${up.stdout}\nstderr: ${up.stderr}`;
      if (up.exitCode !== 0) throw new Error(upOutput);
      for (const svc of ['compute', 'opengl', 'egl']) {
        const ps = await compose(file, ['ps', '-q', svc]);
        const id = ps.stdout.trim();
        if (!id) throw new Error(`no container for ${svc}: ${ps.stderr}\n${upOutput}`);
        const wait = await d.docker(['wait', id], { reject: false });
        const l = await d.docker(['logs', id], { reject: false });
        logs[svc] = { exit: wait.stdout.trim(), stdout: l.stdout, stderr: l.stderr };
      }
    } finally {
      const down = await compose(file, ['down']);
      upOutput += `\ndocker-compose down (${down.exitCode}): ${down.stderr}`;
    }
  }, 180_000);

  const outputOf = (svc: string) => {
    const l = logs[svc];
    if (!l) throw new Error(`${svc} did not run\n${upOutput}`);
    const context = `${svc}: exit ${l.exit}\nstderr: ${l.stderr}\nstdout: ${l.stdout}\n${upOutput}`;
    expect({ exit: l.exit, context }).toEqual({ exit: '0', context });
    return { p: parts(l.stdout), context };
  };
  const nodes = (ls: string) => ls.trim().split('\n').filter((e) => e !== 'by-path').sort();

  test('compute (GPU 0, compute,utility): nvidia-smi sees GPU 0 only, libcuda loads, no DRM nodes, no modeset', () => {
    const { p, context } = outputOf('compute');
    const g = host.topology.gpus;
    expect(p[0]).toContain(`GPU 0: ${g[0]!.name} (UUID: ${g[0]!.uuid})`);
    for (const other of g.slice(1)) expect(p[0]).not.toContain(other.uuid);
    expect(p[0]).toContain(`dlopen libcuda.so.1: OK (${LIB}/libcuda.so.${V})`);
    const dev = p[1]!.split('\n');
    expect({ nvidia: dev.filter((e) => e.startsWith('nvidia')).sort(), context }).toEqual({ nvidia: ['nvidia-uvm', 'nvidia-uvm-tools', 'nvidia0', 'nvidiactl'], context });
    expect(p[2]).toMatch(/\/dev\/dri: No such file/);
  });

  test('opengl (GPU 1, graphics,compute,utility): the EGL vendor library loads; card2/renderD129 only; no modeset', () => {
    const { p, context } = outputOf('opengl');
    expect(p[0]).toContain(`json ${EGL_VENDOR}: libEGL_nvidia.so.0\n`);
    expect(p[0]).toContain(`dlopen libEGL_nvidia.so.0: OK (${LIB}/libEGL_nvidia.so.${V})`);
    expect({ dev: p[1]!.split('\n').filter((e) => e.startsWith('nvidia')).sort(), context }).toEqual({ dev: ['nvidia-uvm', 'nvidia-uvm-tools', 'nvidia1', 'nvidiactl'], context });
    expect({ dri: nodes(p[2]!), context }).toEqual({ dri: ['card2', 'renderD129'], context });
  });

  test('egl (GPU 2, graphics,display): the Vulkan ICD library loads; card3/renderD130 only; nvidia-modeset', () => {
    const { p, context } = outputOf('egl');
    const n = drmNodesOf(2);
    expect(p[0]).toContain(`json ${VULKAN_ICD}: libGLX_nvidia.so.0\n`);
    expect(p[0]).toContain(`dlopen libGLX_nvidia.so.0: OK (${LIB}/libGLX_nvidia.so.${V})`);
    expect({ dev: p[1]!.split('\n').filter((e) => e.startsWith('nvidia')).sort(), context }).toEqual({ dev: ['nvidia-modeset', 'nvidia2', 'nvidiactl'], context });
    expect([n.card, n.render]).toEqual(['card3', 'renderD130']);
    expect({ dri: nodes(p[2]!), context }).toEqual({ dri: ['card3', 'renderD130'], context });
    expect({ modeset: charDevices(p[3]!), context }).toEqual({ modeset: ['nvidia-modeset 195:254'], context });
  });
});
