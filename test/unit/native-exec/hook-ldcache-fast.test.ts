/** nvidia-runtime-hook update-ldcache's ld.so.cache fast path (native/hook/ldcache_fast.c): for a table of rootfs
 *  shapes, the hook runs on two copies of one rootfs, once with the fast path and once with --ldconfig-only, and the
 *  results must be the same: `ldconfig -p -C <cache>` (the host's), the soname links of the folders, and what the
 *  loader resolves (test/fixtures/dlopen-probe, chrooted). Which path ran is read from the NVIDIA_RUNTIME_HOOK_DEBUG=1
 *  marker line. Cases the fast path must not take fall back (and still match). Hostile caches (seeded truncations
 *  and mutations, 500+) go through the ASan+UBSan build: exit 0, never a signal or a sanitizer report. Symlinks to
 *  host paths at the lib dir, the cache and a soname never lead to a write outside (host sentinel unchanged).
 *  Needs root, as the hook does. */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT, tempDir } from '../../helpers/dist.js';
import { makeGlibcRootfs } from '../../helpers/images.js';
import { tree } from '../../helpers/tree.js';

const LIB = 'usr/lib/x86_64-linux-gnu';
const DEV = join(PACKAGE_ROOT, 'build', 'dev');
const SAN = { ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1' };

let dir: string;
let template: string;
let mock: string; // dist/bin/nvidia-ctk mock-driver --gpus 2 --graphics: x86-64 and i386 driver libraries
let n = 0;
const lib = (soname: string, which = 1, extra: string[] = []): string => {
  const out = join(dir, `lib-${n++}.so`);
  execFileSync('cc', ['-shared', '-fPIC', `-DWHICH=${which}`, `-Wl,-soname,${soname}`, ...extra, '-o', out, join(dir, 'lib.c')]);
  return out;
};
beforeAll(async () => {
  execFileSync('make', ['-s', '-f', 'native/Makefile.dev', 'build/dev/nvidia-runtime-hook',
    'build/dev/nvidia-runtime-hook-walk', 'build/dev/nvidia-runtime-hook-asan'], { cwd: PACKAGE_ROOT });
  dir = realpathSync(tempDir('hook-ldfast'));
  writeFileSync(join(dir, 'lib.c'), 'int which(void) { return WHICH; }\n');
  mock = join(dir, 'mock');
  execFileSync(join(PACKAGE_ROOT, 'dist/bin/nvidia-ctk'), ['mock-driver', '--root', mock, '--gpus', '2', '--graphics']);
  template = await makeGlibcRootfs(join(dir, 'template'));
  // An image library in the injected folder, cached by the image's ldconfig (as real images have).
  mkdirSync(join(template, LIB), { recursive: true });
  cpSync(lib('libimg.so.3'), join(template, LIB, 'libimg.so.3.1.0'));
  execFileSync('ldconfig', ['-r', template]);
}, 120000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hashOf = (root: string) => createHash('sha256').update(JSON.stringify(tree(root))).digest('hex');
const listing = (root: string) =>
  execFileSync('/sbin/ldconfig', ['-p', '-C', join(root, 'etc/ld.so.cache')]).toString().split('\n').slice(1).join('\n');
const links = (root: string, folder: string) => {
  const out: Record<string, string> = {};
  let names: string[] = [];
  try { names = readdirSync(join(root, folder)); } catch { return out; }
  for (const name of names) if (lstatSync(join(root, folder, name)).isSymbolicLink()) out[name] = readlinkSync(join(root, folder, name));
  return out;
};
const probe = (root: string, name: string) =>
  spawnSync('chroot', [root, '/usr/local/bin/dlopen-probe', name]).stdout.toString();

function hook(binary: string, root: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(join(DEV, binary), ['update-ldcache', '--root', root, ...args], {
    input: '', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NVIDIA_RUNTIME_HOOK_DEBUG: '1', ...env },
  });
}

interface Shape {
  name: string;
  fast: boolean;
  /** A fallback whose ldconfig run leaves a cache the fast path takes on the next run. */
  again?: boolean;
  /** The fallback's reason, as the debug line gives it. */
  why?: RegExp;
  folders: string[];
  links?: string[];
  /** More hook arguments (both runs). */
  args?: string[];
  probes: string[];
  /** Makes the rootfs' shape (after the template is copied). */
  setup: (root: string) => void;
}
const inject = (root: string, folder: string, file: string, soname: string, which = 1) => {
  mkdirSync(join(root, folder), { recursive: true });
  cpSync(lib(soname, which), join(root, folder, file));
};
const driver = (root: string) => {
  inject(root, LIB, 'libcuda.so.550.54.15', 'libcuda.so.1');
  inject(root, LIB, 'libnvidia-ml.so.550.54.15', 'libnvidia-ml.so.1');
};

const SHAPES: Shape[] = [
  { name: 'driver libraries in a configured folder, with --link libcuda.so', fast: true, folders: [`/${LIB}`],
    links: [`libcuda.so.1::/${LIB}/libcuda.so`], probes: ['libcuda.so.1', 'libnvidia-ml.so.1', 'libimg.so.3'], setup: driver },
  { name: 'both multiarch folders, the i386 one absent', fast: true, folders: [`/${LIB}`, '/usr/lib/i386-linux-gnu'],
    probes: ['libcuda.so.1'], setup: driver },
  { name: 'a folder the image does not configure (conf.d file)', fast: true, folders: ['/opt/nvidia/lib'],
    probes: ['libcuda.so.1'], setup: (r) => inject(r, 'opt/nvidia/lib', 'libcuda.so.550.54.15', 'libcuda.so.1') },
  { name: 'ld.so.conf without conf.d (folder on the command line)', fast: true, folders: ['/opt/nvidia/lib'],
    probes: ['libcuda.so.1'], setup: (r) => {
      writeFileSync(join(r, 'etc/ld.so.conf'), '/lib/x86_64-linux-gnu\n');
      execFileSync('ldconfig', ['-r', r]);
      inject(r, 'opt/nvidia/lib', 'libcuda.so.550.54.15', 'libcuda.so.1');
    } },
  { name: 'two versions of one soname, a stale soname link: the highest wins', fast: true, folders: [`/${LIB}`],
    probes: ['libcuda.so.1'], setup: (r) => {
      inject(r, LIB, 'libcuda.so.535.104.5', 'libcuda.so.1', 1);
      inject(r, LIB, 'libcuda.so.550.54.15', 'libcuda.so.1', 2);
      symlinkSync('libcuda.so.535.104.5', join(r, LIB, 'libcuda.so.1'));
    } },
  { name: 'a regular file named like the soname stays', fast: true, folders: [`/${LIB}`], probes: ['libfoo.so.2'],
    setup: (r) => { inject(r, LIB, 'libfoo.so.2', 'libfoo.so.2'); inject(r, LIB, 'libfoo.so.2.0.1', 'libfoo.so.2'); } },
  { name: 'a library removed from the image folder since its cache was built', fast: true, folders: [`/${LIB}`],
    probes: ['libcuda.so.1', 'libimg.so.3'], setup: (r) => {
      rmSync(join(r, LIB, 'libimg.so.3.1.0')); rmSync(join(r, LIB, 'libimg.so.3')); driver(r);
    } },
  { name: "the mock driver's x86-64 and i386 libraries with their links", fast: true,
    folders: [`/${LIB}`, '/usr/lib/i386-linux-gnu'], probes: ['libcuda.so.1', 'libnvidia-ml.so.1', 'libGLX_nvidia.so.0'],
    setup: (r) => {
      for (const f of [LIB, 'usr/lib/i386-linux-gnu']) cpSync(join(mock, f), join(r, f), { recursive: true, verbatimSymlinks: true });
    } },
  { name: "the mock driver's libraries without their soname links", fast: true,
    folders: [`/${LIB}`, '/usr/lib/i386-linux-gnu'], probes: ['libcuda.so.1', 'libEGL_nvidia.so.0'],
    setup: (r) => {
      for (const f of [LIB, 'usr/lib/i386-linux-gnu']) {
        cpSync(join(mock, f), join(r, f), { recursive: true, verbatimSymlinks: true });
        for (const name of readdirSync(join(r, f))) if (lstatSync(join(r, f, name)).isSymbolicLink()) rmSync(join(r, f, name));
      }
    } },
  { name: 'a linker script and a non-ELF file with library names (skipped, as by ldconfig)', fast: true,
    folders: [`/${LIB}`], probes: ['libcuda.so.1'], setup: (r) => {
      driver(r);
      writeFileSync(join(r, LIB, 'libc.so'), '/* GNU ld script\n   Use the shared library. */\nOUTPUT_FORMAT(elf64-x86-64)\nGROUP ( /lib/x86_64-linux-gnu/libc.so.6 )\n');
      writeFileSync(join(r, LIB, 'libnotes.so.1.txt'), 'not a library, but named like one: ldconfig skips it with a warning\n');
    } },
  { name: '--cuda-compat, the image has no compat libraries', fast: true, folders: [`/${LIB}`], args: ['--cuda-compat', '550.54.15'],
    probes: ['libcuda.so.1'], setup: driver },
  { name: '--cuda-compat, compat libraries older than the driver', fast: true, folders: [`/${LIB}`], args: ['--cuda-compat', '550.54.15'],
    probes: ['libcuda.so.1'], setup: (r) => { driver(r); inject(r, 'usr/local/cuda/compat', 'libcuda.so.535.104.5', 'libcuda.so.1', 2); } },
  // Fallbacks.
  { name: '--cuda-compat, compat libraries newer than the driver', fast: false, why: /compat libraries are newer/, folders: [`/${LIB}`],
    args: ['--cuda-compat', '550.54.15'], probes: ['libcuda.so.1'],
    setup: (r) => { driver(r); inject(r, 'usr/local/cuda/compat', 'libcuda.so.999.1.2', 'libcuda.so.1', 2); } },
  { name: 'no cache', fast: false, why: /etc\/ld\.so\.cache: No such file/, again: true, folders: [`/${LIB}`], probes: ['libcuda.so.1'],
    setup: (r) => { rmSync(join(r, 'etc/ld.so.cache')); driver(r); } },
  { name: 'an old-format (compat) cache', fast: false, why: /not in the new format only/, again: true, folders: [`/${LIB}`], probes: ['libcuda.so.1'],
    setup: (r) => { execFileSync('ldconfig', ['-r', r, '-c', 'compat']); driver(r); } },
  { name: 'a glibc-hwcaps subdirectory', fast: false, why: /glibc-hwcaps: a hwcaps subdirectory/, folders: [`/${LIB}`], probes: ['libcuda.so.1'],
    setup: (r) => { driver(r); inject(r, `${LIB}/glibc-hwcaps/x86-64-v3`, 'libimg.so.3.1.0', 'libimg.so.3'); } },
  { name: 'a library link that leaves the folder', fast: false, why: /libother\.so\.2: a symbolic link that does not lead to a file in the folder/, folders: [`/${LIB}`], probes: ['libcuda.so.1'],
    setup: (r) => { driver(r); symlinkSync('/lib/x86_64-linux-gnu/libdl.so.2', join(r, LIB, 'libother.so.2')); } },
  { name: 'a library that needs x86-64-v2 (ISA level note)', fast: false, why: /libv2\.so\.1\.0: has an x86 ISA level note/,
    folders: [`/${LIB}`], probes: ['libcuda.so.1'], setup: (r) => {
      driver(r); cpSync(lib('libv2.so.1', 1, ['-Wl,-z,x86-64-v2']), join(r, LIB, 'libv2.so.1.0'));
    } },
  { name: 'a CUDA compat conf', fast: false, why: /00-compat-\*\.conf/, folders: [`/${LIB}`], probes: ['libcuda.so.1'],
    setup: (r) => { driver(r); writeFileSync(join(r, 'etc/ld.so.conf.d/00-compat-999.conf'), '/usr/local/cuda/compat\n'); } },
  { name: 'merged /usr: the folder reached through a symlink', fast: false, why: /reached through a symbolic link/, folders: ['/lib/x86_64-linux-gnu'],
    probes: ['libcuda.so.1'], setup: (r) => {
      rmSync(join(r, 'lib/x86_64-linux-gnu'), { recursive: true });
      symlinkSync(`../${LIB}`, join(r, 'lib/x86_64-linux-gnu'));
      for (const f of ['libc.so.6', 'libdl.so.2']) cpSync(`/lib/x86_64-linux-gnu/${f}`, join(r, LIB, f));
      execFileSync('ldconfig', ['-r', r]);
      driver(r);
    } },
  { name: 'one soname in two scanned directories (their order decides)', fast: false, why: /libtie\.so\.1 is in several directories/, folders: [`/${LIB}`],
    probes: ['libtie.so.1', 'libcuda.so.1'], setup: (r) => {
      inject(r, 'lib/x86_64-linux-gnu', 'libtie.so.1.0', 'libtie.so.1', 1);
      execFileSync('ldconfig', ['-r', r]);
      driver(r);
      inject(r, LIB, 'libtie.so.1.5', 'libtie.so.1', 2);
    } },
  { name: 'a cache written by another ldconfig', fast: false, why: /was written by 'ldconfig \(X/, again: true, folders: [`/${LIB}`], probes: ['libcuda.so.1'],
    setup: (r) => {
      const c = readFileSync(join(r, 'etc/ld.so.cache'));
      const at = c.indexOf('ldconfig (');
      c.write('X', at + 'ldconfig ('.length);
      writeFileSync(join(r, 'etc/ld.so.cache'), c);
      driver(r);
    } },
];

describe.each(['nvidia-runtime-hook', 'nvidia-runtime-hook-walk', 'nvidia-runtime-hook-asan'])('%s', (binary) => {
  const env = binary.endsWith('-asan') ? SAN : {};
  test.each(SHAPES)('$name', (shape) => {
    const base = join(dir, `${binary}-${shape.name.replace(/\W+/g, '-')}`);
    const fast = `${base}-fast`, slow = `${base}-ldconfig`;
    cpSync(template, fast, { recursive: true, verbatimSymlinks: true });
    shape.setup(fast);
    cpSync(fast, slow, { recursive: true, verbatimSymlinks: true });
    const args = [...shape.folders.flatMap((f) => ['--folder', f]), ...(shape.links ?? []).flatMap((l) => ['--link', l]), ...(shape.args ?? [])];
    for (let run = 0; run < 2; run++) { // the second run: a container restarted, links already there
      const a = hook(binary, fast, args, env);
      const b = hook(binary, slow, [...args, '--ldconfig-only'], env);
      const fastNow = shape.fast || (run === 1 && shape.again === true);
      expect([a.status, a.stderr.toString()]).toEqual([0, expect.stringContaining(fastNow ? 'ld.so.cache: fast path\n' : 'ld.so.cache: ldconfig (')]);
      expect(a.stderr.toString()).not.toMatch(/Sanitizer|runtime error/);
      if (run === 0 && shape.why) expect(a.stderr.toString()).toMatch(shape.why);
      expect([b.status, b.stderr.toString()]).toEqual([0, expect.stringContaining('ld.so.cache: ldconfig (forced)')]);
      expect(listing(fast)).toEqual(listing(slow));
      for (const f of shape.folders) expect(links(fast, f.slice(1))).toEqual(links(slow, f.slice(1)));
      for (const p of shape.probes) expect(probe(fast, p).replace(fast, '')).toEqual(probe(slow, p).replace(slow, ''));
    }
    expect(probe(fast, shape.probes[0])).toMatch(/: OK \(/);
    rmSync(fast, { recursive: true, force: true });
    rmSync(slow, { recursive: true, force: true });
  }, 60000);

  test('an image symlink at the lib dir, the cache or a soname to a host path: nothing outside is written', () => {
    const sentinel = join(dir, `${binary}-sentinel`);
    mkdirSync(sentinel, { recursive: true });
    writeFileSync(join(sentinel, 'ld.so.cache'), 'host file\n');
    writeFileSync(join(sentinel, 'victim'), 'host file\n');
    const before = hashOf(sentinel);
    for (const kind of ['cache', 'libdir', 'soname']) {
      const root = join(dir, `${binary}-escape-${kind}`);
      cpSync(template, root, { recursive: true, verbatimSymlinks: true });
      if (kind === 'cache') {
        rmSync(join(root, 'etc/ld.so.cache'));
        symlinkSync(join(sentinel, 'ld.so.cache'), join(root, 'etc/ld.so.cache'));
        driver(root);
      } else if (kind === 'libdir') {
        rmSync(join(root, LIB), { recursive: true });
        symlinkSync(sentinel, join(root, LIB));
      } else {
        driver(root);
        symlinkSync(join(sentinel, 'victim'), join(root, LIB, 'libcuda.so.1'));
      }
      const r = hook(binary, root, ['--folder', `/${LIB}`], env);
      expect(r.stderr.toString()).not.toMatch(/Sanitizer|runtime error|fast path/);
      expect([0, 1]).toContain(r.status);
      expect(hashOf(sentinel)).toBe(before);
      rmSync(root, { recursive: true, force: true });
    }
  }, 60000);
});

/** A small deterministic PRNG (mulberry32): the hostile cases are the same on every run. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('hostile caches (540 seeded cases, ASan+UBSan build): exit 0, a readable cache, no sanitizer report', () => {
  const root = join(dir, 'hostile');
  cpSync(template, root, { recursive: true, verbatimSymlinks: true });
  driver(root);
  const good = readFileSync(join(template, 'etc/ld.so.cache'));
  const rand = rng(12345);
  const u32 = (b: Buffer, at: number, v: number) => { if (at + 4 <= b.length) b.writeUInt32LE(v >>> 0, at); };
  const cases: Buffer[] = [];
  for (const len of [0, 1, 20, 47, 48, 60, 71, 72, good.length - 68, good.length - 1]) cases.push(good.subarray(0, len));
  const huge = Buffer.from(good); u32(huge, 20, 0xffffffff); cases.push(huge);
  const strs = Buffer.from(good); u32(strs, 24, 0x7fffffff); cases.push(strs);
  const key = Buffer.from(good); u32(key, 48 + 4, good.length + 100); cases.push(key);
  const value = Buffer.from(good); u32(value, 48 + 8, 0xfffffff0); cases.push(value);
  const ext = Buffer.from(good); u32(ext, 32, good.length - 2); cases.push(ext);
  const extCount = Buffer.from(good); u32(extCount, good.readUInt32LE(32) + 4, 0x10000000); cases.push(extCount);
  const noNul = Buffer.from(good); noNul.fill(0x41, good.readUInt32LE(24) > 0 ? 48 + 24 * good.readUInt32LE(20) : 48); cases.push(noNul);
  while (cases.length < 540) {
    const b = Buffer.from(good);
    const kind = rand();
    if (kind < 0.4) { // random byte flips
      for (let i = 0, k = 1 + Math.floor(rand() * 8); i < k; i++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      cases.push(b);
    } else if (kind < 0.7) { // a random u32 field of the header or an entry
      const at = rand() < 0.3 ? 20 + 4 * Math.floor(rand() * 7) : 48 + 4 * Math.floor(rand() * 6 * good.readUInt32LE(20));
      u32(b, at, rand() < 0.5 ? Math.floor(rand() * 2 ** 32) : Math.floor(rand() * (good.length + 64)));
      cases.push(b);
    } else { // truncated and flipped
      const t = Buffer.from(b.subarray(0, Math.floor(rand() * b.length)));
      if (t.length) t[Math.floor(rand() * t.length)] ^= 1 << Math.floor(rand() * 8);
      cases.push(t);
    }
  }
  let fast = 0;
  for (const c of cases) {
    writeFileSync(join(root, 'etc/ld.so.cache'), c);
    const r = hook('nvidia-runtime-hook-asan', root, ['--folder', `/${LIB}`], SAN);
    const err = r.stderr.toString();
    expect(err).not.toMatch(/Sanitizer|runtime error/);
    expect([r.signal, r.status]).toEqual([null, 0]);
    if (err.includes('fast path')) fast++;
    else expect(err).toContain('ld.so.cache: ldconfig (');
    listing(root); // whatever was written, the host's ldconfig reads it
    expect(probe(root, 'libcuda.so.1')).toMatch(/: OK \(/);
  }
  expect(fast).toBeLessThan(cases.length); // the mutations are mostly caught
  rmSync(root, { recursive: true, force: true });
}, 600000);
