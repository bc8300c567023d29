/** The createContainer hook (native/hook/), built with native/Makefile.dev into build/dev/. Needs root
 *  (unshare, chroot), as the hook itself does. Every case runs against both resolvers: openat2 and the
 *  fallback walk (nvidia-runtime-hook-walk, built with -DINROOT_FORCE_WALK). */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync,
  statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT, tempDir } from '../../helpers/dist.js';

const LIBZ = realpathSync('/usr/lib/x86_64-linux-gnu/libz.so.1'); // any real shared library with a SONAME
const CONF = 'etc/ld.so.conf.d/00-nvidia-runtime.conf';

let dir: string;
beforeAll(() => {
  execFileSync('make', ['-s', '-f', 'native/Makefile.dev', 'build/dev/nvidia-runtime-hook', 'build/dev/nvidia-runtime-hook-walk'], {
    cwd: PACKAGE_ROOT,
  });
  dir = realpathSync(tempDir('hook'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every path under root with its type and content (files) or target (links): a fingerprint of a tree. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      const p = join(rel, name);
      const st = lstatSync(join(root, p));
      if (st.isSymbolicLink()) out[p] = `-> ${readlinkSync(join(root, p))}`;
      else if (st.isDirectory()) {
        out[p] = 'dir';
        walk(p);
      } else out[p] = `${st.mode.toString(8)} ${readFileSync(join(root, p)).toString('base64')}`;
    }
  };
  walk('.');
  return out;
}

function cacheOf(rootfs: string): string {
  return execFileSync('ldconfig', ['-p', '-C', join(rootfs, 'etc/ld.so.cache')]).toString();
}

describe.each(['nvidia-runtime-hook', 'nvidia-runtime-hook-walk'])('%s', (binary) => {
  const HOOK = join(PACKAGE_ROOT, 'build', 'dev', binary);
  const hook = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(HOOK, args, { input: '{"ociVersion":"1.0.2","id":"c","status":"creating","pid":1,"bundle":"/b"}', env });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  let n = 0;
  /** A glibc-style rootfs: /etc/ld.so.conf including conf.d, a library in /opt/nv. */
  function glibcRoot(conf = 'include /etc/ld.so.conf.d/*.conf\n'): string {
    const root = join(dir, `${binary}-root${n++}`);
    mkdirSync(join(root, 'etc'), { recursive: true });
    mkdirSync(join(root, 'opt/nv'), { recursive: true });
    writeFileSync(join(root, 'etc/ld.so.conf'), conf);
    copyFileSync(LIBZ, join(root, 'opt/nv/libz.so.1.2.3'));
    return root;
  }

  test('creates the link, writes the conf.d file, runs ldconfig in the rootfs', () => {
    const root = glibcRoot();
    const r = hook(['update-ldcache', '--root', root, '--folder', '/opt/nv/', '--link', 'libz.so.1::/opt/nv/libz.so']);
    expect(r).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(readlinkSync(join(root, 'opt/nv/libz.so'))).toBe('libz.so.1');
    expect(readFileSync(join(root, CONF), 'utf8')).toMatch(/^(#.*\n)?\/opt\/nv\n$/);
    expect(statSync(join(root, CONF)).mode & 0o777).toBe(0o644);
    expect(cacheOf(root)).toMatch(/libz\.so\.1 \(libc6,x86-64\) => \/opt\/nv\/libz\.so\.1\n/);
    // Idempotent: a second run changes nothing but the cache.
    const before = tree(root);
    const inode = statSync(join(root, CONF)).ino;
    expect(hook(['update-ldcache', '--root', root, '--folder', '/opt/nv', '--link', 'libz.so.1::/opt/nv/libz.so']).status).toBe(0);
    const after = tree(root);
    delete before['etc/ld.so.cache'];
    delete after['etc/ld.so.cache'];
    expect(after).toEqual(before);
    expect(statSync(join(root, CONF)).ino).toBe(inode); // not rewritten
  });

  test('a folder the image already configures is not written again; the cache still has it', () => {
    const root = glibcRoot('/opt/nv\ninclude /etc/ld.so.conf.d/*.conf\n');
    expect(hook(['update-ldcache', '--root', root, '--folder', '/opt/nv']).status).toBe(0);
    expect(existsSync(join(root, 'etc/ld.so.conf.d'))).toBe(false);
    expect(cacheOf(root)).toContain('=> /opt/nv/libz.so.1');
  });

  test('without a conf.d include the folder goes to ldconfig only', () => {
    const root = glibcRoot('# nothing\n');
    expect(hook(['update-ldcache', '--root', root, '--folder', '/opt/nv']).status).toBe(0);
    expect(existsSync(join(root, 'etc/ld.so.conf.d'))).toBe(false);
    expect(cacheOf(root)).toContain('=> /opt/nv/libz.so.1');
  });

  test('--link replaces a symlink, leaves anything else alone', () => {
    const root = glibcRoot();
    symlinkSync('old-target', join(root, 'opt/nv/a.so'));
    writeFileSync(join(root, 'opt/nv/b.so'), 'image file');
    const r = hook(['update-ldcache', '--root', root, '--link', 'new::/opt/nv/a.so', '--link', 'new::/opt/nv/b.so']);
    expect(r.status).toBe(0);
    expect(readlinkSync(join(root, 'opt/nv/a.so'))).toBe('new');
    expect(readFileSync(join(root, 'opt/nv/b.so'), 'utf8')).toBe('image file');
    expect(readdirSync(join(root, 'opt/nv')).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  test('a link whose parent does not exist is an error, on one line', () => {
    const r = hook(['update-ldcache', '--root', glibcRoot(), '--link', 'x::/no/such/dir/x.so']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^nvidia-runtime-hook: --link: [^\n]*No such file or directory\n$/);
  });

  describe('symlinks in the rootfs never lead outside it', () => {
    let outside: string;
    beforeEach(() => {
      outside = join(dir, `${binary}-outside${n++}`);
      mkdirSync(join(outside, 'ld.so.conf.d'), { recursive: true });
      writeFileSync(join(outside, 'ld.so.conf'), 'include /etc/ld.so.conf.d/*.conf\n');
      writeFileSync(join(outside, 'ld.so.cache'), 'host cache');
    });

    test('/etc -> an absolute host directory', () => {
      const root = join(dir, `${binary}-evil${n++}`);
      mkdirSync(join(root, 'opt/nv'), { recursive: true });
      symlinkSync(outside, join(root, 'etc'));
      const before = tree(outside);
      const r = hook(['update-ldcache', '--root', root, '--folder', '/opt/nv', '--link', 'x::/etc/ld.so.conf.d/x']);
      // Resolved inside the rootfs, /etc is dangling: no glibc there, nothing to do.
      expect(r).toEqual({ status: 0, stdout: '', stderr: '' });
      expect(tree(outside)).toEqual(before);
    });

    test('/etc -> ../../.. (relative climb)', () => {
      const root = join(dir, `${binary}-evil${n++}`);
      mkdirSync(join(root, 'opt/nv'), { recursive: true });
      symlinkSync(`../../../../../../../..${outside}`, join(root, 'etc'));
      const before = tree(outside);
      hook(['update-ldcache', '--root', root, '--folder', '/opt/nv']);
      expect(tree(outside)).toEqual(before);
    });

    test('/etc/ld.so.conf.d -> a host directory', () => {
      const root = glibcRoot();
      symlinkSync(join(outside, 'ld.so.conf.d'), join(root, 'etc/ld.so.conf.d'));
      const before = tree(outside);
      const r = hook(['update-ldcache', '--root', root, '--folder', '/opt/nv']);
      expect(tree(outside)).toEqual(before);
      expect(r.status).toBe(1); // the dangling (in-root) conf.d cannot take the file: fail, on one line
      expect(r.stderr.split('\n')).toHaveLength(2);
    });

    test('usr/lib/x86_64-linux-gnu -> / keeps links and ldconfig in the rootfs', () => {
      const root = glibcRoot();
      mkdirSync(join(root, 'usr/lib'), { recursive: true });
      symlinkSync('/', join(root, 'usr/lib/x86_64-linux-gnu'));
      const name = `libcuda-${binary}-${n++}.so`;
      const r = hook([
        'update-ldcache', '--root', root, '--folder', '/usr/lib/x86_64-linux-gnu',
        '--link', `libcuda.so.1::/usr/lib/x86_64-linux-gnu/${name}`,
      ]);
      expect(r.status).toBe(0);
      expect(existsSync(`/${name}`)).toBe(false);
      expect(lstatSync(join(root, name)).isSymbolicLink()).toBe(true);
    });
  });

  test('a rootfs without /etc/ld.so.cache or /etc/ld.so.conf (busybox, musl): nothing written, exit 0', () => {
    const root = join(dir, `${binary}-busybox${n++}`);
    mkdirSync(join(root, 'bin'), { recursive: true });
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'bin/busybox'), 'x');
    const before = tree(root);
    const r = hook(['update-ldcache', '--root', root, '--folder', '/usr/lib/nv', '--link', 'a::/bin/b']);
    expect(r).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(tree(root)).toEqual(before);
  });

  test.each(['LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT'])('refuses to run with %s set', (name) => {
    const root = glibcRoot();
    const before = tree(root);
    const r = hook(['update-ldcache', '--root', root, '--folder', '/opt/nv'], { [name]: '/nonexistent.so' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`nvidia-runtime-hook: environment: ${name} is set`);
    expect(tree(root)).toEqual(before);
  });

  test('unknown subcommands warn and exit 0', () => {
    const r = hook(['enable-cuda-compat', '--root', '/nonexistent']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^nvidia-runtime-hook: warning: unknown subcommand 'enable-cuda-compat'/);
  });

  test('a dynamically linked ldconfig is refused before the rootfs is touched', () => {
    const root = glibcRoot();
    const before = tree(root);
    const r = hook(['update-ldcache', '--root', root, '--folder', '/opt/nv', '--link', 'a::/opt/nv/a', '--ldconfig', '/bin/true']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^nvidia-runtime-hook: ldconfig: \/bin\/true is dynamically linked: .*\n$/);
    expect(tree(root)).toEqual(before);
  });

  test.each([
    [['update-ldcache', '--root', 'relative/root'], /--root: an absolute host path/],
    [['update-ldcache', '--root', '/r', '--folder', 'lib'], /--folder: 'lib' is not an absolute path/],
    [['update-ldcache', '--root', '/r', '--link', 'nolink'], /--link: 'nolink' is not TARGET::\/absolute\/link/],
    [['update-ldcache', '--root', '/r', '--bogus', 'x'], /unknown option '--bogus'/],
  ])('bad arguments: %j', (args, message) => {
    const r = hook(args);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.split('\n')).toHaveLength(2);
  });
});
