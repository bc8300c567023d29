/**
 * Threat: injected driver mounts escaping to the host (SECURITY.md §1.3, NVIDIA 42941001, "leaks mounts when a
 * container is started with bi-directional mount propagation"). A container bind-mounts a host *shared* mount over
 * the library directory; with a shared rootfs propagation every driver file we mount under it would appear in the
 * host's mount table, read-write, and outlive the container. Checked with real runc: the host's mount table is the
 * same before and after every case; the unsafe case is refused with one clear line and no container.
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeGlibcRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, runtimeRun, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let rootfs: string;
let shared: string;

beforeAll(async () => {
  host = await makeGpuHost(1);
  rootfs = await makeGlibcRootfs(join(host.dir, 'rootfs'));
  shared = join(host.dir, 'shared-libs');
  mkdirSync(shared);
  writeFileSync(join(shared, 'libother.so'), '');
  await execa('mount', ['--bind', shared, shared]);
  await execa('mount', ['--make-shared', shared]);
});
afterAll(async () => {
  await execa('umount', ['-R', shared], { reject: false });
  rmSync(host.dir, { recursive: true, force: true });
});

const mountTable = async (): Promise<string[]> =>
  (await execa('findmnt', ['-rn', '-o', 'TARGET,SOURCE,OPTIONS,PROPAGATION'])).stdout.split('\n').sort();

async function bundleWith(option: string | undefined, rootfsPropagation: string | undefined): Promise<string> {
  const b = await makeBundle(host, rootfs, { env: ['NVIDIA_VISIBLE_DEVICES=0'], args: ['sh', '-c', 'ls /usr/lib/x86_64-linux-gnu'] });
  const file = join(b, 'config.json');
  const spec = JSON.parse(readFileSync(file, 'utf8'));
  spec.mounts.push({ destination: '/usr/lib/x86_64-linux-gnu', source: shared, type: 'bind', options: ['rbind', ...(option ? [option] : [])] });
  if (rootfsPropagation) spec.linux.rootfsPropagation = rootfsPropagation;
  writeFileSync(file, JSON.stringify(spec));
  return b;
}

test.each([
  ['rshared', 'shared'], [undefined, 'rshared'], ['rshared', 'slave'], [undefined, 'private'],
])('mount option %j with rootfsPropagation %j: refused, nothing mounted, no container', async (option, root) => {
  const before = await mountTable();
  const r = await runtimeRun(host, await bundleWith(option, root));
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toMatch(/^nvidia-runtime: .*would carry the driver mounts added under it .* to the host: .*; give that mount rslave or rprivate propagation.*\n?$/);
  expect(r.containerCreated).toBe(false);
  expect(await mountTable()).toEqual(before);
});

test.each([
  ['rslave', 'shared'], ['rprivate', 'rshared'], ['rshared', undefined], [undefined, 'rslave'],
])('mount option %j with rootfsPropagation %j: the GPU container runs, and the host mount table is unchanged', async (option, root) => {
  const before = await mountTable();
  const r = await runtimeRun(host, await bundleWith(option, root));
  expect([r.stderr, r.exitCode]).toEqual(['', 0]);
  expect(r.stdout).toMatch(/libcuda\.so\.550\.54\.15/);
  expect(r.stdout).toMatch(/libother\.so/);
  expect(await mountTable()).toEqual(before);
  expect(readFileSync(join(shared, 'libother.so'), 'utf8')).toBe(''); // and nothing was written through it
});
