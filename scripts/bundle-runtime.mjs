#!/usr/bin/env node
// Build step: what the launcher execs for a GPU create (dist/runtime/main.js) and as nvidia-container-runtime-hook
// (dist/runtime/prestart-hook.js) each become one bundled file; loading one module instead of ~60 ES modules saves
// ~50 ms per GPU create (docs/performance.md). Lazily required packages (winston, yaml, ajv) and the addon stay
// outside the bundle and load from node_modules/ and build/ as before.
//
// The runtime (main.js) goes one step further: its code is bundled as one CommonJS script, main.bundle.cjs, and
// main.js is the small code-cache loader (src/runtime/loader.ts) that runs it through vm.Script with the V8 code
// cache main.bundle.cache written here, for this very node binary, by a training run: a GPU create against a mock
// driver root, with runc's execve replaced by writing the cache — so the cache holds the bytecode of every function
// a GPU create runs. The loader ignores a cache V8 rejects. When the CommonJS bundle cannot be built (e.g. top-level
// await in the runtime), main.js stays the plain ES module bundle, as before.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const runtimeDir = join(root, 'dist', 'runtime');
const BUNDLE = join(runtimeDir, 'main.bundle.cjs');
const CACHE = join(runtimeDir, 'main.bundle.cache');
const META_URL_NAME = '__nvr_import_meta_url'; // src/runtime/loader.ts META_URL_NAME
process.umask(0o022);

const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning' };
// Bundled CommonJS dependencies call require(); give the ES module one.
const esmBanner = { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" };

await build({ ...common, entryPoints: [join(runtimeDir, 'prestart-hook.js')], outfile: join(runtimeDir, 'prestart-hook.js'), allowOverwrite: true, format: 'esm', banner: esmBanner });

const main = join(runtimeDir, 'main.js');
// main.js is, after a build with a code cache, a link to main.cjs (below): tsc then wrote its output through it.
const mainSource = realpathSync(main);
const mainCjs = join(runtimeDir, 'main.cjs');
rmSync(CACHE, { force: true });
let cjs = true;
try {
  await build({ ...common, entryPoints: [mainSource], outfile: BUNDLE, format: 'cjs', logLevel: 'error', define: { 'import.meta.url': META_URL_NAME } });
} catch (e) {
  cjs = false;
  console.warn(`bundle-runtime: the runtime cannot be a CommonJS script (${String(e.message).split('\n')[0]}): main.js stays an ES module bundle without a code cache`);
}
if (!cjs) {
  rmSync(BUNDLE, { force: true });
  const source = readFileSync(mainSource);
  rmSync(main, { force: true });
  rmSync(mainCjs, { force: true });
  writeFileSync(main, source);
  await build({ ...common, entryPoints: [main], outfile: main, allowOverwrite: true, format: 'esm', banner: esmBanner });
} else {
  // The loader, one CommonJS file with no imports but node's own: main.cjs. main.js (the name the launcher execs) is
  // a link to it: node resolves the entry's real path, so it loads as CommonJS, which starts ~8 ms sooner than an
  // ES module entry (no ES module loader on the way; measured on this VM).
  await build({
    ...common,
    stdin: { contents: "import { runRuntime } from './loader.js';\nimport { pathToFileURL } from 'node:url';\nrunRuntime(pathToFileURL(__filename).href);\n", resolveDir: runtimeDir, sourcefile: 'main.cjs', loader: 'js' },
    outfile: mainCjs,
    allowOverwrite: true,
    format: 'cjs',
    // The loader finds the addon relative to itself (import.meta.url, which CommonJS spells through __filename).
    banner: { js: "var __nvr_loader_url = require('node:url').pathToFileURL(__filename).href;" },
    define: { 'import.meta.url': '__nvr_loader_url' },
  });
  if (mainSource !== mainCjs) {
    rmSync(main, { force: true });
    symlinkSync('main.cjs', main);
  }
  trainCodeCache();
}

/** The training run (see the header); falls back to a top-level-only cache when it cannot run. */
function trainCodeCache() {
  const loaderUrl = pathToFileURL(join(runtimeDir, 'loader.js')).href;
  const mainUrl = pathToFileURL(mainCjs).href;
  const viewDir = '/run/nvidia-runtime';
  const viewsBefore = new Set(existsSync(viewDir) ? readdirSync(viewDir) : []);
  const dir = mkdtempSync(join(tmpdir(), 'nvr-codecache-'));
  let trained = false;
  try {
    const driverRoot = join(dir, 'driver');
    const ctk = spawnSync(process.execPath, [join(root, 'dist', 'bin', 'nvidia-ctk.js'), 'mock-driver', '--root', driverRoot, '--gpus', '8'], { stdio: 'ignore' });
    if (ctk.status === 0) {
      const runc = join(dir, 'runc');
      writeFileSync(runc, '#!/bin/sh\nexit 0\n');
      chmodSync(runc, 0o755);
      const config = join(dir, 'config.toml');
      writeFileSync(config, `[nvidia-container-cli]\nroot = ${JSON.stringify(driverRoot)}\n[nvidia-container-runtime]\nruntimes = [${JSON.stringify(runc)}]\n`);
      const bundleDir = join(dir, 'bundle');
      mkdirSync(join(bundleDir, 'rootfs'), { recursive: true });
      const spec = {
        ociVersion: '1.0.2-dev',
        process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['true'], env: ['PATH=/usr/bin:/bin', 'NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_DRIVER_CAPABILITIES=all'], cwd: '/' },
        root: { path: 'rootfs' },
        mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
        linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }] },
      };
      writeFileSync(join(bundleDir, 'config.json'), JSON.stringify(spec));
      const r = spawnSync(
        process.execPath,
        ['--input-type=module', '-e', `import { trainCodeCache } from ${JSON.stringify(loaderUrl)}; trainCodeCache(${JSON.stringify(mainUrl)});`, 'main.js', 'create', '--bundle', bundleDir, 'nvr-codecache'],
        { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NVIDIA_CTK_CONFIG_FILE_PATH: config }, stdio: ['ignore', 'ignore', 'pipe'], cwd: dir },
      );
      trained = r.status === 0 && existsSync(CACHE);
      if (!trained) console.warn(`bundle-runtime: code cache training run failed (exit ${r.status}): ${String(r.stderr).trim().split('\n')[0]}`);
    } else {
      console.warn('bundle-runtime: cannot create a mock driver root for the code cache training run');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    // The training run recorded a launcher view for its temporary config; it is of no use to anyone.
    if (existsSync(viewDir)) {
      for (const f of readdirSync(viewDir)) {
        if (viewsBefore.has(f) || !f.endsWith('.view')) continue;
        try {
          if (readFileSync(join(viewDir, f)).includes(dir)) rmSync(join(viewDir, f), { force: true });
        } catch {
          // not ours to judge
        }
      }
    }
  }
  if (!trained) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { writeTopLevelCodeCache } from ${JSON.stringify(loaderUrl)}; writeTopLevelCodeCache(${JSON.stringify(mainUrl)});`], { stdio: 'inherit' });
    if (r.status !== 0) console.warn('bundle-runtime: no code cache written; the runtime compiles from source');
  }
}
