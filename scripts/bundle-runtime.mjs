#!/usr/bin/env node
// Build step: dist/runtime/main.js (what the launcher execs for a GPU create) and dist/runtime/prestart-hook.js (what
// it execs as nvidia-container-runtime-hook) each become one bundled file. Loading one
// module instead of ~60 ES modules saves ~50 ms per GPU create (docs/performance.md). Lazily required packages
// (winston, yaml, ajv) and the addon stay outside the bundle and load from node_modules/ and build/ as before.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const runtimeDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'runtime');
for (const entry of ['main.js', 'prestart-hook.js']) await bundle(join(runtimeDir, entry));

async function bundle(main) {
await build({
  entryPoints: [main],
  outfile: main,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  // Bundled CommonJS dependencies call require(); give the ES module one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
});
}
