/**
 * Builds a mock driver root from small stand-in artifacts compiled here (the real ones come from npm ci and
 * may be mid-rebuild), then checks the tree: sonames in ld.so.cache, device numbers, /proc files, MIG caps.
 * Needs root (mknod, ldconfig -r) and a C compiler; otherwise skipped.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NvrError } from '../../../src/errors.js';
import { elfDynamicInfo, readElfDynamicInfo } from '../../../src/host/elf.js';
import { readLdCache } from '../../../src/host/ldcache.js';
import { NEEDED_PLACEHOLDER, SONAME_PLACEHOLDER, TOPOLOGY_MARKER } from '../../../src/mock/elf-patch.js';
import { generateTopology, serializeTopologyText } from '../../../src/mock/topology.js';
import {
  BMC_PCI_BUS_ID,
  CUFILE_JSON,
  defaultArtifacts,
  DRM_MAJOR,
  drmNodesOf,
  GDRDRV_MAJOR,
  GRAPHICS_CONFIG_FILES,
  INFINIBAND_VERBS_MAJOR,
  migCapMinor,
  MOCK_FEATURES,
  NVIDIA_FS_MAJOR,
  NVSWITCH_MAJOR,
  procBusId,
  writeMockDriver,
  type MockArtifacts,
} from '../../../src/mock/writer.js';

const hasCc = (() => {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const canRun = process.getuid?.() === 0 && hasCc;
if (!canRun) console.warn('writer tests skipped: they need root (mknod, ldconfig -r) and cc');
const describeRoot = canRun ? describe : describe.skip;

const LIB = 'usr/lib/x86_64-linux-gnu';
const major = (rdev: number): number => ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
const minor = (rdev: number): number => (rdev & 0xff) | ((rdev >> 12) & 0xfff00);

function buildArtifacts(dir: string): MockArtifacts {
  const cc = (src: string, out: string, args: string[]): string => {
    const c = join(dir, `${out}.c`);
    writeFileSync(c, src);
    execFileSync('cc', ['-o', join(dir, out), c, ...args]);
    return join(dir, out);
  };
  return {
    nvmlLibrary: cc(
      `char nvmock_topology[262144] = "NVMOCK-TOPOLOGY-V1\\n";\nint nvmlInit_v2(void) { return 0; }\n`,
      'libnvml.so',
      ['-shared', '-fPIC', '-Wl,-soname,libnvidia-ml.so.1'],
    ),
    stubLibrary: cc('int nvmock_stub(void) { return 0; }\n', 'libstub.so', ['-shared', '-fPIC', `-Wl,-soname,${SONAME_PLACEHOLDER}`]),
    // As binding.gyp builds it: a DT_NEEDED on a throw-away library whose soname is the placeholder.
    stubNeededLibrary: cc('int nvmock_stub(void) { return 0; }\n', 'libstub-needed.so', [
      '-shared', '-fPIC', `-Wl,-soname,${SONAME_PLACEHOLDER}`,
      `-Wl,--push-state,--no-as-needed,${cc('int nvmock_dep(void) { return 0; }\n', 'libplaceholder.so', ['-shared', '-fPIC', '-nostdlib', `-Wl,-soname,${NEEDED_PLACEHOLDER}`])},--pop-state`,
    ]),
    nvidiaSmi: cc('#include <stdio.h>\nint main(void) { puts("smi"); return 0; }\n', 'smi', []),
  };
}

/** A program that dlopens each argument (RTLD_NOW) and prints "<name>: ok" or the loader's error. */
function buildDlopen(dir: string): string {
  const c = join(dir, 'dlopen.c');
  writeFileSync(c, '#include <dlfcn.h>\n#include <stdio.h>\nint main(int c, char **v) { for (int i = 1; i < c; i++) { void *h = dlopen(v[i], RTLD_NOW); printf("%s: %s\\n", v[i], h ? "ok" : dlerror()); } return 0; }\n');
  execFileSync('cc', ['-o', join(dir, 'dlopen'), c, '-ldl']);
  return join(dir, 'dlopen');
}

/** Every path the features may create (relative to the root), for "none of it is left" checks. */
const FEATURE_PATHS = [
  'dev/dri', 'dev/infiniband', 'dev/gdrdrv', 'dev/nvidia-fs0', 'dev/nvidia-nvswitchctl', 'dev/nvidia-nvswitch0', 'sys', 'run',
  'etc/cufile.json', 'etc/vulkan', 'etc/X11', 'usr/share', `${LIB}/nvidia`, `${LIB}/gbm`,
  `${LIB}/libGL.so.1`, `${LIB}/libEGL.so.1`, `${LIB}/libGLESv1_CM.so.1`, `${LIB}/libGLESv2.so.2`,
  `${LIB}/libnvidia-egl-gbm.so.1`, `${LIB}/libnvidia-egl-gbm.so.1.1.1`, `${LIB}/libnvidia-egl-wayland.so.1.1.13`,
];
const exists = (p: string): boolean => {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

function ldCache(root: string): string {
  return execFileSync('ldconfig', ['-r', root, '-p'], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env['PATH']}:/usr/sbin:/sbin` } });
}

function thrownAsync(p: Promise<unknown>): Promise<NvrError> {
  return p.then(
    () => {
      throw new Error('expected an NvrError');
    },
    (e) => {
      expect(e).toBeInstanceOf(NvrError);
      return e as NvrError;
    },
  );
}

describeRoot('writeMockDriver', () => {
  let tmp: string;
  let artifacts: MockArtifacts;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'nvmock-writer-'));
    mkdirSync(join(tmp, 'artifacts'));
    artifacts = buildArtifacts(join(tmp, 'artifacts'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  describe('an 8-GPU MIG host', () => {
    const topology = generateTopology({ gpus: 8, mig: true });
    let root: string;
    const logs: string[] = [];
    beforeAll(async () => {
      root = join(tmp, 'host8');
      await writeMockDriver(root, topology, artifacts, { log: (m) => logs.push(m) });
    });

    it('logs each step', () => {
      expect(logs.length).toBeGreaterThanOrEqual(5);
    });

    it('embeds the topology text in its copy of the fake NVML', () => {
      const lib = readFileSync(join(root, LIB, 'libnvidia-ml.so.550.54.15'));
      const start = lib.indexOf(TOPOLOGY_MARKER) + TOPOLOGY_MARKER.length;
      const text = serializeTopologyText(topology);
      expect(lib.subarray(start, start + text.length).toString()).toBe(text);
      expect(lib[start + text.length]).toBe(0);
      expect(readFileSync(artifacts.nvmlLibrary).subarray(start, start + 10)).toEqual(Buffer.alloc(10));
    });

    it('has an ld.so.cache with the real sonames and soname links', () => {
      const cache = ldCache(root);
      for (const [soname, file] of [
        ['libnvidia-ml.so.1', 'libnvidia-ml.so.1'],
        ['libcuda.so.1', 'libcuda.so.1'],
        ['libnvidia-nvvm.so.4', 'libnvidia-nvvm.so.4'],
        ['libGLX_nvidia.so.0', 'libGLX_nvidia.so.0'],
        ['libGLESv2_nvidia.so.2', 'libGLESv2_nvidia.so.2'],
        ['libnvidia-glcore.so.550.54.15', 'libnvidia-glcore.so.550.54.15'],
        ['libnvidia-ngx.so.1', 'libnvidia-ngx.so.1'],
      ]) {
        expect(cache).toContain(`\t${soname} (libc6,x86-64) => /${LIB}/${file}\n`);
      }
      expect(readlinkSync(join(root, LIB, 'libcuda.so.1'))).toBe('libcuda.so.550.54.15');
      expect(readlinkSync(join(root, LIB, 'libnvidia-ml.so.1'))).toBe('libnvidia-ml.so.550.54.15');
      expect(readFileSync(join(root, 'etc/ld.so.conf'), 'utf8')).toBe(`/${LIB}\n`);
    });

    it('installs nvidia-smi and mock helper scripts, executable', () => {
      expect(readFileSync(join(root, 'usr/bin/nvidia-smi'))).toEqual(readFileSync(artifacts.nvidiaSmi));
      expect(statSync(join(root, 'usr/bin/nvidia-smi')).mode & 0o777).toBe(0o755);
      for (const b of ['nvidia-debugdump', 'nvidia-persistenced', 'nvidia-cuda-mps-control', 'nvidia-cuda-mps-server']) {
        expect(execFileSync(join(root, 'usr/bin', b), { encoding: 'utf8' })).toBe(`${b} (mock)\n`);
      }
    });

    it('creates char device nodes with the driver numbers', () => {
      const node = (p: string): [number, number, number] => {
        const st = statSync(join(root, 'dev', p));
        expect(st.isCharacterDevice()).toBe(true);
        return [major(st.rdev), minor(st.rdev), st.mode & 0o777];
      };
      expect(node('nvidiactl')).toEqual([195, 255, 0o666]);
      expect(node('nvidia-modeset')).toEqual([195, 254, 0o666]);
      expect(node('nvidia-uvm')).toEqual([508, 0, 0o666]);
      expect(node('nvidia-uvm-tools')).toEqual([508, 1, 0o666]);
      for (let i = 0; i < 8; i++) expect(node(`nvidia${i}`)).toEqual([195, i, 0o666]);
      for (let ch = 0; ch < 8; ch++) expect(node(`nvidia-caps-imex-channels/channel${ch}`)).toEqual([510, ch, 0o666]);
      expect(existsSync(join(root, 'dev/nvidia-caps-imex-channels/channel8'))).toBe(false);
      expect(node('nvidia-caps/nvidia-cap1')).toEqual([509, 1, 0o400]);
      expect(node('nvidia-caps/nvidia-cap2')).toEqual([509, 2, 0o444]);
    });

    it('writes /proc/devices and /proc/driver/nvidia like the driver', () => {
      const devices = readFileSync(join(root, 'proc/devices'), 'utf8');
      expect(devices).toMatch(/^Character devices:\n/);
      expect(devices).toContain('\n195 nvidia\n508 nvidia-uvm\n509 nvidia-caps\n510 nvidia-caps-imex-channels\n\n');
      expect(readFileSync(join(root, 'proc/driver/nvidia/version'), 'utf8')).toMatch(/^NVRM version: NVIDIA UNIX x86_64 Kernel Module {2}550\.54\.15 /);
      expect(readFileSync(join(root, 'proc/driver/nvidia/params'), 'utf8')).toContain('\nModifyDeviceFiles: 1\n');
      expect(existsSync(join(root, 'proc/driver/nvidia/registry'))).toBe(true);
      const info = readFileSync(join(root, 'proc/driver/nvidia/gpus/0000:2a:00.0/information'), 'utf8');
      expect(info).toMatch(/^Model: \t\t NVIDIA H100 80GB HBM3\n/);
      expect(info).toContain(`GPU UUID: \t ${topology.gpus[1]!.uuid}\n`);
      expect(info).toContain('Device Minor: \t 1\n');
      expect(info).toContain('Bus Location: \t 0000:2a:00.0\n');
    });

    it('keeps MIG /proc capabilities, mig-minors and nvidia-cap nodes consistent', () => {
      const minors = new Map(
        readFileSync(join(root, 'proc/driver/nvidia-caps/mig-minors'), 'utf8').trim().split('\n').map((l) => {
          const [k, v] = l.split(' ');
          return [k!, Number(v)] as const;
        }),
      );
      expect(minors.get('config')).toBe(1);
      expect(minors.get('monitor')).toBe(2);
      expect(minors.get('gpu0/gi0/access')).toBe(3);
      expect(minors.get('gpu0/gi0/ci0/access')).toBe(4);
      expect(minors.get('gpu31/gi14/ci7/access')).toBe(migCapMinor(31, 14, 7));
      const caps = join(root, 'proc/driver/nvidia/capabilities');
      const check = (proc: string, key: string): void => {
        const text = readFileSync(join(caps, proc), 'utf8');
        const m = /DeviceFileMinor: (\d+)\n/.exec(text);
        expect(Number(m![1])).toBe(minors.get(key));
        expect(text).toMatch(/DeviceFileMode: \d+\n/);
        const st = statSync(join(root, 'dev/nvidia-caps', `nvidia-cap${m![1]}`));
        expect([major(st.rdev), minor(st.rdev)]).toEqual([509, minors.get(key)]);
      };
      check('mig/config', 'config');
      check('mig/monitor', 'monitor');
      for (const gpu of [0, 7]) {
        for (const gi of [1, 2, 3]) {
          check(`gpu${gpu}/mig/gi${gi}/access`, `gpu${gpu}/gi${gi}/access`);
          check(`gpu${gpu}/mig/gi${gi}/ci0/access`, `gpu${gpu}/gi${gi}/ci0/access`);
        }
      }
      expect(existsSync(join(caps, 'gpu0/mig/gi4'))).toBe(false);
    });

    it('makes nothing of the optional features', () => {
      for (const p of FEATURE_PATHS) expect([p, exists(join(root, p))]).toEqual([p, false]);
      expect(readdirSync(join(root, LIB)).filter((n) => /^lib(GL|EGL|GLES(v1_CM|v2))\.so/.test(n))).toEqual([]);
      expect(readdirSync(join(root, LIB)).filter((n) => n.startsWith('libnvidia-vulkan-producer'))).toEqual([]);
      expect('features' in JSON.parse(readFileSync(join(root, 'etc/nvidia-mock/topology.json'), 'utf8'))).toBe(false);
    });

    it('adds firmware, IPC paths and the topology JSON', () => {
      expect(statSync(join(root, 'lib/firmware/nvidia/550.54.15/gsp_ga10x.bin')).size).toBeGreaterThan(0);
      expect(statSync(join(root, 'lib/firmware/nvidia/550.54.15/gsp_tu10x.bin')).isFile()).toBe(true);
      expect(statSync(join(root, 'var/run/nvidia-persistenced/socket')).isFile()).toBe(true);
      expect(statSync(join(root, 'tmp/nvidia-mps')).isDirectory()).toBe(true);
      expect(JSON.parse(readFileSync(join(root, 'etc/nvidia-mock/topology.json'), 'utf8'))).toEqual(topology);
    });
  });

  describe('a 4-GPU host with every feature', () => {
    const V = '550.54.15';
    const topology = generateTopology({ gpus: 4, features: [...MOCK_FEATURES] });
    let root: string;
    const logs: string[] = [];
    beforeAll(async () => {
      root = join(tmp, 'features');
      await writeMockDriver(root, topology, artifacts, { log: (m) => logs.push(m) });
    });
    const node = (p: string): [number, number, number] => {
      const st = lstatSync(join(root, p));
      expect([p, st.isCharacterDevice()]).toEqual([p, true]);
      return [major(st.rdev), minor(st.rdev), st.mode & 0o777];
    };
    const link = (p: string): string => {
      expect([p, lstatSync(join(root, p)).isSymbolicLink()]).toEqual([p, true]);
      return readlinkSync(join(root, p));
    };
    const json = (p: string): unknown => JSON.parse(readFileSync(join(root, p), 'utf8'));

    it('records the features in topology.json and logs their steps', () => {
      expect((json('etc/nvidia-mock/topology.json') as { features: string[] }).features).toEqual([...MOCK_FEATURES]);
      expect(logs.some((l) => l.startsWith('DRM:'))).toBe(true);
      expect(logs.some((l) => l.startsWith('GDS:'))).toBe(true);
    });

    it('writes the EGL, Vulkan and X.Org configuration the driver installs', () => {
      expect(json('usr/share/glvnd/egl_vendor.d/10_nvidia.json')).toEqual({ file_format_version: '1.0.0', ICD: { library_path: 'libEGL_nvidia.so.0' } });
      expect(json('usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json')).toEqual({ file_format_version: '1.0.0', ICD: { library_path: 'libnvidia-egl-gbm.so.1' } });
      expect(json('usr/share/egl/egl_external_platform.d/10_nvidia_wayland.json')).toEqual({ file_format_version: '1.0.0', ICD: { library_path: 'libnvidia-egl-wayland.so.1' } });
      expect(json('usr/share/vulkan/icd.d/nvidia_icd.json')).toEqual({ file_format_version: '1.0.1', ICD: { library_path: 'libGLX_nvidia.so.0', api_version: '1.3.277' } });
      expect(json('etc/vulkan/implicit_layer.d/nvidia_layers.json')).toEqual({
        file_format_version: '1.0.0',
        layer: {
          name: 'VK_LAYER_NV_optimus', type: 'INSTANCE', library_path: 'libGLX_nvidia.so.0', api_version: '1.3.277', implementation_version: '1',
          description: 'NVIDIA Optimus layer',
          functions: { vkGetInstanceProcAddr: 'vk_optimusGetInstanceProcAddr', vkGetDeviceProcAddr: 'vk_optimusGetDeviceProcAddr' },
          enable_environment: { __NV_PRIME_RENDER_OFFLOAD: '1' },
          disable_environment: { DISABLE_LAYER_NV_OPTIMUS_1: '' },
        },
      });
      expect(statSync(join(root, 'usr/share/nvidia/nvoptix.bin')).size).toBeGreaterThan(0);
      for (const conf of ['usr/share/X11/xorg.conf.d/10-nvidia.conf', 'etc/X11/xorg.conf.d/nvidia-drm-outputclass.conf']) {
        const text = readFileSync(join(root, conf), 'utf8');
        expect(text).toMatch(/^Section "OutputClass"\n/);
        for (const line of ['Identifier "nvidia"', 'MatchDriver "nvidia-drm"', 'Driver "nvidia"', 'Option "AllowEmptyInitialConfiguration"', `ModulePath "/${LIB}/nvidia/xorg"`]) {
          expect(text).toContain(`\n    ${line}\n`);
        }
        expect(text).toMatch(/\nEndSection\n$/);
      }
      for (const f of GRAPHICS_CONFIG_FILES) expect(statSync(join(root, f.path)).mode & 0o777).toBe(0o644);
    });

    it('puts the EGL platform, Vulkan producer and non-glvnd GL libraries in the ld cache', () => {
      const cache = new Map(readLdCache(root).entries.filter((e) => e.arch === 0x0300).map((e) => [e.key, e.value]));
      for (const [soname, file] of [
        ['libnvidia-egl-gbm.so.1', 'libnvidia-egl-gbm.so.1.1.1'],
        ['libnvidia-egl-wayland.so.1', 'libnvidia-egl-wayland.so.1.1.13'],
        [`libnvidia-vulkan-producer.so.${V}`, `libnvidia-vulkan-producer.so.${V}`],
        ['libGL.so.1', `libGL.so.${V}`],
        ['libEGL.so.1', `libEGL.so.${V}`],
        ['libGLESv1_CM.so.1', `libGLESv1_CM.so.${V}`],
        ['libGLESv2.so.2', `libGLESv2.so.${V}`],
      ]) {
        expect([soname, cache.get(soname)]).toEqual([soname, `/${LIB}/${soname}`]);
        expect(elfDynamicInfo(readFileSync(join(root, LIB, file)))?.soname).toBe(soname);
        if (soname !== file) expect(readlinkSync(join(root, LIB, soname))).toBe(file);
      }
      // The X modules are not in any ld.so.conf directory, so not in the cache.
      expect([...cache.keys()].filter((k) => k.startsWith('libglxserver') || k.startsWith('nvidia_drv'))).toEqual([]);
    });

    it('libGL needs libnvidia-glcore and EGL/GLES need libnvidia-eglcore (DT_NEEDED), and they load', () => {
      expect(readElfDynamicInfo(join(root, LIB, `libGL.so.${V}`))?.needed).toContain(`libnvidia-glcore.so.${V}`);
      for (const l of ['libEGL', 'libGLESv1_CM', 'libGLESv2']) {
        expect(readElfDynamicInfo(join(root, LIB, `${l}.so.${V}`))?.needed).toContain(`libnvidia-eglcore.so.${V}`);
      }
      const dlopen = buildDlopen(join(tmp, 'artifacts'));
      const env = { ...process.env, LD_LIBRARY_PATH: join(root, LIB) };
      expect(execFileSync(dlopen, ['libGL.so.1', 'libEGL.so.1', 'libGLESv2.so.2'], { encoding: 'utf8', env })).toBe('libGL.so.1: ok\nlibEGL.so.1: ok\nlibGLESv2.so.2: ok\n');
    });

    it('installs the X modules in nvidia/xorg and the GBM backend link', () => {
      const xorg = `${LIB}/nvidia/xorg`;
      expect(readElfDynamicInfo(join(root, xorg, 'nvidia_drv.so'))?.soname).toBe('nvidia_drv.so');
      expect(readElfDynamicInfo(join(root, xorg, `libglxserver_nvidia.so.${V}`))?.soname).toBe('libglxserver_nvidia.so.1');
      expect(link(`${xorg}/libglxserver_nvidia.so`)).toBe(`libglxserver_nvidia.so.${V}`);
      expect(link(`${LIB}/gbm/nvidia-drm_gbm.so`)).toBe('../libnvidia-allocator.so.1');
      expect(statSync(join(root, LIB, 'gbm/nvidia-drm_gbm.so')).isFile()).toBe(true); // resolves
    });

    it("ties DRM nodes to PCI bus ids: the BMC's card0 first, GPU i is card<i+1> and renderD<128+i>", () => {
      expect(BMC_PCI_BUS_ID).toBe('0000:03:00.0');
      expect(DRM_MAJOR).toBe(226);
      expect(statSync(join(root, 'sys/bus/pci/devices/0000:03:00.0/drm/card0')).isDirectory()).toBe(true);
      expect(readdirSync(join(root, 'sys/bus/pci/devices/0000:03:00.0/drm'))).toEqual(['card0']);
      expect(node('dev/dri/card0')).toEqual([226, 0, 0o660]);
      expect(link('dev/dri/by-path/pci-0000:03:00.0-card')).toBe('../card0');
      expect(readFileSync(join(root, 'sys/bus/pci/devices/0000:03:00.0/vendor'), 'utf8')).not.toBe('0x10de\n');
      topology.gpus.forEach((gpu, i) => {
        const bus = procBusId(gpu.pciBusId);
        const d = drmNodesOf(i);
        expect([d.card, d.render]).toEqual([`card${i + 1}`, `renderD${128 + i}`]);
        expect(readdirSync(join(root, 'sys/bus/pci/devices', bus, 'drm')).sort()).toEqual([d.card, d.render]);
        expect(readFileSync(join(root, 'sys/bus/pci/devices', bus, 'vendor'), 'utf8')).toBe('0x10de\n');
        expect(node(`dev/dri/${d.card}`)).toEqual([226, i + 1, 0o660]);
        expect(node(`dev/dri/${d.render}`)).toEqual([226, 128 + i, 0o666]);
        expect(link(`dev/dri/by-path/pci-${bus}-card`)).toBe(`../card${i + 1}`);
        expect(link(`dev/dri/by-path/pci-${bus}-render`)).toBe(`../renderD${128 + i}`);
      });
      // GPU 1 (bus 2a) is card2/renderD129, not card1: lookups must go by bus id.
      expect(link('dev/dri/by-path/pci-0000:2a:00.0-card')).toBe('../card2');
      expect(readdirSync(join(root, 'dev/dri')).sort()).toEqual(['by-path', 'card0', 'card1', 'card2', 'card3', 'card4', 'renderD128', 'renderD129', 'renderD130', 'renderD131']);
    });

    it('creates the GDS, MOFED, NVSwitch and GDRCopy nodes', () => {
      for (let i = 0; i < 4; i++) expect(node(`dev/nvidia-fs${i}`)).toEqual([NVIDIA_FS_MAJOR, i, 0o666]);
      expect(exists(join(root, 'dev/nvidia-fs4'))).toBe(false);
      expect(node('dev/infiniband/uverbs0')).toEqual([INFINIBAND_VERBS_MAJOR, 192, 0o666]);
      expect(node('dev/infiniband/uverbs1')).toEqual([231, 193, 0o666]);
      expect(node('dev/infiniband/rdma_cm')).toEqual([10, 58, 0o666]);
      expect(node('dev/nvidia-nvswitchctl')).toEqual([NVSWITCH_MAJOR, 255, 0o666]);
      for (let i = 0; i < 4; i++) expect(node(`dev/nvidia-nvswitch${i}`)).toEqual([240, i, 0o666]);
      expect(node('dev/gdrdrv')).toEqual([GDRDRV_MAJOR, 0, 0o666]);
      expect([NVIDIA_FS_MAJOR, INFINIBAND_VERBS_MAJOR, NVSWITCH_MAJOR, GDRDRV_MAJOR]).toEqual([241, 231, 240, 237]);
    });

    it('lists every major in /proc/devices, in the kernel\'s ascending order', () => {
      const devices = readFileSync(join(root, 'proc/devices'), 'utf8');
      const chars = devices.split('\n\n')[0]!.split('\n').slice(1);
      expect(chars).toEqual([
        '  1 mem', '  4 /dev/vc/0', '  5 /dev/tty', ' 10 misc', '195 nvidia', '226 drm', '231 infiniband_verbs', '237 gdrdrv',
        '240 nvidia-nvswitch', '241 nvidia-fs', '508 nvidia-uvm', '509 nvidia-caps', '510 nvidia-caps-imex-channels',
      ]);
    });

    it('writes the GDS configuration and the udev data directory', () => {
      expect(readFileSync(join(root, 'etc/cufile.json'), 'utf8')).toBe(CUFILE_JSON);
      expect(json('etc/cufile.json')).toEqual({ logging: { dir: '/var/log', level: 'ERROR' }, properties: { max_direct_io_size_kb: 16384 } });
      expect(statSync(join(root, 'run/udev/data')).isDirectory()).toBe(true);
    });
  });

  it('one feature alone makes only its own files', async () => {
    const root = join(tmp, 'gdrcopy-only');
    await writeMockDriver(root, generateTopology({ features: ['gdrcopy'] }), artifacts);
    expect(exists(join(root, 'dev/gdrdrv'))).toBe(true);
    for (const p of FEATURE_PATHS.filter((x) => x !== 'dev/gdrdrv')) expect([p, exists(join(root, p))]).toEqual([p, false]);
    expect(readFileSync(join(root, 'proc/devices'), 'utf8')).toContain('\n195 nvidia\n237 gdrdrv\n508 nvidia-uvm\n');
  });

  it('graphics needs libnvidia-stub-needed.so and says to run npm ci', async () => {
    const { stubNeededLibrary: _, ...without } = artifacts;
    const e = await thrownAsync(writeMockDriver(join(tmp, 'no-needed'), generateTopology({ features: ['graphics'] }), without));
    expect(e.message).toContain('libnvidia-stub-needed.so');
    expect(e.fix).toContain('npm ci');
    await expect(writeMockDriver(join(tmp, 'no-needed-ok'), generateTopology({ features: ['gds'] }), without)).resolves.toBeUndefined();
  });

  it('re-running without the features removes all they made, and only that', async () => {
    const root = join(tmp, 'features-rerun');
    await writeMockDriver(root, generateTopology({ gpus: 3, features: [...MOCK_FEATURES] }), artifacts);
    // Files the mock did not make, next to and inside what it did.
    writeFileSync(join(root, LIB, 'libGL.so.1.7.0'), 'a Mesa/glvnd libGL: not ours');
    writeFileSync(join(root, 'run/udev/data/c226:0'), 'udev record');
    mkdirSync(join(root, 'usr/share/doc'), { recursive: true });
    writeFileSync(join(root, 'usr/share/doc/readme'), 'keep');
    // A new driver version with graphics first: the old version's files go.
    await writeMockDriver(root, generateTopology({ gpus: 2, driverVersion: '535.104.05', features: ['graphics'] }), artifacts);
    expect(exists(join(root, LIB, 'libGL.so.550.54.15'))).toBe(false);
    expect(exists(join(root, LIB, 'nvidia/xorg/libglxserver_nvidia.so.550.54.15'))).toBe(false);
    expect(exists(join(root, LIB, 'libnvidia-vulkan-producer.so.550.54.15'))).toBe(false);
    expect(readlinkSync(join(root, LIB, 'libGL.so.1'))).toBe('libGL.so.535.104.05');
    expect(exists(join(root, 'dev/dri/card3'))).toBe(false);
    expect(exists(join(root, 'sys/bus/pci/devices/0000:3a:00.0'))).toBe(false);
    expect(exists(join(root, 'dev/gdrdrv'))).toBe(false);
    expect(exists(join(root, 'etc/cufile.json'))).toBe(false);
    // Then none at all.
    await writeMockDriver(root, generateTopology({ gpus: 2 }), artifacts);
    const left = FEATURE_PATHS.filter((p) => !['run', 'usr/share'].includes(p) && exists(join(root, p)));
    expect(left).toEqual([]);
    expect(readdirSync(join(root, LIB)).filter((n) => /^lib(GL|EGL|GLES)/.test(n) && !n.includes('_nvidia'))).toEqual(['libGL.so.1.7.0']);
    expect(readFileSync(join(root, LIB, 'libGL.so.1.7.0'), 'utf8')).toBe('a Mesa/glvnd libGL: not ours');
    expect(readdirSync(join(root, 'run/udev/data'))).toEqual(['c226:0']);
    expect(readdirSync(join(root, 'usr/share'))).toEqual(['doc']);
    expect(readFileSync(join(root, 'proc/devices'), 'utf8')).not.toMatch(/drm|nvidia-fs|infiniband|gdrdrv|nvswitch|misc/);
    expect(ldCache(root)).not.toMatch(/libGL\.so|egl-gbm|vulkan-producer/);
  });

  it('re-running on the same root replaces it: stale GPUs, MIG caps and old driver versions go away', async () => {
    const root = join(tmp, 'rerun');
    await writeMockDriver(root, generateTopology({ gpus: 4, mig: true }), artifacts);
    writeFileSync(join(root, 'etc/keep-me'), 'user file');
    const second = generateTopology({ gpus: 2, driverVersion: '535.104.05', cudaVersion: '12.2' });
    await writeMockDriver(root, second, artifacts);
    await writeMockDriver(root, second, artifacts); // idempotent
    expect(existsSync(join(root, 'dev/nvidia1'))).toBe(true);
    expect(existsSync(join(root, 'dev/nvidia2'))).toBe(false);
    expect(existsSync(join(root, 'dev/nvidia-caps'))).toBe(false);
    expect(existsSync(join(root, 'proc/driver/nvidia/capabilities/gpu0'))).toBe(false);
    expect(existsSync(join(root, 'proc/driver/nvidia/gpus/0000:3a:00.0'))).toBe(false);
    expect(existsSync(join(root, LIB, 'libcuda.so.550.54.15'))).toBe(false);
    expect(existsSync(join(root, 'lib/firmware/nvidia/550.54.15'))).toBe(false);
    expect(readlinkSync(join(root, LIB, 'libcuda.so.1'))).toBe('libcuda.so.535.104.05');
    expect(ldCache(root)).not.toContain('550.54.15');
    expect(readFileSync(join(root, 'etc/keep-me'), 'utf8')).toBe('user file');
    expect(readFileSync(join(root, 'proc/driver/nvidia/version'), 'utf8')).toContain(' 535.104.05 ');
  });

  it('refuses / and a non-empty directory that is not a previous mock root', async () => {
    const fullDir = join(tmp, 'real-looking');
    mkdirSync(join(fullDir, 'etc'), { recursive: true });
    writeFileSync(join(fullDir, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
    const topo = generateTopology();
    const e = await thrownAsync(writeMockDriver(fullDir, topo, artifacts));
    expect(e.code).toBe('INPUT');
    expect(e.message).toContain('is not empty');
    expect(existsSync(join(fullDir, 'dev'))).toBe(false);
    expect((await thrownAsync(writeMockDriver('/', topo, artifacts))).message).toContain('real host root');
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    await expect(writeMockDriver(empty, topo, artifacts)).resolves.toBeUndefined();
  });

  it('explains missing artifacts', async () => {
    const e = await thrownAsync(writeMockDriver(join(tmp, 'no-artifacts'), generateTopology(), { ...artifacts, stubLibrary: join(tmp, 'nope.so') }));
    expect(e.message).toContain('native artifacts not built: run npm ci');
  });
});

describe('defaultArtifacts', () => {
  it('finds build/Release under the package root, or says to run npm ci', () => {
    const pkg = mkdtempSync(join(tmpdir(), 'nvmock-pkg-'));
    expect(() => defaultArtifacts(pkg)).toThrow(/native artifacts not built: run npm ci/);
    mkdirSync(join(pkg, 'build/Release'), { recursive: true });
    for (const f of ['libnvidia-ml-mock.so', 'libnvidia-stub.so', 'nvidia-smi-mock']) writeFileSync(join(pkg, 'build/Release', f), '');
    expect(defaultArtifacts(pkg)).toEqual({
      nvmlLibrary: join(pkg, 'build/Release/libnvidia-ml-mock.so'),
      stubLibrary: join(pkg, 'build/Release/libnvidia-stub.so'),
      nvidiaSmi: join(pkg, 'build/Release/nvidia-smi-mock'),
    });
    // The optional ones are picked up when built.
    for (const f of ['libnvidia-stub32.so', 'libnvidia-stub-needed.so']) writeFileSync(join(pkg, 'build/Release', f), '');
    expect(defaultArtifacts(pkg)).toMatchObject({
      stubLibrary32: join(pkg, 'build/Release/libnvidia-stub32.so'),
      stubNeededLibrary: join(pkg, 'build/Release/libnvidia-stub-needed.so'),
    });
    rmSync(pkg, { recursive: true, force: true });
  });
});
