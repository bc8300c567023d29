/**
 * A host that ran NVIDIA's toolkit keeps its /etc/cdi/nvidia.yaml: the exact spec NVIDIA's `nvidia-ctk cdi generate`
 * wrote for our default mock root (test/fixtures/nvidia), moved to this test's mock root with our
 * `nvidia-ctk cdi transform root` and its hooks pointed at our `nvidia-cdi-hook`, drives nvidia-runtime (mode cdi)
 * with real runc: the container gets the same device nodes and driver files as from our own spec, and the links
 * and ld cache NVIDIA's hooks ask for.
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distBin, PACKAGE_ROOT } from '../helpers/dist.js';
import { makeGlibcRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, runtimeRun, type GpuHost } from '../helpers/runtime-env.js';

const FIXTURE = join(PACKAGE_ROOT, 'test/fixtures/nvidia/nvidia-ctk-1.17.9-cdi-mock8.yaml');
let host: GpuHost;
let rootfs: string;
const config = (dir: string) => join(dir, 'config.toml');

beforeAll(async () => {
  host = await makeGpuHost(8);
  rootfs = await makeGlibcRootfs(join(host.dir, 'rootfs'));
  for (const which of ['theirs', 'ours']) {
    const dir = join(host.dir, which);
    mkdirSync(join(dir, 'cdi'), { recursive: true });
    writeFileSync(config(dir), `[nvidia-container-cli]\nroot = "${host.driverRoot}"\n[nvidia-container-runtime]\nmode = "cdi"\n[nvidia-container-runtime.modes.cdi]\nspec-dirs = ["${join(dir, 'cdi')}"]\n`);
  }
  const moved = join(host.dir, 'moved.yaml');
  await execa(distBin('nvidia-ctk'), ['cdi', 'transform', 'root', '--from', '/var/lib/nvidia-runtime/mock-driver', '--to', host.driverRoot, '--input', FIXTURE, '--output', moved]);
  writeFileSync(join(host.dir, 'theirs', 'cdi', 'nvidia.yaml'), readFileSync(moved, 'utf8').split('/usr/bin/nvidia-cdi-hook').join(distBin('nvidia-cdi-hook')));
  await execa(distBin('nvidia-ctk'), ['cdi', 'generate', '--driver-root', host.driverRoot, '--output', join(host.dir, 'ours', 'cdi', 'nvidia.yaml')]);
});
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

const SHOW = ['sh', '-c', 'ls /dev | grep -E "^nvidia"; echo ---; ls /usr/lib/x86_64-linux-gnu | grep -E "nvidia|cuda|GLX_indirect"; echo ---; ldconfig -p | grep -E "libcuda|libnvidia-ml" | sed "s/ (.*=>/ =>/"'];

async function inContainer(which: 'theirs' | 'ours', device: string): Promise<string[]> {
  const h = { ...host, configFile: config(join(host.dir, which)) };
  const r = await runtimeRun(h, await makeBundle(h, rootfs, { env: [`NVIDIA_VISIBLE_DEVICES=${device}`], args: SHOW }));
  expect([r.stderr, r.exitCode]).toEqual(['', 0]);
  return r.stdout.split('---').map((s) => s.trim());
}

test.each(['nvidia.com/gpu=1', 'nvidia.com/gpu=all'])('%s: the same nodes, driver files and ld cache as from our own spec', async (device) => {
  const [theirNodes, theirFiles, theirCache] = await inContainer('theirs', device);
  const [ourNodes, ourFiles, ourCache] = await inContainer('ours', device);
  expect(theirNodes).toEqual(ourNodes);
  expect(theirNodes).toMatch(device.endsWith('=1') ? /^nvidia1$/m : /^nvidia7$/m);
  // NVIDIA's spec carries the graphics links its create-symlinks hooks make; every file of ours is there too.
  for (const f of ourFiles!.split('\n')) expect(theirFiles!.split('\n')).toContain(f);
  expect(theirFiles).toMatch(/libGLX_indirect\.so\.0/);
  expect(theirCache).toMatch(/libcuda\.so\.1 => \/usr\/lib\/x86_64-linux-gnu\/libcuda\.so\.1/);
  expect(ourCache).toMatch(/libcuda\.so\.1 => /);
});
