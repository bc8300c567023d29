/**
 * Reading CDI spec files: `*.json` and `*.yaml` directly in a spec directory (non-recursive; other extensions
 * are ignored, as upstream does), parsed by extension and validated (validate.ts). A spec decides what is mounted
 * and which hooks run as root, so a directory or file that someone other than root could write is refused
 * (src/trust.ts), as config.toml is.
 */
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, statSync, type BigIntStats } from 'node:fs';
import { extname, join } from 'node:path';
import { createRequire } from 'node:module';
import { NvrError } from '../errors.js';
import { trustProblem } from '../trust.js';
import { lookupCachedSpec, specIdentity, storeCachedSpec, textHash, type CdiCacheOptions } from './cache.js';
import type { CdiSpec } from './types.js';

/** yaml is loaded on first use: the runtime imports this module on every GPU create, most never read a YAML spec. */
function parseYaml(text: string, options: { uniqueKeys: boolean }): unknown {
  return (createRequire(import.meta.url)('yaml') as { parse: (t: string, o: object) => unknown }).parse(text, options);
}
import { specProblem } from './validate.js';

export const DEFAULT_SPEC_DIRS: readonly string[] = ['/etc/cdi', '/var/run/cdi'];
export const SPEC_EXTENSIONS: readonly string[] = ['.json', '.yaml'];
/** A spec is a few hundred KiB at most; anything far larger is not one. */
export const MAX_SPEC_BYTES = 16 << 20;

export function isSpecFileName(name: string): boolean {
  return SPEC_EXTENSIONS.includes(extname(name));
}

/** Spec files of one directory, sorted by name; [] when the directory does not exist. Throws NvrError IO otherwise. */
export function listSpecFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new NvrError('IO', `CDI spec directory ${dir}: cannot be read (${code ?? String(e)})`, { fix: 'check its permissions', cause: e });
  }
  const untrusted = trustProblem(dir, { directory: true });
  if (untrusted) {
    throw new NvrError('INPUT', `CDI spec directory ${dir}: not trusted: ${untrusted.problem}: none of its specs is used`, { fix: untrusted.fix });
  }
  return names
    .filter(isSpecFileName)
    .sort()
    .map((n) => join(dir, n))
    .filter((f) => {
      try {
        return statSync(f).isFile();
      } catch {
        return true; // let reading it report the problem
      }
    });
}

/** Parse spec text by the file's extension (`.json` strictly as JSON; anything else as YAML). */
export function parseSpecText(text: string, file: string): unknown {
  try {
    return extname(file) === '.json' ? JSON.parse(text) : parseYaml(text, { uniqueKeys: true });
  } catch (e) {
    throw new NvrError('INPUT', `CDI spec ${file}: not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'} (${(e as Error).message.split('\n')[0]})`, {
      fix: 'fix the syntax or remove the file',
    });
  }
}

export interface ReadSpecOptions {
  /** The parsed-spec cache (src/cdi/cache.ts) for YAML specs; `false` to parse every time. Default: the cache. */
  cache?: CdiCacheOptions | false;
}

/**
 * Read, parse and validate one spec file; NvrError (INPUT, or IO when unreadable) naming the file and field. A YAML
 * spec's parsed document may come from the parsed-spec cache (same document, validated the same way).
 */
export function readSpecFile(file: string, options: ReadSpecOptions = {}): CdiSpec {
  const untrusted = trustProblem(file);
  if (untrusted) throw new NvrError('INPUT', `CDI spec ${file}: not trusted: ${untrusted.problem}: refusing to use it`, { fix: untrusted.fix });
  const cache = options.cache === false || extname(file) === '.json' ? undefined : options.cache ?? {};
  let text: string;
  let st: BigIntStats;
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    st = fstatSync(fd, { bigint: true });
    if (st.size > BigInt(MAX_SPEC_BYTES)) throw new NvrError('INPUT', `CDI spec ${file}: larger than ${MAX_SPEC_BYTES} bytes`, { fix: 'this is not a CDI spec; remove it' });
    text = readFileSync(fd, 'utf8');
  } catch (e) {
    if (e instanceof NvrError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new NvrError('IO', `CDI spec ${file}: cannot be read (${code ?? String(e)})`, { fix: 'check the file and its permissions', cause: e });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  const hash = cache ? textHash(text) : '';
  if (cache) {
    // A hit is the document parsing would give; it is validated as strictly, and one that fails is only ignored.
    const cached = lookupCachedSpec(file, specIdentity(st), hash, cache);
    if (cached !== undefined && specProblem(cached) === undefined) return cached as CdiSpec;
  }
  const doc = parseSpecText(text, file);
  const p = specProblem(doc);
  if (p) {
    throw new NvrError('INPUT', `CDI spec ${file}: ${p.field ? `${p.field}: ` : ''}${p.reason}`, { fix: 'fix the spec (see docs/cdi.md) or remove the file' });
  }
  if (cache) storeCachedSpec(file, st, hash, doc, cache);
  return doc as CdiSpec;
}
