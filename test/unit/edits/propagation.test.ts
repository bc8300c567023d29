/** propagationProblem: which specs would leak our driver mounts to the host (the table measured with runc 1.1.5). */
import { parseMountinfo, propagationProblem } from '../../../src/edits/propagation.js';
import type { OciSpec } from '../../../src/oci/types.js';

const MOUNTINFO = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '40 22 8:1 /srv/shared /srv/shared rw,relatime shared:7 - ext4 /dev/sda1 rw',
  '41 22 8:1 /srv/private /srv/private rw,relatime - ext4 /dev/sda1 rw',
  '42 22 8:1 /srv/with\\040space /srv/with\\040space rw shared:9 - ext4 /dev/sda1 rw',
].join('\n');
const hostMounts = parseMountinfo(MOUNTINFO);
const edits = { mounts: [{ hostPath: '/d/usr/lib/libcuda.so.1', containerPath: '/usr/lib/x86_64-linux-gnu/libcuda.so.1' }] };

function spec(source: string, options: string[], rootfsPropagation?: string, destination = '/usr/lib/x86_64-linux-gnu'): OciSpec {
  return { mounts: [{ destination, source, type: 'bind', options: ['rbind', ...options] }], linux: rootfsPropagation ? { rootfsPropagation } : {} } as unknown as OciSpec;
}

test('parses mountinfo, shared peer groups and escaped mount points', () => {
  expect(hostMounts).toEqual([
    { mountPoint: '/', shared: true }, { mountPoint: '/srv/shared', shared: true },
    { mountPoint: '/srv/private', shared: false }, { mountPoint: '/srv/with space', shared: true },
  ]);
});

test.each([
  // option of the user mount, rootfsPropagation, leaks?
  ['rshared', 'shared', true], ['rshared', 'rshared', true], ['shared', 'shared', true], ['', 'shared', true],
  ['', 'rshared', true], ['rshared', 'slave', true], ['', 'private', true],
  ['rprivate', 'shared', false], ['private', 'rshared', false], ['rslave', 'shared', false], ['slave', 'shared', false],
  ['rshared', undefined, false], ['', 'rslave', false], ['', 'rprivate', false],
])('a bind of a shared host mount over the library dir, option %j, rootfsPropagation %j: leaks %j', (option, root, leaks) => {
  const problem = propagationProblem(spec('/srv/shared', option ? [option] : [], root), edits, hostMounts);
  expect(problem !== undefined).toBe(leaks);
  if (problem) {
    expect(problem.message).toBe(`mount /usr/lib/x86_64-linux-gnu (source /srv/shared) would carry the driver mounts added under it (/usr/lib/x86_64-linux-gnu/libcuda.so.1) to the host: /srv/shared is on a shared host mount and linux.rootfsPropagation is "${root}"`);
    expect(problem.fix).toMatch(/rslave or rprivate/);
  }
});

test('no leak when the source is on a private host mount, or nothing of ours lands under the mount', () => {
  expect(propagationProblem(spec('/srv/private/x', [], 'shared'), edits, hostMounts)).toBeUndefined();
  expect(propagationProblem(spec('/srv/shared', [], 'shared', '/data'), edits, hostMounts)).toBeUndefined();
  expect(propagationProblem(spec('/srv/shared', [], 'shared', '/usr/lib/x86_64-linux-gnu/libcuda.so.1'), edits, hostMounts)).toBeDefined();
  expect(propagationProblem(spec('/srv/with space/a', [], 'shared', '/usr'), edits, hostMounts)).toBeDefined();
});
