/**
 * Docker's daemon.json (FACTS §4.2): pure read-modify-write of the parsed document. Unknown keys and their order
 * are kept (JSON.parse/stringify preserve insertion order); only `runtimes.<name>`, `default-runtime` and
 * `features.cdi` are ours.
 */
import { NvrError } from '../errors.js';
import type { EngineOptions } from './configure.js';

export type JsonObject = { [key: string]: unknown };

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseDaemonJson(text: string, file: string): JsonObject {
  if (text.trim() === '') return {}; // an empty file is what `touch` leaves; dockerd treats it as no config
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new NvrError('INPUT', `${file}: not valid JSON: ${(e as Error).message}`, { fix: 'fix the file by hand (it was left untouched) and run the command again' });
  }
  if (!isObject(doc)) throw new NvrError('INPUT', `${file}: the document is not a JSON object`, { fix: 'daemon.json must be a JSON object ({...}); fix it by hand and run again' });
  return doc;
}

/** dockerd's own format: two-space indent, trailing newline. */
export function formatDaemonJson(doc: JsonObject): string {
  return JSON.stringify(doc, null, 2) + '\n';
}

function table(doc: JsonObject, key: string, file = 'daemon.json'): JsonObject {
  const v = doc[key];
  if (v === undefined) return (doc[key] = {});
  if (!isObject(v)) throw new NvrError('INPUT', `${file}: "${key}" is not an object`, { fix: `make "${key}" a JSON object or remove it` });
  return v;
}

/** Registers the runtime (legacy `{path, runtimeArgs}` form: dockerd runs it under the runc v2 shim as BinaryName). */
export function configureDocker(input: JsonObject, opts: EngineOptions): JsonObject {
  const doc = structuredClone(input);
  // A shim-v2 entry (runtimeType/options) cannot be combined with path: the entry is replaced, not merged.
  table(doc, 'runtimes')[opts.runtimeName] = { path: opts.runtimePath, runtimeArgs: [] };
  if (opts.setAsDefault) doc['default-runtime'] = opts.runtimeName;
  if (opts.cdiEnabled) table(doc, 'features').cdi = true;
  return doc;
}

/**
 * Removes what configureDocker adds. dockerd's SIGHUP reload applies only the keys present in the file (moby
 * daemon/reload.go `IsValueSet`): a deleted key would leave the old value live until a restart. So an emptied
 * `runtimes` stays as `{}`, and a `default-runtime` naming ours becomes "runc" (the built-in default). `features.cdi`
 * stays: it is engine-wide and may serve other CDI users.
 */
export function unconfigureDocker(input: JsonObject, opts: Pick<EngineOptions, 'runtimeName'>): JsonObject {
  const doc = structuredClone(input);
  const runtimes = doc.runtimes;
  if (isObject(runtimes)) delete runtimes[opts.runtimeName];
  if (doc['default-runtime'] === opts.runtimeName) doc['default-runtime'] = 'runc';
  return doc;
}
