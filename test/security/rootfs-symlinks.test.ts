/**
 * Threat: a hostile image whose rootfs links point out of it (SECURITY.md §1.1 CVE-2024-0132/CVE-2025-23359 mount
 * sources and targets from the image, §1.2 CVE-2024-0133/0134 files created on the host, §1.6 CVE-2025-23267 the
 * update-ldcache hook following links, §1.3 the firmware-traversal e2e test). Each case is a glibc rootfs with one
 * "zoo" entry, run as a GPU container through the runtime and real runc; a sentinel tree on the host is hashed
 * afterwards and must be exactly what plain runc leaves with the same rootfs and no GPU (runc 1.1.5 itself follows
 * a /dev link to create its stdio links: that is runc's, not ours), and no NVIDIA file may appear in it. The
 * container either runs with its GPU, or create fails with one line.
 */
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeGlibcRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, runtimeRun, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let sentinel: string;
let base: string;
let n = 0;

/** Every path under root with its type, mode and content or link target, hashed. */
function treeHash(root: string): string {
  const h = createHash('sha256');
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = join(rel, name);
      const st = lstatSync(join(root, p));
      h.update(`${p} ${st.mode} ${st.size}\n`);
      if (st.isSymbolicLink()) h.update(readlinkSync(join(root, p)));
      else if (st.isDirectory()) walk(p);
      else if (st.isFile()) h.update(readFileSync(join(root, p)));
    }
  };
  walk('.');
  return h.digest('hex');
}

beforeAll(async () => {
  host = await makeGpuHost(1);
  sentinel = join(host.dir, 'sentinel'); // stands for the host's /etc, /usr/lib, /dev, /lib/firmware …
  for (const d of ['etc/ld.so.conf.d', 'usr/lib/x86_64-linux-gnu', 'dev', 'lib/firmware/nvidia']) mkdirSync(join(sentinel, d), { recursive: true });
  writeFileSync(join(sentinel, 'etc/ld.so.cache'), 'host cache');
  writeFileSync(join(sentinel, 'etc/ld.so.conf'), 'host conf\n');
  writeFileSync(join(sentinel, 'usr/lib/x86_64-linux-gnu/libhost.so'), 'host lib');
  await execa('cp', ['-a', sentinel, `${sentinel}.pristine`]);
  base = await makeGlibcRootfs(join(host.dir, 'base'));
});
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

/** A copy of the glibc rootfs with `zoo` applied (it gets the rootfs directory). */
async function zooRootfs(zoo: (root: string) => void): Promise<string> {
  const root = join(host.dir, `zoo-${++n}`);
  await execa('cp', ['-a', base, root]);
  zoo(root);
  return root;
}

const replace = (root: string, rel: string, make: (path: string) => void) => {
  rmSync(join(root, rel), { recursive: true, force: true });
  mkdirSync(join(root, rel, '..'), { recursive: true });
  make(join(root, rel));
};
const link = (target: string) => (p: string) => symlinkSync(target, p);

const ZOO: Array<[string, (root: string) => void]> = [
  ['/etc -> the host\'s /etc (absolute)', (r) => replace(r, 'etc', link(join(sentinel, 'etc')))],
  ['/etc -> ../../../../ climb', (r) => replace(r, 'etc', link(`${'../'.repeat(12)}${sentinel.slice(1)}/etc`))],
  ['/etc/ld.so.conf.d -> host directory', (r) => replace(r, 'etc/ld.so.conf.d', link(join(sentinel, 'etc/ld.so.conf.d')))],
  ['/etc/ld.so.cache -> host file', (r) => replace(r, 'etc/ld.so.cache', link(join(sentinel, 'etc/ld.so.cache')))],
  ['/etc/ld.so.conf -> host file', (r) => replace(r, 'etc/ld.so.conf', link(join(sentinel, 'etc/ld.so.conf')))],
  ['/usr/lib/x86_64-linux-gnu -> host library directory', (r) => replace(r, 'usr/lib/x86_64-linux-gnu', link(join(sentinel, 'usr/lib/x86_64-linux-gnu')))],
  ['/lib/firmware/nvidia -> host firmware directory (traversal)', (r) => replace(r, 'lib/firmware/nvidia', link(`${'../'.repeat(12)}${sentinel.slice(1)}/lib/firmware/nvidia`))],
  ['/dev -> host /dev', (r) => replace(r, 'dev', link(join(sentinel, 'dev')))],
  ['/usr/bin -> host', (r) => replace(r, 'usr/bin', link(join(sentinel, 'usr')))],
  ['/var/run -> host (IPC sockets)', (r) => replace(r, 'var/run', link(sentinel))],
  ['/tmp -> host (MPS pipe directory)', (r) => replace(r, 'tmp', link(sentinel))],
  ['a loop: /etc/ld.so.conf.d -> itself', (r) => replace(r, 'etc/ld.so.conf.d', link('/etc/ld.so.conf.d'))],
  ['ENOTDIR: /etc/ld.so.conf.d is a file', (r) => replace(r, 'etc/ld.so.conf.d', (p) => writeFileSync(p, 'x'))],
  ['a FIFO at /etc/ld.so.conf', (r) => replace(r, 'etc/ld.so.conf', (p) => execFileSync('mkfifo', [p]))],
  ['a FIFO at /etc/ld.so.conf.d/x.conf', (r) => replace(r, 'etc/ld.so.conf.d/x.conf', (p) => execFileSync('mkfifo', [p]))],
  ['/usr/lib/x86_64-linux-gnu/libcuda.so -> host file (dev link target)', (r) => replace(r, 'usr/lib/x86_64-linux-gnu/libcuda.so', link(join(sentinel, 'usr/lib/x86_64-linux-gnu/libhost.so')))],
];

/** Puts the sentinel back as it was made. */
async function resetSentinel(): Promise<void> {
  rmSync(sentinel, { recursive: true, force: true });
  await execa('cp', ['-a', `${sentinel}.pristine`, sentinel]);
}

test.each(ZOO)('%s: the host sentinel tree is as plain runc leaves it; the GPU or one clear line', async (_, zoo) => {
  const args = ['sh', '-c', 'ls /dev | grep -E "^nvidia0$"; true'];
  const rootfs = await zooRootfs(zoo);
  await resetSentinel();
  await runtimeRun(host, await makeBundle(host, rootfs, { args }), {}, 'runc');
  const runcLeaves = treeHash(sentinel);
  await resetSentinel();
  const r = await runtimeRun(host, await makeBundle(host, rootfs, { env: ['NVIDIA_VISIBLE_DEVICES=0'], args }));
  expect(treeHash(sentinel)).toBe(runcLeaves);
  expect(execFileSync("find", [sentinel]).toString()).not.toMatch(/nvidia[0-9]|nvidiactl|nvidia-uvm|libcuda|libnvidia|00-nvidia/);
  if (r.exitCode === 0) expect(r.stdout).toMatch(/^nvidia0$/m);
  else expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2); // runc's line, or the hook's plus runc's
  if (/FIFO/.test(_)) expect(r.stderr).toMatch(/is not a regular file: refusing to run ldconfig on it/); // at once, not after a timeout
});
