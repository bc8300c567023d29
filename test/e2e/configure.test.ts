/**
 * `nvidia-container-cli configure` end to end: the TypeScript planner and the native applier (nvidia-runtime-hook
 * apply-edits) together, through the built binaries, against a real "container being started": a process in its own
 * mount namespace (slave propagation, as runc makes it) whose rootfs is not pivoted yet, in its own cgroup v1 devices
 * cgroup that denies everything. One table of bad inputs: each gives one line with the toolkit's error category,
 * exit 1, and leaves the rootfs, the container's mounts and its device rules exactly as they were.
 */
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distBin, tempDir } from '../helpers/dist.js';
import { makeCompatRootfs, makeGlibcRootfs } from '../helpers/images.js';
import { sysfsBusId } from '../../src/host/graphics.js';
import { makeGpuHost, type GpuHost } from '../helpers/runtime-env.js';
import { tree } from '../helpers/tree.js';

const DEVICES_CGROUP = '/sys/fs/cgroup/devices';
let host: GpuHost;
let counter = 0;

interface Container {
  pid: string;
  rootfs: string;
  cgroup: string;
  proc: ResultPromise;
  ns: (script: string) => Promise<string>;
  stop: () => Promise<void>;
}

/** A pre-pivot container: `unshare -m --propagation slave` sleeping, in a devices cgroup that denies all. */
async function container(propagation = 'slave', base?: string, makeRootfs: (dir: string) => Promise<string> = makeGlibcRootfs): Promise<Container> {
  const dir = base ?? tempDir('cfg');
  const rootfs = await makeRootfs(join(dir, `rootfs-${++counter}`));
  const cgroup = join(DEVICES_CGROUP, `nvr-configure-${process.pid}-${counter}`);
  mkdirSync(cgroup);
  writeFileSync(join(cgroup, 'devices.deny'), 'a');
  const proc = execa('unshare', ['-m', `--propagation=${propagation}`, 'sleep', '600'], { reject: false });
  const pid = String(proc.pid);
  writeFileSync(join(cgroup, 'cgroup.procs'), pid);
  // Until unshare has made the namespace and exec'd sleep: configure must never see the host's namespace there.
  const ready = (): boolean => {
    try {
      return readlinkSync(`/proc/${pid}/ns/mnt`) !== readlinkSync('/proc/self/ns/mnt') && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep';
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 500 && !ready(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!ready()) throw new Error(`unshare (pid ${pid}) did not make its mount namespace`);
  return {
    pid, rootfs, cgroup, proc,
    ns: async (script) => (await execa('nsenter', ['-t', pid, '-m', '--', 'sh', '-c', script], { reject: false })).stdout,
    stop: async () => {
      proc.kill('SIGKILL');
      await proc;
      rmdirSync(cgroup);
      if (!base) rmSync(dir, { recursive: true, force: true });
    },
  };
}

const configure = (c: Container, args: string[], globals: string[] = []) =>
  execa(distBin('nvidia-container-cli'), ['--root', host.driverRoot, ...globals, 'configure', `--pid=${c.pid}`, ...args], { reject: false });

const mountsUnder = (mountinfo: string, rootfs: string) => mountinfo.split('\n').filter((l) => l.split(' ')[4]?.startsWith(rootfs));

beforeAll(async () => {
  host = await makeGpuHost(2, '', ['--graphics']);
}, 120000);
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

test('--device=1 --compute --utility: nodes, read-only nosuid,nodev mounts, cgroup rules for exactly those, an ld cache', async () => {
  const c = await container();
  try {
    const r = await configure(c, ['--device=1', '--compute', '--utility', c.rootfs]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const out = await c.ns(`stat -c '%n %t:%T %a' ${c.rootfs}/dev/nvidia*; echo ---; cat /proc/self/mountinfo; echo ---; ` +
      `(echo x > ${c.rootfs}/usr/bin/nvidia-smi) 2>&1`);
    const [nodes, mountinfo, write] = out.split('---\n');
    expect(nodes).toContain(`${c.rootfs}/dev/nvidia1 c3:1 666`);
    expect(nodes).toContain(`${c.rootfs}/dev/nvidiactl c3:ff 666`);
    expect(nodes).not.toContain('/dev/nvidia0 ');
    const mounts = mountsUnder(mountinfo!, c.rootfs);
    expect(mounts.length).toBeGreaterThan(5);
    for (const m of mounts) expect(m.split(' ')[5]).toMatch(/nosuid/);
    expect(mounts.find((m) => m.includes('/usr/bin/nvidia-smi'))!.split(' ')[5]).toMatch(/^ro,nosuid,nodev/);
    expect(write).toMatch(/Read-only file system/);
    const rules = readFileSync(join(c.cgroup, 'devices.list'), 'utf8');
    expect(rules).toContain('c 195:1 rwm');
    expect(rules).toContain('c 195:255 rwm');
    expect(rules).not.toContain('c 195:0 ');
    expect(readFileSync(join(c.rootfs, 'etc/ld.so.cache')).includes('libcuda.so.1')).toBe(true);
    // Nothing propagated to the host: the mounts exist only in the container's namespace.
    expect(mountsUnder(readFileSync('/proc/self/mountinfo', 'utf8'), c.rootfs)).toEqual([]);
  } finally {
    await c.stop();
  }
});

test('--no-cgroups leaves the device rules alone', async () => {
  const c = await container();
  try {
    const before = readFileSync(join(c.cgroup, 'devices.list'), 'utf8');
    const r = await configure(c, ['--no-cgroups', '--device=0', '--utility', c.rootfs]);
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(c.cgroup, 'devices.list'), 'utf8')).toBe(before);
    expect(await c.ns(`ls ${c.rootfs}/dev`)).toContain('nvidia0');
  } finally {
    await c.stop();
  }
});

test('--graphics --display: the GPU\'s DRM nodes, by-path links, vendor/ICD files, modeset and X modules, live', async () => {
  const c = await container();
  try {
    const r = await configure(c, ['--device=1', '--graphics', '--display', c.rootfs]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const bus = sysfsBusId(host.topology.gpus[1]!.pciBusId);
    const out = await c.ns(`cd ${c.rootfs}; stat -c '%n %t:%T' dev/dri/card* dev/dri/renderD* dev/nvidia-modeset; echo ---; ` +
      `readlink dev/dri/by-path/pci-${bus}-card dev/dri/by-path/pci-${bus}-render; echo ---; ` +
      'cat usr/share/glvnd/egl_vendor.d/10_nvidia.json etc/vulkan/icd.d/nvidia_icd.json; ls usr/lib/x86_64-linux-gnu/nvidia/xorg; ' +
      'readlink usr/lib/x86_64-linux-gnu/gbm/nvidia-drm_gbm.so');
    const [nodes, links, files] = out.split('---\n');
    expect(nodes!.trim().split('\n')).toEqual(['dev/dri/card2 e2:2', 'dev/dri/renderD129 e2:81', 'dev/nvidia-modeset c3:fe']);
    expect(links!.trim().split('\n')).toEqual(['../card2', '../renderD129']);
    expect(files).toContain('libEGL_nvidia.so.0');
    expect(files).toContain('libGLX_nvidia.so.0');
    expect(files).toContain('nvidia_drv.so');
    expect(files).toContain('../libnvidia-allocator.so.550.54.15');
    const rules = readFileSync(join(c.cgroup, 'devices.list'), 'utf8');
    for (const rule of ['c 226:2 rwm', 'c 226:129 rwm', 'c 195:254 rwm']) expect(rules).toContain(rule);
    expect(rules).not.toContain('c 226:1 ');
  } finally {
    await c.stop();
  }
});

test.each([
  ['(default: mount)', '/usr/lib/x86_64-linux-gnu/libcuda.so.560.35.03', []],
  ['ldconfig', '/usr/local/cuda/compat/libcuda.so.560.35.03', ['--cuda-compat-mode=ldconfig']],
  ['disabled', '/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15', ['--cuda-compat-mode=disabled']],
])('--cuda-compat-mode %s: the ld cache resolves libcuda.so.1 to %s', async (_, want, flags) => {
  const c = await container('slave', undefined, (d) => makeCompatRootfs(d, '560.35.03'));
  try {
    const r = await configure(c, ['--device=0', '--compute', '--utility', ...flags, c.rootfs]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    // The container's loader resolves through its cache: the first libcuda.so.1 entry is the one it takes.
    const cache = await execa('/sbin/ldconfig', ['-C', join(c.rootfs, 'etc/ld.so.cache'), '-p']);
    const first = cache.stdout.split('\n').find((l) => l.includes('libcuda.so.1 '))!;
    const target = await c.ns(`readlink -f ${c.rootfs}${first.split(' => ')[1]}`);
    expect(target.replace(c.rootfs, '')).toBe(want);
  } finally {
    await c.stop();
  }
});

interface BadCase {
  name: string;
  args: (c: Container) => string[];
  prepare?: (c: Container) => void;
  line: RegExp;
}

const BAD: BadCase[] = [
  { name: 'an unknown device', args: (c) => ['--device=7', '--utility', c.rootfs], line: /^nvidia-container-cli: device error: .*7/ },
  { name: 'an unmet requirement', args: (c) => ['--device=0', '--require=cuda>=99.0', c.rootfs], line: /^nvidia-container-cli: requirement error: unsatisfied condition: cuda>=99\.0/ },
  { name: 'a MIG config id other than all', args: (c) => ['--mig-config=0', c.rootfs], line: /^nvidia-container-cli: input error: --mig-config=0: only 'all'/ },
  { name: 'the container\'s own ldconfig', args: (c) => ['--device=0', '--ldconfig=/sbin/ldconfig', c.rootfs], line: /^nvidia-container-cli: input error: .*CVE-2024-0136/ },
  { name: 'a relative rootfs', args: () => ['--device=0', 'rootfs'], line: /^nvidia-container-cli: input error: invalid rootfs directory/ },
  { name: 'a missing IMEX channel', args: (c) => ['--imex-channel=999', c.rootfs], line: /^nvidia-container-cli: device error: IMEX channel 999/ },
  {
    name: 'a symlink in the image where a driver file goes (mid-way failure: everything undone)',
    prepare: (c) => {
      mkdirSync(join(c.rootfs, 'usr/bin'), { recursive: true });
      symlinkSync('/etc/passwd', join(c.rootfs, 'usr/bin/nvidia-smi'));
    },
    args: (c) => ['--device=0', '--compute', '--utility', c.rootfs],
    line: /^nvidia-container-cli: container error: mount: \/usr\/bin\/nvidia-smi in the rootfs is a symbolic link/,
  },
];

test.each(BAD)('$name: one line, exit 1, nothing changed', async ({ args, prepare, line }) => {
  const c = await container();
  try {
    prepare?.(c);
    const files = tree(c.rootfs);
    const mounts = mountsUnder(await c.ns('cat /proc/self/mountinfo'), c.rootfs);
    const rules = readFileSync(join(c.cgroup, 'devices.list'), 'utf8');
    const r = await configure(c, args(c));
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(line);
    expect(tree(c.rootfs)).toEqual(files);
    expect(mountsUnder(await c.ns('cat /proc/self/mountinfo'), c.rootfs)).toEqual(mounts);
    expect(readFileSync(join(c.cgroup, 'devices.list'), 'utf8')).toBe(rules);
  } finally {
    await c.stop();
  }
});

test('an absolute symlink in the image never leads a mount or a node out of the rootfs', async () => {
  const c = await container();
  const outside = tempDir('outside');
  try {
    mkdirSync(join(c.rootfs, 'usr/lib'), { recursive: true });
    rmSync(join(c.rootfs, 'usr/lib/x86_64-linux-gnu'), { recursive: true, force: true });
    symlinkSync(outside, join(c.rootfs, 'usr/lib/x86_64-linux-gnu'));
    rmSync(join(c.rootfs, 'dev'), { recursive: true, force: true });
    symlinkSync(outside, join(c.rootfs, 'dev'));
    mkdirSync(join(c.rootfs, outside), { recursive: true }); // where the links lead when resolved in the rootfs
    const r = await configure(c, ['--device=0', '--compute', c.rootfs]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(tree(outside)).toEqual({}); // resolved inside the rootfs: <rootfs><outside>/…, never the host's
    expect(existsSync(join(c.rootfs, outside, 'nvidia0'))).toBe(true);
  } finally {
    await c.stop();
    rmSync(outside, { recursive: true, force: true });
  }
});

test('a dangling absolute symlink in the image is refused in one line, nothing outside touched', async () => {
  const c = await container();
  const outside = tempDir('outside');
  try {
    rmSync(join(c.rootfs, 'dev'), { recursive: true, force: true });
    symlinkSync(outside, join(c.rootfs, 'dev'));
    const r = await configure(c, ['--device=0', '--utility', c.rootfs]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/rootfs: \/dev is a symbolic link that leads nowhere inside the rootfs/);
    expect(tree(outside)).toEqual({});
  } finally {
    await c.stop();
    rmSync(outside, { recursive: true, force: true });
  }
});

test('a rootfs under a shared mount is refused: the mounts would propagate to the host', async () => {
  const base = tempDir('shared');
  await execa('mount', ['-t', 'tmpfs', 'tmpfs', base]);
  await execa('mount', ['--make-shared', base]);
  let c: Container | undefined;
  try {
    c = await container('unchanged', base);
    const r = await configure(c, ['--device=0', '--utility', '--no-cgroups', c.rootfs]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/is on a shared mount: the mount would propagate out of the container/);
    expect(mountsUnder(readFileSync('/proc/self/mountinfo', 'utf8'), c.rootfs)).toEqual([]);
    expect(existsSync(join(c.rootfs, 'dev/nvidia0'))).toBe(false);
  } finally {
    await c?.stop();
    await execa('umount', ['-l', base], { reject: false });
    rmSync(base, { recursive: true, force: true });
  }
});

test('MIG (the mock\'s --mig topology): a MIG device brings its capability nodes; --mig-config/--mig-monitor=all the global ones', async () => {
  const dir = tempDir('cfg-mig');
  const migRoot = join(dir, 'driver');
  await execa(distBin('nvidia-ctk'), ['mock-driver', '--root', migRoot, '--gpus', '2', '--mig']);
  const c = await container();
  try {
    const r = await execa(distBin('nvidia-container-cli'), ['--root', migRoot, 'configure', `--pid=${c.pid}`, '--device=0:0',
      '--mig-config=all', '--mig-monitor=all', '--utility', c.rootfs], { reject: false });
    expect([r.stderr, r.exitCode]).toEqual(['', 0]);
    const ls = await c.ns(`ls ${c.rootfs}/dev ${c.rootfs}/dev/nvidia-caps`);
    expect(ls).toMatch(/^nvidia0$/m);
    expect(ls).not.toMatch(/^nvidia1$/m);
    const caps = ls.split('\n').filter((l) => /^nvidia-cap\d+$/.test(l)).sort();
    expect(caps).toEqual(expect.arrayContaining(['nvidia-cap1', 'nvidia-cap2']));
    expect(caps.length).toBe(4); // config, monitor, and the MIG device's GI and CI
    const rules = readFileSync(join(c.cgroup, 'devices.list'), 'utf8');
    expect(rules.match(/^c \d+:\d+ rwm$/gm)!.length).toBeGreaterThanOrEqual(caps.length + 1);
  } finally {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
