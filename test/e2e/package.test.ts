/**
 * The Debian package (`npm run package`, scripts/package-deb.mjs; docs/install.md): built twice (the second with a
 * higher version), then installed, used, upgraded, removed and purged with apt/dpkg — without touching this host's
 * installation. Everything runs chrooted into an overlayfs view of the host root, in a private mount namespace:
 *
 *   holder (unshare -m, private propagation): tmpfs <dir>/ovl (upper + work), overlay lowerdir=/ at <dir>/merged,
 *   /proc /dev /sys bound in, an empty tmpfs /run (no systemd to talk to, no host launcher views), <dir>/share bound
 *   at its own path (the .debs and the bundles). Each step: nsenter -t <holder> -m chroot <dir>/merged ...
 *
 * The upper dir records exactly what each step wrote; after the purge it holds nothing of ours, only dpkg's and apt's
 * own bookkeeping (ALLOWED below) and copied-up directories that exist on the host anyway. Killing the holder tears
 * the namespace and all its mounts down.
 */
import { execa } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT, tempDir } from '../helpers/dist.js';
import { makeGlibcRootfs } from '../helpers/images.js';

const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
const V1 = pkg.version;
const V2 = `${pkg.version}+upgrade1`;
const PREFIX = '/usr/lib/nvidia-runtime';
const CONFFILE = '/etc/nvidia-container-runtime/config.toml';
const BIN_NAMES = ['nvidia-runtime', 'nvidia-container-runtime', 'nvidia-container-runtime-hook', 'nvidia-container-toolkit', 'nvidia-cdi-hook', 'nvidia-ctk', 'nvidia-container-cli'];
const CONFLICTING = ['nvidia-runtime', 'nvidia-container-toolkit', 'nvidia-container-toolkit-base', 'libnvidia-container-tools'];
const MOCK_ROOT = '/var/lib/nvidia-runtime/mock-driver';
const RUNC_ROOT = '/run/nvr-package-runc';
/** The chroot's environment: no /usr/local (an older symlink install may have links there), nothing of ours. */
const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C', HOME: '/root', APT_LISTCHANGES_FRONTEND: 'none' };

/** What dpkg and apt write for themselves: allowed in the upper dir after a purge (paths relative to /). */
const ALLOWED: RegExp[] = [
  /^var\/lib\/dpkg(\/|$)/, // the package database, its locks, status-old, triggers
  /^var\/log(\/|$)/, // dpkg.log, apt/history.log, apt/term.log, apt/eipp.log.xz
  /^var\/cache(\/|$)/, // apt's archive lock and partial/, debconf's caches
  /^var\/lib\/apt\/extended_states$/, // apt's manual/auto record (rewritten on install and purge)
  /^var\/lib\/apt\/lists(\/auxfiles)?$/, // apt creates lists/auxfiles when it installs a local file
];
/** Where the package may write (install, upgrade). */
const OURS: RegExp[] = [
  new RegExp(`^${PREFIX.slice(1)}(/|$)`),
  new RegExp(`^usr/bin/(${BIN_NAMES.join('|')})$`),
  /^etc\/nvidia-container-runtime(\/|$)/,
  /^(usr\/)?lib\/systemd\/system\/nvidia-runtime\.(socket|service)$/,
  /^usr\/share\/doc\/nvidia-runtime(\/|$)/,
  /^var\/lib\/systemd\/deb-systemd-helper-enabled\/nvidia-runtime\.(socket|service)\.dsh-also$/, // purge's record
];
const ENGINE_CONFIGS = /^etc\/(docker|containerd|crio)(\/|$)/;

let dir: string;
let share: string;
let holder: ChildProcess | undefined;
let nsRoot: string; // the holder's view of "/", from outside the namespace
let merged: string; // <dir>/merged as the namespace sees it (the chroot)
let upper: string; // the overlay's upper dir, reachable from here
let debs: { v1: string; v2: string };
let baseline: Map<string, string>;

async function inChroot(script: string) {
  return execa('nsenter', ['--target', String(holder!.pid), '--mount', '--', 'chroot', merged, 'sh', '-c', script], {
    env: ENV,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 120_000,
  });
}
async function ok(script: string): Promise<string> {
  const r = await inChroot(script);
  if (r.exitCode !== 0) throw new Error(`chroot: ${script}: exit ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
/** A path inside the chroot, seen from here. */
const inside = (path: string) => join(nsRoot, merged, path);

/** The upper dir: relative path → type and content ('d', 'w' whiteout, 'l:<target>', 'f:<mode>:<sha1>'). */
function snapshot(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (abs: string, rel: string) => {
    for (const name of readdirSync(abs)) {
      const p = join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      if (st.isDirectory()) {
        out.set(r, 'd');
        walk(p, r);
      } else if (st.isCharacterDevice() && st.rdev === 0) out.set(r, 'w');
      else if (st.isSymbolicLink()) out.set(r, `l:${readlinkSync(p)}`);
      else if (st.isFile()) out.set(r, `f:${(st.mode & 0o7777).toString(8)}:${createHash('sha1').update(readFileSync(p)).digest('hex')}`);
      else out.set(r, `?${st.mode}`);
    }
  };
  walk(upper, '');
  return out;
}
/** What changed in the upper dir since the baseline, less directories copied up from the host (they exist there). */
function written(): string[] {
  const now = snapshot();
  return [...now]
    .filter(([p, sig]) => baseline.get(p) !== sig)
    .filter(([p, sig]) => !(sig === 'd' && isHostDir(p)))
    .map(([p]) => p)
    .sort();
}
function isHostDir(rel: string): boolean {
  try {
    return lstatSync(`/${rel}`).isDirectory();
  } catch {
    return false;
  }
}
const matches = (list: RegExp[]) => (p: string) => list.some((re) => re.test(p));

beforeAll(async () => {
  dir = realpathSync(tempDir('package'));
  share = join(dir, 'share');
  mkdirSync(join(share, 'debs'), { recursive: true });
  mkdirSync(join(dir, 'ovl'));
  mkdirSync(join(dir, 'merged'));
  const build = async (args: string[]) => {
    const r = await execa('npm', ['run', '--silent', 'package', '--', '--out', join(share, 'debs'), ...args], { cwd: PACKAGE_ROOT, reject: false });
    if (r.exitCode !== 0) throw new Error(`npm run package failed: ${r.stderr}`);
    return r.stdout.trim().split('\n').pop()!;
  };
  debs = { v1: await build([]), v2: await build(['--version', V2, '--compression', 'gzip']) };

  const m = join(dir, 'merged');
  const script = [
    'set -e',
    `mount -t tmpfs -o size=2g,mode=0755 nvr-package-upper ${dir}/ovl`,
    `mkdir ${dir}/ovl/upper ${dir}/ovl/work`,
    `mount -t overlay -o lowerdir=/,upperdir=${dir}/ovl/upper,workdir=${dir}/ovl/work nvr-package ${m}`,
    `mount --rbind /proc ${m}/proc`,
    `mount --rbind /dev ${m}/dev`,
    `mount --rbind /sys ${m}/sys`,
    `mount -t tmpfs -o mode=0755 nvr-package-run ${m}/run`,
    `mkdir -p ${m}${share}`,
    `mount --bind ${share} ${m}${share}`,
    'echo ready',
    'exec cat >/dev/null', // lives until the test closes its stdin (or dies)
  ].join('\n');
  holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  holder.stderr!.on('data', (d) => (err += d));
  await new Promise<void>((resolve, reject) => {
    holder!.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
    holder!.on('exit', (code) => reject(new Error(`mount namespace setup failed (exit ${code}): ${err}`)));
  });
  nsRoot = `/proc/${holder.pid}/root`;
  merged = m;
  upper = join(nsRoot, dir, 'ovl', 'upper');

  // A host that never had nvidia-runtime: an installed one (or NVIDIA's toolkit) is purged, and what an older
  // symlink install (setup.sh before the package) left is removed — in the overlay only.
  await ok(
    `for p in ${CONFLICTING.join(' ')}; do if dpkg-query -W -f='\${Status}' "$p" 2>/dev/null | grep -q ' installed$'; then dpkg --purge "$p" >/dev/null; fi; done
     for n in ${BIN_NAMES.join(' ')}; do if [ -L /usr/bin/$n ] && ! dpkg -S /usr/bin/$n >/dev/null 2>&1; then rm /usr/bin/$n; fi; done
     rm -rf /etc/nvidia-container-runtime /var/lib/nvidia-runtime`,
  );
  baseline = snapshot();
}, 300_000);

afterAll(async () => {
  if (holder && holder.exitCode === null) {
    await inChroot(`runc --root ${RUNC_ROOT} delete --force pkg-gpu >/dev/null 2>&1; true`).catch(() => undefined);
    const gone = new Promise((resolve) => holder!.on('exit', resolve));
    holder.stdin!.end();
    const t = setTimeout(() => holder!.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
  // The namespace, and with it every mount, is gone: only plain directories are left.
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** A GPU container through the installed /usr/bin/nvidia-runtime, with real runc and the mock driver root. */
async function gpuRun(): Promise<{ stdout: string; spec: { hooks: { createContainer: Array<{ path: string }> } } }> {
  const bundle = join(share, `bundle-${Math.random().toString(36).slice(2)}`);
  mkdirSync(bundle);
  const rootfs = await makeGlibcRootfs(join(bundle, 'rootfs'));
  await execa('runc', ['spec', '--bundle', bundle]);
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  spec.root = { path: rootfs, readonly: false };
  spec.process.terminal = false;
  spec.process.args = ['sh', '-c', 'ls /dev; echo ---; nvidia-smi -L'];
  spec.process.env.push('NVIDIA_VISIBLE_DEVICES=1');
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec, null, '\t'));
  const r = await inChroot(`/usr/bin/nvidia-runtime --root ${RUNC_ROOT} run --bundle ${bundle} pkg-gpu; rc=$?; runc --root ${RUNC_ROOT} delete --force pkg-gpu >/dev/null 2>&1; exit $rc`);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  return { stdout: r.stdout, spec: JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) };
}

describe('the .deb', () => {
  test('is named after the version, holds the production dependencies only, with root-owned files', async () => {
    expect(debs.v1).toBe(join(share, 'debs', `nvidia-runtime_${V1}_amd64.deb`));
    expect(debs.v2).toBe(join(share, 'debs', `nvidia-runtime_${V2}_amd64.deb`));
    const fields = (await execa('dpkg-deb', ['-f', debs.v1, 'Package', 'Version', 'Depends', 'Conflicts', 'Replaces'])).stdout;
    expect(fields).toContain(`Version: ${V1}`);
    expect(fields).toMatch(/^Depends: nodejs \(>= 20\), libc6 \(>= 2\.\d+\)$/m);
    for (const f of ['Conflicts', 'Replaces']) expect(fields).toContain(`${f}: nvidia-container-toolkit, nvidia-container-toolkit-base, libnvidia-container-tools`);
    const list = (await execa('dpkg-deb', ['-c', debs.v1])).stdout.split('\n');
    expect(list.every((l) => / root\/root /.test(l))).toBe(true);
    expect(list.filter((l) => /^.....w|^........w/.test(l) && !l.startsWith('l'))).toEqual([]); // nothing group/world-writable
    const names = list.map((l) => l.replace(/^.*? \.\//, '/').replace(/ -> .*$/, ''));
    expect(names).toEqual(expect.arrayContaining([`${PREFIX}/node_modules/yargs/package.json`, `${PREFIX}/build/Release/nvidia_runtime.node`, CONFFILE]));
    for (const dev of ['jest', 'typescript', 'esbuild', 'ts-jest']) expect(names).not.toContain(`${PREFIX}/node_modules/${dev}/`);
    expect(names.some((n) => /\/(obj\.target|\.deps)\//.test(n))).toBe(false);
    expect(names.filter((n) => n.startsWith('/usr/local') || n.startsWith('/run') || n.startsWith('/var'))).toEqual([]);
    // The working tree's CLIs are untouched (the package rewrote its own copy's shebang only).
    expect(readFileSync(join(PACKAGE_ROOT, 'dist/bin/nvidia-ctk'), 'utf8')).toMatch(/^#!\//);
  });
});

describe('install, use, upgrade, remove, purge (inside an overlay of the host root)', () => {
  test('install: apt-get install ./nvidia-runtime_<v>_amd64.deb resolves Depends on this host, offline', async () => {
    const r = await inChroot(`apt-get install -y ${debs.v1}`);
    expect(r.exitCode).toBe(0);
    expect(await ok("dpkg-query -W -f='${Status} ${Version}' nvidia-runtime")).toBe(`install ok installed ${V1}`);
    const files = (await ok('dpkg -L nvidia-runtime')).split('\n');
    expect(files).toEqual(expect.arrayContaining([
      ...BIN_NAMES.map((n) => `/usr/bin/${n}`),
      `${PREFIX}/dist/bin/nvidia-runtime`, `${PREFIX}/dist/runtime/main.js`, `${PREFIX}/build/Release/nvidia_runtime.node`,
      `${PREFIX}/build/Release/nvidia-runtime-hook`, `${PREFIX}/package.json`, CONFFILE,
      '/lib/systemd/system/nvidia-runtime.socket', '/lib/systemd/system/nvidia-runtime.service',
    ]));
    // Every installed file is root's and writable by root only (they decide what runs as root).
    for (const f of files.filter(Boolean)) {
      const st = lstatSync(inside(f));
      expect([f, st.uid, st.gid]).toEqual([f, 0, 0]);
      if (!st.isSymbolicLink()) expect([f, st.mode & 0o022]).toEqual([f, 0]);
    }
    // Everything written is ours, or dpkg's and apt's own bookkeeping; no engine config touched.
    const w = written();
    expect(w.filter((p) => !matches(OURS)(p) && !matches(ALLOWED)(p))).toEqual([]);
    expect(w.filter((p) => ENGINE_CONFIGS.test(p))).toEqual([]);
  });

  test('the /usr/bin names resolve into the installed tree and run from there', async () => {
    const real = (await ok(BIN_NAMES.map((n) => `readlink -f /usr/bin/${n}`).join('; '))).split('\n');
    expect(real).toEqual([
      `${PREFIX}/dist/bin/nvidia-runtime`, `${PREFIX}/dist/bin/nvidia-runtime`, `${PREFIX}/dist/bin/nvidia-runtime`, `${PREFIX}/dist/bin/nvidia-runtime`,
      `${PREFIX}/dist/bin/nvidia-runtime-hook`, `${PREFIX}/dist/bin/nvidia-ctk`, `${PREFIX}/dist/bin/nvidia-container-cli`,
    ]);
    expect(readFileSync(inside(`${PREFIX}/dist/bin/nvidia-ctk`), 'utf8')).toMatch(/^#!\/usr\/bin\/node\n/);
    // The conffile is the runtime's own default, as the installed nvidia-ctk prints it.
    expect(await ok('/usr/bin/nvidia-ctk config default')).toBe(readFileSync(inside(CONFFILE), 'utf8').trimEnd());
    const conffiles = await ok("dpkg-query -W -f='${Conffiles}' nvidia-runtime");
    const md5 = createHash('md5').update(readFileSync(inside(CONFFILE))).digest('hex');
    expect(conffiles.trim()).toBe(`${CONFFILE} ${md5}`);
  });

  test('the warm-path units are installed for /usr/bin and not enabled', () => {
    expect(readFileSync(inside('/lib/systemd/system/nvidia-runtime.service'), 'utf8')).toMatch(/^ExecStart=\/usr\/bin\/nvidia-runtime serve$/m);
    expect(readFileSync(inside('/lib/systemd/system/nvidia-runtime.socket'), 'utf8')).toMatch(/^ListenStream=\/run\/nvidia-runtime\/serve\.sock$/m);
    for (const wants of ['sockets.target.wants/nvidia-runtime.socket', 'multi-user.target.wants/nvidia-runtime.service']) {
      expect(existsSync(inside(`/etc/systemd/system/${wants}`))).toBe(false);
    }
  });

  test('a mock driver root, the conffile pointed at it, and a GPU container through /usr/bin/nvidia-runtime with real runc', async () => {
    await ok(`/usr/bin/nvidia-ctk mock-driver --root ${MOCK_ROOT} --gpus 2 >/dev/null`);
    await ok(`/usr/bin/nvidia-ctk config --set nvidia-container-cli.root=${MOCK_ROOT} --in-place`);
    expect(readFileSync(inside(CONFFILE), 'utf8')).toMatch(new RegExp(`^root = "${MOCK_ROOT}"$`, 'm'));
    expect(await ok(`/usr/bin/nvidia-container-cli --root ${MOCK_ROOT} info --csv`)).toContain('GPU');
    const { stdout, spec } = await gpuRun();
    const [devs, smi] = stdout.split('---');
    expect(devs!.split('\n')).toEqual(expect.arrayContaining(['nvidia1', 'nvidiactl']));
    expect(devs!.split('\n')).not.toContain('nvidia0');
    expect(smi!.trim()).toMatch(/^GPU 0: .* \(UUID: GPU-/);
    expect(spec.hooks.createContainer.map((h) => h.path)).toEqual([`${PREFIX}/dist/bin/nvidia-runtime-hook`]);
    expect(readdirSync(inside('/run/nvidia-runtime')).filter((f) => f.endsWith('.view')).length).toBeGreaterThan(0);
  });

  test('upgrade to a higher version: the locally modified conffile is kept, stale launcher views dropped, still works', async () => {
    const modified = readFileSync(inside(CONFFILE), 'utf8');
    const r = await inChroot(`apt-get install -y ${debs.v2}`);
    expect(r.exitCode).toBe(0);
    expect(await ok("dpkg-query -W -f='${Status} ${Version}' nvidia-runtime")).toBe(`install ok installed ${V2}`);
    expect(readFileSync(inside(CONFFILE), 'utf8')).toBe(modified);
    expect(readdirSync(inside('/etc/nvidia-container-runtime'))).toEqual(['config.toml']); // no .dpkg-dist / .dpkg-old
    expect(readdirSync(inside('/run/nvidia-runtime')).filter((f) => f.endsWith('.view'))).toEqual([]);
    const { stdout } = await gpuRun();
    expect(stdout).toContain('nvidia1');
    const w = written();
    expect(w.filter((p) => !matches(OURS)(p) && !matches(ALLOWED)(p) && !p.startsWith('var/lib/nvidia-runtime'))).toEqual([]);
    expect(w.filter((p) => ENGINE_CONFIGS.test(p))).toEqual([]);
  });

  test('remove: the files and the runtime caches go, CRI-O\'s runc state and the conffile stay', async () => {
    // CRI-O's handler has runc keep its state in /run/nvidia-runtime (runtime_root): a running container's stays.
    await ok('mkdir -p /run/nvidia-runtime/crio-ctr && echo {} > /run/nvidia-runtime/crio-ctr/state.json');
    expect(readdirSync(inside('/run/nvidia-runtime')).length).toBeGreaterThan(1);
    const r = await inChroot('apt-get remove -y nvidia-runtime');
    expect(r.exitCode).toBe(0);
    expect(await ok("dpkg-query -W -f='${Status}' nvidia-runtime")).toBe('deinstall ok config-files');
    for (const n of BIN_NAMES) expect(existsSync(inside(`/usr/bin/${n}`))).toBe(false);
    expect(existsSync(inside(PREFIX))).toBe(false);
    expect(readdirSync(inside('/run/nvidia-runtime'), { recursive: true })).toEqual(['crio-ctr', 'crio-ctr/state.json']);
    await ok('rm -r /run/nvidia-runtime');
    expect(existsSync(inside(CONFFILE))).toBe(true);
  });

  test('purge: nothing of ours is left; the upper dir holds only dpkg\'s and apt\'s own changes', async () => {
    const r = await inChroot('apt-get remove --purge -y nvidia-runtime');
    expect(r.exitCode).toBe(0);
    expect((await inChroot('dpkg-query -W -f="${Status}" nvidia-runtime')).stdout).not.toContain('installed');
    for (const p of ['/etc/nvidia-container-runtime', '/var/lib/nvidia-runtime', PREFIX, '/run/nvidia-runtime', '/lib/systemd/system/nvidia-runtime.socket']) {
      expect([p, existsSync(inside(p))]).toEqual([p, false]);
    }
    const w = written();
    expect(w.filter((p) => !matches(ALLOWED)(p))).toEqual([]);
    expect(w.filter((p) => ENGINE_CONFIGS.test(p))).toEqual([]);
    expect(statSync(upper).isDirectory()).toBe(true);
  });
});
