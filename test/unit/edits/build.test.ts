/**
 * The one edits builder is pure: it selects from a host snapshot and touches nothing else. Shown by building edits
 * from a snapshot written as an object literal, for a driver root that does not exist on disk.
 */
import { buildEdits, deviceEdits, driverEdits, drmEdits, featureEdits, imexEdits, migAdminEdits } from '../../../src/edits/build.js';
import { thrown } from '../../helpers/errors.js';
import type { HostInventory } from '../../../src/host/inventory.js';
import type { GpuInfo } from '../../../src/host/types.js';
import type { DeviceRequest } from '../../../src/request/types.js';

const ROOT = '/nonexistent/driver-root';
const LIB = '/usr/lib/x86_64-linux-gnu';
const node = (path: string, major: number, minor: number) => ({ path, hostPath: `${ROOT}${path}`, type: 'c', major, minor, fileMode: 0o666 });
const gpu = (index: number): GpuInfo => ({ index, minor: index, uuid: `GPU-${index}`, pciBusId: `00000000:${index + 18}:00.0`, migDevices: [] }) as unknown as GpuInfo;
const V = '550.54.15';
const drmOf = (i: number) => ({
  nodes: [node(`/dev/dri/card${i + 1}`, 226, i + 1), node(`/dev/dri/renderD${128 + i}`, 226, 128 + i)],
  links: [{ target: `../card${i + 1}`, link: `/dev/dri/by-path/pci-0000:${i + 18}:00.0-card` }],
});

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
  graphicsConfigs: [{ source: '/usr/share/glvnd/egl_vendor.d/10_nvidia.json', path: '/usr/share/glvnd/egl_vendor.d/10_nvidia.json' }, { source: '/usr/share/vulkan/icd.d/nvidia_icd.json', path: '/etc/vulkan/icd.d/nvidia_icd.json' }],
  xorgConfigs: [{ source: '/usr/share/X11/xorg.conf.d/10-nvidia.conf', path: '/usr/share/X11/xorg.conf.d/10-nvidia.conf' }],
  xorgModules: [{ source: `${LIB}/nvidia/xorg/libglxserver_nvidia.so.${V}`, path: `${LIB}/nvidia/xorg/libglxserver_nvidia.so.${V}` }],
  drm: { '00000000:18:00.0': drmOf(0), '00000000:19:00.0': drmOf(1) },
  features: {
    gds: { nodes: [node('/dev/nvidia-fs0', 241, 0)], mounts: ['/etc/cufile.json'] },
    mofed: { nodes: [], mounts: [] },
    nvswitch: { nodes: [node('/dev/nvidia-nvswitchctl', 240, 255)], mounts: [] },
    gdrcopy: { nodes: [], mounts: [] },
  },
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

const graphicsSnapshot = {
  ...snapshot,
  libraries: {
    ...snapshot.libraries,
    'libGLX_nvidia.so': `${LIB}/libGLX_nvidia.so.${V}`,
    'libnvidia-allocator.so': `${LIB}/libnvidia-allocator.so.${V}`,
    'libnvidia-vulkan-producer.so': `${LIB}/libnvidia-vulkan-producer.so.${V}`,
    'libnvidia-egl-gbm.so': `${LIB}/libnvidia-egl-gbm.so.1.1.1`,
    'libGL.so': `${LIB}/libGL.so.${V}`,
  },
} as unknown as HostInventory;
const request = (capabilities: string[], more: Partial<DeviceRequest> = {}) =>
  ({ gpu: true, devices: [{ kind: 'index', index: 1 }], capabilities, requirements: [], source: 'env', reasons: [], ...more }) as DeviceRequest;
const build = (req: DeviceRequest, more: object = {}) =>
  buildEdits({ inventory: graphicsSnapshot, request: req, resolved: { gpus: [gpu(1)], migDevices: [] } as never, hookPath: '/hook', rootfs: '/r', ...more }).edits;

test('graphics: the DRM nodes of the selected GPU only, its by-path link, the vendor/ICD files and the driver links', () => {
  const e = build(request(['graphics', 'utility']));
  expect(e.deviceNodes?.map((n) => n.path)).toEqual(['/dev/nvidiactl', '/dev/nvidia1', '/dev/dri/card2', '/dev/dri/renderD129']);
  expect(e.mounts?.map((m) => [m.containerPath, m.hostPath])).toEqual(expect.arrayContaining([
    ['/usr/share/glvnd/egl_vendor.d/10_nvidia.json', `${ROOT}/usr/share/glvnd/egl_vendor.d/10_nvidia.json`],
    ['/etc/vulkan/icd.d/nvidia_icd.json', `${ROOT}/usr/share/vulkan/icd.d/nvidia_icd.json`],
    [`${LIB}/libnvidia-egl-gbm.so.1.1.1`, `${ROOT}${LIB}/libnvidia-egl-gbm.so.1.1.1`],
  ]));
  expect(e.mounts?.map((m) => m.containerPath)).not.toContain('/usr/share/X11/xorg.conf.d/10-nvidia.conf');
  expect(e.mounts?.map((m) => m.containerPath)).not.toContain(`${LIB}/libGL.so.${V}`); // glvnd by default
  const links = e.hooks?.[0]?.args?.filter((_, i, a) => a[i - 1] === '--link');
  expect(links).toEqual([
    `libGLX_nvidia.so.${V}::${LIB}/libGLX_indirect.so.0`,
    `../libnvidia-allocator.so.${V}::${LIB}/gbm/nvidia-drm_gbm.so`,
    `libnvidia-vulkan-producer.so.${V}::${LIB}/libnvidia-vulkan-producer.so`,
    '../card2::/dev/dri/by-path/pci-0000:19:00.0-card',
  ]);
  for (const m of e.mounts ?? []) if (!m.containerPath.startsWith('/var/run/')) expect(m.options).toEqual(['ro', 'nosuid', 'nodev', 'rbind', 'rprivate']);
});

test('display: modeset, the X module and its link, the xorg.conf.d snippets; compute alone: no DRM, no graphics files', () => {
  const snap = { ...graphicsSnapshot, nodes: { ...snapshot.nodes, '/dev/nvidia-modeset': node('/dev/nvidia-modeset', 195, 254) } } as unknown as HostInventory;
  const e = buildEdits({ inventory: snap, request: request(['display']), resolved: { gpus: [gpu(1)], migDevices: [] } as never, hookPath: '/hook', rootfs: '/r' }).edits;
  expect(e.deviceNodes?.map((n) => n.path)).toEqual(['/dev/nvidiactl', '/dev/nvidia-modeset', '/dev/nvidia1', '/dev/dri/card2', '/dev/dri/renderD129']);
  expect(e.mounts?.map((m) => m.containerPath)).toEqual(expect.arrayContaining(['/usr/share/X11/xorg.conf.d/10-nvidia.conf', `${LIB}/nvidia/xorg/libglxserver_nvidia.so.${V}`]));
  expect(e.hooks?.[0]?.args).toContain(`libglxserver_nvidia.so.${V}::${LIB}/nvidia/xorg/libglxserver_nvidia.so`);
  const compute = build(request(['compute']));
  expect(compute.deviceNodes?.map((n) => n.path)).toEqual(['/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia1']);
  expect(compute.mounts?.some((m) => m.containerPath.includes('glvnd') || m.containerPath.includes('vulkan'))).toBe(false);
});

test('driver options: no-glvnd swaps in the compat GL libraries; no-uvm, no-modeset, no-persistenced, no-gsp-firmware leave parts out', () => {
  const glvnd = build(request(['graphics']), { driverOptions: ['no-glvnd'] });
  expect(glvnd.mounts?.map((m) => m.containerPath)).toContain(`${LIB}/libGL.so.${V}`);
  expect(glvnd.mounts?.map((m) => m.containerPath)).not.toContain(`${LIB}/libGLX_nvidia.so.${V}`);
  const opts = build(request(['compute', 'utility', 'display']), { driverOptions: ['no-uvm', 'no-modeset', 'no-persistenced', 'no-gsp-firmware'] });
  expect(opts.deviceNodes?.map((n) => n.path)).toEqual(['/dev/nvidiactl', '/dev/nvidia1', '/dev/dri/card2', '/dev/dri/renderD129']);
  expect(opts.mounts?.map((m) => m.containerPath).filter((p) => p.includes('persistenced') || p.includes('firmware'))).toEqual([]);
});

test('GDS/MOFED/NVSwitch/GDRCopy: the nodes (and cufile.json) of the features asked for that the host has', () => {
  const e = build(request(['utility'], { features: ['gds', 'mofed', 'nvswitch'] }));
  expect(e.deviceNodes?.map((n) => n.path)).toEqual(['/dev/nvidiactl', '/dev/nvidia1', '/dev/nvidia-fs0', '/dev/nvidia-nvswitchctl']);
  expect(e.mounts?.map((m) => m.containerPath)).toContain('/etc/cufile.json');
  expect(featureEdits(snapshot, ['mofed', 'gdrcopy'])).toEqual({});
  expect(build(request(['utility'])).deviceNodes?.map((n) => n.path)).toEqual(['/dev/nvidiactl', '/dev/nvidia1']);
});

test('CUDA compat: ldconfig in our hook, hook as nvidia-cdi-hook before it, mount binds the newer libraries next to libcuda', () => {
  const req = request(['compute']);
  expect(build(req, { cudaCompat: { mode: 'ldconfig' } }).hooks?.[0]?.args).toEqual(expect.arrayContaining(['--cuda-compat', V]));
  const hooked = build(req, { cudaCompat: { mode: 'hook' } }).hooks ?? [];
  expect(hooked.map((h) => [h.path, h.args?.slice(0, 3)])).toEqual([
    ['/nvidia-cdi-hook', ['nvidia-cdi-hook', 'enable-cuda-compat', `--host-driver-version=${V}`]],
    ['/hook', ['nvidia-runtime-hook', 'update-ldcache', '--root']],
  ]);
  expect(hooked[0]?.env).toEqual(['PATH=/usr/sbin:/usr/bin:/sbin:/bin']);
  const mounted = build(req, { cudaCompat: { mode: 'mount', libraries: [{ name: 'libcuda.so.560.35.03', hostPath: '/r/usr/local/cuda/compat/libcuda.so.560.35.03' }] } });
  expect(mounted.mounts?.find((m) => m.containerPath === `${LIB}/libcuda.so.560.35.03`)).toEqual({
    hostPath: '/r/usr/local/cuda/compat/libcuda.so.560.35.03', containerPath: `${LIB}/libcuda.so.560.35.03`, type: 'bind', options: ['ro', 'nosuid', 'nodev', 'rbind', 'rprivate'],
  });
  const off = build(req, { cudaCompat: { mode: 'disabled' } });
  expect(off.hooks?.[0]?.args).not.toContain('--cuda-compat');
  expect(off.hooks).toHaveLength(1);
});

test('drmEdits: nothing for a GPU without DRM', () => {
  expect(drmEdits(snapshot, [{ ...gpu(5) }])).toEqual({ edits: {}, links: [] });
});
