/**
 * Threat: files that decide what runs or is mounted as host root, writable by someone else (SECURITY.md R6; issue:
 * "CDI specs are trusted whatever their mode": a world-writable spec with a createRuntime hook ran it as root).
 * One rule (src/trust.ts) for CDI spec dirs and files, the hooks they name, config.toml and runc: the file and its
 * directory, after links, owned by root and writable by nobody else. Through the runtime with real runc: an
 * untrusted spec or hook is refused with one line naming it, and the hook never runs.
 */
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBusyboxRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, runtimeRun, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let rootfs: string;
let n = 0;

beforeAll(async () => {
  host = await makeGpuHost(1);
  rootfs = makeBusyboxRootfs(join(host.dir, 'rootfs'));
});
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

/** A spec dir holding one spec for vendor.com/dev=x whose createRuntime hook leaves a marker; config pointing at it. */
function setup(specMode: number, hookMode: number, dirMode = 0o755) {
  const d = join(host.dir, `case-${++n}`);
  const specDir = join(d, 'cdi');
  mkdirSync(specDir, { recursive: true });
  const marker = join(d, 'hook-ran');
  const hook = join(d, 'hook');
  writeFileSync(hook, `#!/bin/sh\ntouch ${marker}\n`);
  chmodSync(hook, hookMode);
  const file = join(specDir, 'vendor.json');
  writeFileSync(file, JSON.stringify({
    cdiVersion: '0.6.0', kind: 'vendor.com/dev',
    devices: [{ name: 'x', containerEdits: { env: ['X=1'] } }],
    containerEdits: { hooks: [{ hookName: 'createRuntime', path: hook }] },
  }));
  chmodSync(file, specMode);
  chmodSync(specDir, dirMode);
  const configFile = join(d, 'config.toml');
  writeFileSync(configFile, `[nvidia-container-cli]\nroot = "${host.driverRoot}"\n[nvidia-container-runtime]\nmode = "cdi"\n[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["${specDir}"]\n`);
  return { gpuHost: { ...host, configFile }, marker, file, hook, specDir };
}

async function run(c: ReturnType<typeof setup>) {
  const bundle = await makeBundle(c.gpuHost, rootfs, { env: ['NVIDIA_VISIBLE_DEVICES=vendor.com/dev=x'], args: ['sh', '-c', 'echo X=$X'] });
  return runtimeRun(c.gpuHost, bundle);
}

test('a trusted spec and hook: the device is injected and its hook runs (the control case)', async () => {
  const c = setup(0o644, 0o755);
  const r = await run(c);
  expect([r.stderr, r.exitCode, r.stdout.trim()]).toEqual(['', 0, 'X=1']);
  expect(existsSync(c.marker)).toBe(true);
});

test.each([
  ['a world-writable spec file', 0o666, 0o755, 0o755, /unresolvable CDI devices: vendor\.com\/dev=x/],
  ['a group-writable spec directory', 0o644, 0o755, 0o775, /unresolvable CDI devices: vendor\.com\/dev=x/],
  ['a world-writable hook binary', 0o644, 0o777, 0o755, /CDI createRuntime hook .* is not trusted: .* is writable by group or others \(mode 777\): refusing to run it as root/],
])('%s: refused in one line, the hook never runs, no container', async (_, specMode, hookMode, dirMode, message) => {
  const c = setup(specMode, hookMode, dirMode);
  const r = await run(c);
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toMatch(message);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.containerCreated).toBe(false);
  expect(existsSync(c.marker)).toBe(false);
});
