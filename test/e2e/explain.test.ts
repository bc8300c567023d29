/** `nvidia-ctk explain`: the create pipeline's verdict and diff, without writing anything. */
import { execa } from 'execa';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { distBin } from '../helpers/dist.js';
import { makeBusyboxRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let rootfs: string;
beforeAll(async () => {
  host = await makeGpuHost(2);
  rootfs = makeBusyboxRootfs(join(host.dir, 'rootfs'));
});
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

const explain = (bundle: string, extra: string[] = []) =>
  execa(distBin('nvidia-ctk'), ['explain', '--bundle', bundle, ...extra], { reject: false, env: { NVIDIA_CTK_CONFIG_FILE_PATH: host.configFile } });

test('a GPU request: devices, grant and the config.json diff; nothing written', async () => {
  const bundle = await makeBundle(host, rootfs, { env: ['NVIDIA_VISIBLE_DEVICES=1'], args: ['true'] });
  const before = readFileSync(join(bundle, 'config.json'), 'utf8');
  const r = await explain(bundle);
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toContain(`GPU 1: ${host.topology.gpus[1].name} (${host.topology.gpus[1].uuid}), /dev/nvidia1`);
  expect(r.stdout).toContain(`-      "NVIDIA_VISIBLE_DEVICES=1"`);
  expect(r.stdout).toContain(`+      "NVIDIA_VISIBLE_DEVICES=${host.topology.gpus[1].uuid}"`);
  expect(r.stdout).toContain('Result:        create would succeed');
  expect(readFileSync(join(bundle, 'config.json'), 'utf8')).toBe(before);
  const json = JSON.parse((await explain(bundle, ['--json'])).stdout);
  expect(json.devices.map((d: { uuid: string }) => d.uuid)).toEqual([host.topology.gpus[1].uuid]);
  expect(json.edits.deviceNodes).toBe(4);
});

test('no GPU: says why, no diff', async () => {
  const bundle = await makeBundle(host, rootfs, { env: ['NVIDIA_VISIBLE_DEVICES=void'], args: ['true'] });
  const r = await explain(bundle);
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toContain('GPU container: no');
  expect(r.stdout).not.toContain('+++');
});

test('a request that would fail: exit 1 and the reason', async () => {
  const bundle = await makeBundle(host, rootfs, { env: ['NVIDIA_VISIBLE_DEVICES=5'], args: ['true'] });
  const r = await explain(bundle);
  expect(r.exitCode).toBe(1);
  expect(r.stdout).toContain('create would FAIL');
  expect(r.stdout).toMatch(/Why: +unknown device "5"/);
});

describe('the launcher decision and runc command lines', () => {
  beforeAll(async () => {
    // One call through the runtime writes the launcher view for this config file and PATH.
    await execa(distBin('nvidia-runtime'), ['state', 'none'], { reject: false, env: { NVIDIA_CTK_CONFIG_FILE_PATH: host.configFile } });
  });

  test('a GPU create: the launcher hands it to the runtime, and says why', async () => {
    const bundle = await makeBundle(host, rootfs, { env: ['NVIDIA_VISIBLE_DEVICES=1'], args: ['true'] });
    const r = await explain(bundle);
    expect(r.stdout).toContain(`Call:          nvidia-runtime create --bundle ${bundle} explain`);
    expect(r.stdout).toContain('Launcher:      hands the call to the runtime: GPU marker "NVIDIA_" in the spec');
  });

  test('a plain create: the launcher execs runc itself', async () => {
    const bundle = await makeBundle(host, rootfs, { args: ['true'] });
    const json = JSON.parse((await explain(bundle, ['--json'])).stdout);
    expect(json.launcher).toEqual({ action: 'runc', detail: expect.stringMatching(/\/runc$/) });
    expect(json.gpuContainer).toBe(false);
  });

  test('a runc command line after --: flags after the id, and a verb runc passes through', async () => {
    const bundle = await makeBundle(host, rootfs, { env: ['NVIDIA_VISIBLE_DEVICES=0'], args: ['true'] });
    const r = await explain(bundle, ['--', '--root', '/run/x', 'create', 'id1', '--bundle', bundle]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`GPU 0: ${host.topology.gpus[0].name}`);
    const s = await explain(bundle, ['--', '--cgroup-manager', 'disabled', 'delete', 'id1']);
    expect(s.stdout).toContain('Runtime:       passes the call to runc untouched');
    expect(s.stdout).toMatch(/Launcher: +execs \S*runc directly/);
  });
});
