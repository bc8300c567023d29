/**
 * Container images built locally (nothing can be pulled): a static busybox rootfs, and a small glibc rootfs
 * (busybox + the host's loader and libc + a dlopen probe + /etc/ld.so.conf and cache), as directories for runc
 * bundles and as Docker images via `docker import`.
 */
import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { patchSoname } from '../../src/mock/elf-patch.js';
import { dirname, join } from 'node:path';
import { PACKAGE_ROOT } from './dist.js';

const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'ls', 'cat', 'grep', 'echo', 'true', 'sleep', 'env', 'find', 'head', 'wc', 'readlink', 'stat', 'mknod'];

export function makeBusyboxRootfs(rootfs: string): string {
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['dev', 'proc', 'sys', 'tmp', 'etc']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX, join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  for (const a of APPLETS) if (!existsSync(join(rootfs, 'bin', a))) symlinkSync('busybox', join(rootfs, 'bin', a));
  return rootfs;
}

/** Host glibc files a dynamically linked program needs (Debian 12 x86-64 paths). */
const GLIBC_FILES = ['/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libdl.so.2', '/sbin/ldconfig'];

export async function makeGlibcRootfs(rootfs: string): Promise<string> {
  makeBusyboxRootfs(rootfs);
  for (const f of GLIBC_FILES) {
    mkdirSync(join(rootfs, dirname(f)), { recursive: true });
    copyFileSync(f, join(rootfs, f));
  }
  mkdirSync(join(rootfs, 'etc/ld.so.conf.d'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/ld.so.conf'), 'include /etc/ld.so.conf.d/*.conf\n');
  writeFileSync(join(rootfs, 'etc/ld.so.conf.d/x86_64-linux-gnu.conf'), '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n');
  writeFileSync(join(rootfs, 'etc/debian_version'), '12.0\n');
  mkdirSync(join(rootfs, 'usr/local/bin'), { recursive: true });
  await execa('cc', ['-O2', '-o', join(rootfs, 'usr/local/bin/dlopen-probe'), join(PACKAGE_ROOT, 'test/fixtures/dlopen-probe.c'), '-ldl']);
  await execa('ldconfig', ['-r', rootfs]);
  return rootfs;
}

/**
 * A glibc rootfs that ships CUDA forward-compat libraries, as CUDA images do: /usr/local/cuda/compat/libcuda.so.<version>
 * (soname libcuda.so.1) and libnvidia-ptxjitcompiler.so.<version>, real ELF objects made from the mock's stub, with
 * the soname links the CUDA packages install.
 */
export async function makeCompatRootfs(rootfs: string, version: string): Promise<string> {
  await makeGlibcRootfs(rootfs);
  const compat = join(rootfs, 'usr/local/cuda/compat');
  mkdirSync(compat, { recursive: true });
  const stub = readFileSync(join(PACKAGE_ROOT, 'build/Release/libnvidia-stub.so'));
  for (const [name, soname] of [['libcuda', 'libcuda.so.1'], ['libnvidia-ptxjitcompiler', 'libnvidia-ptxjitcompiler.so.1']] as const) {
    writeFileSync(join(compat, `${name}.so.${version}`), patchSoname(stub, soname), { mode: 0o755 });
    symlinkSync(`${name}.so.${version}`, join(compat, soname));
  }
  return rootfs;
}

export async function dockerImport(docker: (args: string[]) => Promise<unknown>, rootfs: string, tag: string): Promise<void> {
  const tar = `${rootfs}.tar`;
  await execa('tar', ['-C', rootfs, '-cf', tar, '.']);
  await docker(['import', tar, tag]);
}
