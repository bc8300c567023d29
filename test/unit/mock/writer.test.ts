/**
 * Builds a mock driver root from small stand-in artifacts compiled here (the real ones come from npm ci and
 * may be mid-rebuild), then checks the tree: sonames in ld.so.cache, device numbers, /proc files, MIG caps.
 * Needs root (mknod, ldconfig -r) and a C compiler; otherwise skipped.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NvrError } from '../../../src/errors.js';
import { SONAME_PLACEHOLDER, TOPOLOGY_MARKER } from '../../../src/mock/elf-patch.js';
import { generateTopology, serializeTopologyText } from '../../../src/mock/topology.js';
import { defaultArtifacts, migCapMinor, writeMockDriver, type MockArtifacts } from '../../../src/mock/writer.js';

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
    nvidiaSmi: cc('#include <stdio.h>\nint main(void) { puts("smi"); return 0; }\n', 'smi', []),
  };
}

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

    it('adds firmware, IPC paths and the topology JSON', () => {
      expect(statSync(join(root, 'lib/firmware/nvidia/550.54.15/gsp_ga10x.bin')).size).toBeGreaterThan(0);
      expect(statSync(join(root, 'lib/firmware/nvidia/550.54.15/gsp_tu10x.bin')).isFile()).toBe(true);
      expect(statSync(join(root, 'var/run/nvidia-persistenced/socket')).isFile()).toBe(true);
      expect(statSync(join(root, 'tmp/nvidia-mps')).isDirectory()).toBe(true);
      expect(JSON.parse(readFileSync(join(root, 'etc/nvidia-mock/topology.json'), 'utf8'))).toEqual(topology);
    });
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
    rmSync(pkg, { recursive: true, force: true });
  });
});
