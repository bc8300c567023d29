/**
 * LXC, as the seed runs it: the lxc package's own mount hook (/usr/share/lxc/hooks/nvidia) drives our
 * nvidia-container-cli in an **unprivileged** container (user namespace, --user, --no-cgroups). Offline: a locally
 * built glibc rootfs → an OCI layout (umoci) → `lxc-create -t oci` → `lxc-execute`, and we look inside.
 */
import { execa } from 'execa';
import { appendFileSync, chmodSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distBin, tempDir } from '../helpers/dist.js';
import { makeGlibcRootfs } from '../helpers/images.js';
import { makeGpuHost, type GpuHost } from '../helpers/runtime-env.js';

const NAME = `nvr-lxc-${process.pid}`;
const SUBID = 'root:100000:65536';
let host: GpuHost;
let work: string;

/** One busybox+glibc image in an OCI layout, made with umoci from a directory. */
async function ociLayout(dir: string): Promise<string> {
  const rootfs = await makeGlibcRootfs(join(dir, 'rootfs'));
  const layout = join(dir, 'oci');
  await execa('umoci', ['init', '--layout', layout]);
  await execa('umoci', ['new', '--image', `${layout}:gpu`]);
  await execa('umoci', ['unpack', '--image', `${layout}:gpu`, join(dir, 'bundle')]);
  cpSync(rootfs, join(dir, 'bundle', 'rootfs'), { recursive: true, verbatimSymlinks: true });
  await execa('umoci', ['repack', '--image', `${layout}:gpu`, join(dir, 'bundle')]);
  await execa('umoci', ['config', '--image', `${layout}:gpu`, '--config.env=PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', '--config.cmd=/bin/sh']);
  return layout;
}

beforeAll(async () => {
  for (const f of ['/etc/subuid', '/etc/subgid']) {
    let text = '';
    try { text = readFileSync(f, 'utf8'); } catch { /* absent */ }
    if (!text.split('\n').includes(SUBID)) appendFileSync(f, `${SUBID}\n`);
  }
  host = await makeGpuHost(2);
  chmod755(host.dir); // the hook runs as the container's root, host uid 100000: the driver root must be readable
  work = tempDir('lxc');
  chmod755(work);
  const layout = await ociLayout(work);
  const conf = join(work, 'lxc.conf');
  writeFileSync(conf, [
    'lxc.idmap = u 0 100000 65536', 'lxc.idmap = g 0 100000 65536', 'lxc.net.0.type = empty',
    `lxc.hook.mount = /usr/share/lxc/hooks/nvidia --root=${host.driverRoot}`, '',
  ].join('\n'));
  await execa('lxc-create', ['-n', NAME, '-t', 'oci', '-f', conf, '--', '--url', `oci:${layout}:gpu`, '--no-cache']);
}, 300000);

afterAll(async () => {
  await execa('lxc-destroy', ['-n', NAME], { reject: false });
  rmSync(work, { recursive: true, force: true });
  rmSync(host.dir, { recursive: true, force: true });
});

function chmod755(dir: string): void {
  chmodSync(dir, 0o755);
}

/** lxc-execute with these lxc.environment entries (the hook reads them; our bin directory first on its PATH). */
async function lxcExecute(env: string[], script: string) {
  const config = `/var/lib/lxc/${NAME}/config`;
  const kept = readFileSync(config, 'utf8').split('\n').filter((l) => !l.startsWith('lxc.environment'));
  const path = `PATH=${join(distBin('nvidia-container-cli'), '..')}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`;
  writeFileSync(config, [...kept, ...[path, ...env].map((e) => `lxc.environment = ${e}`), ''].join('\n'));
  const log = join(work, `execute-${Date.now()}.log`);
  const r = await execa('timeout', ['120', 'lxc-execute', '-n', NAME, '-l', 'DEBUG', '-o', log, '--', '/bin/sh', '-c', script], { reject: false });
  return { ...r, log: readFileSync(log, 'utf8') };
}

const rootfs = () => `/var/lib/lxc/${NAME}/rootfs`;
const nvidiaNodes = (ls: string) => ls.split('\n').filter((l) => /^nvidia/.test(l)).sort();

test('an unmet requirement is refused with a message naming it, and nothing is created in the rootfs', async () => {
  const r = await lxcExecute(['NVIDIA_VISIBLE_DEVICES=0', 'NVIDIA_REQUIRE_CUDA=cuda>=99.0'], 'true');
  expect(r.exitCode).not.toBe(0);
  expect(r.log).toMatch(/nvidia-container-cli: requirement error: unsatisfied condition: cuda>=99\.0/);
  expect(readFileSync(`${rootfs()}/etc/ld.so.cache`).includes('libcuda')).toBe(false);
  const ls = await execa('ls', [`${rootfs()}/usr/lib/x86_64-linux-gnu`], { reject: false });
  expect(ls.stdout).not.toMatch(/libcuda/);
});

test('unprivileged container with NVIDIA_VISIBLE_DEVICES=1: only that GPU, the libraries and a working ld cache', async () => {
  const r = await lxcExecute(['NVIDIA_VISIBLE_DEVICES=1', 'NVIDIA_DRIVER_CAPABILITIES=compute,utility'],
    'cat /proc/self/uid_map; ls /dev; echo ---; ldconfig -p | grep libcuda; dlopen-probe libcuda.so.1; nvidia-smi -L');
  expect(r.exitCode).toBe(0);
  const [head, tail] = r.stdout.split('---');
  expect(head).toMatch(/^\s*0\s+100000\s+65536/m); // a user namespace: unprivileged
  expect(nvidiaNodes(head!)).toEqual(['nvidia-uvm', 'nvidia-uvm-tools', 'nvidia1', 'nvidiactl']);
  expect(tail).toMatch(/libcuda\.so\.1 \(libc6,x86-64\) => \/usr\/lib\/x86_64-linux-gnu\/libcuda\.so\.1/);
  expect(tail).toContain('dlopen libcuda.so.1: OK');
  expect(tail).toContain(host.topology.gpus[1]!.uuid);
  expect(tail).not.toContain(host.topology.gpus[0]!.uuid);
  expect(r.log).toMatch(/exec nvidia-container-cli .*--user .*configure --no-cgroups/);
});

test('NVIDIA_VISIBLE_DEVICES=none: driver files, no GPU node', async () => {
  const r = await lxcExecute(['NVIDIA_VISIBLE_DEVICES=none', 'NVIDIA_DRIVER_CAPABILITIES=utility'], 'ls /dev; ls /usr/bin');
  expect(r.exitCode).toBe(0);
  expect(nvidiaNodes(r.stdout).filter((n) => /^nvidia\d+$/.test(n))).toEqual([]);
  expect(r.stdout).toContain('nvidiactl');
  expect(r.stdout).toContain('nvidia-smi');
});

test('NVIDIA_VISIBLE_DEVICES=void: the hook does nothing', async () => {
  const r = await lxcExecute(['NVIDIA_VISIBLE_DEVICES=void'], 'ls /dev');
  expect(r.exitCode).toBe(0);
  expect(nvidiaNodes(r.stdout)).toEqual([]);
});
