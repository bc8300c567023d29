import { join } from 'node:path';
import { NvrError } from '../../../src/errors.js';
import {
  decodeRdev,
  gpuDeviceNode,
  lookupDeviceNode,
  lookupDeviceNodes,
  migDeviceCapabilities,
  migGlobalCapability,
  parseDeviceFileMinor,
} from '../../../src/host/devices.js';
import { makeFakeRoot, removeFakeRoot, standardFakeRootSpec } from '../../helpers/fake-root.js';

const capFile = (minor: number) => `DeviceFileMinor: ${minor}\nDeviceFileMode: 292\nDeviceFileModify: 1\n`;

describe('decodeRdev', () => {
  it('decodes glibc dev_t encodings, including large majors and minors', () => {
    const encode = (major: bigint, minor: bigint) =>
      ((major & 0xfffn) << 8n) | ((major & ~0xfffn) << 32n) | (minor & 0xffn) | ((minor & ~0xffn) << 12n);
    expect(decodeRdev(encode(195n, 255n))).toEqual({ major: 195, minor: 255 });
    expect(decodeRdev(Number(encode(237n, 1n)))).toEqual({ major: 237, minor: 1 });
    expect(decodeRdev(encode(0x12345n, 0xabcdefn))).toEqual({ major: 0x12345, minor: 0xabcdef });
  });
});

describe('device nodes', () => {
  let root: string;
  beforeAll(() => {
    const spec = standardFakeRootSpec('550.54.15', 237);
    root = makeFakeRoot({
      ...spec,
      devices: [
        ...spec.devices!,
        { path: '/dev/nvidia-caps/nvidia-cap1', major: 511, minor: 1, mode: 0o400 },
        { path: '/dev/nvidia-caps/nvidia-cap2', major: 511, minor: 2, mode: 0o444 },
        { path: '/dev/nvidia-caps/nvidia-cap21', major: 511, minor: 21, mode: 0o444 },
        { path: '/dev/nvidia-caps/nvidia-cap22', major: 511, minor: 22, mode: 0o444 },
      ],
      files: {
        '/dev/nvidia7': 'a regular file, not a device',
        '/proc/driver/nvidia/capabilities/mig/config': capFile(1),
        '/proc/driver/nvidia/capabilities/mig/monitor': capFile(2),
        '/proc/driver/nvidia/capabilities/gpu0/mig/gi2/access': capFile(21),
        '/proc/driver/nvidia/capabilities/gpu0/mig/gi2/ci0/access': capFile(22),
        '/proc/driver/nvidia/capabilities/gpu0/mig/gi3/access': capFile(30), // node missing
        '/proc/driver/nvidia/capabilities/gpu0/mig/gi3/ci0/access': 'DeviceFileMode: 292\n', // no minor
      },
      symlinks: { '/dev/nvidia2': 'nvidia1', '/dev/nvidia3': '/../../../../dev/null' },
    });
  });
  afterAll(() => removeFakeRoot(root));

  it('reads type, major, minor and mode from the host node', () => {
    expect(lookupDeviceNode(root, '/dev/nvidiactl')).toEqual({
      path: '/dev/nvidiactl',
      hostPath: join(root, 'dev/nvidiactl'),
      type: 'c',
      major: 195,
      minor: 255,
      fileMode: 0o666,
    });
    expect(gpuDeviceNode(root, 1)).toMatchObject({ major: 195, minor: 1 });
  });

  it('uses the real major of nvidia-uvm (not 195)', () => {
    expect(lookupDeviceNodes(root, ['/dev/nvidia-uvm', '/dev/nvidia-uvm-tools']).map((n) => [n.major, n.minor])).toEqual([
      [237, 0],
      [237, 1],
    ]);
  });

  it('follows links inside the dev root only, keeping the container path', () => {
    expect(lookupDeviceNode(root, '/dev/nvidia2')).toMatchObject({ path: '/dev/nvidia2', hostPath: join(root, 'dev/nvidia1'), minor: 1 });
    // would be the host's /dev/null (a char device) if resolution escaped the root
    expect(lookupDeviceNode(root, '/dev/nvidia3')).toBeUndefined();
  });

  it('leaves out missing nodes and non-devices, or throws DEVICE when strict', () => {
    expect(gpuDeviceNode(root, 5)).toBeUndefined();
    expect(gpuDeviceNode(root, 7)).toBeUndefined();
    expect(lookupDeviceNodes(root, ['/dev/nvidia0', '/dev/nvidia5', '/dev/nvidia1']).map((n) => n.path)).toEqual([
      '/dev/nvidia0',
      '/dev/nvidia1',
    ]);
    expect(() => gpuDeviceNode(root, 5, { strict: true })).toThrow(NvrError);
    expect(() => gpuDeviceNode(root, 5, { strict: true })).toThrow(/device node \/dev\/nvidia5 .* does not exist/);
    expect(() => gpuDeviceNode(root, 7, { strict: true })).toThrow(/is not a character device/);
  });

  it('parses DeviceFileMinor', () => {
    expect(parseDeviceFileMinor(capFile(17))).toBe(17);
    expect(parseDeviceFileMinor('DeviceFileMode: 1\n')).toBeUndefined();
    expect(parseDeviceFileMinor('DeviceFileMinor: x\n')).toBeUndefined();
  });

  it('finds MIG GPU-instance and compute-instance capabilities', () => {
    const caps = migDeviceCapabilities(root, root, { gpuMinor: 0, gpuInstanceId: 2, computeInstanceId: 0 });
    expect(caps.map((c) => [c.procPath, c.node?.path, c.node?.major, c.node?.minor, c.node?.fileMode])).toEqual([
      ['/proc/driver/nvidia/capabilities/gpu0/mig/gi2/access', '/dev/nvidia-caps/nvidia-cap21', 511, 21, 0o444],
      ['/proc/driver/nvidia/capabilities/gpu0/mig/gi2/ci0/access', '/dev/nvidia-caps/nvidia-cap22', 511, 22, 0o444],
    ]);
  });

  it('keeps /proc-style caps without a node, skips unreadable ones, and is strict on request', () => {
    const mig = { gpuMinor: 0, gpuInstanceId: 3, computeInstanceId: 0 };
    expect(migDeviceCapabilities(root, root, mig)).toEqual([{ procPath: '/proc/driver/nvidia/capabilities/gpu0/mig/gi3/access' }]);
    expect(migDeviceCapabilities(root, root, { gpuMinor: 1, gpuInstanceId: 0, computeInstanceId: 0 })).toEqual([]);
    expect(() => migDeviceCapabilities(root, root, mig, { strict: true })).toThrow(/nvidia-cap30/);
  });

  it('finds the global MIG config and monitor capabilities', () => {
    expect(migGlobalCapability(root, root, 'config')?.node).toMatchObject({ path: '/dev/nvidia-caps/nvidia-cap1', minor: 1, fileMode: 0o400 });
    expect(migGlobalCapability(root, root, 'monitor')?.node).toMatchObject({ minor: 2 });
    const empty = makeFakeRoot({});
    expect(migGlobalCapability(empty, root, 'config')).toBeUndefined();
    expect(() => migGlobalCapability(empty, root, 'config', { strict: true })).toThrow(/mig\/config .* missing/);
    removeFakeRoot(empty);
  });
});
