/** nvidia-cdi-hook: the toolkit's CDI hook grammar, served by the same static binary as nvidia-runtime-hook when it
 *  runs under that name (a link named nvidia-cdi-hook, as /usr/bin/nvidia-cdi-hook is). Needs root, as the hook
 *  does. Every case runs against both resolvers (openat2 and the fallback walk) and the ASan+UBSan build, with the
 *  rootfs taken from the OCI state on stdin, as runc gives it, and a host sentinel directory that must hash the
 *  same before and after. */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync,
  statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT, tempDir } from '../../helpers/dist.js';
import { tree } from '../../helpers/tree.js';

let dir: string;
let compatLib: string; // soname libcuda.so.1: the "CUDA forward compat" copy
let driverLib: string; // soname libcuda.so.1: the "host driver" copy
beforeAll(() => {
  execFileSync('make', ['-s', '-f', 'native/Makefile.dev', 'build/dev/nvidia-runtime-hook', 'build/dev/nvidia-runtime-hook-walk', 'build/dev/nvidia-runtime-hook-asan'], { cwd: PACKAGE_ROOT });
  dir = realpathSync(tempDir('cdi-hook'));
  writeFileSync(join(dir, 'lib.c'), 'int which(void) { return WHICH; }\n');
  compatLib = join(dir, 'compat.so');
  driverLib = join(dir, 'driver.so');
  for (const [out, which] of [[compatLib, 1], [driverLib, 2]] as const) {
    execFileSync('cc', ['-shared', '-fPIC', `-DWHICH=${which}`, '-Wl,-soname,libcuda.so.1', '-o', out, join(dir, 'lib.c')]);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hashOf = (root: string) => createHash('sha256').update(JSON.stringify(tree(root))).digest('hex');
const oneLine = (stderr: string) => expect(stderr).toMatch(/^nvidia-cdi-hook: [^\n]*\n$/);
const cacheOf = (rootfs: string) => execFileSync('ldconfig', ['-p', '-C', join(rootfs, 'etc/ld.so.cache')]).toString();

describe.each(['nvidia-runtime-hook', 'nvidia-runtime-hook-walk', 'nvidia-runtime-hook-asan'])('%s as nvidia-cdi-hook', (binary) => {
  /** The ASan+UBSan build: any finding aborts (a signal, a failed case); leaks do not matter in a one-shot hook. */
  const SAN = binary.endsWith('-asan') ? { ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1' } : {};
  let HOOK: string;
  let n = 0;
  let outside: string; // the host sentinel: must never change
  let sentinel: string;
  beforeAll(() => {
    mkdirSync(join(dir, binary));
    HOOK = join(dir, binary, 'nvidia-cdi-hook');
    symlinkSync(join(PACKAGE_ROOT, 'build', 'dev', binary), HOOK);
  });
  beforeEach(() => {
    outside = join(dir, `${binary}-outside${n++}`);
    mkdirSync(join(outside, 'ld.so.conf.d'), { recursive: true });
    mkdirSync(join(outside, 'compat'));
    writeFileSync(join(outside, 'ld.so.conf'), 'include /etc/ld.so.conf.d/*.conf\n');
    writeFileSync(join(outside, 'ld.so.cache'), 'host cache');
    writeFileSync(join(outside, 'file'), 'host file', { mode: 0o640 });
    copyFileSync(compatLib, join(outside, 'compat/libcuda.so.999.1.1'));
    sentinel = hashOf(outside);
  });
  afterEach(() => expect(hashOf(outside)).toBe(sentinel));

  /** A bundle (config.json with a relative root.path) over a glibc-style rootfs, or a bare one. */
  function bundle(glibc = true): { b: string; root: string } {
    const b = join(dir, `${binary}-bundle${n++}`);
    const root = join(b, 'rootfs');
    mkdirSync(join(root, 'etc'), { recursive: true });
    mkdirSync(join(root, 'usr/lib/x86_64-linux-gnu'), { recursive: true });
    if (glibc) {
      mkdirSync(join(root, 'etc/ld.so.conf.d'));
      writeFileSync(join(root, 'etc/ld.so.conf'), 'include /etc/ld.so.conf.d/*.conf\n');
      writeFileSync(join(root, 'etc/ld.so.cache'), '');
    }
    writeFileSync(join(b, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', root: { path: 'rootfs' } }));
    return { b, root };
  }
  function hook(b: string | null, args: string[], env: Record<string, string> = { NVIDIA_CTK_DEBUG: 'false' }) {
    const input = b === null ? '' : JSON.stringify({ ociVersion: '1.0.2', id: 'c', status: 'creating', pid: 1, bundle: b });
    const r = spawnSync(HOOK, args, { input, env: { ...env, ...SAN } });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  }
  const ok = { status: 0, stdout: '', stderr: '' };

  describe('create-symlinks', () => {
    test("the fixture's links: relative and absolute targets, missing parents created", () => {
      const { b, root } = bundle();
      const r = hook(b, [
        'create-symlinks', '--link', '../libnvidia-allocator.so.1::/usr/lib/x86_64-linux-gnu/gbm/nvidia-drm_gbm.so',
        '--link', 'libcuda.so.1::/usr/lib/x86_64-linux-gnu/libcuda.so', '--link=/usr/lib/x86_64-linux-gnu/libcuda.so.1::/usr/lib/libcuda.so',
      ]);
      expect(r).toEqual(ok);
      expect(readlinkSync(join(root, 'usr/lib/x86_64-linux-gnu/gbm/nvidia-drm_gbm.so'))).toBe('../libnvidia-allocator.so.1');
      expect(statSync(join(root, 'usr/lib/x86_64-linux-gnu/gbm')).mode & 0o7777).toBe(0o755);
      expect(readlinkSync(join(root, 'usr/lib/x86_64-linux-gnu/libcuda.so'))).toBe('libcuda.so.1');
      expect(readlinkSync(join(root, 'usr/lib/libcuda.so'))).toBe('/usr/lib/x86_64-linux-gnu/libcuda.so.1');
    });

    test('comma-separated values, a relative link path, ".." clamped at the root, a repeated --link done once', () => {
      const { b, root } = bundle();
      const r = hook(b, ['create-symlinks', '--link', 'a::/x/a, b::x/b', '-link', 'c::/../../../x/c', '--link', 'c::/../../../x/c']);
      expect(r).toEqual(ok);
      expect(readlinkSync(join(root, 'x/a'))).toBe('a');
      expect(readlinkSync(join(root, 'x/b'))).toBe('b');
      expect(readlinkSync(join(root, 'x/c'))).toBe('c');
    });

    test('an identical link is left alone; another link, a file and an empty directory are replaced (as the toolkit does)', () => {
      const { b, root } = bundle();
      const d = join(root, 'usr/lib/x86_64-linux-gnu');
      symlinkSync('libcuda.so.1', join(d, 'same.so'));
      symlinkSync('old', join(d, 'other.so'));
      writeFileSync(join(d, 'file.so'), 'image file');
      mkdirSync(join(d, 'empty.so'));
      const inode = lstatSync(join(d, 'same.so')).ino;
      const r = hook(b, ['create-symlinks', ...['same', 'other', 'file', 'empty'].flatMap((x) => ['--link', `libcuda.so.1::/usr/lib/x86_64-linux-gnu/${x}.so`])]);
      expect(r).toEqual(ok);
      for (const x of ['same', 'other', 'file', 'empty']) expect(readlinkSync(join(d, `${x}.so`))).toBe('libcuda.so.1');
      expect(lstatSync(join(d, 'same.so')).ino).toBe(inode);
      expect(readdirSync(d).filter((f) => f.startsWith('.'))).toEqual([]); // no temporary link left
      // Re-running is a no-op.
      const before = tree(root);
      expect(hook(b, ['create-symlinks', '--link', 'libcuda.so.1::/usr/lib/x86_64-linux-gnu/other.so'])).toEqual(ok);
      expect(tree(root)).toEqual(before);
    });

    test('a directory that is not empty is refused, on one line, and kept', () => {
      const { b, root } = bundle();
      mkdirSync(join(root, 'usr/lib/x86_64-linux-gnu/full.so'));
      writeFileSync(join(root, 'usr/lib/x86_64-linux-gnu/full.so/x'), 'x');
      const r = hook(b, ['create-symlinks', '--link', 'libcuda.so.1::/usr/lib/x86_64-linux-gnu/full.so']);
      expect(r.status).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toContain('/usr/lib/x86_64-linux-gnu/full.so in the rootfs is a directory that is not empty: remove it');
      expect(readFileSync(join(root, 'usr/lib/x86_64-linux-gnu/full.so/x'), 'utf8')).toBe('x');
    });

    test.each([
      ['nolink', /--link 'nolink' is not TARGET::LINK/],
      ['a::b::c', /--link 'a::b::c' is not TARGET::LINK \(exactly one '::'\)/],
      ['::/x', /--link '::\/x' has an empty target/],
      ['x::', /--link 'x::' has an empty link path/],
      ['x::/', /the link path is the container's \//],
      ['x::/..', /the link path is the container's \//],
    ])('bad --link %s: exit 1, one line, nothing written', (link, message) => {
      const { b, root } = bundle();
      const before = tree(root);
      const r = hook(b, ['create-symlinks', '--link', 'ok::/ok', '--link', link]);
      expect(r.status).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toMatch(message);
      expect(tree(root)).toEqual(before);
    });

    describe('symlinks in the rootfs never lead outside it', () => {
      test('parent -> / (absolute): resolved to the container root; an absolute target is not created', () => {
        const { b, root } = bundle();
        mkdirSync(join(root, 'lib'));
        symlinkSync('/', join(root, 'lib/foo'));
        expect(hook(b, ['create-symlinks', '--link', '/a-path-in-container/foo/libfoo.so.1::/lib/foo/libfoo.so'])).toEqual(ok);
        expect(readlinkSync(join(root, 'libfoo.so'))).toBe('/a-path-in-container/foo/libfoo.so.1');
        expect(existsSync(join(root, 'a-path-in-container'))).toBe(false);
        expect(existsSync('/libfoo.so')).toBe(false);
      });

      test('parent -> ../../../.. (relative climb): clamped at the container root', () => {
        const { b, root } = bundle();
        mkdirSync(join(root, 'lib'));
        symlinkSync('../../../../../../../..', join(root, 'lib/foo'));
        expect(hook(b, ['create-symlinks', '--link', '../libfoo.so.1::/lib/foo/libfoo.so'])).toEqual(ok);
        expect(readlinkSync(join(root, 'libfoo.so'))).toBe('../libfoo.so.1');
      });

      test.each(['absolute', 'relative'])('parent -> the host sentinel (%s): not followed out; the dangling link is an error', (kind) => {
        const { b, root } = bundle();
        mkdirSync(join(root, 'lib'));
        symlinkSync(kind === 'absolute' ? outside : `../../../../../../../..${outside}`, join(root, 'lib/foo'));
        const r = hook(b, ['create-symlinks', '--link', 'x::/lib/foo/ld.so.conf.d/evil', '--link', 'x::/lib/foo/evil']);
        expect(r.status).toBe(1);
        oneLine(r.stderr);
        expect(r.stderr).toContain('is a symbolic link to nothing');
      });

      test('/usr/lib -> the host sentinel, with a directory of that name inside the rootfs: the link lands in the rootfs', () => {
        const { b, root } = bundle();
        mkdirSync(join(root, outside), { recursive: true });
        rmSync(join(root, 'usr/lib'), { recursive: true });
        symlinkSync(outside, join(root, 'usr/lib'));
        expect(hook(b, ['create-symlinks', '--link', 'x::/usr/lib/file', '--link', 'y::/usr/lib/gbm/z'])).toEqual(ok);
        expect(readlinkSync(join(root, outside, 'file'))).toBe('x');
        expect(readlinkSync(join(root, outside, 'gbm/z'))).toBe('y');
      });

      test('the link itself is an image symlink to a host file: the link is replaced, the file untouched', () => {
        const { b, root } = bundle();
        symlinkSync(join(outside, 'file'), join(root, 'usr/lib/x86_64-linux-gnu/libcuda.so'));
        expect(hook(b, ['create-symlinks', '--link', 'libcuda.so.1::/usr/lib/x86_64-linux-gnu/libcuda.so'])).toEqual(ok);
        expect(readlinkSync(join(root, 'usr/lib/x86_64-linux-gnu/libcuda.so'))).toBe('libcuda.so.1');
      });

      test('/etc -> the host sentinel: ld.so.conf.d links fail on one line, nothing written there', () => {
        const { b, root } = bundle(false);
        rmSync(join(root, 'etc'), { recursive: true });
        symlinkSync(outside, join(root, 'etc'));
        const r = hook(b, ['create-symlinks', '--link', 'x::/etc/ld.so.conf.d/x.conf']);
        expect(r.status).toBe(1);
        oneLine(r.stderr);
      });
    });
  });

  describe('update-ldcache', () => {
    test('--folder goes into conf.d and the cache; --ldconfig-path is the host ldconfig; repeated runs rewrite nothing', () => {
      const { b, root } = bundle();
      mkdirSync(join(root, 'opt/nv'), { recursive: true });
      copyFileSync(driverLib, join(root, 'opt/nv/libcuda.so.550.54.15'));
      expect(hook(b, ['update-ldcache', '--folder', '/opt/nv', '--ldconfig-path', '/sbin/ldconfig'])).toEqual(ok);
      expect(readFileSync(join(root, 'etc/ld.so.conf.d/00-nvidia-runtime.conf'), 'utf8')).toMatch(/^(#.*\n)?\/opt\/nv\n$/);
      expect(cacheOf(root)).toMatch(/libcuda\.so\.1 \(libc6,x86-64\) => \/opt\/nv\/libcuda\.so\.1\n/);
      const inode = statSync(join(root, 'etc/ld.so.conf.d/00-nvidia-runtime.conf')).ino;
      expect(hook(b, ['update-ldcache', '--folder=/opt/nv,/opt/nv/'])).toEqual(ok);
      expect(statSync(join(root, 'etc/ld.so.conf.d/00-nvidia-runtime.conf')).ino).toBe(inode);
    });

    test('a rootfs without ld.so.cache or ld.so.conf (busybox, musl): nothing written, exit 0', () => {
      const { b, root } = bundle(false);
      const before = tree(root);
      expect(hook(b, ['update-ldcache', '--folder', '/usr/lib/x86_64-linux-gnu'])).toEqual(ok);
      expect(tree(root)).toEqual(before);
    });

    test('/etc/ld.so.conf.d -> the host sentinel: refused on one line, nothing written there', () => {
      const { b, root } = bundle();
      rmSync(join(root, 'etc/ld.so.conf.d'), { recursive: true });
      symlinkSync(join(outside, 'ld.so.conf.d'), join(root, 'etc/ld.so.conf.d'));
      const r = hook(b, ['update-ldcache', '--folder', '/opt/nv']);
      expect(r.status).toBe(1);
      oneLine(r.stderr);
    });

    test.each([
      [['--folder', 'lib'], /update-ldcache: --folder 'lib' is not an absolute path in the container/],
      [['--ldconfig-path', 'sbin/ldconfig'], /--ldconfig-path 'sbin\/ldconfig' is not an absolute host path/],
      [['--ldconfig-path='], /--ldconfig-path is empty/],
      [['--ldconfig-path', '/bin/true'], /ldconfig: \/bin\/true is dynamically linked: .*\(--ldconfig-path\)$/m],
      [['--ldconfig-path', '/nonexistent/ldconfig'], /ldconfig: cannot open \/nonexistent\/ldconfig on the host/],
      [['--container-spec', '/tmp/state.json'], /--container-spec \/tmp\/state\.json: reading the container state from a file is not supported/],
      [['--folder'], /update-ldcache: flag --folder needs a value/],
    ])('bad flags %j: exit 1, one line, rootfs untouched', (args, message) => {
      const { b, root } = bundle();
      const before = tree(root);
      const r = hook(b, ['update-ldcache', ...args]);
      expect(r.status).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toMatch(message);
      expect(tree(root)).toEqual(before);
    });
  });

  describe('enable-cuda-compat', () => {
    const CONF = 'etc/ld.so.conf.d/00-compat-560.conf';
    function compatRoot(version = '560.35.03'): { b: string; root: string } {
      const r = bundle();
      mkdirSync(join(r.root, 'usr/local/cuda/compat'), { recursive: true });
      copyFileSync(compatLib, join(r.root, `usr/local/cuda/compat/libcuda.so.${version}`));
      symlinkSync(`libcuda.so.${version}`, join(r.root, 'usr/local/cuda/compat/libcuda.so.1')); // links do not count
      return r;
    }

    test('compat newer than the host driver: 00-compat-<major>.conf lists the compat dir; idempotent', () => {
      const { b, root } = compatRoot();
      expect(hook(b, ['enable-cuda-compat', '--host-driver-version=550.54.15'])).toEqual(ok);
      expect(readFileSync(join(root, CONF), 'utf8')).toBe('# written by nvidia-cdi-hook enable-cuda-compat for this container\n/usr/local/cuda/compat\n');
      expect(statSync(join(root, CONF)).mode & 0o777).toBe(0o644);
      const inode = statSync(join(root, CONF)).ino;
      expect(hook(b, ['enable-cuda-compat', '--host-driver-version', '550.54.15'])).toEqual(ok);
      expect(statSync(join(root, CONF)).ino).toBe(inode);
      expect(readdirSync(join(root, 'etc/ld.so.conf.d'))).toEqual(['00-compat-560.conf']);
    });

    test('then update-ldcache: the compat libcuda.so.1 comes before the driver one, even from an unconfigured folder', () => {
      const { b, root } = compatRoot();
      copyFileSync(driverLib, join(root, 'usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15'));
      expect(hook(b, ['enable-cuda-compat', '--host-driver-version=550.54.15'])).toEqual(ok);
      expect(hook(b, ['update-ldcache', '--folder', '/usr/lib/x86_64-linux-gnu'])).toEqual(ok);
      const lines = cacheOf(root).split('\n').filter((l) => l.includes('libcuda.so.1 '));
      expect(lines).toEqual([
        expect.stringMatching(/=> \/usr\/local\/cuda\/compat\/libcuda\.so\.1$/),
        expect.stringMatching(/=> \/usr\/lib\/x86_64-linux-gnu\/libcuda\.so\.1$/),
      ]);
    });

    test('compat not newer (same or older major): nothing written, and a stale file of ours is removed', () => {
      const { b, root } = compatRoot();
      expect(hook(b, ['enable-cuda-compat', '--host-driver-version=550.54.15'])).toEqual(ok);
      writeFileSync(join(root, 'etc/ld.so.conf.d/00-compat-image.conf'), '/opt/image-compat\n'); // the image's own
      for (const host of ['560.1', '570.86.10']) {
        expect(hook(b, ['enable-cuda-compat', `--host-driver-version=${host}`])).toEqual(ok);
        expect(readdirSync(join(root, 'etc/ld.so.conf.d'))).toEqual(['00-compat-image.conf']);
      }
    });

    test.each([
      ['no compat dir', (root: string) => rmSync(join(root, 'usr/local/cuda'), { recursive: true })],
      ['no /etc/ld.so.cache', (root: string) => rmSync(join(root, 'etc/ld.so.cache'))],
      ['only a link named libcuda.so.X.Y', (root: string) => {
        rmSync(join(root, 'usr/local/cuda/compat/libcuda.so.560.35.03'));
        writeFileSync(join(root, 'usr/local/cuda/compat/real'), 'x');
        symlinkSync('real', join(root, 'usr/local/cuda/compat/libcuda.so.560.35.03'));
      }],
      ['a directory named libcuda.so.X.Y', (root: string) => {
        rmSync(join(root, 'usr/local/cuda/compat/libcuda.so.560.35.03'));
        mkdirSync(join(root, 'usr/local/cuda/compat/libcuda.so.560.35.03'));
      }],
      ['no --host-driver-version', null],
    ])('%s: nothing written, exit 0', (_name, change) => {
      const { b, root } = compatRoot();
      if (change) change(root);
      const before = tree(root);
      expect(hook(b, change ? ['enable-cuda-compat', '--host-driver-version=550.54.15'] : ['enable-cuda-compat'])).toEqual(ok);
      expect(tree(root)).toEqual(before);
    });

    test('two compat libcuda.so.*.*: a warning, nothing written', () => {
      const { b, root } = compatRoot();
      copyFileSync(compatLib, join(root, 'usr/local/cuda/compat/libcuda.so.565.1.1'));
      const before = tree(root);
      const r = hook(b, ['enable-cuda-compat', '--host-driver-version=550.54.15']);
      expect(r).toMatchObject({ status: 0, stdout: '' });
      expect(r.stderr).toMatch(/^nvidia-cdi-hook: warning: enable-cuda-compat: 2 libcuda\.so\.\*\.\* files in \/usr\/local\/cuda\/compat/);
      expect(tree(root)).toEqual(before);
    });

    test('--cuda-compat-container-root (newer toolkits) is honoured; --host-cuda-version is a warning', () => {
      const { b, root } = bundle();
      mkdirSync(join(root, 'opt/compat'), { recursive: true });
      copyFileSync(compatLib, join(root, 'opt/compat/libcuda.so.575.1.2'));
      const r = hook(b, ['enable-cuda-compat', '--host-driver-version=550.54.15', '--host-cuda-version=12.4', '--cuda-compat-container-root', '/opt/compat/']);
      expect(r.status).toBe(0);
      expect(r.stderr).toMatch(/^nvidia-cdi-hook: warning: enable-cuda-compat: --host-cuda-version is not supported .*deciding by --host-driver-version alone\n$/);
      expect(readFileSync(join(root, 'etc/ld.so.conf.d/00-compat-575.conf'), 'utf8')).toMatch(/\n\/opt\/compat\n$/);
    });

    test.each(['absolute', 'relative'])('/usr/local/cuda -> the host sentinel (%s): its libcuda is not seen, nothing written', (kind) => {
      const { b, root } = bundle();
      mkdirSync(join(root, 'usr/local'), { recursive: true });
      symlinkSync(kind === 'absolute' ? outside : `../../../../../../..${outside}`, join(root, 'usr/local/cuda'));
      const before = tree(root);
      expect(hook(b, ['enable-cuda-compat', '--host-driver-version=550.54.15'])).toEqual(ok);
      expect(tree(root)).toEqual(before);
    });

    test('a symlinked compat dir inside the rootfs is followed there (CUDA images: /usr/local/cuda -> cuda-12.6)', () => {
      const { b, root } = bundle();
      mkdirSync(join(root, 'usr/local/cuda-12.6/compat'), { recursive: true });
      copyFileSync(compatLib, join(root, 'usr/local/cuda-12.6/compat/libcuda.so.560.35.03'));
      symlinkSync('/usr/local/cuda-12.6', join(root, 'usr/local/cuda'));
      expect(hook(b, ['enable-cuda-compat', '--host-driver-version=550.54.15'])).toEqual(ok);
      expect(readFileSync(join(root, CONF), 'utf8')).toMatch(/\n\/usr\/local\/cuda\/compat\n$/);
    });

    test('/etc/ld.so.conf.d -> the host sentinel: refused on one line, nothing written there', () => {
      const { b, root } = compatRoot();
      rmSync(join(root, 'etc/ld.so.conf.d'), { recursive: true });
      symlinkSync(join(outside, 'ld.so.conf.d'), join(root, 'etc/ld.so.conf.d'));
      const r = hook(b, ['enable-cuda-compat', '--host-driver-version=550.54.15']);
      expect(r.status).toBe(1);
      oneLine(r.stderr);
    });

    test.each([
      [['--host-driver-version=abc'], /--host-driver-version 'abc' has no numeric major version/],
      [['--host-driver-version=550.54.15', '--cuda-compat-container-root=compat'], /--cuda-compat-container-root 'compat' is not an absolute path/],
      [['--host-driver-version=550.54.15', '--container-spec=/x.json'], /--container-spec \/x\.json: reading the container state from a file is not supported/],
    ])('bad flags %j: exit 1, one line', (args, message) => {
      const { b, root } = compatRoot();
      const before = tree(root);
      const r = hook(b, ['enable-cuda-compat', ...args]);
      expect(r.status).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toMatch(message);
      expect(tree(root)).toEqual(before);
    });
  });

  describe('chmod', () => {
    test('modes set inside the rootfs; missing paths skipped; a symlink is not followed (warning)', () => {
      const { b, root } = bundle();
      mkdirSync(join(root, 'dev/dri'), { recursive: true, mode: 0o700 });
      writeFileSync(join(root, 'dev/dri/card0'), '', { mode: 0o600 });
      symlinkSync(join(outside, 'file'), join(root, 'dev/dri/by-host'));
      symlinkSync('card0', join(root, 'dev/dri/by-name'));
      const r = hook(b, ['chmod', '--mode', '755', '--path', '/dev/dri', '--path', 'dev/dri/card0,/dev/missing/x,/dev/dri/nope', '--path', '/dev/dri/by-host', '--path=/dev/dri/by-name']);
      expect(r.status).toBe(0);
      expect(r.stderr.split('\n').filter(Boolean)).toEqual([
        'nvidia-cdi-hook: warning: chmod: /dev/dri/by-host in the rootfs is a symbolic link: not followed, left as it is',
        'nvidia-cdi-hook: warning: chmod: /dev/dri/by-name in the rootfs is a symbolic link: not followed, left as it is',
      ]);
      expect(statSync(join(root, 'dev/dri')).mode & 0o7777).toBe(0o755);
      expect(statSync(join(root, 'dev/dri/card0')).mode & 0o7777).toBe(0o755);
    });

    test('a parent that is a symlink to the host sentinel resolves inside the rootfs', () => {
      const { b, root } = bundle();
      mkdirSync(join(root, outside), { recursive: true });
      writeFileSync(join(root, outside, 'file'), '', { mode: 0o600 });
      symlinkSync(outside, join(root, 'dev'));
      expect(hook(b, ['chmod', '--mode=0751', '--path', '/dev/file', '--path', '/dev/../dev/file'])).toEqual(ok);
      expect(statSync(join(root, outside, 'file')).mode & 0o7777).toBe(0o751);
    });

    test.each([
      [['--path', '/x'], /chmod: no --mode: give an octal mode/],
      [['--mode', ' ', '--path', '/x'], /chmod: no --mode/],
      [['--mode', '9', '--path', '/x'], /--mode '9' is not an octal mode/],
      [['--mode', '-755', '--path', '/x'], /--mode '-755' is not an octal mode/],
      [['--mode', '4755', '--path', '/x'], /--mode 4755 has setuid, setgid or sticky bits/],
      [['--mode', '755', '--path', ''], /an empty --path/],
    ])('bad flags %j: exit 1, one line', (args, message) => {
      const { b, root } = bundle();
      writeFileSync(join(root, 'x'), '');
      const before = tree(root);
      const r = hook(b, ['chmod', ...args]);
      expect(r.status).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toMatch(message);
      expect(tree(root)).toEqual(before);
    });
  });

  describe('disable-device-node-modification', () => {
    /** Runs the hook in a private mount namespace whose /proc/driver/nvidia/params says `params` (a tmpfs over the
     *  host's /proc/driver: no NVIDIA driver here), then prints what the container's params file reads there. */
    function withHostParams(b: string, root: string, params: string | null) {
      const state = join(b, 'state.json');
      writeFileSync(state, JSON.stringify({ ociVersion: '1.0.2', id: 'c', status: 'creating', pid: 1, bundle: b }));
      writeFileSync(join(b, 'params'), params ?? '');
      const script = [
        'set -e', 'mount -t tmpfs none /proc/driver',
        ...(params === null ? [] : ['mkdir /proc/driver/nvidia', 'cp "$1/params" /proc/driver/nvidia/params']),
        'rc=0; "$2" disable-device-node-modification < "$1/state.json" || rc=$?',
        'echo "rc=$rc"', 'echo ---', 'cat "$3/proc/driver/nvidia/params"', 'echo ---',
        'grep -F " $3/" /proc/self/mountinfo | cut -d" " -f4,5 || true', 'echo ---',
        '[ -w "$3/proc/driver/nvidia/params" ] && echo writable || echo read-only',
      ].join('\n');
      const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', b, HOOK, root], { env: { PATH: process.env.PATH!, ...SAN } });
      return { out: r.stdout.toString().split('---\n'), stderr: r.stderr.toString() };
    }

    test('ModifyDeviceFiles: 1 on the host: the container reads a read-only copy with 0; nothing stays in the rootfs', () => {
      const { b, root } = bundle();
      mkdirSync(join(root, 'proc/driver/nvidia'), { recursive: true });
      writeFileSync(join(root, 'proc/driver/nvidia/params'), 'the image file\n');
      const before = tree(root);
      const { out, stderr } = withHostParams(b, root, 'ResmanDebugLevel: 4294967295\nModifyDeviceFiles: 1\nDeviceFileUID: 0');
      expect(stderr).toBe('');
      expect(out[0]).toBe('rc=0\n');
      expect(out[1]).toBe('ResmanDebugLevel: 4294967295\nModifyDeviceFiles: 0\nDeviceFileUID: 0\n');
      expect(out[2]).toMatch(new RegExp(`^/params ${root}/proc/driver/nvidia/params\n$`)); // one bind of the copy
      expect(out[3]).toBe('read-only\n');
      expect(tree(root)).toEqual(before); // no scratch directory, the image file untouched
    });

    test.each([
      ['no driver (no params file on the host)', null],
      ['ModifyDeviceFiles: 0 already', 'ModifyDeviceFiles: 0\n'],
      ['no ModifyDeviceFiles line', 'DeviceFileUID: 0\n'],
    ])('%s: nothing done', (_name, params) => {
      const { b, root } = bundle();
      mkdirSync(join(root, 'proc/driver/nvidia'), { recursive: true });
      writeFileSync(join(root, 'proc/driver/nvidia/params'), 'the image file\n');
      const before = tree(root);
      const { out, stderr } = withHostParams(b, root, params);
      expect(stderr).toBe('');
      expect(out).toEqual(['rc=0\n', 'the image file\n', '', 'writable\n']);
      expect(tree(root)).toEqual(before);
    });

    test('no /proc/driver/nvidia/params in the container: exit 1, one line', () => {
      const { b } = bundle();
      const { out, stderr } = withHostParams(b, join(b, 'rootfs'), 'ModifyDeviceFiles: 1\n');
      expect(out[0]).toBe('rc=1\n');
      expect(stderr).toMatch(/^nvidia-cdi-hook: disable-device-node-modification: \/proc\/driver\/nvidia\/params in the container: No such file or directory: [^\n]*\n(cat: [^\n]*\n)?$/);
    });

    test('on this host (no NVIDIA driver): exit 0, nothing done', () => {
      const { b, root } = bundle();
      const before = tree(root);
      const r = hook(b, ['disable-device-node-modification']);
      expect(r).toEqual(existsSync('/proc/driver/nvidia/params') ? expect.anything() : ok);
      expect(tree(root)).toEqual(before);
    });
  });

  describe('forward compatibility and the common rules', () => {
    test.each([
      [['update-application-profile', '--x', 'y'], /^nvidia-cdi-hook: warning: unsupported hook 'update-application-profile' ignored/],
      [['create-soname-symlinks'], /^nvidia-cdi-hook: warning: unsupported hook 'create-soname-symlinks' ignored/],
      [[], /^nvidia-cdi-hook: warning: no hook given: nothing done/],
      [['noop'], /^$/],
      [['--debug', '--quiet', 'noop'], /^$/],
      [['--frobnicate', 'noop'], /^nvidia-cdi-hook: warning: unknown global flag '--frobnicate' ignored/],
      [['--help'], /^usage: nvidia-cdi-hook /],
      [['create-symlinks', '--help', '--link', 'x::/x'], /^usage: nvidia-cdi-hook /],
    ])('%j: exit 0, nothing written', (args, message) => {
      const { b, root } = bundle();
      const before = tree(root);
      const r = hook(b, args);
      expect(r).toMatchObject({ status: 0, stdout: '' });
      expect(r.stderr).toMatch(message);
      expect(tree(root)).toEqual(before);
    });

    test('an unknown flag of a known hook is a warning; the hook still does its work', () => {
      const { b, root } = bundle();
      const r = hook(b, ['-d', 'create-symlinks', '--newer-flag', 'v', '--other=1', '--link', 'a::/a']);
      expect(r.status).toBe(0);
      expect(r.stderr.split('\n').filter(Boolean)).toEqual([
        "nvidia-cdi-hook: warning: create-symlinks: unknown flag '--newer-flag' ignored (written for a newer toolkit?)",
        "nvidia-cdi-hook: warning: create-symlinks: unknown flag '--other' ignored (written for a newer toolkit?)",
      ]);
      expect(readlinkSync(join(root, 'a'))).toBe('a');
    });

    test('--container-spec "-" means stdin; an argument ends the flags (as in Go), with a warning', () => {
      const { b, root } = bundle();
      const r = hook(b, ['create-symlinks', '--container-spec=-', '--link', 'a::/a', 'stray', '--link', 'b::/b']);
      expect(r.status).toBe(0);
      expect(r.stderr).toBe("nvidia-cdi-hook: warning: create-symlinks: argument 'stray' and everything after it ignored (the hook takes only flags)\n");
      expect(readlinkSync(join(root, 'a'))).toBe('a');
      expect(existsSync(join(root, 'b'))).toBe(false);
    });

    // The static builds only: the dynamic ASan build's loader acts on these variables before main().
    (SAN.ASAN_OPTIONS ? test.skip : test).each(['LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT'])('refuses to run with %s set (the hook entry must carry its env)', (name) => {
      const { b, root } = bundle();
      const before = tree(root);
      const r = hook(b, ['create-symlinks', '--link', 'a::/a'], { [name]: '/proc/self/cwd/poc.so' });
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`nvidia-cdi-hook: environment: ${name} is set; the hook must run with the explicit env of its hook entry\n`);
      expect(tree(root)).toEqual(before);
    });

    test.each(['create-symlinks --link a::/a', 'update-ldcache --folder /x', 'enable-cuda-compat --host-driver-version=1', 'chmod --mode 755 --path /x'])(
      '%s: no state on stdin: exit 1, one line', (args) => {
        const r = hook(null, args.split(' '));
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/^nvidia-cdi-hook: [a-z-]+: no container state on stdin: run as an OCI hook/);
        oneLine(r.stderr);
      });

    test("root.path naming the host's / is refused", () => {
      const { b } = bundle();
      writeFileSync(join(b, 'config.json'), JSON.stringify({ root: { path: '/' } }));
      const r = hook(b, ['create-symlinks', '--link', `a::${outside}/evil`]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^nvidia-cdi-hook: create-symlinks: the container's root\.path is the host's \/: refusing/);
    });

    test('a bad state is reported with the nvidia-cdi-hook prefix', () => {
      const r = spawnSync(HOOK, ['create-symlinks', '--link', 'a::/a'], { input: '{"bundle":"/nonexistent-bundle"}', env: SAN });
      expect(r.status).toBe(1);
      expect(r.stderr.toString()).toMatch(/^nvidia-cdi-hook: bundle: \/nonexistent-bundle: No such file or directory\n$/);
    });
  });
});

test('under its own name the binary keeps the nvidia-runtime-hook grammar (its own create-symlinks; enable-cuda-compat unknown)', () => {
  const HOOK = join(PACKAGE_ROOT, 'build/dev/nvidia-runtime-hook');
  let r = spawnSync(HOOK, ['enable-cuda-compat', '--host-driver-version=550.54.15'], { input: '', env: {} });
  expect(r.status).toBe(0);
  expect(r.stderr.toString()).toMatch(/^nvidia-runtime-hook: warning: unknown subcommand 'enable-cuda-compat' ignored/);
  // The toolkit's create-symlinks takes a relative LINK; nvidia-runtime-hook's wants TARGET::/absolute/link and --root.
  r = spawnSync(HOOK, ['create-symlinks', '--root', dir, '--link', 'a::a'], { input: '', env: {} });
  expect(r.status).toBe(1);
  expect(r.stderr.toString()).toBe("nvidia-runtime-hook: --link: 'a::a' is not TARGET::/absolute/link\n");
});
