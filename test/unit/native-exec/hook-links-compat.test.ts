/** nvidia-runtime-hook's links and CUDA forward compatibility (native/hook/): --link makes missing parent directories
 *  (confined to the rootfs), links are made in images without glibc, the create-symlinks subcommand, and
 *  update-ldcache --cuda-compat / the apply-edits words `compat`/`compatdir`. The built binaries run against real
 *  temporary rootfs directories, with real tiny libcuda.so.1 files, and the cache they write is read back with the
 *  host's ldconfig -p. Needs root, as the hook does. Every case runs against both resolvers (openat2 and the fallback
 *  walk) and the ASan+UBSan build, with a host sentinel directory that must hash the same before and after. */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync,
  statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT, tempDir } from '../../helpers/dist.js';
import { makeBusyboxRootfs, makeGlibcRootfs } from '../../helpers/images.js';
import { tree } from '../../helpers/tree.js';

const LIB = 'usr/lib/x86_64-linux-gnu';
const GBM = `../libnvidia-allocator.so.1::/${LIB}/gbm/nvidia-drm_gbm.so`;
const BY_PATH = '../card2::/dev/dri/by-path/pci-0000:18:00.0-card';
const CONFD = 'etc/ld.so.conf.d';
const RUNTIME_HEADER = '# written by nvidia-runtime-hook --cuda-compat for this container\n';
const CDI_HEADER = '# written by nvidia-cdi-hook enable-cuda-compat for this container\n';
const OK = { status: 0, stdout: '', stderr: '' };

let dir: string;
let glibcTemplate: string;
let busyboxTemplate: string;
let compatLib: string; // soname libcuda.so.1: the "CUDA forward compat" copy
let driverLib: string; // soname libcuda.so.1: the "host driver" copy
beforeAll(async () => {
  execFileSync('make', ['-s', '-f', 'native/Makefile.dev', 'build/dev/nvidia-runtime-hook', 'build/dev/nvidia-runtime-hook-walk', 'build/dev/nvidia-runtime-hook-asan'], { cwd: PACKAGE_ROOT });
  dir = realpathSync(tempDir('hook-links'));
  writeFileSync(join(dir, 'lib.c'), 'int which(void) { return WHICH; }\n');
  compatLib = join(dir, 'compat.so');
  driverLib = join(dir, 'driver.so');
  for (const [out, which] of [[compatLib, 1], [driverLib, 2]] as const) {
    execFileSync('cc', ['-shared', '-fPIC', `-DWHICH=${which}`, '-Wl,-soname,libcuda.so.1', '-o', out, join(dir, 'lib.c')]);
  }
  glibcTemplate = await makeGlibcRootfs(join(dir, 'glibc-template'));
  busyboxTemplate = makeBusyboxRootfs(join(dir, 'busybox-template'));
}, 60000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hashOf = (root: string) => createHash('sha256').update(JSON.stringify(tree(root))).digest('hex');
const oneLine = (stderr: string) => expect(stderr).toMatch(/^nvidia-runtime-hook: [^\n]*\n$/);
/** The rootfs' cache as the host's ldconfig reads it: the libcuda.so.1 entries, in cache (= loader) order. */
const libcudaEntries = (rootfs: string) =>
  execFileSync('/sbin/ldconfig', ['-C', join(rootfs, 'etc/ld.so.cache'), '-p']).toString()
    .split('\n').filter((l) => l.includes('libcuda.so.1 ')).map((l) => l.replace(/^.*=> /, ''));
/** tree() without the cache ldconfig rewrites on every run. */
const treeNoCache = (root: string) => {
  const t = tree(root);
  delete t['etc/ld.so.cache'];
  return t;
};

describe.each(['nvidia-runtime-hook', 'nvidia-runtime-hook-walk', 'nvidia-runtime-hook-asan'])('%s', (binary) => {
  const SAN = binary.endsWith('-asan') ? { ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1' } : {};
  const HOOK = join(PACKAGE_ROOT, 'build', 'dev', binary);
  let n = 0;
  let outside: string; // the host sentinel: must never change
  let sentinel: string;
  beforeEach(() => {
    outside = join(dir, `${binary}-outside${n++}`);
    mkdirSync(join(outside, 'cuda/compat'), { recursive: true });
    mkdirSync(join(outside, 'gbm'));
    writeFileSync(join(outside, 'file'), 'host file');
    copyFileSync(compatLib, join(outside, 'cuda/compat/libcuda.so.999.1.1'));
    sentinel = hashOf(outside);
  });
  afterEach(() => expect(hashOf(outside)).toBe(sentinel));

  const run = (args: string[], input = '') => {
    const r = spawnSync(HOOK, args, { input, env: SAN });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  /** A copy of the glibc rootfs (ld.so.conf includes conf.d; x86_64-linux-gnu.conf lists /usr/lib/x86_64-linux-gnu). */
  const glibcRoot = (): string => {
    const root = join(dir, `${binary}-glibc${n++}`);
    execFileSync('cp', ['-a', glibcTemplate, root]);
    mkdirSync(join(root, LIB), { recursive: true });
    return root;
  };
  const busyboxRoot = (): string => {
    const root = join(dir, `${binary}-busybox${n++}`);
    execFileSync('cp', ['-a', busyboxTemplate, root]);
    return root;
  };
  /** The driver's libcuda in the image's configured lib dir, the compat one (a regular file + its soname link). */
  const withCuda = (root: string, compatVersion = '560.35.03', compatDir = 'usr/local/cuda/compat'): string => {
    mkdirSync(join(root, LIB), { recursive: true });
    copyFileSync(driverLib, join(root, LIB, 'libcuda.so.550.54.15'));
    mkdirSync(join(root, compatDir), { recursive: true });
    copyFileSync(compatLib, join(root, compatDir, `libcuda.so.${compatVersion}`));
    symlinkSync(`libcuda.so.${compatVersion}`, join(root, compatDir, 'libcuda.so.1')); // links do not count
    return root;
  };
  /** A bundle whose config.json names root (absolute root.path), and the OCI state that names the bundle. */
  const stateFor = (root: string): string => {
    const b = join(dir, `${binary}-bundle${n++}`);
    mkdirSync(b);
    writeFileSync(join(b, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', root: { path: root } }));
    return JSON.stringify({ ociVersion: '1.0.2', id: 'c', status: 'creating', pid: 1, bundle: b });
  };

  describe('--link creates missing parent directories', () => {
    test('gbm/ and /dev/dri/by-path/ are made (0755) one component at a time; a second run changes nothing', () => {
      const root = glibcRoot();
      expect(existsSync(join(root, LIB, 'gbm'))).toBe(false);
      const args = ['update-ldcache', '--root', root, '--folder', `/${LIB}`, '--link', GBM, '--link', BY_PATH];
      expect(run(args)).toEqual(OK);
      expect(readlinkSync(join(root, LIB, 'gbm/nvidia-drm_gbm.so'))).toBe('../libnvidia-allocator.so.1');
      expect(readlinkSync(join(root, 'dev/dri/by-path/pci-0000:18:00.0-card'))).toBe('../card2');
      for (const d of [`${LIB}/gbm`, 'dev/dri', 'dev/dri/by-path']) expect(statSync(join(root, d)).mode & 0o7777).toBe(0o755);
      const before = treeNoCache(root);
      expect(run(args)).toEqual(OK);
      expect(treeNoCache(root)).toEqual(before);
    });

    test.each(['absolute', 'relative'])('a parent component that is a symlink out of the rootfs (%s) is never followed there', (kind) => {
      const root = glibcRoot();
      symlinkSync(kind === 'absolute' ? join(outside, 'gbm') : `../../../../../../../..${outside}/gbm`, join(root, LIB, 'gbm'));
      const before = tree(root);
      const r = run(['update-ldcache', '--root', root, '--link', GBM]);
      // Resolved inside the rootfs the link is dangling: the directory cannot be made through it.
      expect(r.status).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toContain(`/${LIB}/gbm in the rootfs is a symbolic link to nothing`);
      expect(tree(root)).toEqual(before);
      expect(readdirSync(join(outside, 'gbm'))).toEqual([]);
    });

    test('a parent symlink to an absolute path that exists inside the rootfs: the link lands there, in the rootfs', () => {
      const root = glibcRoot();
      mkdirSync(join(root, outside), { recursive: true });
      symlinkSync(outside, join(root, 'dev/dri'));
      expect(run(['update-ldcache', '--root', root, '--link', BY_PATH])).toEqual(OK);
      expect(readlinkSync(join(root, outside, 'by-path/pci-0000:18:00.0-card'))).toBe('../card2');
      expect(existsSync(join(outside, 'by-path'))).toBe(false);
    });

    test.each([
      ['a regular file', (p: string) => writeFileSync(p, 'image file')],
      ['a symlink to a file', (p: string) => { writeFileSync(`${p}.real`, 'x'); symlinkSync('dri.real', p); }],
    ])('an existing non-directory component (%s): an error naming it, nothing written', (_name, make) => {
      const root = glibcRoot();
      make(join(root, 'dev/dri'));
      const before = tree(root);
      const r = run(['update-ldcache', '--root', root, '--link', BY_PATH]);
      expect(r.status).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toMatch(/^nvidia-runtime-hook: --link: \/dev\/dri in the rootfs: Not a directory/);
      expect(tree(root)).toEqual(before);
    });

    test('a busybox rootfs (no ld.so.*): the links are made, no ldconfig, no ld.so files', () => {
      const root = busyboxRoot();
      const r = run(['update-ldcache', '--root', root, '--folder', `/${LIB}`, '--link', GBM, '--link', BY_PATH, '--cuda-compat', '550.54.15']);
      expect(r).toEqual(OK);
      expect(readlinkSync(join(root, LIB, 'gbm/nvidia-drm_gbm.so'))).toBe('../libnvidia-allocator.so.1');
      expect(readlinkSync(join(root, 'dev/dri/by-path/pci-0000:18:00.0-card'))).toBe('../card2');
      expect(readdirSync(join(root, 'etc'))).toEqual([]);
    });
  });

  describe('create-symlinks (links only, no ldconfig)', () => {
    test('--root: the links, and nothing else in the rootfs', () => {
      const root = glibcRoot();
      const before = tree(root);
      expect(run(['create-symlinks', '--root', root, '--link', BY_PATH, '--link=card2::/dev/dri/by-path/pci-0000:18:00.0-render'])).toEqual(OK);
      const after = tree(root);
      expect(Object.keys(after).filter((k) => !(k in before)).sort()).toEqual([
        'dev/dri', 'dev/dri/by-path', 'dev/dri/by-path/pci-0000:18:00.0-card', 'dev/dri/by-path/pci-0000:18:00.0-render',
      ]);
      expect(after['dev/dri/by-path/pci-0000:18:00.0-render']).toBe('-> card2');
      for (const k of Object.keys(before)) expect(after[k]).toBe(before[k]); // the cache untouched: no ldconfig
    });

    test('the rootfs from the OCI state on stdin, in a busybox image', () => {
      const root = busyboxRoot();
      expect(run(['create-symlinks', '--link', BY_PATH], stateFor(root))).toEqual(OK);
      expect(readlinkSync(join(root, 'dev/dri/by-path/pci-0000:18:00.0-card'))).toBe('../card2');
    });

    test('no --link: nothing done, the state is not needed', () => {
      expect(run(['create-symlinks'])).toEqual(OK);
    });

    test.each([
      [['--folder', '/x'], /^nvidia-runtime-hook: arguments: unknown option '--folder' \(create-symlinks takes --root and --link\)\n$/],
      [['--cuda-compat', '550.54.15'], /unknown option '--cuda-compat'/],
      [['--link', 'x::relative'], /--link: 'x::relative' is not TARGET::\/absolute\/link/],
      [['--root', 'relative', '--link', 'x::/x'], /--root: an absolute host path/],
    ])('bad arguments %j: exit 1, one line', (args, message) => {
      const root = glibcRoot();
      const before = tree(root);
      const r = run(['create-symlinks', ...(args.includes('--root') ? [] : ['--root', root]), ...args]);
      expect(r.status).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toMatch(message);
      expect(tree(root)).toEqual(before);
    });

    test("a root.path naming the host's / is refused", () => {
      const r = run(['create-symlinks', '--link', `x::${outside}/evil`], stateFor('/'));
      expect(r.status).toBe(1);
      expect(r.stderr).toBe("nvidia-runtime-hook: rootfs: the container rootfs is the host's /: refusing to write into it\n");
    });
  });

  describe('update-ldcache --cuda-compat', () => {
    const CONF = `${CONFD}/00-compat-560.conf`;

    test('compat newer than the host driver: 00-compat-<major>.conf, the compat libcuda.so.1 first in the cache; idempotent', () => {
      const root = withCuda(glibcRoot());
      const args = ['update-ldcache', '--root', root, '--folder', `/${LIB}`, '--cuda-compat', '550.54.15'];
      expect(run(args)).toEqual(OK);
      expect(readFileSync(join(root, CONF), 'utf8')).toBe(`${RUNTIME_HEADER}/usr/local/cuda/compat\n`);
      expect(statSync(join(root, CONF)).mode & 0o777).toBe(0o644);
      expect(libcudaEntries(root)).toEqual([`/usr/local/cuda/compat/libcuda.so.1`, `/${LIB}/libcuda.so.1`]);
      const inode = statSync(join(root, CONF)).ino;
      expect(run([...args.slice(0, -2), '--cuda-compat=550.54.15'])).toEqual(OK);
      expect(statSync(join(root, CONF)).ino).toBe(inode);
      expect(readdirSync(join(root, CONFD)).sort()).toEqual(['00-compat-560.conf', 'x86_64-linux-gnu.conf']);
    });

    test('the driver in an unconfigured folder (00-nvidia-runtime.conf) still comes after the compat one', () => {
      const root = withCuda(glibcRoot());
      mkdirSync(join(root, 'usr/lib/nvidia'), { recursive: true });
      copyFileSync(driverLib, join(root, 'usr/lib/nvidia/libcuda.so.550.54.15'));
      rmSync(join(root, LIB, 'libcuda.so.550.54.15'));
      expect(run(['update-ldcache', '--root', root, '--folder', '/usr/lib/nvidia', '--cuda-compat', '550.54.15'])).toEqual(OK);
      expect(libcudaEntries(root)).toEqual(['/usr/local/cuda/compat/libcuda.so.1', '/usr/lib/nvidia/libcuda.so.1']);
    });

    test.each(['560.1', '570.86.10'])('host driver %s (same or newer major): no conf, stale ones of ours removed, the image\'s kept', (host) => {
      const root = withCuda(glibcRoot());
      expect(run(['update-ldcache', '--root', root, '--cuda-compat', '550.54.15'])).toEqual(OK);
      expect(existsSync(join(root, CONF))).toBe(true);
      writeFileSync(join(root, CONFD, '00-compat-555.conf'), `${CDI_HEADER}/usr/local/cuda/compat\n`); // nvidia-cdi-hook's
      writeFileSync(join(root, CONFD, '00-compat-image.conf'), '/opt/image-compat\n'); // the image's own
      expect(run(['update-ldcache', '--root', root, '--folder', `/${LIB}`, '--cuda-compat', host])).toEqual(OK);
      expect(readdirSync(join(root, CONFD)).sort()).toEqual(['00-compat-image.conf', 'x86_64-linux-gnu.conf']);
      expect(libcudaEntries(root)).toEqual([`/${LIB}/libcuda.so.1`]);
    });

    test('without --cuda-compat nothing about compat is done (an earlier conf stays)', () => {
      const root = withCuda(glibcRoot());
      expect(run(['update-ldcache', '--root', root, '--cuda-compat', '550.54.15'])).toEqual(OK);
      expect(run(['update-ldcache', '--root', root])).toEqual(OK);
      expect(existsSync(join(root, CONF))).toBe(true);
    });

    test('the compat dir behind an absolute symlink is resolved in the rootfs, not on the host', () => {
      const root = glibcRoot();
      // rootfs: /usr/local/cuda -> <outside>/cuda, which exists in the rootfs with a 560 compat lib; the host's
      // <outside>/cuda/compat has a 999 one, which would give 00-compat-999.conf.
      withCuda(root, '560.35.03', `${outside.slice(1)}/cuda/compat`);
      mkdirSync(join(root, 'usr/local'), { recursive: true });
      symlinkSync(join(outside, 'cuda'), join(root, 'usr/local/cuda'));
      expect(run(['update-ldcache', '--root', root, '--cuda-compat', '550.54.15'])).toEqual(OK);
      expect(readdirSync(join(root, CONFD)).sort()).toEqual(['00-compat-560.conf', 'x86_64-linux-gnu.conf']);
      expect(libcudaEntries(root)).toEqual(['/usr/local/cuda/compat/libcuda.so.1', `/${LIB}/libcuda.so.1`]);
    });

    test('a compat libcuda.so.X.Y that is a symlink to a host file: not followed there, does not count', () => {
      const root = withCuda(glibcRoot());
      rmSync(join(root, 'usr/local/cuda/compat/libcuda.so.560.35.03'));
      symlinkSync(join(outside, 'cuda/compat/libcuda.so.999.1.1'), join(root, 'usr/local/cuda/compat/libcuda.so.999.1.1'));
      const r = run(['update-ldcache', '--root', root, '--cuda-compat', '550.54.15']);
      expect(r).toEqual(OK);
      expect(readdirSync(join(root, CONFD))).toEqual(['x86_64-linux-gnu.conf']);
      expect(libcudaEntries(root)).toEqual([`/${LIB}/libcuda.so.1`]);
    });

    test('--cuda-compat-dir: another compat dir', () => {
      const root = withCuda(glibcRoot(), '575.1.2', 'opt/compat');
      expect(run(['update-ldcache', '--root', root, '--cuda-compat', '550.54.15', '--cuda-compat-dir', '/opt/compat/'])).toEqual(OK);
      expect(readFileSync(join(root, CONFD, '00-compat-575.conf'), 'utf8')).toBe(`${RUNTIME_HEADER}/opt/compat\n`);
      expect(libcudaEntries(root)).toEqual(['/opt/compat/libcuda.so.1', `/${LIB}/libcuda.so.1`]);
    });

    test('two compat libcuda.so.*.*: a warning, no conf; ldconfig still runs', () => {
      const root = withCuda(glibcRoot());
      copyFileSync(compatLib, join(root, 'usr/local/cuda/compat/libcuda.so.565.1.1'));
      const r = run(['update-ldcache', '--root', root, '--folder', `/${LIB}`, '--cuda-compat', '550.54.15']);
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('nvidia-runtime-hook: warning: --cuda-compat: 2 libcuda.so.*.* files in /usr/local/cuda/compat: cannot tell which is the compat driver; nothing done\n');
      expect(readdirSync(join(root, CONFD))).toEqual(['x86_64-linux-gnu.conf']);
      expect(libcudaEntries(root)).toEqual([`/${LIB}/libcuda.so.1`]);
    });

    test('an ld.so.conf without the conf.d include: the compat dir first on the command line, no conf written', () => {
      const root = withCuda(glibcRoot());
      writeFileSync(join(root, 'etc/ld.so.conf'), `/${LIB}\n/lib/x86_64-linux-gnu\n`);
      writeFileSync(join(root, CONFD, '00-compat-555.conf'), `${RUNTIME_HEADER}/usr/local/cuda/compat\n`); // stale, ours
      mkdirSync(join(root, 'opt/nv'), { recursive: true });
      copyFileSync(driverLib, join(root, 'opt/nv/libcuda.so.550.54.15')); // a folder that goes on the command line too
      rmSync(join(root, LIB, 'libcuda.so.550.54.15'));
      expect(run(['update-ldcache', '--root', root, '--folder', '/opt/nv', '--cuda-compat', '550.54.15'])).toEqual(OK);
      expect(readdirSync(join(root, CONFD))).toEqual(['x86_64-linux-gnu.conf']);
      expect(libcudaEntries(root)).toEqual(['/usr/local/cuda/compat/libcuda.so.1', '/opt/nv/libcuda.so.1']);
      // The driver in a configured folder: still behind the compat one.
      copyFileSync(driverLib, join(root, LIB, 'libcuda.so.550.54.15'));
      expect(run(['update-ldcache', '--root', root, '--cuda-compat', '550.54.15'])).toEqual(OK);
      expect(libcudaEntries(root)[0]).toBe('/usr/local/cuda/compat/libcuda.so.1');
      expect(libcudaEntries(root)).toContain(`/${LIB}/libcuda.so.1`);
      // Not newer: the compat dir is not on the command line at all.
      expect(run(['update-ldcache', '--root', root, '--cuda-compat', '570.1'])).toEqual(OK);
      expect(libcudaEntries(root)).toEqual([`/${LIB}/libcuda.so.1`]);
    });

    test('the rootfs from the OCI state: links, compat and ldconfig in one hook', () => {
      const root = withCuda(glibcRoot());
      expect(run(['update-ldcache', '--folder', `/${LIB}`, '--link', GBM, '--cuda-compat', '550.54.15'], stateFor(root))).toEqual(OK);
      expect(readlinkSync(join(root, LIB, 'gbm/nvidia-drm_gbm.so'))).toBe('../libnvidia-allocator.so.1');
      expect(libcudaEntries(root)).toEqual(['/usr/local/cuda/compat/libcuda.so.1', `/${LIB}/libcuda.so.1`]);
    });

    test.each([
      [['--cuda-compat', 'abc'], /^nvidia-runtime-hook: --cuda-compat: 'abc' has no numeric major version: give the host driver's version, e\.g\. 550\.54\.15\n$/],
      [['--cuda-compat', ''], /--cuda-compat: '' has no numeric major version/],
      [['--cuda-compat', '550.54.15', '--cuda-compat-dir', 'compat'], /^nvidia-runtime-hook: --cuda-compat-dir: 'compat' is not an absolute path in the container\n$/],
      [['--cuda-compat-dir', '/opt/compat'], /^nvidia-runtime-hook: --cuda-compat-dir: given without --cuda-compat/],
      [['--cuda-compat'], /arguments: --cuda-compat needs a value/],
    ])('bad flags %j: exit 1, one line, rootfs untouched', (args, message) => {
      const root = withCuda(glibcRoot());
      const before = tree(root);
      const r = run(['update-ldcache', '--root', root, ...args]);
      expect(r.status).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toMatch(message);
      expect(tree(root)).toEqual(before);
    });
  });

  describe('apply-edits: link, compat, compatdir', () => {
    const plan = (words: string[]) => Buffer.from(words.map((w) => `${w}\0`).join(''));
    const apply = (root: string, words: string[]) => {
      const r = spawnSync(HOOK, ['apply-edits', '--rootfs', root], { input: plan(words), env: SAN });
      return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
    };

    test('links alone (no folder): parents made, no ldconfig', () => {
      const root = glibcRoot();
      const before = tree(root);
      expect(apply(root, ['link', '../card2', '/dev/dri/by-path/pci-0000:18:00.0-card', 'link', '../libnvidia-allocator.so.1', `/${LIB}/gbm/nvidia-drm_gbm.so`])).toEqual(OK);
      expect(readlinkSync(join(root, 'dev/dri/by-path/pci-0000:18:00.0-card'))).toBe('../card2');
      expect(readlinkSync(join(root, LIB, 'gbm/nvidia-drm_gbm.so'))).toBe('../libnvidia-allocator.so.1');
      expect(tree(root)['etc/ld.so.cache']).toBe(before['etc/ld.so.cache']);
    });

    test('compat + folder: the conf, the cache order; compatdir honoured', () => {
      const root = withCuda(glibcRoot(), '575.1.2', 'opt/compat');
      expect(apply(root, ['folder', `/${LIB}`, 'compat', '550.54.15', 'compatdir', '/opt/compat'])).toEqual(OK);
      expect(readFileSync(join(root, CONFD, '00-compat-575.conf'), 'utf8')).toBe(`${RUNTIME_HEADER}/opt/compat\n`);
      expect(libcudaEntries(root)).toEqual(['/opt/compat/libcuda.so.1', `/${LIB}/libcuda.so.1`]);
    });

    test('compat alone runs the ld cache step (default compat dir)', () => {
      const root = withCuda(glibcRoot());
      expect(apply(root, ['compat', '550.54.15'])).toEqual(OK);
      expect(libcudaEntries(root)).toEqual(['/usr/local/cuda/compat/libcuda.so.1', `/${LIB}/libcuda.so.1`]);
    });

    test('a failure after the links (a later link under a file): created links and directories undone', () => {
      const root = glibcRoot();
      writeFileSync(join(root, 'opt-file'), 'x');
      const before = tree(root);
      const r = apply(root, ['link', '../card2', '/dev/dri/by-path/pci-0000:18:00.0-card', 'link', 'x', '/opt-file/x']);
      expect(r.status).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toMatch(/--link: \/opt-file in the rootfs: Not a directory/);
      expect(tree(root)).toEqual(before);
    });

    test('ldconfig failing after links and the compat conf: all of them undone, conf.d included', () => {
      const root = withCuda(glibcRoot());
      rmSync(join(root, CONFD), { recursive: true });
      mkdirSync(join(root, 'etc/ld.so.cache~/x'), { recursive: true }); // ldconfig cannot write its temp cache
      symlinkSync('libcuda.so.550.54.15', join(root, LIB, 'libcuda.so.1')); // else ldconfig's own soname link stays
      const before = tree(root);
      const r = apply(root, ['folder', `/${LIB}`, 'compat', '550.54.15', 'link', '../card2', '/dev/dri/by-path/pci-0000:18:00.0-card']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/nvidia-runtime-hook: ldconfig: exited with status 1/);
      expect(r.stderr).not.toMatch(/warning/);
      expect(tree(root)).toEqual(before);
    });

    test.each([
      [['compat', 'abc'], /^nvidia-runtime-hook: plan: compat 'abc' has no numeric major version: give the host driver's version, e\.g\. 550\.54\.15\n$/],
      [['compatdir', '/opt/compat'], /^nvidia-runtime-hook: plan: compatdir without compat/],
      [['compat', '550.54.15', 'compatdir', 'opt'], /plan: compatdir 'opt' is not an absolute path/],
      [['link', '', '/x'], /plan: link target '' is empty/],
    ])('bad plan %j: exit 1, one line, nothing changed', (words, message) => {
      const root = withCuda(glibcRoot());
      const before = tree(root);
      const r = apply(root, words);
      expect(r.status).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toMatch(message);
      expect(tree(root)).toEqual(before);
    });
  });

  test('nvidia-cdi-hook enable-cuda-compat removes a stale conf that nvidia-runtime-hook --cuda-compat wrote', () => {
    const root = withCuda(glibcRoot());
    expect(run(['update-ldcache', '--root', root, '--cuda-compat', '550.54.15'])).toEqual(OK);
    const cdi = join(dir, `${binary}-cdi${n++}`);
    mkdirSync(cdi);
    symlinkSync(HOOK, join(cdi, 'nvidia-cdi-hook'));
    const r = spawnSync(join(cdi, 'nvidia-cdi-hook'), ['enable-cuda-compat', '--host-driver-version=570.1'], { input: stateFor(root), env: SAN });
    expect(r.status).toBe(0);
    expect(readdirSync(join(root, CONFD))).toEqual(['x86_64-linux-gnu.conf']);
  });
});
