/**
 * Writes a complete fake NVIDIA driver installation under a root directory: libraries with real sonames and
 * an ld.so.cache, binaries, char device nodes, /proc/driver/nvidia, MIG capabilities, firmware and IPC paths
 * (FACTS.md appendix A), and the files of the topology's optional features (feature-writer.ts). The fake NVML
 * carries the topology inside itself (elf-patch.ts).
 */
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { mkdir, rm, readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { NvrError } from '../errors.js';
import { embedTopology, patchSoname } from './elf-patch.js';
import {
  featureProcDevices,
  GRAPHICS_LIB_PREFIXES,
  removeFeatureFiles,
  writeCompanionFiles,
  writeCompanionNodes,
  writeDrm,
  writeGraphicsConfigs,
  writeGraphicsLibraries,
} from './feature-writer.js';
import { hasFeature, LIB32_DIR, LIB_DIR } from './features.js';
import { findTool, ioError, mknod, readArtifact, writeAtomic } from './fsops.js';
import { serializeTopologyText } from './topology.js';
import type { MockGpu, MockTopology } from './topology-types.js';

export {
  BMC_DRM_CARD,
  BMC_NVML_BUS_ID,
  BMC_PCI_BUS_ID,
  DRM_MAJOR,
  drmNodesOf,
  GDRDRV_MAJOR,
  INFINIBAND_VERBS_MAJOR,
  LIB32_DIR,
  LIB_DIR,
  MISC_MAJOR,
  MOCK_FEATURES,
  NVIDIA_FS_COUNT,
  NVIDIA_FS_MAJOR,
  NVSWITCH_COUNT,
  NVSWITCH_CTL_MINOR,
  NVSWITCH_MAJOR,
  RDMA_CM_MINOR,
  UVERBS_BASE_MINOR,
  UVERBS_COUNT,
  type DrmNodes,
} from './features.js';
export {
  COMPAT_GL_LIBRARIES,
  compatGlFiles,
  CUFILE_JSON,
  CUFILE_PATH,
  EGL_PLATFORM_LIBRARIES,
  GBM_LINK,
  GRAPHICS_CONFIG_FILES,
  graphicsLibraryFiles,
  UDEV_DATA_DIR,
  XORG_MODULE_DIR,
  xorgModuleFiles,
} from './feature-writer.js';

/** Paths of the built native mock artifacts (native/README.md). */
export interface MockArtifacts {
  nvmlLibrary: string; // libnvidia-ml-mock.so: the fake NVML with an empty topology array
  stubLibrary: string; // libnvidia-stub.so: SONAME placeholder, patched per library
  nvidiaSmi: string; // nvidia-smi-mock
  /** libnvidia-stub32.so: the stub as an i386 object, for compat32; without it the mock has no 32-bit libraries. */
  stubLibrary32?: string;
  /**
   * libnvidia-stub-needed.so: the stub with a DT_NEEDED placeholder too, for the non-glvnd GL libraries of the
   * graphics feature; only that feature needs it (and fails without it).
   */
  stubNeededLibrary?: string;
}

export interface WriteOptions {
  log?: (message: string) => void;
}

export const TOPOLOGY_JSON = 'etc/nvidia-mock/topology.json';

export const NVIDIA_MAJOR = 195;
export const UVM_MAJOR = 508;
export const CAPS_MAJOR = 509;
/** `nvidia-caps-imex-channels` in /proc/devices; the nodes are /dev/nvidia-caps-imex-channels/channel<N>, minor N. */
export const IMEX_CHANNELS_MAJOR = 510;
/** The mock creates channels 0..IMEX_CHANNEL_COUNT-1 (the real driver allows up to 2^20 channels). */
export const IMEX_CHANNEL_COUNT = 8;

// Both src/mock/writer.ts and dist/mock/writer.js sit two levels below the package root.
const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The artifacts `npm ci` builds into build/Release; a typed error if any is missing. */
export function defaultArtifacts(packageRoot: string = PACKAGE_ROOT): MockArtifacts {
  const dir = join(packageRoot, 'build', 'Release');
  const artifacts: MockArtifacts = {
    nvmlLibrary: join(dir, 'libnvidia-ml-mock.so'),
    stubLibrary: join(dir, 'libnvidia-stub.so'),
    nvidiaSmi: join(dir, 'nvidia-smi-mock'),
  };
  const stub32 = join(dir, 'libnvidia-stub32.so');
  if (existsSync(stub32)) artifacts.stubLibrary32 = stub32;
  const stubNeeded = join(dir, 'libnvidia-stub-needed.so');
  if (existsSync(stubNeeded)) artifacts.stubNeededLibrary = stubNeeded;
  const missing = Object.values(artifacts).filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new NvrError('IO', `native artifacts not built: run npm ci (missing ${missing.join(', ')})`, {
      fix: 'run npm ci in the package directory to build the native mock artifacts',
    });
  }
  return artifacts;
}

/**
 * Driver libraries made from the stub, with the sonames the real driver uses: `<name>.so.<ver>` files whose
 * soname is `<name>.so.<N>`, or the full version for the driver-internal libraries (`null` here).
 * libnvidia-nscq is left out: it ships with the fabric manager, not the driver.
 */
export const STUB_LIBRARIES: ReadonlyArray<{ name: string; sonameVersion: string | null }> = Object.freeze([
  // compute
  { name: 'libcuda', sonameVersion: '1' },
  { name: 'libcudadebugger', sonameVersion: '1' },
  { name: 'libnvidia-opencl', sonameVersion: '1' },
  { name: 'libnvidia-ptxjitcompiler', sonameVersion: '1' },
  { name: 'libnvidia-allocator', sonameVersion: '1' },
  { name: 'libnvidia-nvvm', sonameVersion: '4' },
  { name: 'libnvidia-gpucomp', sonameVersion: null },
  { name: 'libnvidia-pkcs11', sonameVersion: null },
  // utility
  { name: 'libnvidia-cfg', sonameVersion: '1' },
  // video
  { name: 'libnvidia-encode', sonameVersion: '1' },
  { name: 'libnvidia-opticalflow', sonameVersion: '1' },
  { name: 'libnvcuvid', sonameVersion: '1' },
  { name: 'libvdpau_nvidia', sonameVersion: '1' },
  // graphics
  { name: 'libnvidia-eglcore', sonameVersion: null },
  { name: 'libnvidia-glcore', sonameVersion: null },
  { name: 'libnvidia-tls', sonameVersion: null },
  { name: 'libnvidia-glsi', sonameVersion: null },
  { name: 'libnvidia-fbc', sonameVersion: '1' },
  { name: 'libnvidia-rtcore', sonameVersion: null },
  { name: 'libnvoptix', sonameVersion: '1' },
  // graphics (glvnd)
  { name: 'libGLX_nvidia', sonameVersion: '0' },
  { name: 'libEGL_nvidia', sonameVersion: '0' },
  { name: 'libGLESv2_nvidia', sonameVersion: '2' },
  { name: 'libGLESv1_CM_nvidia', sonameVersion: '1' },
  { name: 'libnvidia-glvkspirv', sonameVersion: null },
  { name: 'libnvidia-cbl', sonameVersion: null },
  // ngx
  { name: 'libnvidia-ngx', sonameVersion: '1' },
]);

const NVML_NAME = 'libnvidia-ml';
const OWNED_LIB_PREFIXES = [...[NVML_NAME, ...STUB_LIBRARIES.map((l) => l.name)].map((n) => `${n}.so`), ...GRAPHICS_LIB_PREFIXES];

const SCRIPT_BINARIES = ['nvidia-debugdump', 'nvidia-persistenced', 'nvidia-cuda-mps-control', 'nvidia-cuda-mps-server'];

/**
 * Minor of a /dev/nvidia-caps node, laid out like the driver's /proc/driver/nvidia-caps/mig-minors: config 1,
 * monitor 2, then per GPU 15 GPU instances of (1 access + 8 compute instances) = 135 minors.
 */
export function migCapMinor(gpuMinor: number, gi: number, ci?: number): number {
  const giBase = 3 + gpuMinor * 135 + gi * 9;
  return ci === undefined ? giBase : giBase + 1 + ci;
}
const CAP_CONFIG_MINOR = 1;
const CAP_MONITOR_MINOR = 2;
// DeviceFileMode the driver reports: config is root-only (0400), the rest world-readable (0444).
const CAP_CONFIG_MODE = 0o400;
const CAP_ACCESS_MODE = 0o444;

/** "00000000:18:00.0" → "0000:18:00.0": the directory name the driver uses under /proc/driver/nvidia/gpus. */
export function procBusId(pciBusId: string): string {
  const colon = pciBusId.indexOf(':');
  const domain = pciBusId.slice(0, colon);
  return parseInt(domain, 16) <= 0xffff ? domain.slice(-4) + pciBusId.slice(colon) : pciBusId;
}

/** Refuses `/` and any non-empty directory that is not a previous mock root, so no real host gets overwritten. */
function checkRoot(root: string): void {
  const fix = 'pass --root an empty or new directory, or a directory made by an earlier mock-driver run';
  if (!existsSync(root)) return;
  const real = realpathSync(root);
  if (real === '/') throw new NvrError('INPUT', 'mock-driver root / is the real host root', { fix });
  if (!statSync(real).isDirectory()) throw new NvrError('INPUT', `mock-driver root ${root} is not a directory`, { fix });
  if (readdirSync(real).length > 0 && !existsSync(join(real, TOPOLOGY_JSON))) {
    throw new NvrError('INPUT', `mock-driver root ${root} is not empty and has no ${TOPOLOGY_JSON}`, { fix });
  }
}

/**
 * Removes what an earlier run made that a new topology may not replace (stale GPUs, old driver versions, the
 * files of features no longer listed).
 */
async function removePrevious(root: string): Promise<void> {
  const dev = join(root, 'dev');
  if (existsSync(dev)) {
    for (const name of await readdir(dev)) {
      if (name.startsWith('nvidia')) await rm(join(dev, name), { recursive: true, force: true });
    }
  }
  for (const libDir of [join(root, LIB_DIR), join(root, LIB32_DIR)]) {
    if (!existsSync(libDir)) continue;
    for (const name of await readdir(libDir)) {
      if (OWNED_LIB_PREFIXES.some((p) => name.startsWith(p))) await rm(join(libDir, name), { force: true });
    }
  }
  for (const p of ['proc/driver/nvidia', 'proc/driver/nvidia-caps', 'lib/firmware/nvidia', 'etc/ld.so.cache']) {
    await rm(join(root, p), { recursive: true, force: true });
  }
  await removeFeatureFiles(root);
}

function libraryFiles(version: string): Array<{ file: string; soname: string }> {
  return STUB_LIBRARIES.map(({ name, sonameVersion }) => ({
    file: `${name}.so.${version}`,
    soname: `${name}.so.${sonameVersion ?? version}`,
  }));
}

async function writeLibraries(root: string, t: MockTopology, a: MockArtifacts, log: (m: string) => void): Promise<void> {
  const libDir = join(root, LIB_DIR);
  const nvml = await readArtifact(a.nvmlLibrary);
  const stub = await readArtifact(a.stubLibrary);
  await writeAtomic(join(libDir, `${NVML_NAME}.so.${t.driverVersion}`), embedTopology(nvml, serializeTopologyText(t)), 0o755);
  for (const { file, soname } of libraryFiles(t.driverVersion)) {
    await writeAtomic(join(libDir, file), patchSoname(stub, soname), 0o755);
  }
  if (hasFeature(t, 'graphics')) await writeGraphicsLibraries(root, t, a, log);
  const dirs = [LIB_DIR];
  if (a.stubLibrary32) {
    // 32-bit copies of every driver library (NVML included, as a plain stub: nothing 32-bit queries it here).
    const stub32 = await readArtifact(a.stubLibrary32);
    const lib32Dir = join(root, LIB32_DIR);
    for (const { file, soname } of [...libraryFiles(t.driverVersion), { file: `${NVML_NAME}.so.${t.driverVersion}`, soname: `${NVML_NAME}.so.1` }]) {
      await writeAtomic(join(lib32Dir, file), patchSoname(stub32, soname), 0o755);
    }
    dirs.push(LIB32_DIR);
  }
  await writeAtomic(join(root, 'etc/ld.so.conf'), dirs.map((d) => `/${d}\n`).join(''));
  try {
    // -r: chroot into the mock root, read its etc/ld.so.conf, make soname links, write its etc/ld.so.cache.
    await execa(findTool('ldconfig'), ['-r', root]);
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr;
    throw ioError(`ldconfig -r ${root} failed`, stderr ? new Error(stderr) : e, 'run mock-driver as root on a glibc system');
  }
  log(`libraries: ${STUB_LIBRARIES.length + 1} in ${dirs.map((d) => `/${d}`).join(' and ')}, ld.so.cache written`);
}

async function writeBinaries(root: string, a: MockArtifacts, log: (m: string) => void): Promise<void> {
  const bin = join(root, 'usr/bin');
  await writeAtomic(join(bin, 'nvidia-smi'), await readArtifact(a.nvidiaSmi), 0o755);
  for (const name of SCRIPT_BINARIES) {
    await writeAtomic(join(bin, name), `#!/bin/sh\necho "${name} (mock)"\n`, 0o755);
  }
  log(`binaries: nvidia-smi, ${SCRIPT_BINARIES.join(', ')}`);
}

/** MIG capability entries of the topology: proc path (under capabilities/), minor, mode. */
function migCaps(t: MockTopology): Array<{ proc: string; minor: number; mode: number }> {
  const caps = [
    { proc: 'mig/config', minor: CAP_CONFIG_MINOR, mode: CAP_CONFIG_MODE },
    { proc: 'mig/monitor', minor: CAP_MONITOR_MINOR, mode: CAP_ACCESS_MODE },
  ];
  for (const gpu of t.gpus.filter((g) => g.migEnabled)) {
    const seenGi = new Set<number>();
    for (const m of gpu.migDevices) {
      const gi = `gpu${gpu.minor}/mig/gi${m.gpuInstanceId}`;
      if (!seenGi.has(m.gpuInstanceId)) {
        seenGi.add(m.gpuInstanceId);
        caps.push({ proc: `${gi}/access`, minor: migCapMinor(gpu.minor, m.gpuInstanceId), mode: CAP_ACCESS_MODE });
      }
      caps.push({
        proc: `${gi}/ci${m.computeInstanceId}/access`,
        minor: migCapMinor(gpu.minor, m.gpuInstanceId, m.computeInstanceId),
        mode: CAP_ACCESS_MODE,
      });
    }
  }
  return caps;
}

async function writeDeviceNodes(root: string, t: MockTopology, log: (m: string) => void): Promise<void> {
  const dev = join(root, 'dev');
  await mknod(join(dev, 'nvidiactl'), NVIDIA_MAJOR, 255, 0o666);
  await mknod(join(dev, 'nvidia-modeset'), NVIDIA_MAJOR, 254, 0o666);
  await mknod(join(dev, 'nvidia-uvm'), UVM_MAJOR, 0, 0o666);
  await mknod(join(dev, 'nvidia-uvm-tools'), UVM_MAJOR, 1, 0o666);
  for (const gpu of t.gpus) await mknod(join(dev, `nvidia${gpu.minor}`), NVIDIA_MAJOR, gpu.minor, 0o666);
  const mig = t.gpus.some((g) => g.migEnabled);
  if (mig) {
    for (const cap of migCaps(t)) await mknod(join(dev, 'nvidia-caps', `nvidia-cap${cap.minor}`), CAPS_MAJOR, cap.minor, cap.mode);
  }
  for (let ch = 0; ch < IMEX_CHANNEL_COUNT; ch++) await mknod(join(dev, 'nvidia-caps-imex-channels', `channel${ch}`), IMEX_CHANNELS_MAJOR, ch, 0o666);
  log(`device nodes: nvidiactl, nvidia-modeset, nvidia-uvm(-tools), ${t.gpus.length} GPU nodes${mig ? ', nvidia-caps' : ''}, ${IMEX_CHANNEL_COUNT} IMEX channels`);
}

/** The kernel lists char majors in ascending order, right-aligned in 3 columns. */
function procDevices(t: MockTopology): string {
  const chars: Array<[number, string]> = [
    [1, 'mem'],
    [4, '/dev/vc/0'],
    [5, '/dev/tty'],
    [NVIDIA_MAJOR, 'nvidia'],
    [UVM_MAJOR, 'nvidia-uvm'],
    [CAPS_MAJOR, 'nvidia-caps'],
    [IMEX_CHANNELS_MAJOR, 'nvidia-caps-imex-channels'],
    ...featureProcDevices(t),
  ];
  chars.sort((a, b) => a[0] - b[0]);
  return [
    'Character devices:',
    ...chars.map(([major, name]) => `${String(major).padStart(3)} ${name}`),
    '',
    'Block devices:',
    '  8 sd',
    '',
  ].join('\n');
}

function gpuInformation(gpu: MockGpu): string {
  return [
    `Model: \t\t ${gpu.name}`,
    `IRQ:   \t\t 0`,
    `GPU UUID: \t ${gpu.uuid}`,
    `Video BIOS: \t ??.??.??.??.??`,
    `Bus Type: \t PCIe`,
    `DMA Size: \t 52 bits`,
    `DMA Mask: \t 0xfffffffffffff`,
    `Bus Location: \t ${procBusId(gpu.pciBusId)}`,
    `Device Minor: \t ${gpu.minor}`,
    `GPU Excluded:\t No`,
    '',
  ].join('\n');
}

/** Every line of the driver's mig-minors table: GPUs 0..31 (and any higher minor with MIG in the topology). */
function migMinorsTable(t: MockTopology): string {
  const lastGpu = Math.max(31, ...t.gpus.filter((g) => g.migEnabled).map((g) => g.minor));
  const lines = [`config ${CAP_CONFIG_MINOR}`, `monitor ${CAP_MONITOR_MINOR}`];
  for (let g = 0; g <= lastGpu; g++) {
    for (let gi = 0; gi <= 14; gi++) {
      lines.push(`gpu${g}/gi${gi}/access ${migCapMinor(g, gi)}`);
      for (let ci = 0; ci <= 7; ci++) lines.push(`gpu${g}/gi${gi}/ci${ci}/access ${migCapMinor(g, gi, ci)}`);
    }
  }
  return lines.join('\n') + '\n';
}

async function writeProc(root: string, t: MockTopology, log: (m: string) => void): Promise<void> {
  const proc = join(root, 'proc');
  const nv = join(proc, 'driver/nvidia');
  await writeAtomic(join(proc, 'devices'), procDevices(t));
  await writeAtomic(
    join(nv, 'version'),
    `NVRM version: NVIDIA UNIX x86_64 Kernel Module  ${t.driverVersion}  Mon Jan  1 00:00:00 UTC 2024\n` +
      'GCC version:  gcc version 12.2.0 (Debian 12.2.0-14) (mock)\n',
  );
  await writeAtomic(
    join(nv, 'params'),
    [
      'ResmanDebugLevel: 4294967295', 'RmLogonRC: 1', 'ModifyDeviceFiles: 1', 'DeviceFileUID: 0', 'DeviceFileGID: 0',
      'DeviceFileMode: 438', 'InitializeSystemMemoryAllocations: 1', 'UsePageAttributeTable: 4294967295',
      'EnableMSI: 1', 'EnablePCIeGen3: 0', 'MemoryPoolSize: 0', 'KMallocHeapMaxSize: 0', 'VMallocHeapMaxSize: 0',
      'IgnoreMMIOCheck: 0', 'EnableStreamMemOPs: 0', 'EnableUserNUMAManagement: 1', 'NvLinkDisable: 0',
      'RmProfilingAdminOnly: 1', 'PreserveVideoMemoryAllocations: 0', 'EnableS0ixPowerManagement: 0',
      'DynamicPowerManagement: 3', 'RegistryDwords: ""', 'RmMsg: ""', '',
    ].join('\n'),
  );
  await writeAtomic(join(nv, 'registry'), 'Binary: ""\n');
  for (const gpu of t.gpus) await writeAtomic(join(nv, 'gpus', procBusId(gpu.pciBusId), 'information'), gpuInformation(gpu));
  for (const cap of migCaps(t)) {
    await writeAtomic(
      join(nv, 'capabilities', cap.proc),
      `DeviceFileMinor: ${cap.minor}\nDeviceFileMode: ${cap.mode}\nDeviceFileModify: 1\n`,
    );
  }
  await writeAtomic(join(proc, 'driver/nvidia-caps/mig-minors'), migMinorsTable(t));
  log(`proc: /proc/devices, /proc/driver/nvidia (version, params, registry, ${t.gpus.length} gpus, capabilities)`);
}

async function writeFirmwareAndIpc(root: string, t: MockTopology, log: (m: string) => void): Promise<void> {
  const fw = join(root, 'lib/firmware/nvidia', t.driverVersion);
  for (const name of ['gsp_ga10x.bin', 'gsp_tu10x.bin']) await writeAtomic(join(fw, name), `NVMOCK ${name} placeholder\n`);
  // A regular file standing in for the persistenced socket: bind mounts only need the path to exist.
  await writeAtomic(join(root, 'var/run/nvidia-persistenced/socket'), '');
  await mkdir(join(root, 'tmp/nvidia-mps'), { recursive: true });
  log(`firmware: /lib/firmware/nvidia/${t.driverVersion}; ipc: persistenced socket, /tmp/nvidia-mps`);
}

/** The non-library parts of the features (graphics libraries come with the others, before ldconfig). */
async function writeFeatures(root: string, t: MockTopology, log: (m: string) => void): Promise<void> {
  if (hasFeature(t, 'graphics')) {
    await writeGraphicsConfigs(root, log);
    await writeDrm(root, t, procBusId, log);
  }
  await writeCompanionNodes(root, t, log);
  await writeCompanionFiles(root, t, log);
}

/**
 * Creates (or re-creates) the mock driver root. `topology` must already be valid (generateTopology or
 * readTopologyFile); `artifacts` are the native files to copy (defaultArtifacts() in production).
 */
export async function writeMockDriver(
  root: string,
  topology: MockTopology,
  artifacts: MockArtifacts,
  options: WriteOptions = {},
): Promise<void> {
  const log = options.log ?? (() => undefined);
  const absRoot = resolve(root);
  checkRoot(absRoot);
  try {
    await mkdir(absRoot, { recursive: true });
    // The marker file first: a run that fails half-way leaves a root the next run may overwrite.
    await writeAtomic(join(absRoot, TOPOLOGY_JSON), JSON.stringify(topology, null, 2) + '\n');
    await removePrevious(absRoot);
    await writeLibraries(absRoot, topology, artifacts, log);
    await writeBinaries(absRoot, artifacts, log);
    await writeDeviceNodes(absRoot, topology, log);
    await writeProc(absRoot, topology, log);
    await writeFirmwareAndIpc(absRoot, topology, log);
    await writeFeatures(absRoot, topology, log);
  } catch (e) {
    if (e instanceof NvrError) throw e;
    throw ioError(`cannot write mock driver root ${absRoot}`, e, 'check the path, free space and that you run as root');
  }
}
