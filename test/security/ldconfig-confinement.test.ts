/**
 * Threat: ldconfig runs as host root over files the image controls (SECURITY.md §1.5 CVE-2024-0135/0136/0137,
 * §6 "the ldconfig child under a seccomp filter, with no privileges it does not need"). A probe installed as the
 * hook's --ldconfig reports what the child may still do: only CAP_DAC_OVERRIDE (in every set, the bounding one
 * included), no_new_privs, a seccomp filter, and EPERM for mounts, namespaces, ptrace, sockets and mknod.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT, tempDir } from '../helpers/dist.js';

let dir: string;
let probe: string;

beforeAll(() => {
  execFileSync('make', ['-s', '-f', 'native/Makefile.dev', 'build/dev/nvidia-runtime-hook'], { cwd: PACKAGE_ROOT });
  dir = realpathSync(tempDir('ldconfig-probe'));
  probe = join(dir, 'probe');
  writeFileSync(join(dir, 'probe.c'), `#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>
static const char *r(long rc) { return rc == 0 ? "ALLOWED" : errno == EPERM ? "EPERM" : strerror(errno); }
int main(void) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  syscall(SYS_capget, &h, d);
  unsigned long long bnd = 0;
  for (int c = 0; c < 64; c++) if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) bnd |= 1ULL << c;
  printf("eff=%x prm=%x inh=%x bnd=%llx nnp=%d seccomp=%d\\n", d[0].effective, d[0].permitted, d[0].inheritable, bnd,
         prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
  printf("mount=%s\\n", r(mount("none", "/tmp", "tmpfs", 0, NULL)));
  printf("unshare=%s\\n", r(unshare(CLONE_NEWNS)));
  printf("ptrace=%s\\n", r(ptrace(PTRACE_ATTACH, 1, 0, 0)));
  long s = socket(AF_UNIX, SOCK_STREAM, 0);
  printf("socket=%s\\n", s >= 0 ? "ALLOWED" : r(-1));
  printf("mknod=%s\\n", r(mknod("/tmp/x", S_IFCHR | 0600, makedev(1, 3))));
  printf("chroot=%s\\n", r(chroot("/")));
  return 0;
}
`);
  execFileSync('gcc', ['-static', '-O2', '-o', probe, join(dir, 'probe.c')]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('the ldconfig child keeps CAP_DAC_OVERRIDE only, with no_new_privs, and seccomp refuses the rest', () => {
  const root = join(dir, 'rootfs');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'tmp'));
  writeFileSync(join(root, 'etc/ld.so.conf'), '');
  const r = spawnSync(join(PACKAGE_ROOT, 'build/dev/nvidia-runtime-hook'), ['update-ldcache', '--root', root, '--ldconfig', probe], {
    input: '{"ociVersion":"1.0.2","id":"c","status":"creating","pid":1,"bundle":"/b"}', env: {},
  });
  expect(r.status).toBe(0);
  const report = Object.fromEntries(r.stderr.toString().trim().split(/\s+/).map((kv) => kv.split('=') as [string, string]));
  expect(report).toEqual({
    eff: '2', prm: '2', inh: '0', bnd: '2', nnp: '1', seccomp: '2', // 1 << CAP_DAC_OVERRIDE (1); seccomp mode 2 = filter
    mount: 'EPERM', unshare: 'EPERM', ptrace: 'EPERM', socket: 'EPERM', mknod: 'EPERM', chroot: 'EPERM',
  });
});
