/** Paths of the built package (npm ci builds it); tests of executables fail loudly when it is missing. */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Where the executables under test are: the tree's dist/bin, or, when NVR_TEST_INSTALLED names an installed
 * package's prefix (/usr/lib/nvidia-runtime: test/e2e/installed.test.ts reruns end-to-end suites that way), its
 * dist/bin — so those suites exercise the installed files.
 */
export const DIST_ROOT = process.env.NVR_TEST_INSTALLED || PACKAGE_ROOT;

export function distBin(name: string): string {
  const path = join(DIST_ROOT, 'dist', 'bin', name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run npm ci (or npm run build) first`);
  return path;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `nvr-${prefix}-`));
}
