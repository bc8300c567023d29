/**
 * CUDA forward compatibility (FACTS.md §1.10): an image may ship a newer user-mode driver in
 * /usr/local/cuda/compat (libcuda.so.<newer>, libnvidia-ptxjitcompiler.so.<newer>, …) to run on an older host
 * driver. Those files come from the image, so they are only ever looked up inside its rootfs (resolveInRoot: a
 * symlink in the image never leads to a host file — the CVE-2025-23266 lesson), and only libraries whose major
 * version is newer than the host driver's are used: an older or equal one would shadow the host's driver.
 */
import { readdirSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { resolveInRoot } from './root.js';

export const COMPAT_DIR = '/usr/local/cuda/compat';

/** One compat library of the image: its file name and where it is on the host (under the rootfs). */
export interface CompatLibrary {
  name: string;
  hostPath: string;
}

/** The major of a library file name ("libcuda.so.560.35.03" → 560), or undefined. */
export function libraryMajor(name: string): number | undefined {
  const m = /\.so\.(\d+)(\.|$)/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * The image's compat libraries (`lib*.so.<digits>…` regular files of COMPAT_DIR, resolved inside `rootfs`) whose
 * major is greater than the host driver's, sorted by name. Links to files elsewhere in the image are followed inside
 * the rootfs and mounted under the link's name; anything that is not a regular file is skipped.
 */
export function findCompatLibraries(rootfs: string, hostDriverVersion: string): CompatLibrary[] {
  const hostMajor = libraryMajor(`x.so.${hostDriverVersion}`);
  const dir = resolveInRoot(rootfs, COMPAT_DIR);
  if (hostMajor === undefined || !dir.exists) return [];
  let names: string[];
  try {
    names = readdirSync(dir.hostPath).sort();
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const major = /^lib[^/]*\.so\.\d/.test(name) ? libraryMajor(name) : undefined;
    if (major === undefined || major <= hostMajor) return [];
    const file = resolveInRoot(rootfs, posix.join(dir.path, name));
    try {
      return file.exists && statSync(file.hostPath).isFile() ? [{ name, hostPath: file.hostPath }] : [];
    } catch {
      return [];
    }
  });
}
