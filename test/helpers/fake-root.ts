/**
 * Fake driver roots on disk for tests: real ELF shared objects with the right SONAMEs, an ld.so.cache made
 * by the real `ldconfig -r`, real character device nodes (mknod, needs root), /proc-style files.
 * The ELF template is compiled once per architecture (cached under the OS tmp dir) and each library is a
 * copy whose placeholder SONAME is patched in place, so building a root costs no compiler runs.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const DRIVER_VERSION = '550.54.15';
export const LIB64_DIR = '/usr/lib/x86_64-linux-gnu';
export const LIB32_DIR = '/usr/lib/i386-linux-gnu';

const PLACEHOLDER = 'FAKEROOT_SONAME_' + 'X'.repeat(48); // 64 bytes: the longest soname we can patch in

export interface FakeLib {
  /** File name, e.g. "libcuda.so.550.54.15". */
  file: string;
  /** SONAME, e.g. "libcuda.so.1" (ldconfig makes the soname link). */
  soname: string;
  /** In-root directory; default LIB64_DIR, or LIB32_DIR for i386. */
  dir?: string;
  arch?: 'x86_64' | 'i386';
}

export interface FakeDevice {
  path: string; // in-root, "/dev/nvidia0"
  major: number;
  minor: number;
  mode?: number; // default 0o666
}

export interface FakeRootSpec {
  libs?: FakeLib[];
  /** In-root path → content. */
  files?: Record<string, string | Buffer>;
  /** In-root paths of executables (a tiny shell script, mode 0755). */
  executables?: string[];
  /** In-root link path → link target (verbatim). */
  symlinks?: Record<string, string>;
  dirs?: string[];
  devices?: FakeDevice[];
  /** Run `ldconfig -r` (default: when there are libs). */
  ldconfig?: boolean;
}

function templatePath(arch: 'x86_64' | 'i386'): string {
  const dir = join(tmpdir(), 'nvr-fake-elf-v1');
  const out = join(dir, `template-${arch}.so`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const src = join(dir, `src-${process.pid}.c`);
  writeFileSync(src, 'int nvr_fake_symbol(void) { return 42; }\n');
  const tmp = `${out}.${process.pid}`;
  // i386 without a 32-bit libgcc/libc installed: -nostdlib still yields a valid ELF32 shared object.
  const archFlags = arch === 'i386' ? ['-m32', '-nostdlib'] : [];
  execFileSync('cc', [...archFlags, '-shared', '-fPIC', `-Wl,-soname,${PLACEHOLDER}`, '-o', tmp, src]);
  renameSync(tmp, out); // atomic: parallel jest workers may race here
  rmSync(src, { force: true });
  return out;
}

const templates = new Map<string, Buffer>();

/** A real ELF shared object whose DT_SONAME is `soname`. */
export function elfSharedObject(soname: string, arch: 'x86_64' | 'i386' = 'x86_64'): Buffer {
  if (soname.length > PLACEHOLDER.length) throw new Error(`soname too long for the fake ELF: ${soname}`);
  let tpl = templates.get(arch);
  if (!tpl) {
    tpl = readFileSync(templatePath(arch));
    templates.set(arch, tpl);
  }
  const buf = Buffer.from(tpl);
  const at = buf.indexOf(PLACEHOLDER);
  if (at < 0) throw new Error('placeholder soname not found in the fake ELF template');
  buf.fill(0, at, at + PLACEHOLDER.length);
  buf.write(soname, at, 'latin1');
  return buf;
}

function hostPath(root: string, p: string): string {
  return join(root, p);
}

function ensureParent(file: string): void {
  mkdirSync(dirname(file), { recursive: true });
}

/** Populate `root` (created if missing; default a fresh tmp dir) from `spec`; returns the root. */
export function makeFakeRoot(spec: FakeRootSpec, root = mkdtempSync(join(tmpdir(), 'nvr-root-'))): string {
  mkdirSync(root, { recursive: true });
  for (const d of spec.dirs ?? []) mkdirSync(hostPath(root, d), { recursive: true });
  const libDirs = new Set<string>();
  for (const lib of spec.libs ?? []) {
    const arch = lib.arch ?? 'x86_64';
    const dir = lib.dir ?? (arch === 'i386' ? LIB32_DIR : LIB64_DIR);
    libDirs.add(dir);
    const file = hostPath(root, `${dir}/${lib.file}`);
    ensureParent(file);
    writeFileSync(file, elfSharedObject(lib.soname, arch), { mode: 0o755 });
  }
  for (const [p, content] of Object.entries(spec.files ?? {})) {
    const file = hostPath(root, p);
    ensureParent(file);
    writeFileSync(file, content);
  }
  for (const p of spec.executables ?? []) {
    const file = hostPath(root, p);
    ensureParent(file);
    writeFileSync(file, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    chmodSync(file, 0o755);
  }
  for (const [p, target] of Object.entries(spec.symlinks ?? {})) {
    const file = hostPath(root, p);
    ensureParent(file);
    symlinkSync(target, file);
  }
  for (const dev of spec.devices ?? []) {
    const file = hostPath(root, dev.path);
    ensureParent(file);
    execFileSync('mknod', ['-m', (dev.mode ?? 0o666).toString(8), file, 'c', String(dev.major), String(dev.minor)]);
  }
  if (spec.ldconfig ?? libDirs.size > 0) {
    const conf = hostPath(root, '/etc/ld.so.conf');
    ensureParent(conf);
    if (!existsSync(conf)) writeFileSync(conf, [...libDirs].join('\n') + '\n');
    execFileSync('ldconfig', ['-r', root]);
  }
  return root;
}

/** The usual driver libraries of one version (x86-64). */
export function driverLibs(version = DRIVER_VERSION, names = ['libnvidia-ml', 'libcuda', 'libnvidia-ptxjitcompiler', 'libnvidia-cfg']): FakeLib[] {
  return names.map((n) => ({ file: `${n}.so.${version}`, soname: `${n}.so.1` }));
}

/** A complete small driver root: libs, nvidia-smi, control nodes, two GPUs (minors 0, 1), firmware, /proc. */
export function standardFakeRootSpec(version = DRIVER_VERSION, uvmMajor = 237): FakeRootSpec {
  return {
    libs: driverLibs(version),
    executables: ['/usr/bin/nvidia-smi', '/usr/bin/nvidia-cuda-mps-control'],
    files: {
      [`/lib/firmware/nvidia/${version}/gsp_ga10x.bin`]: 'fw',
      [`/lib/firmware/nvidia/${version}/gsp_tu10x.bin`]: 'fw',
      '/proc/driver/nvidia/version': `NVRM version: NVIDIA UNIX x86_64 Kernel Module  ${version}\n`,
    },
    devices: [
      { path: '/dev/nvidiactl', major: 195, minor: 255 },
      { path: '/dev/nvidia0', major: 195, minor: 0 },
      { path: '/dev/nvidia1', major: 195, minor: 1 },
      { path: '/dev/nvidia-uvm', major: uvmMajor, minor: 0 },
      { path: '/dev/nvidia-uvm-tools', major: uvmMajor, minor: 1 },
      { path: '/dev/nvidia-modeset', major: 195, minor: 254 },
    ],
  };
}

export function removeFakeRoot(root: string): void {
  rmSync(root, { recursive: true, force: true });
}
