/**
 * CRI-O (FACTS §4.4): a runtime handler `[crio.runtime.runtimes.<name>]`. CRI-O merges its drop-ins key by key, so
 * a drop-in holds only our keys. Pure functions; configure.ts does the I/O.
 */
import type { EngineOptions } from './configure.js';
import { cloneTable, findTable, isTable, pruneEmpty, subTable, type TomlTable } from './containerd.js';

/** The handler's state directory: runc's `--root` for our containers, apart from other handlers'. */
export const CRIO_RUNTIME_ROOT = '/run/nvidia-runtime';
const RUNTIMES = ['crio', 'runtime', 'runtimes'];

/** Adds (or updates) our handler; keys already on it (monitor_path, allowed_annotations…) are kept. */
export function configureCrio(input: TomlTable, opts: EngineOptions & { file?: string }): TomlTable {
  const doc = cloneTable(input);
  const file = opts.file ?? 'crio.conf';
  const runtimes = subTable(doc, RUNTIMES, file);
  const existing = runtimes[opts.runtimeName];
  runtimes[opts.runtimeName] = {
    ...(isTable(existing) ? existing : {}),
    runtime_path: opts.runtimePath,
    runtime_type: 'oci',
    runtime_root: CRIO_RUNTIME_ROOT,
  };
  if (opts.setAsDefault) subTable(doc, ['crio', 'runtime'], file).default_runtime = opts.runtimeName;
  return doc;
}

/** Removes our handler and `default_runtime` when it names it, and the tables left empty. */
export function unconfigureCrio(input: TomlTable, opts: Pick<EngineOptions, 'runtimeName'>): TomlTable {
  const doc = cloneTable(input);
  const runtimes = findTable(doc, RUNTIMES);
  if (runtimes) delete runtimes[opts.runtimeName];
  const runtime = findTable(doc, ['crio', 'runtime']);
  if (runtime?.default_runtime === opts.runtimeName) delete runtime.default_runtime;
  pruneEmpty(doc, RUNTIMES);
  return doc;
}
