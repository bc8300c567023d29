/**
 * runc's command line, read the way runc reads it (SECURITY.md R8): global flags, then the verb (the first
 * non-flag word), then the verb's own flags and arguments. Only `create` and `run` are intercepted; any other
 * argv is passed through untouched, so this module only has to be exact about what decides interception:
 * where the verb is, which bundle (and spec file) runc will read, and how many extra fds it keeps.
 *
 * The grammar is that of runc 1.x (urfave/cli v1 on Go's `flag` package), checked against runc 1.1.5:
 * - `-x` and `--x` are the same flag; a value is written `--x v` or `--x=v`;
 * - a flag that takes a value consumes the next word unconditionally (even `create`, even `-b`) unless `=` is used;
 *   a boolean flag never consumes the next word (`--debug=false` is the only way to give it a value);
 * - `--` ends the flags and is dropped; `-` and `` are words, not flags;
 * - global flag parsing stops at the first word that is not a flag: that word is the verb;
 * - `create`/`run` flags may also follow the container id (urfave/cli v1 "reorderArgs"), `exec` flags may not;
 * - `--help`/`--version` anywhere among the global flags (or `--help` among the command flags) print and exit.
 *
 * The flag tables are src/launcher-contract.json, shared with the native launcher, which passes a call straight
 * to runc only in the forms it can read with certainty and hands every other one to us.
 *
 * Choices where runc would just fail (documented, tested):
 * - An unknown flag is taken as boolean unless written `--x=y`, and does not stop interception: a newer runc may
 *   know it, and guessing "takes a value" could swallow the verb. crun's global value flags (`--cgroup-manager`,
 *   `--log-level`) are known, because podman passes `--cgroup-manager disabled` to whichever runtime it uses.
 * - A known flag with a value runc rejects (`--preserve-fds x`, `--debug=yes`), or a create/run without exactly
 *   one container id, is not intercepted: runc will refuse it before reading the bundle, so we must not touch it.
 */
import { resolve } from 'node:path';
import { CREATE_VERB_FLAGS, EXEC_FLAGS, GLOBAL_FLAGS, type FlagTable } from '../launcher-contract.js';

export interface RuncGlobalFlags {
  root?: string;
  log?: string;
  logFormat?: string;
  /** crun only. */
  logLevel?: string;
  /** runc ≤ 1.1. */
  criu?: string;
  rootless?: string;
  /** crun only; podman passes it with --cgroups=disabled. */
  cgroupManager?: string;
  debug: boolean;
  systemdCgroup: boolean;
  help: boolean;
  version: boolean;
  /** Unknown global flags as written (`--foo`, `--foo=bar`), for a warning in the log. */
  unknown: string[];
}

export interface RuncArgv {
  /** Index of the verb in argv, -1 when there is none. */
  verbIndex: number;
  verb?: string;
  globalFlags: RuncGlobalFlags;
  /** create/run only: absolute bundle directory (`--bundle`/`-b`, default cwd, as runc does). */
  bundle?: string;
  /** create/run only: absolute path of the spec runc will read (`--config`, relative to the bundle; default
   *  `<bundle>/config.json`). `--config` exists in runc ≥ 1.3 only. */
  configPath?: string;
  /** create/run: the container id (the first argument). */
  containerId?: string;
  pidFile?: string;
  consoleSocket?: string;
  /** create/run/exec `--preserve-fds N`: fds 3 … 3+N-1 (after LISTEN_FDS) must survive our exec of runc. */
  preserveFds: number;
  /** create/run flags we did not recognise, as written. */
  unknownCommandFlags: string[];
  /** True when runc would create a container from the bundle: the only case where config.json may be edited. */
  intercept: boolean;
}

const CREATE_FLAGS: FlagTable = CREATE_VERB_FLAGS.create;
const RUN_FLAGS: FlagTable = CREATE_VERB_FLAGS.run;

/** A flag word split like Go's flag package does; undefined for a word that is not a flag. */
interface FlagWord {
  name: string;
  value?: string;
}
function splitFlag(word: string): FlagWord | undefined {
  if (word.length < 2 || word[0] !== '-' || word === '--') return undefined;
  const body = word.slice(word[1] === '-' ? 2 : 1);
  const eq = body.indexOf('=', 1); // Go looks for '=' from the second character on
  return eq < 0 ? { name: body } : { name: body.slice(0, eq), value: body.slice(eq + 1) };
}

function canonical(table: FlagTable, name: string): string | undefined {
  const full = table.aliases[name] ?? name;
  return Object.hasOwn(table.kinds, full) ? full : undefined;
}

/** Go's strconv.ParseBool. */
function goBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return undefined;
}

/** Go's strconv.ParseInt(s, 0, 64) as used by flag.Int: decimal, 0x, 0o, 0b, or leading-0 octal. */
function goInt(value: string): number | undefined {
  const m = /^([+-]?)(?:0[xX]([0-9a-fA-F]+)|0[bB]([01]+)|0[oO]?([0-7]+)|([1-9][0-9]*)|(0))$/.exec(value);
  if (!m) return undefined;
  const [, sign, hex, bin, oct, dec] = m;
  const n = hex !== undefined ? parseInt(hex, 16) : bin !== undefined ? parseInt(bin, 2)
    : oct !== undefined ? parseInt(oct, 8) : dec !== undefined ? parseInt(dec, 10) : 0;
  return Number.isSafeInteger(n) ? (sign === '-' ? -n : n) : undefined;
}

interface Scan {
  values: Map<string, string>;
  bools: Map<string, boolean>;
  unknown: string[];
  /** Known flags whose value runc would reject. */
  invalid: string[];
  /** Index (in the scanned words) of the first word after the flags. */
  end: number;
}

/** Go's FlagSet.Parse over words[start…], except that unknown flags are recorded instead of failing. */
function scanFlags(words: readonly string[], start: number, table: FlagTable): Scan {
  const scan: Scan = { values: new Map(), bools: new Map(), unknown: [], invalid: [], end: words.length };
  let i = start;
  while (i < words.length) {
    const word = words[i]!;
    if (word === '--') {
      i++;
      break;
    }
    const flag = splitFlag(word);
    if (!flag) break;
    i++;
    const name = canonical(table, flag.name);
    if (name === undefined) {
      scan.unknown.push(word);
    } else if (table.kinds[name] === 'value') {
      const value = flag.value ?? (i < words.length ? words[i++] : undefined);
      if (value === undefined) scan.invalid.push(word);
      else scan.values.set(name, value);
    } else {
      const value = flag.value === undefined ? true : goBool(flag.value);
      if (value === undefined) scan.invalid.push(word);
      else scan.bools.set(name, value);
    }
  }
  scan.end = i;
  return scan;
}

/**
 * urfave/cli v1 `reorderArgs`: known command flags (and the word after a flag written without `=`, unless that
 * word is itself a known flag) move to the front; everything else keeps its order after them; a `--` moves to the
 * front of the rest, with every word after it. This is why `create ID --bundle B` works in runc.
 */
function reorderArgs(words: readonly string[], table: FlagTable): string[] {
  const isKnownFlag = (w: string): boolean => {
    const f = w !== '-' && w !== '--' && w.startsWith('-') ? splitFlag(w) : undefined;
    return f !== undefined && canonical(table, f.name) !== undefined;
  };
  const flags: string[] = [];
  let rest: string[] = [];
  let mayBeValue = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (mayBeValue && !isKnownFlag(w)) {
      mayBeValue = false;
      flags.push(w);
    } else if (w === '--') {
      rest = ['--', ...rest, ...words.slice(i + 1)];
      break;
    } else if (isKnownFlag(w)) {
      flags.push(w);
      mayBeValue = !w.includes('=');
    } else {
      rest.push(w);
    }
  }
  return [...flags, ...rest];
}

/** Global flags that carry a value, by field name → flag name. */
const GLOBAL_VALUES = {
  root: 'root', log: 'log', logFormat: 'log-format', logLevel: 'log-level', criu: 'criu', rootless: 'rootless',
  cgroupManager: 'cgroup-manager',
} as const;

function readGlobals(scan: Scan): RuncGlobalFlags {
  const b = (k: string): boolean => scan.bools.get(k) ?? false;
  const flags: RuncGlobalFlags = {
    debug: b('debug'), systemdCgroup: b('systemd-cgroup'), help: b('help'), version: b('version'),
    unknown: scan.unknown,
  };
  for (const [key, name] of Object.entries(GLOBAL_VALUES) as [keyof typeof GLOBAL_VALUES, string][]) {
    const value = scan.values.get(name);
    if (value !== undefined) flags[key] = value;
  }
  return flags;
}

/** `--preserve-fds` (0 when absent). A value runc would reject is recorded as invalid; a negative count keeps nothing. */
function preserveFdsOf(scan: Scan): number {
  const raw = scan.values.get('preserve-fds');
  if (raw === undefined) return 0;
  const n = goInt(raw);
  if (n === undefined) {
    scan.invalid.push(`--preserve-fds=${raw}`);
    return 0;
  }
  return Math.max(0, n);
}

/**
 * Parse runc's argv (without the node/program name). `cwd` is the directory runc would start in: the default
 * bundle. Pure; never throws.
 */
export function parseRuncArgv(argv: readonly string[], cwd: string): RuncArgv {
  const globalScan = scanFlags(argv, 0, GLOBAL_FLAGS);
  const globalFlags = readGlobals(globalScan);
  const verbIndex = globalScan.end < argv.length ? globalScan.end : -1;
  const verb = verbIndex >= 0 ? argv[verbIndex] : undefined;
  const result: RuncArgv = {
    verbIndex, globalFlags, preserveFds: 0, unknownCommandFlags: [], intercept: false,
    ...(verb === undefined ? {} : { verb }),
  };
  const rest = argv.slice(verbIndex + 1);

  if (verb === 'exec') {
    // exec's flags stop at the container id (SkipArgReorder): what follows is the process's own argv.
    result.preserveFds = preserveFdsOf(scanFlags(rest, 0, EXEC_FLAGS));
    return result;
  }
  if (verb !== 'create' && verb !== 'run') return result;

  const words = reorderArgs(rest, verb === 'run' ? RUN_FLAGS : CREATE_FLAGS);
  const scan = scanFlags(words, 0, verb === 'run' ? RUN_FLAGS : CREATE_FLAGS);
  const args = words.slice(scan.end);
  // runc only chdirs into a non-empty --bundle, and then reads the spec relative to it.
  const bundle = resolve(cwd, scan.values.get('bundle') || '.');
  result.bundle = bundle;
  result.configPath = resolve(bundle, scan.values.get('config') || 'config.json');
  if (args[0] !== undefined) result.containerId = args[0];
  const pidFile = scan.values.get('pid-file');
  if (pidFile !== undefined) result.pidFile = pidFile;
  const consoleSocket = scan.values.get('console-socket');
  if (consoleSocket !== undefined) result.consoleSocket = consoleSocket;
  result.preserveFds = preserveFdsOf(scan);
  result.unknownCommandFlags = scan.unknown;
  result.intercept =
    !globalFlags.help && !globalFlags.version && globalScan.invalid.length === 0 &&
    !(scan.bools.get('help') ?? false) && scan.invalid.length === 0 && args.length === 1;
  return result;
}
