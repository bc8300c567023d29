/**
 * The one edits builder is pure: it selects from a host snapshot and touches nothing else. Shown by building edits
 * from a snapshot written as an object literal, for a driver root that does not exist on disk.
 */
import { buildEdits, deviceEdits, driverEdits, imexEdits, migAdminEdits } from '../../../src/edits/build.js';
import { thrown } from '../../helpers/errors.js';
import type { HostInventory } from '../../../src/host/inventory.js';
import type { GpuInfo } from '../../../src/host/types.js';
import type { DeviceRequest } from '../../../src/request/types.js';

const ROOT = '/nonexistent/driver-root';
const LIB = '/usr/lib/x86_64-linux-gnu';
const node = (path: string, major: number, minor: number) => ({ path, hostPath: `${ROOT}${path}`, type: 'c', major, minor, fileMode: 0o666 });
const gpu = (index: number): GpuInfo => ({ index, minor: index, uuid: `GPU-${index}`, migDevices: [] }) as unknown as GpuInfo;

const snapshot = {
  root: ROOT,
  devRoot: ROOT,
  ldcache: { entries: [] },
  nvmlLibrary: `${ROOT}${LIB}/libnvidia-ml.so.1`,
  driver: { driverVersion: '550.54.15', cudaVersion: '12.4', gpus: [gpu(0), gpu(1)] },
  libraries: { 'libcuda.so': `${LIB}/libcuda.so.550.54.15`, 'libnvidia-ml.so': `${LIB}/libnvidia-ml.so.550.54.15`, 'libnvidia-encode.so': `${LIB}/libnvidia-encode.so.550.54.15` },
  libraries32: { 'libcuda.so': '/usr/lib/i386-linux-gnu/libcuda.so.550.54.15' },
  binaries: { 'nvidia-smi': '/usr/bin/nvidia-smi' },
  ipcs: ['/var/run/nvidia-persistenced/socket'],
  firmware: ['/lib/firmware/nvidia/550.54.15/gsp_ga10x.bin'],
  nodes: { '/dev/nvidiactl': node('/dev/nvidiactl', 195, 255), '/dev/nvidia-uvm': node('/dev/nvidia-uvm', 508, 0), '/dev/nvidia0': node('/dev/nvidia0', 195, 0), '/dev/nvidia1': node('/dev/nvidia1', 195, 1) },
  nodeProblems: {},
  migCapabilities: {},
  migProblems: {},
  imexChannels: { 0: node('/dev/nvidia-caps-imex-channels/channel0', 510, 0), 1: node('/dev/nvidia-caps-imex-channels/channel1', 510, 1) },
} as unknown as HostInventory;

test('driver files and nodes come from the snapshot alone, as host paths under the driver root', () => {
  const e = driverEdits(snapshot, ['compute', 'utility'], { hookPath: '/hook', rootfs: '/b/rootfs' });
  expect(e.deviceNodes?.map((n) => [n.path, n.hostPath, n.major, n.minor])).toEqual([
    ['/dev/nvidiactl', `${ROOT}/dev/nvidiactl`, 195, 255], ['/dev/nvidia-uvm', `${ROOT}/dev/nvidia-uvm`, 508, 0], // uvm-tools: not on this host
  ]);
  expect(e.mounts?.map((m) => [m.containerPath, m.hostPath])).toEqual([
    [`${LIB}/libnvidia-ml.so.550.54.15`, `${ROOT}${LIB}/libnvidia-ml.so.550.54.15`],
    [`${LIB}/libcuda.so.550.54.15`, `${ROOT}${LIB}/libcuda.so.550.54.15`],
    ['/usr/bin/nvidia-smi', `${ROOT}/usr/bin/nvidia-smi`],
    ['/lib/firmware/nvidia/550.54.15/gsp_ga10x.bin', `${ROOT}/lib/firmware/nvidia/550.54.15/gsp_ga10x.bin`],
    ['/var/run/nvidia-persistenced/socket', `${ROOT}/var/run/nvidia-persistenced/socket`],
  ]);
  expect(e.hooks?.[0]?.args).toEqual(['nvidia-runtime-hook', 'update-ldcache', '--root', '/b/rootfs', '--folder', LIB,
    '--link', 'libcuda.so.550.54.15::/usr/lib/x86_64-linux-gnu/libcuda.so']);
  // compat32 brings the 32-bit libraries; no rootfs (a CDI spec) means no --root.
  const cdi = driverEdits(snapshot, ['compute', 'compat32'], { hookPath: '/hook' });
  expect(cdi.mounts?.map((m) => m.containerPath)).toContain('/usr/lib/i386-linux-gnu/libcuda.so.550.54.15');
  expect(cdi.hooks?.[0]?.args).not.toContain('--root');
});

test('devices: only the selected GPUs; the request\'s grant', () => {
  expect(deviceEdits(snapshot, { gpus: [gpu(1)] }).deviceNodes?.map((n) => n.path)).toEqual(['/dev/nvidia1']);
  const request = { gpu: true, devices: [{ kind: 'index', index: 1 }], capabilities: ['utility'], requirements: [], source: 'env', reasons: [] } as DeviceRequest;
  const built = buildEdits({ inventory: snapshot, request, resolved: { gpus: [gpu(1)], migDevices: [] } as never, hookPath: '/hook', rootfs: '/r' });
  expect(built.granted).toBe('GPU-1');
  expect(built.edits.deviceNodes?.map((n) => n.path)).toEqual(['/dev/nvidiactl', '/dev/nvidia1']);
  expect(built.edits.env).toEqual(['NVIDIA_VISIBLE_DEVICES=GPU-1']);
});

test('the same snapshot and request give the same edits, every time', () => {
  const a = driverEdits(snapshot, ['compute', 'utility', 'video'], { hookPath: '/hook' });
  expect(driverEdits(snapshot, ['compute', 'utility', 'video'], { hookPath: '/hook' })).toEqual(a);
  expect(a.mounts?.map((m) => m.containerPath)).toContain(`${LIB}/libnvidia-encode.so.550.54.15`);
});

test('IMEX channels: the requested nodes with the host major:minor, after the GPU nodes; cgroup fields included', () => {
  const request = { gpu: true, devices: [{ kind: 'index', index: 0 }], capabilities: ['utility'], requirements: [], source: 'env', reasons: [], imexChannels: [1] } as DeviceRequest;
  const built = buildEdits({ inventory: snapshot, request, resolved: { gpus: [gpu(0)], migDevices: [] } as never, hookPath: '/hook', rootfs: '/r' });
  expect(built.edits.deviceNodes?.map((n) => n.path)).toEqual(['/dev/nvidiactl', '/dev/nvidia0', '/dev/nvidia-caps-imex-channels/channel1']);
  expect(built.edits.deviceNodes?.at(-1)).toEqual({
    path: '/dev/nvidia-caps-imex-channels/channel1', hostPath: `${ROOT}/dev/nvidia-caps-imex-channels/channel1`,
    type: 'c', major: 510, minor: 1, fileMode: 0o666, permissions: 'rwm',
  });
  expect(imexEdits(snapshot, [])).toEqual({});
  expect(imexEdits(snapshot, [0, 1]).deviceNodes?.map((n) => n.minor)).toEqual([0, 1]);
});

test('IMEX channels: one the host lacks is a DEVICE error naming it and what the host has', () => {
  const e = thrown(() => imexEdits(snapshot, [0, 7]));
  expect(e.code).toBe('DEVICE');
  expect(e.message).toBe(`IMEX channel 7: /dev/nvidia-caps-imex-channels/channel7 does not exist under ${ROOT} (the host has channels 0,1)`);
  const none = { ...snapshot, imexChannels: {} } as HostInventory;
  expect(thrown(() => imexEdits(none, [0])).message).toMatch(/the host has no IMEX channels in \/dev\/nvidia-caps-imex-channels/);
});

test('MIG administration: the global capability nodes from the snapshot; a missing one is an error naming it', () => {
  const withAdmin = { ...snapshot, migAdmin: { config: { procPath: '/proc/driver/nvidia/capabilities/mig/config', node: node('/dev/nvidia-caps/nvidia-cap1', 237, 1) } } } as unknown as HostInventory;
  expect(migAdminEdits(withAdmin, ['config']).deviceNodes?.map((n) => [n.path, n.major, n.minor])).toEqual([['/dev/nvidia-caps/nvidia-cap1', 237, 1]]);
  expect(() => migAdminEdits(withAdmin, ['monitor'])).toThrow(/MIG monitor capability: \/proc\/driver\/nvidia\/capabilities\/mig\/monitor or its \/dev\/nvidia-caps node is missing/);
  expect(migAdminEdits(snapshot, [])).toEqual({});
});
