/** The createContainer hook (native/hook/), built with native/Makefile.dev into build/dev/. Needs root
 *  (unshare, chroot), as the hook itself does. Every case runs against both resolvers: openat2 and the
 *  fallback walk (nvidia-runtime-hook-walk, built with -DINROOT_FORCE_WALK). */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync,
  statSync, symlinkSync, truncateSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT, tempDir } from '../../helpers/dist.js';
import { tree } from '../../helpers/tree.js';

const LIBZ = realpathSync('/usr/lib/x86_64-linux-gnu/libz.so.1'); // any real shared library with a SONAME
const CONF = 'etc/ld.so.conf.d/00-nvidia-runtime.conf';

let dir: string;
beforeAll(() => {
  const targets = ['nvidia-runtime-hook', 'nvidia-runtime-hook-walk', 'nvidia-runtime-hook-asan'].map((b) => `build/dev/${b}`);
  execFileSync('make', ['-s', '-f', 'native/Makefile.dev', ...targets], { cwd: PACKAGE_ROOT });
  dir = realpathSync(tempDir('hook'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));


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

  test('parallel hooks over one shared rootfs all succeed (ldconfig\'s fixed temp name is serialised per rootfs)', async () => {
    const root = glibcRoot();
    const runs = await Promise.all(Array.from({ length: 12 }, () => new Promise<{ code: number | null; err: string }>((resolve) => {
      const child = spawn(HOOK, ['update-ldcache', '--root', root, '--folder', '/opt/nv'], { env: {} });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.stdin.end('{"ociVersion":"1.0.2","id":"c","status":"creating","pid":1,"bundle":"/b"}');
      child.on('close', (code) => resolve({ code, err }));
    })));
    expect(runs).toEqual(Array.from({ length: 12 }, () => ({ code: 0, err: '' })));
    expect(existsSync(join(root, 'etc/ld.so.cache~'))).toBe(false);
    expect(cacheOf(root)).toMatch(/libz\.so\.1 \(libc6,x86-64\) => \/opt\/nv\/libz\.so\.1\n/);
  });

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

  test('a link whose parents do not exist: they are created (0755), one component at a time', () => {
    const root = glibcRoot();
    const r = hook(['update-ldcache', '--root', root, '--link', 'x::/no/such/dir/x.so']);
    expect(r).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(readlinkSync(join(root, 'no/such/dir/x.so'))).toBe('x');
    for (const d of ['no', 'no/such', 'no/such/dir']) expect(statSync(join(root, d)).mode & 0o7777).toBe(0o755);
  });

  test('a link under a file: an error naming that component, on one line', () => {
    const root = glibcRoot();
    writeFileSync(join(root, 'opt/nv/file'), 'image file');
    const before = tree(root);
    const r = hook(['update-ldcache', '--root', root, '--link', 'x::/opt/nv/file/sub/x.so']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^nvidia-runtime-hook: --link: \/opt\/nv\/file in the rootfs: Not a directory[^\n]*\n$/);
    expect(tree(root)).toEqual(before);
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
      // Resolved inside the rootfs, /etc is dangling: no glibc there (no ldconfig), and the link's parent cannot be
      // made there: one line, nothing written anywhere.
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^nvidia-runtime-hook: --link: \/etc in the rootfs is a symbolic link to nothing[^\n]*\n$/);
      expect(tree(outside)).toEqual(before);
      expect(hook(['update-ldcache', '--root', root, '--folder', '/opt/nv'])).toEqual({ status: 0, stdout: '', stderr: '' });
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

  test('a rootfs without /etc/ld.so.cache or /etc/ld.so.conf (busybox, musl): the links only, no ldconfig, exit 0', () => {
    const root = join(dir, `${binary}-busybox${n++}`);
    mkdirSync(join(root, 'bin'), { recursive: true });
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'bin/busybox'), 'x');
    const before = tree(root);
    expect(hook(['update-ldcache', '--root', root, '--folder', '/usr/lib/nv'])).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(tree(root)).toEqual(before);
    const r = hook(['update-ldcache', '--root', root, '--folder', '/usr/lib/nv', '--link', 'a::/bin/b', '--ldconfig', '/bin/true']);
    expect(r).toEqual({ status: 0, stdout: '', stderr: '' }); // ldconfig is not even looked at
    expect(readlinkSync(join(root, 'bin/b'))).toBe('a');
    expect(readdirSync(join(root, 'etc'))).toEqual([]);
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

/** JSON text with every non-ASCII character as \\uXXXX (surrogate pairs for astral ones) and '/' as '\\/'. */
function escapedJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/\//g, '\\/')
    .replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `update-ldcache ARGS` with input on stdin. Sanitizer findings abort (a signal); leaks do not matter here. */
function runWith(binary: string, args: string[], input: string | Buffer) {
  const env = { ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1' };
  const r = spawnSync(join(PACKAGE_ROOT, 'build', 'dev', binary), ['update-ldcache', ...args], { input, env });
  return { status: r.status, signal: r.signal, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Without --root the rootfs comes from the OCI state on stdin: bundle (or bundlePath) -> config.json -> root.path.
 *  Also run against the ASan+UBSan build, which the fuzz loop below uses. */
describe.each(['nvidia-runtime-hook', 'nvidia-runtime-hook-asan'])('%s: rootfs from the OCI state', (binary) => {
  const run = (args: string[], input: string | Buffer) => runWith(binary, args, input);
  const state = (extra: Record<string, unknown>) =>
    JSON.stringify({ ociVersion: '1.0.2', id: 'c', status: 'creating', pid: 1, ...extra, annotations: { 'a/b': 'x' } });
  let n = 0;
  /** A bundle whose rootfs (at rootRel inside it) is a glibc-style root with a library in /opt/nv. */
  function bundle(config: unknown = { ociVersion: '1.0.2', root: { path: 'rootfs', readonly: false } }, name = 'bundle'): string {
    const b = join(dir, `${binary}-${name}${n++}`);
    const root = join(b, 'rootfs');
    mkdirSync(join(root, 'etc'), { recursive: true });
    mkdirSync(join(root, 'opt/nv'), { recursive: true });
    writeFileSync(join(root, 'etc/ld.so.conf'), 'include /etc/ld.so.conf.d/*.conf\n');
    copyFileSync(LIBZ, join(root, 'opt/nv/libz.so.1.2.3'));
    writeFileSync(join(b, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
    return b;
  }
  const ARGS = ['--folder', '/opt/nv', '--link', 'libz.so.1::/opt/nv/libz.so'];
  const expectDone = (root: string) => {
    expect(readlinkSync(join(root, 'opt/nv/libz.so'))).toBe('libz.so.1');
    expect(cacheOf(root)).toContain('=> /opt/nv/libz.so.1');
  };

  test('bundle + relative root.path', () => {
    const b = bundle();
    expect(run(ARGS, state({ bundle: b }))).toEqual({ status: 0, signal: null, stdout: '', stderr: '' });
    expectDone(join(b, 'rootfs'));
  });

  test('absolute root.path, legacy bundlePath', () => {
    const b = bundle();
    writeFileSync(join(b, 'config.json'), JSON.stringify({ root: { path: join(b, 'rootfs') } }));
    expect(run(ARGS, state({ bundlePath: b })).status).toBe(0);
    expectDone(join(b, 'rootfs'));
  });

  test('escapes in both documents: \\" \\\\ \\/ \\uXXXX and a surrogate pair', () => {
    const b = bundle(undefined, 'q"uo\\te-\u00e9-\u{1f600}-');
    const odd = join(b, 'r\u00f6\u{1f680}t"\\fs');
    mkdirSync(odd);
    writeFileSync(join(b, 'config.json'), escapedJson({ root: { path: 'r\u00f6\u{1f680}t"\\fs' }, process: { args: ['\u2603'] } }));
    const input = escapedJson({ bundle: b, id: 'x' });
    expect(input).toContain('\\ud83d\\ude00');
    expect(input).toContain('\\/');
    // The odd rootfs has no ld.so.conf: found, then only the link is made there (no ldconfig, exit 0); the plain
    // rootfs untouched.
    expect(run(ARGS, input)).toEqual({ status: 0, signal: null, stdout: '', stderr: '' });
    expect(readdirSync(odd)).toEqual(['opt']);
    expect(readlinkSync(join(odd, 'opt/nv/libz.so'))).toBe('libz.so.1');
    expect(existsSync(join(b, 'rootfs/opt/nv/libz.so'))).toBe(false);
    // And the same bundle with root.path escaped pointing at the glibc rootfs does the work.
    writeFileSync(join(b, 'config.json'), '{"root":{"path":"\\u0072o\\u006ftfs"}}');
    expect(run(ARGS, input)).toMatchObject({ status: 0, stderr: '' });
    expectDone(join(b, 'rootfs'));
  });

  test('--root wins: the state is then not even parsed', () => {
    const b = bundle();
    expect(run(['--root', join(b, 'rootfs'), ...ARGS], 'not json').status).toBe(0);
    expectDone(join(b, 'rootfs'));
  });

  const DEEP = `{"a":${'['.repeat(100000)}`;
  test.each([
    ['', /^nvidia-runtime-hook: --root: not given, and no container state on stdin/],
    ['{"id":"c"}', /^nvidia-runtime-hook: container state on stdin: no "bundle"/],
    ['{"bundle":"relative/b"}', /container state on stdin: bundle 'relative\/b' is not an absolute path/],
    ['{"bundle":"/nonexistent-bundle"}', /^nvidia-runtime-hook: bundle: \/nonexistent-bundle: No such file/],
    ['{"bundle":"/no\\nsuch"}', /^nvidia-runtime-hook: bundle: \/no\?such: No such file/], // still one line
    ['{"bundle":"/b",}', /container state on stdin: at byte 15: expected a member name/],
    ['{"bundle":"/b"', /container state on stdin: at byte 14: unexpected end/],
    ['{"bundle":"/b"} x', /unexpected data after the document/],
    ['[{"bundle":"/b"}]', /the document is not a JSON object/],
    ['null', /the document is not a JSON object/],
    ['{"bundle":42}', /'bundle' is not a string/],
    ['{"bundle":"/b","BUNDLE":"/c"}', /member 'bundle' appears twice/],
    ['{"bundle":"/b\\u0000x"}', /'bundle' has an embedded NUL/],
    ['{"bundle":"/b\\ud800"}', /'bundle' has a lone UTF-16 surrogate/],
    ['{"bundle":"/b\\x"}', /invalid escape '\\x'/],
    ['{"bundle":"/b\\u12"}', /\\u needs 4 hex digits/],
    ['{"bundle":"/b\tx"}', /control character 0x09 in a string/],
    ['{"bundle":"/b","n":01}', /expected ',' or '}'/],
    ['{"bundle":"/b","n":-}', /invalid number/],
    ['{"bundle":"/b","n":1.}', /invalid number/],
    ['{"bundle":"/b","n":nul}', /invalid literal/],
    ['{"bundle":"/b","n":[1,]}', /unexpected '\]'/],
    [DEEP, /nested deeper than 512 levels/],
    [Buffer.from('{"bundle":"/b\xff"}', 'latin1'), /'bundle' is not valid UTF-8/],
    [Buffer.from('{"bundle":"/b\x00"}', 'latin1'), /control character 0x00/],
  ])('bad state %#: exit 1, one line', (input, message) => {
    const r = run(ARGS, input);
    expect(r).toMatchObject({ status: 1, signal: null, stdout: '' });
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^nvidia-runtime-hook: [^\n]*\n$/);
  });

  test('invalid UTF-8 elsewhere in the state is tolerated, as Go tolerates it', () => {
    const b = bundle();
    const input = Buffer.concat([Buffer.from(`{"bundle":${JSON.stringify(b)},"x":"`), Buffer.from([0xff, 0xc0]), Buffer.from('"}')]);
    expect(run(ARGS, input).status).toBe(0);
  });

  test.each([
    ['{"root":{"path":"rootfs"}', /config\.json: at byte 25: unexpected end of the document$/m],
    ['{"root":"rootfs"}', /config\.json: at byte 8: 'root' is not an object/],
    ['{"root":{"path":["rootfs"]}}', /'root\.path' is not a string/],
    ['{"root":{"path":"rootfs","Path":"x"}}', /member 'root\.path' appears twice/],
    ['{"root":{"path":"a"},"root":{"path":"rootfs"}}', /member 'root' appears twice/],
    ['{"root":{"path":""}}', /config\.json: no root\.path/],
    ['{"root":{"readonly":true}}', /config\.json: no root\.path/],
    ['{"root":null}', /config\.json: no root\.path/],
    ['{"root":{"path":"../x/rootfs"}}', /root\.path '\.\.\/x\/rootfs' has a '\.\.' component/],
    ['{"root":{"path":"rootfs/.."}}', /has a '\.\.' component/],
    ['{"root":{"path":"nope"}}', /^nvidia-runtime-hook: root\.path: nope \(from .*config\.json\): No such file/],
    ['{"root":{"path":"rootfs\\u0000"}}', /'root\.path' has an embedded NUL/],
  ])('bad config.json %#: exit 1, one line, rootfs untouched', (config, message) => {
    const b = bundle(config);
    const before = tree(b);
    const r = run(ARGS, state({ bundle: b }));
    expect(r).toMatchObject({ status: 1, signal: null, stdout: '' });
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^nvidia-runtime-hook: [^\n]*\n$/);
    expect(tree(b)).toEqual(before);
  });

  test('root.path "rootfs/./" and dotted names like "..x" are fine', () => {
    const b = bundle();
    mkdirSync(join(b, '..x'));
    writeFileSync(join(b, 'config.json'), '{"root":{"path":"..x/../rootfs"}}');
    expect(run(ARGS, state({ bundle: b })).stderr).toMatch(/has a '\.\.' component/);
    writeFileSync(join(b, 'config.json'), '{"root":{"path":"./rootfs/./"}}');
    expect(run(ARGS, state({ bundle: b })).status).toBe(0);
    expectDone(join(b, 'rootfs'));
  });

  test('a symlinked, non-regular or oversized config.json is refused', () => {
    const real = bundle();
    const b = bundle();
    rmSync(join(b, 'config.json'));
    symlinkSync(join(real, 'config.json'), join(b, 'config.json'));
    let r = run(ARGS, state({ bundle: b }));
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`nvidia-runtime-hook: ${b}/config.json: is a symbolic link (refused)\n`);
    rmSync(join(b, 'config.json'));
    mkdirSync(join(b, 'config.json'));
    r = run(ARGS, state({ bundle: b }));
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`nvidia-runtime-hook: ${b}/config.json: not a regular file\n`);
    rmSync(join(b, 'config.json'), { recursive: true });
    writeFileSync(join(b, 'config.json'), '');
    truncateSync(join(b, 'config.json'), (32 << 20) + 1); // sparse: cheap
    r = run(ARGS, state({ bundle: b }));
    expect(r.stderr).toBe(`nvidia-runtime-hook: ${b}/config.json: larger than 32 MiB\n`);
    expect(existsSync(join(b, 'rootfs/opt/nv/libz.so'))).toBe(false);
  });

});

describe('JSON reader fuzz (ASan+UBSan build)', () => {
  /** Truncated and mutated documents (seeded, so a failure reproduces) never crash the reader: exit 0 or 1,
   *  no signal, no sanitizer report, and a failure is one line. The rootfs has no ld.so.conf, so a document
   *  that survives mutation ends in the "not glibc" exit 0 without running ldconfig. */
  test('400 truncated/mutated state and config.json documents', () => {
    const run = (args: string[], input: string | Buffer) => runWith('nvidia-runtime-hook-asan', args, input);
    const b = join(dir, 'fuzz');
    mkdirSync(join(b, 'rootfs/etc'), { recursive: true });
    const goodState = escapedJson({
      ociVersion: '1.0.2', id: 'c\u00e9', status: 'creating', pid: 42, bundle: b,
      annotations: { 'x/y': 'a\\"\u{1f600}', n: [1, -2.5e-3, true, false, null, { z: {} }] },
    });
    const goodConfig = escapedJson({
      ociVersion: '1.0.2', process: { args: ['sh', '-c', 'echo "\u2603"'], env: ['A=1'], user: { uid: 0 } },
      root: { path: 'rootfs', readonly: true }, mounts: [{ destination: '/proc', options: ['nosuid'] }],
    });
    let seed = 12345;
    const rand = (k: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % k;
    };
    const TOKENS = ['"', '\\', '\\u', '\\ud800', '\\udc00', '{', '}', '[', ']', ',', ':', '\x00', 'null', '-', '1e', '\u00e9'];
    const mutate = (doc: string, i: number): Buffer => {
      const buf = Buffer.from(doc);
      if (i % 4 === 0) return buf.subarray(0, rand(buf.length)); // truncated
      const at = rand(buf.length);
      switch (i % 4) {
        case 1: { // a byte replaced (sometimes by a byte >= 0x80)
          const out = Buffer.from(buf);
          out[at] = rand(2) ? rand(256) : buf[rand(buf.length)]!;
          return out;
        }
        case 2: // a token inserted
          return Buffer.concat([buf.subarray(0, at), Buffer.from(TOKENS[rand(TOKENS.length)]!), buf.subarray(at)]);
        default: // a span deleted
          return Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1 + rand(8))]);
      }
    };
    const seen = { 0: 0, 1: 0 };
    for (let i = 0; i < 400; i++) {
      const onState = i % 2 === 0;
      writeFileSync(join(b, 'config.json'), onState ? goodConfig : mutate(goodConfig, i >> 1));
      const r = run([], onState ? mutate(goodState, i >> 1) : goodState);
      const ok = r.signal === null && (r.status === 0 || r.status === 1) && !/Sanitizer|runtime error/.test(r.stderr) &&
        (r.status === 0 ? r.stderr === '' : /^nvidia-runtime-hook: [^\n]*\n$/.test(r.stderr));
      if (!ok) throw new Error(`case ${i}: ${JSON.stringify(r)}`);
      seen[r.status as 0 | 1]++;
    }
    expect(seen[1]).toBeGreaterThan(200); // most mutations are caught...
    expect(seen[0]).toBeGreaterThan(10); // ...and harmless ones (inside skipped strings) still pass
  }, 120000);
});
