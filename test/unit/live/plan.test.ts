/**
 * livePlan (src/live/plan.ts): ContainerEdits → the live applier's plan words. Examples of each word, the options
 * that are refused, and properties checked against a reference parser written here from the grammar at the top of
 * native/hook/apply.c (the C applier's own parse_plan): what the applier would read back is exactly what the edits
 * asked for.
 */
import fc from 'fast-check';
import { IPC_BIND, READ_ONLY_BIND, driverLinks, ldcacheHook, linksHook } from '../../../src/edits/build.js';
import type { ContainerEdits, DeviceNode, Mount } from '../../../src/edits/types.js';
import { encodePlan, livePlan, type LiveOptions } from '../../../src/live/plan.js';
import { thrown } from '../../helpers/errors.js';

const MKNOD: LiveOptions = { bindNodes: false, cgroupRules: true, nodes: true };
const node = (path: string, major: number, minor: number, more: Partial<DeviceNode> = {}): DeviceNode => ({ path, type: 'c', major, minor, ...more });
const mount = (hostPath: string, containerPath: string, options: string[], type: string | undefined = 'bind'): Mount => ({ hostPath, containerPath, options, ...(type !== undefined ? { type } : {}) });

/* ---- the reference parser: apply.c's grammar, independently ------------------------------------------------ */

type Flag = 'ro' | 'nosuid' | 'nodev' | 'noexec';
type Op =
  | { op: 'mknod'; type: 'c' | 'b'; major: number; minor: number; mode: number; path: string }
  | { op: 'bind'; flags: Flag[]; host: string; path: string }
  | { op: 'allow'; type: 'c' | 'b'; major: number; minor: number; access: string };
interface Parsed {
  ops: Op[];
  folders: string[];
  links: Array<[string, string]>;
  ldconfig?: string;
}

const KNOWN_FLAGS: readonly Flag[] = ['ro', 'nosuid', 'nodev', 'noexec'];

function cleanAbs(p: string, what: string): string {
  if (!p.startsWith('/') || p === '/') throw new Error(`${what} ${JSON.stringify(p)} is not absolute below /`);
  for (const c of p.slice(1).split('/')) if (c === '' || c === '.' || c === '..') throw new Error(`${what} ${JSON.stringify(p)} is not clean`);
  return p;
}

function uint(w: string, base: 8 | 10, max: number, what: string): number {
  if (!(base === 10 ? /^\d+$/ : /^[0-7]+$/).test(w)) throw new Error(`${what} ${JSON.stringify(w)} is not a number`);
  const v = Number.parseInt(w, base);
  if (v > max) throw new Error(`${what} ${v} > ${max}`);
  return v;
}

/** Words → operations, as parse_plan reads them (flags sorted by KNOWN_FLAGS order for comparison). */
function parsePlan(words: readonly string[]): Parsed {
  const out: Parsed = { ops: [], folders: [], links: [] };
  let i = 0;
  const next = (op: string): string => {
    if (i >= words.length) throw new Error(`${op}: missing a word at the end of the plan`);
    return words[i++]!;
  };
  while (i < words.length) {
    const verb = next('plan');
    switch (verb) {
      case 'folder':
        out.folders.push(cleanAbs(next(verb), 'folder'));
        break;
      case 'ldconfig':
        out.ldconfig = cleanAbs(next(verb), 'ldconfig');
        break;
      case 'link': {
        const target = next(verb);
        if (target === '' || target.includes('/')) throw new Error(`link target ${target} is not a file name`);
        out.links.push([target, cleanAbs(next(verb), 'link')]);
        break;
      }
      case 'mknod': {
        const t = next(verb);
        if (t !== 'c' && t !== 'b') throw new Error(`mknod type ${t}`);
        const major = uint(next(verb), 10, 4095, 'major');
        const minor = uint(next(verb), 10, 1048575, 'minor');
        const mode = uint(next(verb), 8, 0o777, 'mode');
        out.ops.push({ op: 'mknod', type: t, major, minor, mode, path: cleanAbs(next(verb), 'node path') });
        break;
      }
      case 'bind': {
        const given = next(verb).split(',').filter((f) => f !== '');
        for (const f of given) if (!(KNOWN_FLAGS as readonly string[]).includes(f)) throw new Error(`unknown bind flag ${f}`);
        if (!given.includes('nosuid')) throw new Error('bind flags lack nosuid');
        const flags = KNOWN_FLAGS.filter((f) => given.includes(f));
        const host = cleanAbs(next(verb), 'bind source');
        out.ops.push({ op: 'bind', flags, host, path: cleanAbs(next(verb), 'bind target') });
        break;
      }
      case 'allow': {
        const rule = next(verb);
        const m = /^([cb]) (\d+):(\d+) ([rwm]{1,7})$/.exec(rule);
        if (!m) throw new Error(`device rule ${JSON.stringify(rule)}`);
        out.ops.push({ op: 'allow', type: m[1] as 'c' | 'b', major: Number(m[2]), minor: Number(m[3]), access: m[4]! });
        break;
      }
      default:
        throw new Error(`unknown operation ${JSON.stringify(verb)}`);
    }
  }
  return out;
}

/* ---- examples ------------------------------------------------------------------------------------------------ */

describe('livePlan: device nodes', () => {
  it('mknod with the mode in octal (fileMode 438 = 0o666) and an rwm allow rule', () => {
    expect(livePlan({ deviceNodes: [node('/dev/nvidia0', 195, 0, { fileMode: 438, hostPath: '/drv/dev/nvidia0' })] }, MKNOD)).toEqual([
      'mknod', 'c', '195', '0', '666', '/dev/nvidia0',
      'allow', 'c 195:0 rwm',
    ]);
  });

  it('fileMode keeps only the permission bits; absent means 666', () => {
    expect(livePlan({ deviceNodes: [node('/dev/a', 1, 2, { fileMode: 0o20640 })] }, MKNOD).slice(0, 6)).toEqual(['mknod', 'c', '1', '2', '640', '/dev/a']);
    expect(livePlan({ deviceNodes: [node('/dev/a', 1, 2)] }, MKNOD)[4]).toBe('666');
    expect(livePlan({ deviceNodes: [node('/dev/a', 1, 2, { fileMode: 0 })] }, MKNOD)[4]).toBe('0');
  });

  it('bindNodes: the host node is bound nosuid,noexec (not nodev: it must stay usable) from hostPath', () => {
    expect(livePlan({ deviceNodes: [node('/dev/nvidia1', 195, 1, { hostPath: '/run/nvidia/driver/dev/nvidia1' })] }, { ...MKNOD, bindNodes: true })).toEqual([
      'bind', 'nosuid,noexec', '/run/nvidia/driver/dev/nvidia1', '/dev/nvidia1',
      'allow', 'c 195:1 rwm',
    ]);
  });

  it('bindNodes without a hostPath binds the node from its own path', () => {
    expect(livePlan({ deviceNodes: [node('/dev/nvidiactl', 195, 255)] }, { ...MKNOD, bindNodes: true }).slice(0, 4)).toEqual(['bind', 'nosuid,noexec', '/dev/nvidiactl', '/dev/nvidiactl']);
  });

  it('nodes:false (--no-devbind) keeps the allow words, and only them', () => {
    expect(livePlan({ deviceNodes: [node('/dev/nvidia0', 195, 0), node('/dev/nvidia-uvm', 508, 0, { type: 'c' })] }, { ...MKNOD, nodes: false })).toEqual([
      'allow', 'c 195:0 rwm', 'allow', 'c 508:0 rwm',
    ]);
  });

  it('cgroupRules:false (--no-cgroups) writes no allow word', () => {
    const words = livePlan({ deviceNodes: [node('/dev/nvidia0', 195, 0)] }, { ...MKNOD, cgroupRules: false });
    expect(words).toEqual(['mknod', 'c', '195', '0', '666', '/dev/nvidia0']);
    expect(words).not.toContain('allow');
  });

  it('block nodes and narrower permissions are kept; "none" means no rule', () => {
    expect(livePlan({ deviceNodes: [node('/dev/sda', 8, 0, { type: 'b', permissions: 'rw' })] }, MKNOD)).toEqual(['mknod', 'b', '8', '0', '666', '/dev/sda', 'allow', 'b 8:0 rw']);
    expect(livePlan({ deviceNodes: [node('/dev/x', 1, 3, { permissions: 'none' })] }, MKNOD)).toEqual(['mknod', 'c', '1', '3', '666', '/dev/x']);
  });

  it.each<[string, Partial<DeviceNode>, RegExp]>([
    ['a fifo', { type: 'p' }, /type p cannot be created live/],
    ['an unbuffered char node', { type: 'u' }, /type u/],
    ['no type', { type: undefined }, /type \(none\)/],
    ['no major', { major: undefined }, /no major:minor/],
    ['no minor', { minor: undefined }, /no major:minor/],
  ])('%s is refused with an INPUT error', (_, more, message) => {
    const e = thrown(() => livePlan({ deviceNodes: [{ ...node('/dev/x', 1, 1), ...more }] }, MKNOD));
    expect(e.code).toBe('INPUT');
    expect(e.message).toMatch(message);
    expect(e.message).toContain('/dev/x');
  });
});

describe('livePlan: mounts', () => {
  it('READ_ONLY_BIND → ro,nosuid,nodev; IPC_BIND → nosuid,nodev,noexec (rbind/rprivate are implied)', () => {
    const words = livePlan({ mounts: [mount('/drv/usr/lib/libcuda.so.1', '/usr/lib/libcuda.so.1', [...READ_ONLY_BIND]), mount('/drv/run/sock', '/run/sock', [...IPC_BIND])] }, MKNOD);
    expect(words).toEqual([
      'bind', 'ro,nosuid,nodev', '/drv/usr/lib/libcuda.so.1', '/usr/lib/libcuda.so.1',
      'bind', 'nosuid,nodev,noexec', '/drv/run/sock', '/run/sock',
    ]);
  });

  it.each<[string[], string]>([
    [['ro', 'rbind'], 'ro,nosuid'],
    [['rbind', 'rprivate'], 'nosuid'],
    [[], 'nosuid'],
    [['noexec', 'nodev', 'bind', 'rw'], 'nosuid,nodev,noexec'],
    [['nodev', 'ro', 'private'], 'ro,nosuid,nodev'],
  ])('a mount without nosuid gets it: %j → %s', (options, flags) => {
    expect(livePlan({ mounts: [mount('/h', '/c', options)] }, MKNOD)).toEqual(['bind', flags, '/h', '/c']);
  });

  it('a mount with no options and no type is a nosuid bind', () => {
    expect(livePlan({ mounts: [{ hostPath: '/h', containerPath: '/c' }] }, MKNOD)).toEqual(['bind', 'nosuid', '/h', '/c']);
  });

  it('mounts come after the nodes and their rules, in order', () => {
    const words = livePlan({ mounts: [mount('/h1', '/c1', ['ro']), mount('/h2', '/c2', ['ro'])], deviceNodes: [node('/dev/n', 1, 1)] }, MKNOD);
    expect(words.indexOf('mknod')).toBe(0);
    expect(words.indexOf('allow')).toBeLessThan(words.indexOf('bind'));
    expect(words.indexOf('/h1')).toBeLessThan(words.indexOf('/h2'));
  });

  it.each<[string, Mount, RegExp]>([
    ['a tmpfs', { hostPath: 'tmpfs', containerPath: '/tmp', type: 'tmpfs', options: ['nosuid'] }, /type tmpfs cannot be applied/],
    ['an overlay', { hostPath: 'overlay', containerPath: '/x', type: 'overlay' }, /type overlay/],
    ['a shared bind', mount('/h', '/c', ['rbind', 'rshared']), /options rshared cannot be applied/],
    ['an unknown option', mount('/h', '/c', ['ro', 'nosuid', 'relatime', 'strictatime']), /options relatime,strictatime/],
    ['a suid bind', mount('/h', '/c', ['suid']), /options suid/],
  ])('%s is refused with an INPUT error', (_, m, message) => {
    const e = thrown(() => livePlan({ mounts: [m] }, MKNOD));
    expect(e.code).toBe('INPUT');
    expect(e.message).toMatch(message);
    expect(e.message).toContain(m.containerPath);
    expect(e.fix).toMatch(/bind mounts/);
  });
});

describe('livePlan: hooks and env', () => {
  const LIBS = ['/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15', '/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.15', '/usr/lib/i386-linux-gnu/libcuda.so.550.54.15'];

  it('the ld cache hook becomes folder/link/ldconfig words; --root is dropped (the applier is told the rootfs)', () => {
    const hook = ldcacheHook(LIBS, { hookPath: '/usr/bin/nvidia-runtime-hook', rootfs: '/bundle/rootfs', ldconfig: '/sbin/ldconfig.real' }, driverLinks(LIBS, [], ['compute']));
    expect(hook.args).toContain('--root'); // the hook as the spec path writes it
    const words = livePlan({ hooks: [hook] }, MKNOD);
    expect(words).toEqual([
      'ldconfig', '/sbin/ldconfig.real',
      'folder', '/usr/lib/x86_64-linux-gnu',
      'folder', '/usr/lib/i386-linux-gnu',
      'link', 'libcuda.so.550.54.15', '/usr/lib/x86_64-linux-gnu/libcuda.so',
    ]);
    expect(words).not.toContain('--root');
    expect(words).not.toContain('/bundle/rootfs');
  });

  it('without a rootfs, an ldconfig or a libcuda the hook is only its folders', () => {
    expect(livePlan({ hooks: [ldcacheHook(['/lib/libnvidia-ml.so.1'], { hookPath: '/x' })] }, MKNOD)).toEqual(['folder', '/lib']);
  });

  it.each([
    [{ hookName: 'createContainer', path: '/usr/bin/nvidia-cdi-hook', args: ['nvidia-cdi-hook', 'create-symlinks', '--link', 'a::b'] }],
    [{ hookName: 'createContainer', path: '/usr/bin/nvidia-runtime-hook', args: ['nvidia-runtime-hook', 'chmod'] }],
    [{ hookName: 'prestart', path: '/bin/sh', args: ['sh', '-c', 'true'] }],
    [{ hookName: 'createContainer', path: '/usr/bin/nvidia-runtime-hook' }],
  ])('another hook is refused: %j', (hook) => {
    const e = thrown(() => livePlan({ hooks: [hook] }, MKNOD));
    expect(e.code).toBe('INPUT');
    expect(e.message).toContain(hook.path);
    expect(e.message).toMatch(/cannot run in a running container/);
  });

  it('env is ignored (a container\'s environment is fixed when it is made); so are additional GIDs', () => {
    const edits: ContainerEdits = { env: ['NVIDIA_VISIBLE_DEVICES=GPU-1', 'A=b'], additionalGids: [44], mounts: [mount('/h', '/c', ['ro'])] };
    expect(livePlan(edits, MKNOD)).toEqual(['bind', 'ro,nosuid', '/h', '/c']);
    expect(livePlan({ env: ['X=1'] }, MKNOD)).toEqual([]);
  });
});

describe('encodePlan', () => {
  it('every word is NUL-terminated, UTF-8', () => {
    expect(encodePlan(['bind', 'ro,nosuid', '/h é', '/c']).toString('latin1')).toBe('bind\0ro,nosuid\0/h Ã©\0/c\0');
    expect(encodePlan([]).length).toBe(0);
    expect([...encodePlan([''])]).toEqual([0]);
  });

  it('a word containing NUL is refused', () => {
    const e = thrown(() => encodePlan(['bind', 'nosuid', '/a\0/b', '/c']));
    expect(e.code).toBe('INPUT');
    expect(e.message).toMatch(/NUL/);
  });
});

/* ---- properties ---------------------------------------------------------------------------------------------- */

// A path component: anything but '/' and NUL (spaces, commas, newlines, '::', unicode), never '.' or '..'.
const component = fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }).filter((s) => !s.includes('/') && !s.includes('\0') && s !== '.' && s !== '..');
const absPath = fc.array(component, { minLength: 1, maxLength: 4 }).map((cs) => `/${cs.join('/')}`);
const deviceNode: fc.Arbitrary<DeviceNode> = fc.record(
  {
    path: absPath,
    hostPath: absPath,
    type: fc.constantFrom('c', 'b'),
    major: fc.integer({ min: 0, max: 4095 }),
    minor: fc.integer({ min: 0, max: 1048575 }),
    fileMode: fc.integer({ min: 0, max: 0o7777 }),
    permissions: fc.constantFrom('r', 'w', 'm', 'rw', 'rm', 'wm', 'rwm', 'mwr', 'none'),
  },
  { requiredKeys: ['path', 'type', 'major', 'minor'] },
);
const ALL_OPTIONS = ['ro', 'nosuid', 'nodev', 'noexec', 'bind', 'rbind', 'private', 'rprivate', 'rw'];
const bindMount: fc.Arbitrary<Mount> = fc.record(
  { hostPath: absPath, containerPath: absPath, options: fc.shuffledSubarray(ALL_OPTIONS), type: fc.constant('bind') },
  { requiredKeys: ['hostPath', 'containerPath'] },
);
const options: fc.Arbitrary<LiveOptions> = fc.record({ bindNodes: fc.boolean(), cgroupRules: fc.boolean(), nodes: fc.boolean() });
const edits = fc.record({ deviceNodes: fc.array(deviceNode, { maxLength: 6 }), mounts: fc.array(bindMount, { maxLength: 6 }) });

/** What the applier must do for these edits, worked out from the edits and the options alone. */
function expected(e: { deviceNodes: DeviceNode[]; mounts: Mount[] }, o: LiveOptions): Op[] {
  const ops: Op[] = [];
  for (const n of e.deviceNodes) {
    const type = n.type as 'c' | 'b';
    if (o.nodes && o.bindNodes) ops.push({ op: 'bind', flags: ['nosuid', 'noexec'], host: n.hostPath ?? n.path, path: n.path });
    if (o.nodes && !o.bindNodes) ops.push({ op: 'mknod', type, major: n.major!, minor: n.minor!, mode: (n.fileMode ?? 0o666) % 0o1000, path: n.path });
    const access = n.permissions ?? 'rwm';
    if (o.cgroupRules && access !== 'none') ops.push({ op: 'allow', type, major: n.major!, minor: n.minor!, access });
  }
  for (const m of e.mounts) {
    const opts = m.options ?? [];
    ops.push({ op: 'bind', flags: KNOWN_FLAGS.filter((f) => f === 'nosuid' || opts.includes(f)), host: m.hostPath, path: m.containerPath });
  }
  return ops;
}

describe('livePlan properties (fast-check)', () => {
  it('(a) the words parse back, by apply.c\'s grammar, into exactly the nodes, mounts and rules asked for', () => {
    fc.assert(
      fc.property(edits, options, (e, o) => {
        const parsed = parsePlan(livePlan(e, o));
        expect(parsed.ops).toEqual(expected(e, o));
        expect(parsed.folders).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('create-symlinks (a CDI device\'s DRM links) and --cuda-compat become link and compat words', () => {
    const links = linksHook([{ target: '../card2', link: '/dev/dri/by-path/pci-0000:19:00.0-card' }], { hookPath: '/x', rootfs: '/r' });
    expect(livePlan({ hooks: [links] }, MKNOD)).toEqual(['link', '../card2', '/dev/dri/by-path/pci-0000:19:00.0-card']);
    const compat = ldcacheHook(['/lib/libcuda.so.550.54.15'], { hookPath: '/x', cudaCompat: '550.54.15' });
    expect(livePlan({ hooks: [compat] }, MKNOD)).toEqual(['compat', '550.54.15', 'folder', '/lib']);
  });

  it('(a) with the ld cache hook: its folders, link and ldconfig come back after every operation', () => {
    const lib = fc.tuple(absPath, fc.constantFrom('libcuda.so.550.54.15', 'libnvidia-ml.so.1', 'libcuda.so.1', 'libGLX_nvidia.so.0'));
    fc.assert(
      fc.property(edits, fc.array(lib, { minLength: 1, maxLength: 5 }), fc.option(absPath, { nil: undefined }), fc.option(absPath, { nil: undefined }), (e, libs, rootfs, ldconfig) => {
        const paths = libs.map(([dir, name]) => `${dir}/${name}`);
        const hook = ldcacheHook(paths, { hookPath: '/usr/bin/nvidia-runtime-hook', ...(rootfs ? { rootfs } : {}), ...(ldconfig ? { ldconfig } : {}) }, driverLinks(paths, [], ['compute']));
        const words = livePlan({ ...e, hooks: [hook] }, MKNOD);
        const parsed = parsePlan(words);
        expect(parsed.ops).toEqual(expected(e, MKNOD));
        expect(parsed.folders).toEqual([...new Set(libs.map(([dir]) => dir))]);
        expect(parsed.ldconfig).toBe(ldconfig);
        const cuda = libs.find(([, name]) => /^libcuda\.so\.[0-9.]+$/.test(name));
        expect(parsed.links).toEqual(cuda ? [[cuda[1], `${cuda[0]}/libcuda.so`]] : []);
        // the ld cache words are last: the operations' words, then the hook's
        const ops = livePlan(e, MKNOD);
        expect(words.slice(0, ops.length)).toEqual(ops);
        expect(words.slice(ops.length)).toEqual(livePlan({ hooks: [hook] }, MKNOD));
      }),
      { numRuns: 200 },
    );
  });

  it('(b) encodePlan split on NUL gives the words back', () => {
    fc.assert(
      fc.property(edits, options, (e, o) => {
        const words = livePlan(e, o);
        const text = encodePlan(words).toString('utf8');
        expect(text.endsWith('\0') || words.length === 0).toBe(true);
        expect(words.length === 0 ? [] : text.slice(0, -1).split('\0')).toEqual(words);
      }),
      { numRuns: 300 },
    );
  });

  it('(c) a word containing NUL is refused, wherever it is', () => {
    fc.assert(
      fc.property(fc.array(fc.string().filter((s) => !s.includes('\0'))), fc.string(), fc.string(), fc.nat(), (words, before, after, at) => {
        const bad = [...words];
        bad.splice(at % (words.length + 1), 0, `${before}\0${after}`);
        expect(() => encodePlan(bad)).toThrow(/NUL/);
        expect(() => encodePlan(words)).not.toThrow();
      }),
    );
  });

  it('a node path with NUL makes livePlan\'s words unencodable (never a shifted plan)', () => {
    fc.assert(
      fc.property(absPath, absPath, (a, b) => {
        const words = livePlan({ mounts: [mount(`${a}\0${b}`, b, ['ro'])] }, MKNOD);
        expect(() => encodePlan(words)).toThrow(/NUL/);
      }),
    );
  });
});

describe('livePlan: malformed ld cache hooks', () => {
  // A `--link` value without "::" (a hand-written or foreign CDI spec) must be refused here, not split into words the
  // applier would refuse far from the cause; an unknown update-ldcache flag is refused, never dropped.
  it('an update-ldcache --link without "::" is refused, not split into nonsense', () => {
    const hook = { hookName: 'createContainer', path: '/usr/bin/nvidia-runtime-hook', args: ['nvidia-runtime-hook', 'update-ldcache', '--link', '/usr/lib/libcuda.so'] };
    expect(() => livePlan({ hooks: [hook] }, MKNOD)).toThrow(/--link "\/usr\/lib\/libcuda.so" is not TARGET::LINK/);
  });

  it('an unknown update-ldcache flag is refused', () => {
    const hook = { hookName: 'createContainer', path: '/usr/bin/nvidia-runtime-hook', args: ['nvidia-runtime-hook', 'update-ldcache', '--frobnicate', 'x'] };
    expect(() => livePlan({ hooks: [hook] }, MKNOD)).toThrow(/--frobnicate cannot be applied/);
  });
});
