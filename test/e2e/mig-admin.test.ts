/**
 * MIG administration with real runc (the toolkit's --mig-config / --mig-monitor, PEER §3.8): a privileged container
 * with NVIDIA_MIG_CONFIG_DEVICES / NVIDIA_MIG_MONITOR_DEVICES gets the global MIG config (nvidia-cap1) / monitor
 * (nvidia-cap2) capability node, minors from /proc/driver/nvidia/capabilities/mig/*; an unprivileged one is refused.
 */
import { execa } from 'execa';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { distBin, tempDir } from '../helpers/dist.js';
import { makeBusyboxRootfs } from '../helpers/images.js';
import { makeBundle, runtimeRun, writeConfig, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let rootfs: string;
const PRIVILEGED = ['CAP_SYS_ADMIN', 'CAP_KILL', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_SETUID', 'CAP_SETGID'];

beforeAll(async () => {
  const dir = tempDir('mig-admin');
  const driverRoot = join(dir, 'driver');
  await execa(distBin('nvidia-ctk'), ['mock-driver', '--root', driverRoot, '--gpus', '2', '--mig']);
  const configFile = join(dir, 'config.toml');
  writeConfig(configFile, driverRoot);
  const runcRoot = join(dir, 'runc-state');
  await execa('mkdir', ['-p', runcRoot]);
  host = { dir, driverRoot, topology: { gpus: [] } as never, configFile, runcRoot };
  rootfs = makeBusyboxRootfs(join(dir, 'rootfs'));
});
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

const CAPS = ['sh', '-c', 'ls /dev/nvidia-caps 2>/dev/null; true'];

test.each([
  ['NVIDIA_MIG_CONFIG_DEVICES=all', ['nvidia-cap1']],
  ['NVIDIA_MIG_MONITOR_DEVICES=all', ['nvidia-cap2']],
  ['NVIDIA_MIG_CONFIG_DEVICES=all NVIDIA_MIG_MONITOR_DEVICES=all', ['nvidia-cap1', 'nvidia-cap2']],
])('privileged, %s: the container gets %j', async (vars, want) => {
  const b = await makeBundle(host, rootfs, { env: ['NVIDIA_VISIBLE_DEVICES=0', ...vars.split(' ')], args: CAPS, capabilities: PRIVILEGED });
  const r = await runtimeRun(host, b);
  expect([r.stderr, r.exitCode]).toEqual(['', 0]);
  expect(r.stdout.trim().split('\n').filter(Boolean)).toEqual(want);
});

test('without it, no capability node; unprivileged with it: refused in one line, no container', async () => {
  const plain = await runtimeRun(host, await makeBundle(host, rootfs, { env: ['NVIDIA_VISIBLE_DEVICES=0'], args: CAPS, capabilities: PRIVILEGED }));
  expect(plain.stdout.trim()).toBe('');
  const r = await runtimeRun(host, await makeBundle(host, rootfs, { env: ['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_MIG_CONFIG_DEVICES=all'], args: CAPS, capabilities: ['CAP_KILL'] }));
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toMatch(/^nvidia-runtime: cannot set NVIDIA_MIG_CONFIG_DEVICES in a non-privileged container/);
  expect(r.containerCreated).toBe(false);
});
