/** Paths of the built package (npm ci builds it); tests of executables fail loudly when it is missing. */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function distBin(name: string): string {
  const path = join(PACKAGE_ROOT, 'dist', 'bin', name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run npm ci (or npm run build) first`);
  return path;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `nvr-${prefix}-`));
}
