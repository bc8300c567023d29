/**
 * IMEX channels with real runc and the mock driver root (channels 0-7, major 510): NVIDIA_IMEX_CHANNELS gives the
 * container exactly the named channel nodes with the host's major:minor and device-cgroup rules; a channel the host
 * lacks fails the create, naming it.
 */
import { statSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { makeBusyboxRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, runtimeRun, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let fresh = 0;
const DIR = '/dev/nvidia-caps-imex-channels';

beforeAll(async () => {
  host = await makeGpuHost(2);
});
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

const bundleFor = async (env: string[]) => {
  const rootfs = makeBusyboxRootfs(join(host.dir, `busybox-${++fresh}`));
  return makeBundle(host, rootfs, { env, args: ['sh', '-c', `ls -l ${DIR} 2>&1; echo ---; ls /dev`] });
};

test('NVIDIA_VISIBLE_DEVICES=0 + NVIDIA_IMEX_CHANNELS=1: channel1 only, with the host major:minor and its cgroup rule', async () => {
  const bundle = await bundleFor(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=1']);
  const r = await runtimeRun(host, bundle);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  const st = statSync(join(host.driverRoot, DIR, 'channel1'));
  const hostMajor = Math.floor(st.rdev / 256); // glibc encoding for small numbers
  const hostMinor = st.rdev % 256;
  expect([hostMajor, hostMinor]).toEqual([510, 1]);
  const lines = r.stdout.split('---')[0]!.split('\n').filter((l) => l.startsWith('c'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^crw-rw-rw-.* ${hostMajor},\\s+${hostMinor} .* channel1$`));
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  const rules = spec.linux.resources.devices.filter((d: { allow: boolean; major?: number }) => d.allow && d.major === hostMajor);
  expect(rules).toEqual([{ allow: true, type: 'c', major: hostMajor, minor: hostMinor, access: 'rwm' }]);
});

test('without NVIDIA_IMEX_CHANNELS the container has no channel directory', async () => {
  const r = await runtimeRun(host, await bundleFor(['NVIDIA_VISIBLE_DEVICES=0']));
  expect(r.exitCode).toBe(0);
  expect(r.stdout.split('---')[1]).not.toContain('nvidia-caps-imex-channels');
});

test('a channel the host lacks fails the create, naming it; nothing runs', async () => {
  const bundle = await bundleFor(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_IMEX_CHANNELS=9']);
  const r = await runtimeRun(host, bundle);
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toContain('IMEX channel 9');
  expect(r.stdout).toBe('');
});
