/** Device node checks: pure over node facts and /proc/devices majors. */
import fc from 'fast-check';
import { checkNode, deviceChecks, expectedNode, parseModuleVersion, type DeviceFacts, type NodeFact } from '../../../src/doctor/devices.js';

const MAJORS = { nvidia: 195, 'nvidia-uvm': 508 };
const node = (path: string, over: Partial<NodeFact> = {}): NodeFact => {
  const e = expectedNode(path)!;
  return { path, hostPath: `/drv${path}`, kind: 'char', major: e.majorNames.includes('nvidia-uvm') ? 508 : 195, minor: e.minor, mode: 0o666, ...over };
};

test('every control node and GPU node has its fixed minor and driver', () => {
  expect(expectedNode('/dev/nvidiactl')).toMatchObject({ minor: 255, required: true });
  expect(expectedNode('/dev/nvidia-modeset')).toMatchObject({ minor: 254, required: false });
  expect(expectedNode('/dev/nvidia-uvm')).toMatchObject({ minor: 0, majorNames: ['nvidia-uvm'], required: true });
  expect(expectedNode('/dev/nvidia-uvm-tools')).toMatchObject({ minor: 1, required: false });
  expect(expectedNode('/dev/nvidia7')).toMatchObject({ minor: 7, required: true });
});

test('a right node is a PASS with its numbers and mode', () => {
  expect(checkNode(node('/dev/nvidia0'), MAJORS)).toMatchObject({ id: 'devices.nvidia0', status: 'PASS', message: '/drv/dev/nvidia0 195:0 mode 0666' });
});

test('a missing GPU or control node is a FAIL; a missing optional one an INFO', () => {
  expect(checkNode(node('/dev/nvidia1', { kind: 'missing' }), MAJORS)).toMatchObject({ status: 'FAIL', fix: expect.stringContaining('nvidia-modprobe') });
  expect(checkNode(node('/dev/nvidiactl', { kind: 'missing' }), MAJORS).status).toBe('FAIL');
  expect(checkNode(node('/dev/nvidia-modeset', { kind: 'missing' }), MAJORS).status).toBe('INFO');
});

test('a major that is not the driver\'s in /proc/devices is a stale node: FAIL', () => {
  const c = checkNode(node('/dev/nvidia-uvm', { major: 511 }), MAJORS);
  expect(c.status).toBe('FAIL');
  expect(c.message).toContain('/proc/devices says nvidia-uvm is 508');
});

test('older drivers name the major nvidia-frontend', () => {
  expect(checkNode(node('/dev/nvidia0'), { 'nvidia-frontend': 195, 'nvidia-uvm': 508 }).status).toBe('PASS');
});

test('a driver missing from /proc/devices (module not loaded) is a WARN naming the module', () => {
  expect(checkNode(node('/dev/nvidia-uvm'), { nvidia: 195 })).toMatchObject({ status: 'WARN', fix: expect.stringContaining('modprobe nvidia-uvm') });
});

test('a wrong minor is a FAIL; any mode short of rw for everyone a WARN', () => {
  expect(checkNode(node('/dev/nvidiactl', { minor: 3 }), MAJORS).status).toBe('FAIL');
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0o777 }), (mode) => {
      const status = checkNode(node('/dev/nvidia0', { mode }), MAJORS).status;
      return status === ((mode & 0o666) === 0o666 ? 'PASS' : 'WARN');
    }),
  );
});

test('the kernel module version is parsed from /proc/driver/nvidia/version, and a mismatch with NVML is a FAIL', () => {
  fc.assert(
    fc.property(fc.tuple(fc.nat(999), fc.nat(999), fc.nat(99)), ([a, b, c]) => {
      const v = `${a}.${b}.${c}`;
      return parseModuleVersion(`NVRM version: NVIDIA UNIX x86_64 Kernel Module  ${v}  Mon Jan  1 00:00:00 UTC 2024\nGCC version: gcc\n`) === v;
    }),
  );
  expect(parseModuleVersion('garbage')).toBeUndefined();
  const f: DeviceFacts = { devRoot: '/drv', majors: MAJORS, procRoot: '/drv', driverGpuMinors: [0], nvmlGpuMinors: [0], moduleVersion: '550.54.15', nvmlDriverVersion: '535.104.05', nodes: [] };
  expect(deviceChecks(f).find((c) => c.id === 'devices.module')).toMatchObject({ status: 'FAIL', message: expect.stringContaining('Driver/library version mismatch') });
  expect(deviceChecks({ ...f, nvmlDriverVersion: '550.54.15' }).find((c) => c.id === 'devices.module')!.status).toBe('PASS');
});

test('GPUs the driver lists but NVML does not report are a WARN; unreadable /proc/devices too', () => {
  const f: DeviceFacts = { devRoot: '/drv', procRoot: '/drv', driverGpuMinors: [0, 1], nvmlGpuMinors: [0], nvmlDriverVersion: '550.54.15', nodes: [] };
  const ids = deviceChecks(f).filter((c) => c.status === 'WARN').map((c) => c.id);
  expect(ids).toEqual(['devices.majors', 'devices.gpus']);
});
