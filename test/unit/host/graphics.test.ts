/**
 * The graphics/display/companion lookups and the CUDA compat lookup over hand-made roots: where each file is looked
 * for and in which order, that DRM nodes follow the PCI bus id, and that nothing is ever taken from outside the root.
 */
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { findCompatLibraries, libraryMajor } from '../../../src/host/cuda-compat.js';
import { findConfigs, findDrmDevice, findFeatureFiles, findVulkanConfigs, findXorgModules, GRAPHICS_CONFIGS, sysfsBusId, xorgSearchDirs } from '../../../src/host/graphics.js';

let root: string;
let outside: string;
const file = (rel: string, text = 'x\n'): void => {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), text);
};
const mknod = (rel: string, major: number, minor: number): void => {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  execFileSync('mknod', [join(root, rel), 'c', String(major), String(minor)]);
};

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'nvr-gfx-'));
  outside = mkdtempSync(join(tmpdir(), 'nvr-gfx-out-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

describe('configuration files', () => {
  test('the first of /etc, /usr/local/share, /usr/share; mounted where found; absent ones left out', () => {
    file('usr/share/glvnd/egl_vendor.d/10_nvidia.json');
    file('etc/glvnd/egl_vendor.d/10_nvidia.json');
    file('usr/local/share/egl/egl_external_platform.d/15_nvidia_gbm.json');
    expect(findConfigs(root, GRAPHICS_CONFIGS)).toEqual([
      { source: '/etc/glvnd/egl_vendor.d/10_nvidia.json', path: '/etc/glvnd/egl_vendor.d/10_nvidia.json' },
      { source: '/usr/local/share/egl/egl_external_platform.d/15_nvidia_gbm.json', path: '/usr/local/share/egl/egl_external_platform.d/15_nvidia_gbm.json' },
    ]);
  });

  test('Vulkan manifests: also at the root itself, always mounted under /etc', () => {
    file('usr/share/vulkan/icd.d/nvidia_icd.json');
    file('vulkan/implicit_layer.d/nvidia_layers.json'); // GKE's layout
    expect(findVulkanConfigs(root)).toEqual([
      { source: '/usr/share/vulkan/icd.d/nvidia_icd.json', path: '/etc/vulkan/icd.d/nvidia_icd.json' },
      { source: '/vulkan/implicit_layer.d/nvidia_layers.json', path: '/etc/vulkan/implicit_layer.d/nvidia_layers.json' },
    ]);
  });

  test('a link out of the root is resolved inside it: the host file is never the source; a directory is not a file', () => {
    writeFileSync(join(outside, '10_nvidia.json'), 'host\n');
    mkdirSync(join(root, 'etc/glvnd/egl_vendor.d'), { recursive: true });
    symlinkSync(join(outside, '10_nvidia.json'), join(root, 'etc/glvnd/egl_vendor.d/10_nvidia.json'));
    mkdirSync(join(root, 'usr/share/glvnd/egl_vendor.d/10_nvidia.json'), { recursive: true });
    expect(findConfigs(root, GRAPHICS_CONFIGS)).toEqual([]);
    // the same link target existing inside the root is what is taken
    file(`${outside.slice(1)}/10_nvidia.json`);
    expect(findConfigs(root, GRAPHICS_CONFIGS)).toEqual([{ source: `${outside}/10_nvidia.json`, path: '/etc/glvnd/egl_vendor.d/10_nvidia.json' }]);
  });

  test('X modules: the driver library dir first, then the X server dirs; one of each', () => {
    const lib = '/usr/lib/x86_64-linux-gnu';
    file('usr/lib/xorg/modules/drivers/nvidia_drv.so');
    file(`${lib.slice(1)}/nvidia/xorg/nvidia_drv.so`);
    file('usr/lib64/xorg/modules/extensions/libglxserver_nvidia.so.550.54.15');
    file('usr/lib64/xorg/modules/extensions/libglxserver_nvidia.so.535.1.1');
    expect(findXorgModules(root, lib, '550.54.15')).toEqual([
      { source: `${lib}/nvidia/xorg/nvidia_drv.so`, path: `${lib}/nvidia/xorg/nvidia_drv.so` },
      { source: '/usr/lib64/xorg/modules/extensions/libglxserver_nvidia.so.550.54.15', path: '/usr/lib64/xorg/modules/extensions/libglxserver_nvidia.so.550.54.15' },
    ]);
    expect(xorgSearchDirs(undefined)[0]).toBe('/usr/lib/xorg/modules/drivers');
    expect(new Set(xorgSearchDirs(lib)).size).toBe(xorgSearchDirs(lib).length);
  });
});

describe('DRM nodes by PCI bus id', () => {
  const bus = '00000000:18:00.0';
  beforeEach(() => {
    mkdirSync(join(root, 'sys/bus/pci/devices/0000:18:00.0/drm/card2'), { recursive: true });
    mkdirSync(join(root, 'sys/bus/pci/devices/0000:18:00.0/drm/renderD129'), { recursive: true });
    mkdirSync(join(root, 'sys/bus/pci/devices/0000:18:00.0/drm/controlD66'), { recursive: true });
    mknod('dev/dri/card2', 226, 2);
    mknod('dev/dri/renderD129', 226, 129);
    mknod('dev/dri/card0', 226, 0);
    mkdirSync(join(root, 'dev/dri/by-path'), { recursive: true });
    symlinkSync('../card2', join(root, 'dev/dri/by-path/pci-0000:18:00.0-card'));
    symlinkSync('../renderD129', join(root, 'dev/dri/by-path/pci-0000:18:00.0-render'));
    symlinkSync('../card0', join(root, 'dev/dri/by-path/pci-0000:03:00.0-card'));
  });

  test('the card and render nodes sysfs lists for the bus, with the node\'s numbers, and their by-path links only', () => {
    const d = findDrmDevice(root, bus);
    expect(d.nodes.map((n) => [n.path, n.major, n.minor])).toEqual([['/dev/dri/card2', 226, 2], ['/dev/dri/renderD129', 226, 129]]);
    expect(d.links).toEqual([
      { target: '../card2', link: '/dev/dri/by-path/pci-0000:18:00.0-card' },
      { target: '../renderD129', link: '/dev/dri/by-path/pci-0000:18:00.0-render' },
    ]);
  });

  test('a by-path link naming another node, a missing node, a GPU without DRM: left out', () => {
    rmSync(join(root, 'dev/dri/by-path/pci-0000:18:00.0-render'));
    symlinkSync('/dev/dri/card0', join(root, 'dev/dri/by-path/pci-0000:18:00.0-render'));
    rmSync(join(root, 'dev/dri/renderD129'));
    const d = findDrmDevice(root, bus);
    expect(d.nodes.map((n) => n.path)).toEqual(['/dev/dri/card2']);
    expect(d.links.map((l) => l.link)).toEqual(['/dev/dri/by-path/pci-0000:18:00.0-card']);
    expect(findDrmDevice(root, '00000000:2a:00.0')).toEqual({ nodes: [], links: [] });
  });

  test('sysfsBusId: 4-digit domains when they fit, lowercase, the rest kept (property)', () => {
    expect(sysfsBusId('00000000:18:00.0')).toBe('0000:18:00.0');
    expect(sysfsBusId('0001000A:1B:00.0')).toBe('0001000a:1b:00.0');
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 255 }), (domain, b) => {
      const id = `${domain.toString(16).padStart(8, '0')}:${b.toString(16).padStart(2, '0')}:00.0`;
      const out = sysfsBusId(id.toUpperCase());
      expect(out.endsWith(`:${b.toString(16).padStart(2, '0')}:00.0`)).toBe(true);
      expect(parseInt(out.split(':')[0]!, 16)).toBe(domain);
      expect(out.split(':')[0]!.length).toBe(domain <= 0xffff ? 4 : 8);
    }));
  });
});

test('GDS, MOFED, NVSwitch, GDRCopy nodes; GDS files only with its nodes', () => {
  file('etc/cufile.json', '{}');
  mkdirSync(join(root, 'run/udev'), { recursive: true });
  expect(findFeatureFiles(root, root).gds).toEqual({ nodes: [], mounts: [] });
  for (const [rel, ma, mi] of [['dev/nvidia-fs10', 241, 10], ['dev/nvidia-fs2', 241, 2], ['dev/infiniband/uverbs0', 231, 192], ['dev/infiniband/rdma_cm', 10, 58],
    ['dev/infiniband/umad0', 231, 0], ['dev/nvidia-nvswitch0', 240, 0], ['dev/nvidia-nvswitchctl', 240, 255], ['dev/gdrdrv', 237, 0]] as const) mknod(rel, ma, mi);
  writeFileSync(join(root, 'dev/nvidia-fs3'), 'not a node');
  const f = findFeatureFiles(root, root);
  expect(f.gds.nodes.map((n) => n.path)).toEqual(['/dev/nvidia-fs2', '/dev/nvidia-fs10']);
  expect(f.gds.mounts).toEqual(['/etc/cufile.json', '/run/udev']);
  expect(f.mofed.nodes.map((n) => n.path)).toEqual(['/dev/infiniband/rdma_cm', '/dev/infiniband/uverbs0']);
  expect(f.nvswitch.nodes.map((n) => n.path)).toEqual(['/dev/nvidia-nvswitch0', '/dev/nvidia-nvswitchctl']);
  expect(f.gdrcopy.nodes.map((n) => [n.path, n.major, n.minor])).toEqual([['/dev/gdrdrv', 237, 0]]);
});

describe('CUDA compat libraries of an image', () => {
  const compat = 'usr/local/cuda/compat';
  test('regular lib*.so.<major>… files newer than the host driver, sorted; links followed inside the rootfs', () => {
    file(`${compat}/libcuda.so.560.35.03`);
    file(`${compat}/libnvidia-ptxjitcompiler.so.560.35.03`);
    file(`${compat}/libnvidia-nvvm.so.545.1.1`); // older
    file(`${compat}/libcuda.so.550.54.15.bak`); // same major
    file(`${compat}/README`);
    symlinkSync('libcuda.so.560.35.03', join(root, compat, 'libcuda.so.1')); // major 1: not newer
    mkdirSync(join(root, compat, 'libdir.so.999'));
    expect(findCompatLibraries(root, '550.54.15').map((l) => [l.name, l.hostPath])).toEqual([
      ['libcuda.so.560.35.03', join(root, compat, 'libcuda.so.560.35.03')],
      ['libnvidia-ptxjitcompiler.so.560.35.03', join(root, compat, 'libnvidia-ptxjitcompiler.so.560.35.03')],
    ]);
  });

  test('a compat dir or library linked to a host path is resolved inside the rootfs: no host file is ever returned', () => {
    writeFileSync(join(outside, 'libcuda.so.999.1'), 'host');
    mkdirSync(join(root, 'usr/local/cuda'), { recursive: true });
    symlinkSync(outside, join(root, compat));
    expect(findCompatLibraries(root, '550.54.15')).toEqual([]);
    rmSync(join(root, compat));
    mkdirSync(join(root, compat));
    symlinkSync(join(outside, 'libcuda.so.999.1'), join(root, compat, 'libcuda.so.999.1'));
    expect(findCompatLibraries(root, '550.54.15')).toEqual([]);
  });

  test('libraryMajor reads the digits after .so. (property: never throws, only digits)', () => {
    expect(libraryMajor('libcuda.so.560.35.03')).toBe(560);
    expect(libraryMajor('libcuda.so')).toBeUndefined();
    expect(libraryMajor('libcuda.so.x1')).toBeUndefined();
    fc.assert(fc.property(fc.string(), (s) => {
      const m = libraryMajor(s);
      expect(m === undefined || (Number.isInteger(m) && m >= 0)).toBe(true);
    }));
  });
});
