/**
 * Every capability end to end with real runc and the mock driver root (`--graphics --gds --mofed --nvswitch
 * --gdrcopy`): what a container sees for graphics and display (its GPU's DRM nodes and by-path links, the glvnd
 * vendor file and Vulkan ICD that glibc's dlopen resolves), the no-glvnd driver option, CUDA forward
 * compatibility in every cuda-compat-mode, GDS/MOFED/NVSwitch/GDRCopy, and the same through a CDI spec.
 */
import { execa } from 'execa';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distBin } from '../helpers/dist.js';
import { makeCompatRootfs, makeGlibcRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, runtimeRun, writeConfig, type GpuHost } from '../helpers/runtime-env.js';
import { drmNodesOf } from '../../src/mock/features.js';
import { sysfsBusId } from '../../src/host/graphics.js';

const V = '550.54.15';
const LIB = '/usr/lib/x86_64-linux-gnu';
let host: GpuHost;
let plain: GpuHost; // no graphics, no companions: what a host without them gives
let glibc: string;
let compatNewer: string;
let compatOlder: string;

beforeAll(async () => {
  host = await makeGpuHost(4, '', ['--graphics', '--gds', '--mofed', '--nvswitch', '--gdrcopy']);
  plain = await makeGpuHost(2);
  glibc = await makeGlibcRootfs(join(host.dir, 'glibc'));
  compatNewer = await makeCompatRootfs(join(host.dir, 'compat-560'), '560.35.03');
  compatOlder = await makeCompatRootfs(join(host.dir, 'compat-545'), '545.23.08');
}, 180_000);
afterAll(() => {
  for (const h of [host, plain]) if (h) rmSync(h.dir, { recursive: true, force: true });
});

let copies = 0;
/** Runs `script` in a container of a fresh copy of `rootfs` (as an engine's overlay would give: nothing an earlier
 *  container's hook or mount points left) with `env`; stdout, and a failure message that shows everything. */
async function run(h: GpuHost, rootfs: string, env: string[], script: string): Promise<string> {
  const copy = `${rootfs}-run${++copies}`;
  await execa('cp', ['-a', rootfs, copy]);
  const bundle = await makeBundle(h, copy, { env, args: ['sh', '-c', script] });
  const r = await runtimeRun(h, bundle);
  if (r.exitCode !== 0 || r.stderr !== '') throw new Error(`container failed (${r.exitCode}): ${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

const GPU1 = () => host.topology.gpus[1]!;

describe('graphics (NVIDIA_VISIBLE_DEVICES=1)', () => {
  let out: string[];
  beforeAll(async () => {
    const text = await run(host, glibc, ['NVIDIA_VISIBLE_DEVICES=1', 'NVIDIA_DRIVER_CAPABILITIES=graphics,utility'], [
      "stat -c '%n %t:%T' /dev/dri/card* /dev/dri/renderD*",
      'for l in /dev/dri/by-path/*; do echo "$l -> $(readlink $l)"; done',
      'dlopen-probe --json /usr/share/glvnd/egl_vendor.d/10_nvidia.json',
      'dlopen-probe --json /etc/vulkan/icd.d/nvidia_icd.json',
      'dlopen-probe --json /usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json',
      `readlink ${LIB}/gbm/nvidia-drm_gbm.so; readlink ${LIB}/libGLX_indirect.so.0; ls /etc/vulkan/implicit_layer.d`,
      'ls /dev/nvidia-modeset /usr/lib/x86_64-linux-gnu/nvidia 2>&1; ls /dev',
    ].join('; echo ---; '));
    out = text.split('---\n');
  }, 60_000);

  test('exactly GPU 1\'s DRM nodes, found through its PCI bus id (card2, behind the BMC\'s card0), with the host\'s numbers', () => {
    const d = drmNodesOf(1);
    expect([d.card, d.render]).toEqual(['card2', 'renderD129']);
    expect(out[0]!.trim().split('\n')).toEqual([`/dev/dri/card2 e2:${d.cardMinor.toString(16)}`, `/dev/dri/renderD129 e2:${d.renderMinor.toString(16)}`]);
  });

  test('the by-path links of those nodes only, as udev names them', () => {
    const bus = sysfsBusId(GPU1().pciBusId);
    expect(out[1]!.trim().split('\n').sort()).toEqual([`/dev/dri/by-path/pci-${bus}-card -> ../card2`, `/dev/dri/by-path/pci-${bus}-render -> ../renderD129`]);
  });

  test('glvnd\'s vendor file, the Vulkan ICD and the GBM platform name libraries that glibc loads from the driver', () => {
    expect(out[2]).toContain('json /usr/share/glvnd/egl_vendor.d/10_nvidia.json: libEGL_nvidia.so.0');
    expect(out[2]).toContain(`dlopen libEGL_nvidia.so.0: OK (${LIB}/libEGL_nvidia.so.${V})`);
    expect(out[3]).toContain(`dlopen libGLX_nvidia.so.0: OK (${LIB}/libGLX_nvidia.so.${V})`);
    expect(out[4]).toContain(`dlopen libnvidia-egl-gbm.so.1: OK (${LIB}/libnvidia-egl-gbm.so.1.1.1)`);
  });

  test('the GBM backend and indirect GLX links, the Vulkan layer; no display parts', () => {
    expect(out[5]!.trim().split('\n')).toEqual([`../libnvidia-allocator.so.${V}`, `libGLX_nvidia.so.${V}`, 'nvidia_layers.json']);
    expect(out[6]).toMatch(/\/dev\/nvidia-modeset: No such file/);
    expect(out[6]).toMatch(/nvidia: No such file/);
    expect(out[6]).not.toMatch(/nvidia-fs|infiniband|nvswitch|gdrdrv/);
  });
});

test('display: nvidia-modeset, the X modules with the glxserver link, the xorg.conf.d snippets', async () => {
  const out = await run(host, glibc, ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_DRIVER_CAPABILITIES=display'], [
    "stat -c '%n %t:%T' /dev/nvidia-modeset /dev/dri/card* /dev/dri/renderD*",
    `ls ${LIB}/nvidia/xorg; readlink ${LIB}/nvidia/xorg/libglxserver_nvidia.so`,
    'ls /usr/share/X11/xorg.conf.d /etc/X11/xorg.conf.d',
  ].join('; echo ---; '));
  const [nodes, xorg, conf] = out.split('---\n');
  expect(nodes!.trim().split('\n')).toEqual(['/dev/nvidia-modeset c3:fe', '/dev/dri/card1 e2:1', '/dev/dri/renderD128 e2:80']);
  expect(xorg!.trim().split('\n')).toEqual([`libglxserver_nvidia.so`, `libglxserver_nvidia.so.${V}`, 'nvidia_drv.so', `libglxserver_nvidia.so.${V}`]);
  expect(conf).toContain('10-nvidia.conf');
  expect(conf).toContain('nvidia-drm-outputclass.conf');
}, 60_000);

test('a busybox image (no glibc) still gets its DRM by-path links', async () => {
  // A copy of the glibc rootfs without ld.so.conf and ld.so.cache: what the hook takes for a non-glibc image.
  const rootfs = join(host.dir, 'bb-only');
  await execa('cp', ['-a', glibc, rootfs]);
  rmSync(join(rootfs, 'etc/ld.so.cache'));
  rmSync(join(rootfs, 'etc/ld.so.conf'));
  const out = await run(host, rootfs, ['NVIDIA_VISIBLE_DEVICES=3', 'NVIDIA_DRIVER_CAPABILITIES=graphics'], 'ls /dev/dri/by-path; ls /etc/ld.so.cache 2>&1; true');
  const bus = sysfsBusId(host.topology.gpus[3]!.pciBusId);
  expect(out).toContain(`pci-${bus}-card`);
  expect(out).toMatch(/ld\.so\.cache: No such file/);
}, 60_000);

test('driver option no-glvnd (config.toml): NVIDIA\'s libGL instead of the glvnd vendor libraries', async () => {
  const h = { ...host, configFile: join(host.dir, 'no-glvnd.toml') };
  writeFileSync(h.configFile, `[nvidia-container-cli]\nroot = "${host.driverRoot}"\ndriver-options = ["no-glvnd", "no-uvm"]\n`);
  const out = await run(h, glibc, ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_DRIVER_CAPABILITIES=graphics,compute'], `dlopen-probe libGL.so.1; ls ${LIB}; ls /dev`);
  expect(out).toContain(`dlopen libGL.so.1: OK (${LIB}/libGL.so.${V})`);
  expect(out).not.toContain('libGLX_nvidia');
  expect(out).not.toContain('nvidia-uvm');
}, 60_000);

describe('CUDA forward compatibility (host driver 550, image compat libcuda 560)', () => {
  const withMode = (mode: string, more = ''): GpuHost => {
    const h = { ...host, configFile: join(host.dir, `compat-${mode}.toml`) };
    writeConfig(h.configFile, host.driverRoot, `${more}\n[nvidia-container-runtime.modes.legacy]\ncuda-compat-mode = "${mode}"\n`);
    return h;
  };
  const probe = 'dlopen-probe libcuda.so.1; ls /etc/ld.so.conf.d';
  const env = ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_DRIVER_CAPABILITIES=compute,utility'];

  test.each([
    ['ldconfig', '/usr/local/cuda/compat/libcuda.so.560.35.03'],
    ['hook', '/usr/local/cuda/compat/libcuda.so.560.35.03'],
    ['mount', `${LIB}/libcuda.so.560.35.03`],
    ['disabled', `${LIB}/libcuda.so.${V}`],
  ])('cuda-compat-mode = %s: libcuda.so.1 is %s', async (mode, want) => {
    const out = await run(withMode(mode), compatNewer, env, probe);
    expect(out).toContain(`dlopen libcuda.so.1: OK (${want})`);
    if (mode === 'ldconfig' || mode === 'hook') expect(out).toMatch(/00-compat-560\.conf/);
    else expect(out).not.toMatch(/00-compat/);
  }, 60_000);

  test('the default mode is ldconfig; an older compat libcuda (545) never shadows the host driver, in any mode', async () => {
    expect(await run(host, compatNewer, env, probe)).toContain('OK (/usr/local/cuda/compat/libcuda.so.560.35.03)');
    for (const mode of ['ldconfig', 'hook', 'mount']) {
      const out = await run(withMode(mode), compatOlder, env, probe);
      expect(out).toContain(`dlopen libcuda.so.1: OK (${LIB}/libcuda.so.${V})`);
    }
  }, 120_000);

  test('without compute nothing is done; features.disable-cuda-compat-lib-hook turns mode hook off', async () => {
    const utility = await run(withMode('ldconfig'), compatNewer, ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_DRIVER_CAPABILITIES=utility'], 'ls /etc/ld.so.conf.d');
    expect(utility).not.toMatch(/00-compat/);
    const off = await run(withMode('hook', '[features]\ndisable-cuda-compat-lib-hook = true'), compatNewer, env, probe);
    expect(off).toContain(`OK (${LIB}/libcuda.so.${V})`);
  }, 60_000);

  test('a compat library that is a symlink out of the rootfs is resolved inside it (never the host file)', async () => {
    const rootfs = join(host.dir, 'compat-escape');
    await execa('cp', ['-a', compatNewer, rootfs]);
    const decoyDir = join(host.dir, 'decoy');
    mkdirSync(decoyDir, { recursive: true });
    // An absolute link to a host directory that holds a newer libcuda; inside the rootfs that path does not exist.
    rmSync(join(rootfs, 'usr/local/cuda/compat'), { recursive: true });
    symlinkSync(decoyDir, join(rootfs, 'usr/local/cuda/compat'));
    await execa('cp', [join(compatNewer, 'usr/local/cuda/compat/libcuda.so.560.35.03'), decoyDir]);
    for (const mode of ['ldconfig', 'mount']) {
      const out = await run(withMode(mode), rootfs, env, probe);
      expect(out).toContain(`dlopen libcuda.so.1: OK (${LIB}/libcuda.so.${V})`);
    }
  }, 60_000);
});

describe('GDS, MOFED, NVSwitch, GDRCopy', () => {
  const ls = 'ls /dev /dev/infiniband /etc 2>&1; true';
  test('=enabled with a GPU: the nodes and cufile.json', async () => {
    const out = await run(host, glibc, ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_GDS=enabled', 'NVIDIA_MOFED=enabled', 'NVIDIA_NVSWITCH=enabled', 'NVIDIA_GDRCOPY=enabled'], ls);
    for (const n of ['nvidia-fs0', 'nvidia-fs3', 'uverbs0', 'uverbs1', 'rdma_cm', 'nvidia-nvswitchctl', 'nvidia-nvswitch3', 'gdrdrv', 'cufile.json']) expect(out).toContain(n);
  }, 60_000);

  test('only what is enabled; nothing without a GPU, nothing for another value, nothing on a host without them', async () => {
    const gds = await run(host, glibc, ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_GDS=enabled', 'NVIDIA_MOFED=yes'], ls);
    expect(gds).toContain('nvidia-fs0');
    expect(gds).not.toMatch(/uverbs|rdma_cm|nvswitch|gdrdrv/);
    const none = await run(host, glibc, ['NVIDIA_VISIBLE_DEVICES=none', 'NVIDIA_GDS=enabled', 'NVIDIA_MOFED=enabled'], ls);
    expect(none).not.toMatch(/nvidia-fs|uverbs|cufile/);
    const absent = await run(plain, glibc, ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_GDS=enabled', 'NVIDIA_MOFED=enabled'], ls);
    expect(absent).not.toMatch(/nvidia-fs|uverbs|cufile/);
  }, 60_000);
});

describe('through a CDI spec (nvidia-ctk cdi generate, the runtime in CDI mode)', () => {
  let specDir: string;
  beforeAll(async () => {
    specDir = join(host.dir, 'cdi');
    mkdirSync(specDir);
    await execa(distBin('nvidia-ctk'), ['cdi', 'generate', '--driver-root', host.driverRoot, '--output', join(specDir, 'nvidia.yaml')]);
    await execa(distBin('nvidia-ctk'), ['cdi', 'generate', '--driver-root', host.driverRoot, '--mode', 'gds', '--output', join(specDir, 'gds.yaml')]);
    const r = await execa(distBin('nvidia-ctk'), ['cdi', 'generate', '--driver-root', plain.driverRoot, '--mode', 'mofed'], { reject: false });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/no \/dev\/infiniband\/uverbs\* or rdma_cm device nodes found/);
  }, 60_000);

  test('nvidia.com/gpu=1 + nvidia.com/gds=all: GPU 1\'s DRM nodes and by-path links, the vendor file, GDS nodes', async () => {
    const h = { ...host, configFile: join(host.dir, 'cdi.toml') };
    writeConfig(h.configFile, host.driverRoot, `[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["${specDir}"]\n`);
    const out = await run(h, glibc, ['NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=1,nvidia.com/gds=all'], [
      'ls /dev/dri /dev/dri/by-path', 'dlopen-probe --json /usr/share/glvnd/egl_vendor.d/10_nvidia.json', 'ls /dev /etc',
    ].join('; echo ---; '));
    const [dri, egl, dev] = out.split('---\n');
    const bus = sysfsBusId(GPU1().pciBusId);
    expect(dri).toContain('card2');
    expect(dri).toContain('renderD129');
    expect(dri).not.toMatch(/card0|card1\b|card3|renderD128/);
    expect(dri).toContain(`pci-${bus}-card`);
    expect(egl).toContain(`OK (${LIB}/libEGL_nvidia.so.${V})`);
    expect(dev).toContain('nvidia-fs0');
    expect(dev).toContain('cufile.json');
  }, 60_000);
});
