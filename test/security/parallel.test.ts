/**
 * Threat: concurrency (SECURITY.md §6 "100 parallel creates"): GPU containers created at once, each from its own
 * rootfs or all from one shared rootfs (the ld cache hook's ldconfig uses a fixed temp name, /etc/ld.so.cache~).
 * Every one must get its GPU and a working ld cache; none may fail or see another's state.
 */
import { execa } from 'execa';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { makeGlibcRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, runtimeRun, type GpuHost } from '../helpers/runtime-env.js';

const N = 100;
let host: GpuHost;
let shared: string;

beforeAll(async () => {
  host = await makeGpuHost(4);
  shared = await makeGlibcRootfs(join(host.dir, 'shared-rootfs'));
});
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

const ARGS = ['sh', '-c', 'ls /dev | grep -E "^nvidia[0-9]+$"; ldconfig -p | grep -c "libcuda.so.1 "'];

async function runAll(rootfsOf: (i: number) => Promise<string>) {
  const bundles = await Promise.all(Array.from({ length: N }, async (_, i) =>
    makeBundle(host, await rootfsOf(i), { env: [`NVIDIA_VISIBLE_DEVICES=${i % 4}`], args: ARGS })));
  return Promise.all(bundles.map((b) => runtimeRun(host, b)));
}

function expectEach(results: Awaited<ReturnType<typeof runAll>>): void {
  const summary = results.map((r, i) => [r.exitCode, r.stderr, r.stdout.trim().split('\n')[0], i]);
  expect(summary).toEqual(results.map((_, i) => [0, '', `nvidia${i % 4}`, i]));
  for (const r of results) expect(Number(r.stdout.trim().split('\n')[1])).toBe(1);
}

test(`${N} parallel GPU containers over one shared rootfs`, async () => {
  expectEach(await runAll(async () => shared));
}, 300_000);

test(`${N} parallel GPU containers, each with its own rootfs`, async () => {
  expectEach(await runAll(async (i) => {
    const own = join(host.dir, `rootfs-${i}`);
    await execa('cp', ['-al', shared, own]); // a hard-linked copy: distinct directories, no disk cost
    return own;
  }));
}, 300_000);
