import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/bin (or, when run from src/ under jest, the same place): where the shipped executables are. */
export function distBinDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bin');
}
