/**
 * The code-cache loader: dist/runtime/main.js (what the launcher execs for a GPU create) is a link to main.cjs, this
 * module bundled as CommonJS by scripts/bundle-runtime.mjs (a CommonJS entry starts sooner than an ES module). It runs the real runtime, dist/runtime/main.bundle.cjs (the whole runtime in one
 * CommonJS script), through `vm.Script` with the V8 code cache main.bundle.cache that the build wrote for the exact
 * node binary (docs/performance.md): V8 then deserialises bytecode instead of parsing and compiling ~200 KB of
 * JavaScript on every call.
 *
 * The cache is an optimisation only, never a requirement: a missing, untrusted (not owned by root or by us, or
 * writable by group/others — the src/trust.ts bits), unreadable or oversized cache file is ignored, and a cache V8
 * rejects (another node binary, other V8 flags, another bundle: V8 checks its version, flag and source hashes and a
 * checksum) is ignored too (`script.cachedDataRejected`); the runtime then compiles from source as before. V8's
 * own source check is only the source's length, so the cache file starts with a header of ours binding it to the
 * bundle's exact bytes (the addon's contentHash: node:crypto alone costs a cold create ~3 ms to load) and to this
 * node (version, arch): an entry for another bundle is never offered to V8. Without the addon, no cache is used.
 * Nothing here reads the environment: the loader's behaviour depends on the files next to it only.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as vmConstants, Script } from 'node:vm';

export const BUNDLE_NAME = 'main.bundle.cjs';
export const CACHE_NAME = 'main.bundle.cache';
/** The runtime's cache is ~250 KB; anything far larger is not ours. */
export const MAX_CACHE_BYTES = 32 << 20;
/** The bundle refers to `import.meta.url` under this name (esbuild `define` in scripts/bundle-runtime.mjs). */
export const META_URL_NAME = '__nvr_import_meta_url';

/** The CommonJS wrapper, as Node's own: the bundle is a function of these. */
export function wrapSource(source: string): string {
  return `(function (exports, require, module, __filename, __dirname, ${META_URL_NAME}) {${source}\n})`;
}

/** Bits that make a file untrusted (as src/launcher-contract.json's NVR_UNTRUSTED_MODE_BITS: group/other write). */
const UNTRUSTED_MODE_BITS = 0o022;

/** The cache file's bytes when it is a regular file owned by root (or us), writable by nobody else; else undefined. */
export function readTrustedCache(file: string, euid: number = process.geteuid?.() ?? 0): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || (st.uid !== 0 && st.uid !== euid) || (st.mode & UNTRUSTED_MODE_BITS) !== 0) return undefined;
    if (st.size === 0 || st.size > MAX_CACHE_BYTES) return undefined;
    const buf = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) return undefined; // shrank under us
      off += n;
    }
    return buf;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

const MAGIC = 'nvr-code-cache 2\n';

interface HashAddon {
  contentHash(b: Buffer): string;
}
/** The project's addon (this module is dist/runtime/main.cjs or loader.js: ../../build/Release), or undefined. */
function hashAddon(): HashAddon | undefined {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    const addon = createRequire(import.meta.url)(join(here, '..', '..', 'build', 'Release', 'nvidia_runtime.node')) as Partial<HashAddon>;
    return typeof addon.contentHash === 'function' ? (addon as HashAddon) : undefined;
  } catch {
    return undefined;
  }
}

/** The header a cache of `bundle` (its bytes) carries for this node: magic, node version, arch, length, content hash. */
function cacheHeader(bundle: Buffer, addon: HashAddon): Buffer {
  return Buffer.from(`${MAGIC}${process.version} ${process.arch} ${bundle.length} ${addon.contentHash(bundle)}\n`);
}

/** The V8 data of `file` (header + V8 cached data) when its header is exactly `header`; else undefined. */
function cachedDataFor(file: Buffer | undefined, header: Buffer | undefined): Buffer | undefined {
  if (!file || !header || file.length <= header.length || !file.subarray(0, header.length).equals(header)) return undefined;
  return file.subarray(header.length);
}

export interface CompiledBundle {
  script: Script;
  /** The header a cache of this bundle carries; undefined without the addon (then no cache is read or written). */
  header: Buffer | undefined;
  /** True when a cache was offered and V8 rejected it; false when it was used; undefined when none was offered. */
  cachedDataRejected: boolean | undefined;
}

/** Compile the bundle; `cacheFile` is the cache file's content (header + V8 data), when there is one. */
export function compileBundle(bundleFile: string, cacheFile: Buffer | undefined): CompiledBundle {
  const bytes = readFileSync(bundleFile);
  const addon = hashAddon();
  const header = addon ? cacheHeader(bytes, addon) : undefined;
  const wrapped = wrapSource(bytes.toString('utf8'));
  const cachedData = cachedDataFor(cacheFile, header);
  const options = {
    filename: bundleFile,
    // A dynamic import() in the bundle resolves as it would in a module of the main context.
    importModuleDynamically: vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    ...(cachedData ? { cachedData } : {}),
  };
  const script = new Script(wrapped, options as ConstructorParameters<typeof Script>[1]);
  const cachedDataRejected = cacheFile === undefined ? undefined : cachedData === undefined || script.cachedDataRejected === true;
  return { script, header, cachedDataRejected };
}

type Require = (id: string) => unknown;

/**
 * Runs the compiled bundle as the module `mainUrl` (the loader's own URL: the bundle resolves build/, node_modules/
 * and its validators relative to it, as the unbundled dist/runtime/main.js did). `wrapRequire` is for the build's
 * training run only.
 */
export function runBundle(compiled: CompiledBundle, mainUrl: string, wrapRequire?: (r: Require) => Require): void {
  const fn = compiled.script.runInThisContext() as (...a: unknown[]) => void;
  const file = fileURLToPath(mainUrl);
  const req = createRequire(mainUrl);
  const module = { exports: {} };
  fn.call(module.exports, module.exports, wrapRequire ? wrapRequire(req) : req, module, file, dirname(file), mainUrl);
}

/** dist/runtime/main.cjs: run main.bundle.cjs, from main.bundle.cache when V8 accepts it. */
export function runRuntime(mainUrl: string): void {
  const dir = dirname(fileURLToPath(mainUrl));
  runBundle(compileBundle(join(dir, BUNDLE_NAME), readTrustedCache(join(dir, CACHE_NAME))), mainUrl);
}

function writeCacheFile(file: string, compiled: CompiledBundle): void {
  if (!compiled.header) throw new Error('the addon (build/Release/nvidia_runtime.node) cannot be loaded: no code cache without its contentHash');
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, Buffer.concat([compiled.header, compiled.script.createCachedData()]), { mode: 0o644 });
  renameSync(tmp, file);
}

/**
 * Build time only (scripts/bundle-runtime.mjs, in a child process of its own): compile the bundle, run it once on
 * `argv` (a GPU create against a mock driver root) with runc's execve replaced by writing the code cache, so that
 * the cache holds the bytecode of every function a GPU create runs, not just the top level. Exits 0 when the cache
 * was written, 3 when the runtime never reached execve (it then exited with its own error).
 */
export function trainCodeCache(mainUrl: string): void {
  const dir = dirname(fileURLToPath(mainUrl));
  const compiled = compileBundle(join(dir, BUNDLE_NAME), undefined);
  let produced = false;
  const produce = (): never => {
    produced = true;
    writeCacheFile(join(dir, CACHE_NAME), compiled);
    process.exit(0);
  };
  const wrapAddon = (addon: object): object => Object.create(addon, { execve: { value: produce } });
  const wrapReq = (r: Require): Require => (id: string) => {
    const m = r(id);
    if (id !== 'node:module' && id !== 'module') return m;
    const real = m as { createRequire: (u: string | URL) => Require };
    return {
      ...real,
      createRequire: (u: string | URL) => {
        const inner = real.createRequire(u);
        return (x: string) => (x.endsWith('.node') ? wrapAddon(inner(x) as object) : inner(x));
      },
    };
  };
  process.on('exit', (code) => {
    if (code === 0 && !produced) process.exitCode = 3;
  });
  runBundle(compiled, mainUrl, wrapReq);
}

/** Build time fallback: a cache of the top level only (when no training run is possible). */
export function writeTopLevelCodeCache(mainUrl: string): void {
  const dir = dirname(fileURLToPath(mainUrl));
  writeCacheFile(join(dir, CACHE_NAME), compileBundle(join(dir, BUNDLE_NAME), undefined));
}
