/**
 * A CDI spec written by NVIDIA's `nvidia-ctk cdi generate` (v1.17.9, test/fixtures/nvidia/) keeps working with our
 * nvidia-cdi-hook: its mounts and its four createContainer hooks (create-symlinks ×2, enable-cuda-compat,
 * update-ldcache), with the hook path pointed at dist/bin/nvidia-cdi-hook, put into a bundle's config.json over a
 * glibc rootfs, run by plain `runc run` (no nvidia-runtime involved).
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { PACKAGE_ROOT, distBin } from '../helpers/dist.js';
import { makeGlibcRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, runtimeRun, type GpuHost } from '../helpers/runtime-env.js';

interface CdiHook { hookName: string; path: string; args: string[]; env?: string[] }
interface CdiMount { hostPath: string; containerPath: string; options?: string[] }

const FIXTURE_ROOT = '/var/lib/nvidia-runtime/mock-driver';
const LIB = '/usr/lib/x86_64-linux-gnu';
let host: GpuHost;
let hooks: CdiHook[];
let mounts: CdiMount[];

beforeAll(async () => {
  host = await makeGpuHost(8);
  const spec = parse(readFileSync(join(PACKAGE_ROOT, 'test/fixtures/nvidia/nvidia-ctk-1.17.9-cdi-mock8.yaml'), 'utf8')) as {
    containerEdits: { hooks: CdiHook[]; mounts: CdiMount[] };
  };
  hooks = spec.containerEdits.hooks.map((h) => ({ ...h, path: distBin('nvidia-cdi-hook') }));
  // The fixture's host paths carry the default mock root; this host's mock root is elsewhere.
  mounts = spec.containerEdits.mounts.map((m) => ({ ...m, hostPath: m.hostPath.replace(FIXTURE_ROOT, host.driverRoot) }));
});
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

const SCRIPT = [
  'ldconfig -p', 'echo ---',
  `for l in ${LIB}/gbm/nvidia-drm_gbm.so ${LIB}/libGLX_indirect.so.0 ${LIB}/libcuda.so ${LIB}/libnvidia-opticalflow.so; do echo "$l -> $(readlink $l)"; done`,
  'echo ---', 'head /etc/ld.so.conf.d/*.conf',
].join('; ');

/** A bundle over a fresh glibc rootfs whose config.json carries the fixture's mounts and hooks; runs it with runc. */
async function runWithFixtureHooks(prepare?: (rootfs: string) => Promise<void>) {
  const rootfs = await makeGlibcRootfs(join(host.dir, `glibc-${Math.random().toString(36).slice(2)}`));
  if (prepare) await prepare(rootfs);
  const bundle = await makeBundle(host, rootfs, { args: ['sh', '-c', SCRIPT] });
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  config.mounts.push(...mounts.map((m) => ({ destination: m.containerPath, type: 'bind', source: m.hostPath, options: m.options })));
  config.hooks = { createContainer: hooks.map(({ path, args, env }) => ({ path, args, env })) };
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config, null, '\t'));
  const r = await runtimeRun(host, bundle, {}, 'runc');
  return { ...r, sections: r.stdout.split('---\n') };
}

test("the fixture's hooks run as written: links in the container, ldconfig -p lists the folder's libraries", async () => {
  expect(hooks.map((h) => h.args.slice(0, 2).join(' '))).toEqual([
    'nvidia-cdi-hook create-symlinks', 'nvidia-cdi-hook create-symlinks', 'nvidia-cdi-hook enable-cuda-compat', 'nvidia-cdi-hook update-ldcache',
  ]);
  const r = await runWithFixtureHooks();
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  const [cache, links, confs] = r.sections;
  expect(links.split('\n').filter(Boolean)).toEqual([
    `${LIB}/gbm/nvidia-drm_gbm.so -> ../libnvidia-allocator.so.1`,
    `${LIB}/libGLX_indirect.so.0 -> libGLX_nvidia.so.550.54.15`,
    `${LIB}/libcuda.so -> libcuda.so.1`,
    `${LIB}/libnvidia-opticalflow.so -> libnvidia-opticalflow.so.1`,
  ]);
  for (const lib of ['libcuda.so.1', 'libnvidia-ml.so.1', 'libnvidia-ptxjitcompiler.so.1', 'libnvidia-allocator.so.1', 'libGLX_nvidia.so.0']) {
    expect(cache).toMatch(new RegExp(`^\\s+${lib.replace(/\./g, '\\.')} \\(libc6,x86-64\\) => ${LIB}/${lib.replace(/\./g, '\\.')}$`, 'm'));
  }
  // The image's conf.d already lists the folder: nothing of ours written; no compat dir: no 00-compat file.
  expect(confs).not.toContain('00-compat-');
  expect(confs).not.toContain('00-nvidia-runtime.conf');
});

test('CUDA forward compat in the image, newer than the host driver: its libcuda.so.1 comes first in the container', async () => {
  const r = await runWithFixtureHooks(async (rootfs) => {
    const src = join(rootfs, 'tmp/compat.c');
    writeFileSync(src, 'int cuda_compat(void) { return 1; }\n');
    mkdirSync(join(rootfs, 'usr/local/cuda-12.6/compat'), { recursive: true });
    await execa('cc', ['-shared', '-fPIC', '-Wl,-soname,libcuda.so.1', '-o', join(rootfs, 'usr/local/cuda-12.6/compat/libcuda.so.560.35.03'), src]);
    await execa('ln', ['-s', 'cuda-12.6', join(rootfs, 'usr/local/cuda')]);
  });
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  const [cache, , confs] = r.sections;
  expect(cache.split('\n').filter((l) => /^\s+libcuda\.so\.1 /.test(l))).toEqual([
    '\tlibcuda.so.1 (libc6,x86-64) => /usr/local/cuda/compat/libcuda.so.1',
    `\tlibcuda.so.1 (libc6,x86-64) => ${LIB}/libcuda.so.1`,
  ]);
  expect(confs).toContain('==> /etc/ld.so.conf.d/00-compat-560.conf <==\n# written by nvidia-cdi-hook enable-cuda-compat for this container\n/usr/local/cuda/compat\n');
});
