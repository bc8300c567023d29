/**
 * Which device cgroup a running container is in (src/live/cgroup.ts): /proc/<pid>/cgroup and mountinfo texts as
 * the kernel writes them on cgroup v1, hybrid and v2-only hosts, with the devices hierarchy mounted at its root
 * or at a sub-directory (inside a container), and with octal-escaped mount points.
 */
import fc from 'fast-check';
import { posix } from 'node:path';
import { devicesCgroupDir, devicesCgroupMounts, devicesCgroupPath, inUserNamespace, ruleCovered, withoutCoveredRules } from '../../../src/live/cgroup.js';
import { thrown } from '../../helpers/errors.js';

const ID = 'abc123def456';

/** cgroup v1 only (e.g. CentOS 7, docker with cgroupfs). */
const V1 = [
  `12:devices:/docker/${ID}`,
  `11:memory:/docker/${ID}`,
  `10:cpuset:/docker/${ID}`,
  `9:freezer:/docker/${ID}`,
  `8:net_cls,net_prio:/docker/${ID}`,
  `7:blkio:/docker/${ID}`,
  `6:pids:/docker/${ID}`,
  `5:perf_event:/docker/${ID}`,
  `4:cpu,cpuacct:/docker/${ID}`,
  `3:hugetlb:/docker/${ID}`,
  `2:rdma:/`,
  `1:name=systemd:/docker/${ID}`,
  '',
].join('\n');

/** Hybrid (systemd's default on Ubuntu 20.04): v1 controllers plus the unified hierarchy as line 0. */
const HYBRID = [
  '13:misc:/',
  `12:devices:/system.slice/docker-${ID}.scope`,
  `11:memory:/system.slice/docker-${ID}.scope`,
  `4:cpu,cpuacct:/system.slice/docker-${ID}.scope`,
  `1:name=systemd:/system.slice/docker-${ID}.scope`,
  `0::/system.slice/docker-${ID}.scope`,
  '',
].join('\n');

/** cgroup v2 only (Fedora 31+, Ubuntu 21.10+, Debian 11+). */
const V2 = '0::/user.slice/user-1000.slice/session-3.scope\n';

const MOUNTINFO_HOST = [
  '22 27 0:21 / /proc rw,relatime shared:12 - proc proc rw',
  '31 23 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate',
  '33 31 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd',
  '36 31 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpu,cpuacct',
  '37 31 0:34 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,memory',
  '38 31 0:35 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,devices',
  '',
].join('\n');

/** Inside a container (cgroupns off): the hierarchy's sub-directory of the container is mounted on the mount point. */
const MOUNTINFO_NESTED = [
  `900 899 0:33 /docker/${ID} /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:17 - cgroup cgroup rw,memory`,
  `901 899 0:35 /docker/${ID} /sys/fs/cgroup/devices ro,nosuid,nodev,noexec,relatime master:18 - cgroup cgroup rw,devices`,
  '',
].join('\n');

const V2_MOUNTINFO = '30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n';

describe('devicesCgroupPath', () => {
  it.each<[string, string, string | undefined]>([
    ['cgroup v1', V1, `/docker/${ID}`],
    ['hybrid', HYBRID, `/system.slice/docker-${ID}.scope`],
    ['v2 only', V2, undefined],
    ['v2 root only', '0::/\n', undefined],
    ['empty', '', undefined],
    ['devices in a comma-joined controller list', `4:cpu,devices,cpuacct:/x/y\n0::/\n`, '/x/y'],
    ['a path with colons', '5:devices:/kubepods/pod:1/c:2\n', '/kubepods/pod:1/c:2'],
    ['devices at the hierarchy root', '5:devices:/\n', '/'],
  ])('%s', (_, text, want) => {
    expect(devicesCgroupPath(text)).toBe(want);
  });

  it('a controller name that merely contains "devices" is not it', () => {
    expect(devicesCgroupPath('3:name=devicesx:/a\n2:devicesfoo:/b\n0::/c\n')).toBeUndefined();
  });

  it('comma-joined controllers without devices are skipped: "4:cpu,cpuacct:/x"', () => {
    expect(devicesCgroupPath('4:cpu,cpuacct:/x\n')).toBeUndefined();
    expect(devicesCgroupPath(`4:cpu,cpuacct:/x\n12:devices:/y\n`)).toBe('/y');
  });
});

describe('devicesCgroupMounts', () => {
  it('finds the v1 devices hierarchy among every other mount (optional fields and all)', () => {
    expect(devicesCgroupMounts(MOUNTINFO_HOST)).toEqual([{ root: '/', mountPoint: '/sys/fs/cgroup/devices' }]);
    expect(devicesCgroupMounts(MOUNTINFO_NESTED)).toEqual([{ root: `/docker/${ID}`, mountPoint: '/sys/fs/cgroup/devices' }]);
  });

  it('a cgroup2 mount and a devtmpfs are not it; nor is a v1 mount of other controllers', () => {
    expect(devicesCgroupMounts(V2_MOUNTINFO)).toEqual([]);
    expect(devicesCgroupMounts('24 27 0:6 / /dev rw,relatime - devtmpfs devices rw,size=1k\n')).toEqual([]);
    expect(devicesCgroupMounts('37 31 0:34 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,memory\n')).toEqual([]);
  });

  it('devices co-mounted with other controllers counts', () => {
    expect(devicesCgroupMounts('38 31 0:35 / /cg/devs,mem rw - cgroup cgroup rw,memory,devices\n')).toEqual([{ root: '/', mountPoint: '/cg/devs,mem' }]);
  });

  it('octal escapes in the mount point and root are undone (\\040 space, \\011 tab, \\134 backslash)', () => {
    expect(devicesCgroupMounts('38 31 0:35 /a\\040b /mnt/my\\040cgroups/dev\\011ices\\134x rw - cgroup cgroup rw,devices\n')).toEqual([
      { root: '/a b', mountPoint: '/mnt/my cgroups/dev\tices\\x' },
    ]);
  });
});

describe('devicesCgroupDir', () => {
  it('cgroup v1, hierarchy mounted at its root: the mount point joined with the cgroup path', () => {
    expect(devicesCgroupDir(V1, MOUNTINFO_HOST, '4242')).toBe(`/sys/fs/cgroup/devices/docker/${ID}`);
    expect(devicesCgroupDir(HYBRID, MOUNTINFO_HOST, '4242')).toBe(`/sys/fs/cgroup/devices/system.slice/docker-${ID}.scope`);
  });

  it('nested: the container\'s own cgroup mounted (root /docker/<id>) → the mount point itself, or below it', () => {
    expect(devicesCgroupDir(V1, MOUNTINFO_NESTED, '1')).toBe('/sys/fs/cgroup/devices');
    expect(devicesCgroupDir(`12:devices:/docker/${ID}/inner/leaf\n`, MOUNTINFO_NESTED, '1')).toBe('/sys/fs/cgroup/devices/inner/leaf');
  });

  it('a mount whose root does not contain the path is skipped; a sibling name that shares a prefix is not inside', () => {
    const mi = `901 899 0:35 /docker/${ID} /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n902 1 0:35 / /host/devices rw - cgroup cgroup rw,devices\n`;
    expect(devicesCgroupDir(`12:devices:/docker/${ID}x\n`, mi, '7')).toBe(`/host/devices/docker/${ID}x`);
    expect(devicesCgroupDir('12:devices:/other\n', mi, '7')).toBe('/host/devices/other');
  });

  it('escaped mount point: the directory has the real space', () => {
    expect(devicesCgroupDir('3:devices:/a\n', '38 31 0:35 / /mnt/cg\\040v1/devices rw - cgroup cgroup rw,devices\n', '9')).toBe('/mnt/cg v1/devices/a');
  });

  it('v2-only host: an INPUT error that says why and names --no-cgroups in its fix', () => {
    const e = thrown(() => devicesCgroupDir(V2, V2_MOUNTINFO, '4242'));
    expect(e.code).toBe('INPUT');
    expect(e.message).toContain('4242');
    expect(e.message).toMatch(/cgroup v2/);
    expect(e.fix).toContain('--no-cgroups');
  });

  it('v1 controller present but the hierarchy is not mounted here: an error naming the path and --no-cgroups', () => {
    const e = thrown(() => devicesCgroupDir(V1, V2_MOUNTINFO, '17'));
    expect(e.message).toContain(`/docker/${ID}`);
    expect(e.message).toMatch(/not mounted here/);
    expect(e.fix).toContain('--no-cgroups');
    // mounted, but only a sub-tree that does not hold the process
    expect(() => devicesCgroupDir('12:devices:/elsewhere\n', MOUNTINFO_NESTED, '17')).toThrow(/not mounted here/);
  });

  // A cgroup directory may be named "..x" (any name but "." and ".." is a directory name); it is inside the
  // mount's root all the same.
  it('a cgroup component starting with ".." (e.g. "/..x") is inside the mount', () => {
    expect(devicesCgroupDir('5:devices:/..x\n', MOUNTINFO_HOST, '1')).toBe('/sys/fs/cgroup/devices/..x');
  });

  // Components: any bytes the kernel allows in a cgroup name except '/' and NUL, never "." or "..".
  const component = fc.stringMatching(/^[A-Za-z0-9 ._:,@=+-]{1,10}$/).filter((s) => s !== '.' && s !== '..');
  const path = fc.array(component, { maxLength: 5 });
  const mountPoint = fc.array(fc.stringMatching(/^[A-Za-z0-9 ._-]{1,8}$/).filter((s) => s !== '.' && s !== '..'), { minLength: 1, maxLength: 4 });
  const esc = (s: string): string => s.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);

  it('for any cgroup path and any mount root that is a prefix of it: mount point + the remainder (fast-check)', () => {
    fc.assert(
      fc.property(path, fc.nat(), mountPoint, fc.array(fc.constantFrom('memory', 'cpu', 'pids', 'freezer')), (cs, cut, mp, others) => {
        const k = cut % (cs.length + 1);
        const cgroupPath = `/${cs.join('/')}`;
        const root = `/${cs.slice(0, k).join('/')}`;
        const point = `/${mp.join('/')}`;
        const proc = [...others.map((c, i) => `${i + 20}:${c}:/elsewhere`), `7:${['devices', ...others].join(',')}:${cgroupPath}`, '0::/', ''].join('\n');
        const mountinfo = [
          '22 27 0:21 / /proc rw,relatime - proc proc rw',
          `40 31 0:35 ${esc(root)} ${esc(point)} rw,nosuid shared:1 - cgroup cgroup rw,${['devices', ...others].join(',')}`,
          '',
        ].join('\n');
        const dir = devicesCgroupDir(proc, mountinfo, '1');
        const remainder = cs.slice(k);
        expect(dir).toBe(remainder.length === 0 ? point : `${point}/${remainder.join('/')}`);
        expect(posix.relative(point, dir).split('/').filter((c) => c !== '')).toEqual(remainder);
      }),
      { numRuns: 300 },
    );
  });

  it('a mount root that is not a prefix of the cgroup path never matches (fast-check)', () => {
    fc.assert(
      fc.property(path, component, component, (cs, a, b) => {
        fc.pre(a !== b);
        const proc = `7:devices:/${[a, ...cs].join('/')}\n`;
        const mountinfo = `40 31 0:35 /${esc(b)} /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n`;
        expect(() => devicesCgroupDir(proc, mountinfo, '1')).toThrow(/not mounted here/);
      }),
    );
  });
});

describe('inUserNamespace', () => {
  it.each<[string, boolean]>([
    ['         0          0 4294967295\n', false],
    ['0 0 4294967295', false],
    ['0 100000 65536', true],
    ['         0     100000      65536\n', true],
    ['         0       1000          1\n         1     100000      65536\n', true],
    ['         0          0 4294967294\n', true],
    ['', true],
  ])('%j → %s', (uidMap, want) => {
    expect(inUserNamespace(uidMap)).toBe(want);
  });
});

describe('ruleCovered / withoutCoveredRules: only the rules a devices.list lacks are written', () => {
  it('examples', () => {
    expect(ruleCovered('a *:* rwm\n', 'c 195:0 rwm')).toBe(true);
    expect(ruleCovered('c 195:* rwm\n', 'c 195:7 rw')).toBe(true);
    expect(ruleCovered('c 195:* rw\n', 'c 195:7 rwm')).toBe(false); // m missing
    expect(ruleCovered('b 195:0 rwm\n', 'c 195:0 rwm')).toBe(false); // other type
    expect(ruleCovered('c 1:3 rwm\nc 195:1 rwm\n', 'c 195:0 rwm')).toBe(false);
    expect(ruleCovered('', 'c 195:0 rwm')).toBe(false);
    expect(withoutCoveredRules(['mknod', 'c', '195', '0', '666', '/dev/nvidia0', 'allow', 'c 195:0 rwm', 'allow', 'c 195:1 rwm'], 'c 195:0 rwm\n'))
      .toEqual(['mknod', 'c', '195', '0', '666', '/dev/nvidia0', 'allow', 'c 195:1 rwm']);
  });

  it('a rule is covered by a list that holds it, and withoutCoveredRules keeps every other word (fast-check)', () => {
    const rule = fc.tuple(fc.constantFrom('c', 'b'), fc.nat(4095), fc.nat(1048575), fc.constantFrom('rwm', 'rw', 'r', 'm')).map(([t, a, b, p]) => `${t} ${a}:${b} ${p}`);
    fc.assert(fc.property(fc.array(rule, { maxLength: 8 }), rule, (list, r) => {
      expect(ruleCovered([...list, r].join('\n'), r)).toBe(true);
      const words = ['bind', 'ro,nosuid', '/h', '/c', 'allow', r];
      expect(withoutCoveredRules(words, list.join('\n'))).toEqual(ruleCovered(list.join('\n'), r) ? words.slice(0, 4) : words);
    }));
  });
});
