/**
 * addon.execve hands the process over to runc the way runc expects it (SECURITY.md §4, R10): stdio and the
 * preserved fds inherited and blocking, every other fd Node opened closed, no ignored or blocked signals.
 */
import { execa } from 'execa';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../helpers/dist.js';

const addon = join(PACKAGE_ROOT, 'build/Release/nvidia_runtime.node');

// The child: a Node process that opens a file (an fd it must not leak), writes to stdout (Node makes the pipe
// O_NONBLOCK), then execs a shell that reports what it inherited.
const child = `
const fs = require('fs');
const leaked = fs.openSync('/etc/hostname', 'r');
process.stdout.write('before exec\\n');
const r = require(${JSON.stringify(addon)}).execve('/bin/sh', ['sh', '-c',
  'ls /proc/self/fd | sort -n | tr "\\\\n" " "; echo; grep -E "^Sig(Ign|Blk)" /proc/self/status; grep flags /proc/self/fdinfo/1'],
  ['PATH=/usr/bin:/bin'], [3]);
console.error('execve returned', r);
`;

test('stdio blocking, preserved fd 3 passed, Node fds closed, signals reset', async () => {
  const r = await execa('node', ['-e', child], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], reject: false, input: undefined });
  expect(r.stderr).toBe('');
  const lines = r.stdout.split('\n');
  expect(lines[0]).toBe('before exec');
  // ls itself opens its directory fd; everything else must be 0, 1, 2 and the preserved 3.
  const fds = lines[1].trim().split(' ').map(Number).filter((fd) => fd <= 2 || fd === 3);
  expect(fds).toEqual([0, 1, 2, 3]);
  expect(lines[1].trim().split(' ').length).toBeLessThanOrEqual(5);
  expect(r.stdout).toMatch(/SigIgn:\s+0000000000000000/);
  expect(r.stdout).toMatch(/SigBlk:\s+0000000000000000/);
  const flags = /flags:\s+(\d+)/.exec(r.stdout)![1];
  expect(parseInt(flags, 8) & 0o4000).toBe(0); // O_NONBLOCK cleared on stdout
});

test('bad arguments are a TypeError, a failed exec returns {code, call}', async () => {
  const r = await execa('node', ['-e', `
    const a = require(${JSON.stringify(addon)});
    try { a.execve('/bin/true', [], [], []); } catch (e) { console.log(e.constructor.name); }
    console.log(JSON.stringify(a.execve('/nonexistent/runc', ['runc'], [], [])));
  `]);
  const [err, res] = r.stdout.split('\n');
  expect(err).toBe('TypeError');
  expect(JSON.parse(res)).toMatchObject({ code: 2, call: 'execve' });
});
