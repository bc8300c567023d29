/**
 * The one trust rule for every file whose content decides what runs, or is mounted, as root (config.toml, CDI
 * specs and their directories, the runc binary, hooks named by CDI specs, the launcher view): after following
 * links, the file and the directory holding it are owned by root (or by the user we run as) and writable by nobody
 * else. A link into a directory others can write to fails the rule, since the target could be swapped. The bits
 * are shared with the native launcher (src/launcher-contract.json).
 */
import { realpathSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { isTrusted } from './launcher-contract.js';

export interface TrustProblem {
  /** What is wrong, naming the path: "… is writable by group or others (mode 666)". */
  problem: string;
  fix: string;
}

function describe(path: string, st: Stats, euid: number): TrustProblem {
  const fix = `chown root ${path} && chmod go-w ${path}`;
  if (st.uid !== 0 && st.uid !== euid) return { problem: `${path} is owned by uid ${st.uid}, not root`, fix };
  return { problem: `${path} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`, fix };
}

/** Why `path` (a file, or a directory with `{ directory: true }`) cannot be trusted; undefined when it can. */
export function trustProblem(path: string, options: { euid?: number; directory?: boolean } = {}): TrustProblem | undefined {
  const euid = options.euid ?? process.geteuid?.() ?? 0;
  let real: string;
  try {
    real = realpathSync(path);
  } catch (e) {
    return { problem: `${path} cannot be resolved (${(e as NodeJS.ErrnoException).code ?? String(e)})`, fix: `check ${path}` };
  }
  const chain = options.directory ? [real] : [real, dirname(real)];
  for (const p of chain) {
    const st = statSync(p);
    if (!isTrusted(st, euid)) return describe(p, st, euid);
  }
  return undefined;
}
