/**
 * `nvidia-ctk system create-dev-char-symlinks` (docs/troubleshooting.md): /dev/char/MAJOR:MINOR links for the NVIDIA
 * device nodes, which udev does not make because the driver (or nvidia-modprobe) creates those nodes itself. runc's
 * systemd cgroup driver turns a container's device rules into systemd DeviceAllow= entries by these links; without
 * them a `systemctl daemon-reload` drops the rules of GPUs that a prestart hook added and the container loses them.
 * Flags and environment variables follow NVIDIA's nvidia-ctk 1.17.9. Host access is injected so tests can run the
 * command in-process; the planning is pure (src/host/dev-char.ts), the nodes are found by src/host/dev-char-nodes.ts.
 */
import { lstatSync, mkdirSync, readlinkSync, realpathSync, renameSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { errnoOf, NvrError } from '../errors.js';
import { DEFAULT_DEV_CHAR_PATH, planLinks, type LinkAction, type LinkPlan, type LinkState } from '../host/dev-char.js';
import { discoverDevCharNodes, type Discovery } from '../host/dev-char-nodes.js';
import { normalizeRoot } from '../host/root.js';
import { parseGoBool } from '../request/parse.js';

const COMMAND = 'create-dev-char-symlinks';

export interface DevCharArgs {
  'dev-char-path'?: string;
  'driver-root'?: string;
  'create-all'?: boolean;
  'load-kernel-modules'?: boolean;
  'create-device-nodes'?: boolean;
  'dry-run'?: boolean;
}

export interface DevCharOptions {
  /** Absolute. */
  devCharPath: string;
  /** Normalised ("/" or "/run/nvidia/driver"). */
  driverRoot: string;
  createAll: boolean;
  loadKernelModules: boolean;
  createDeviceNodes: boolean;
  dryRun: boolean;
}

/** NVIDIA's environment variables of each flag, first one set wins (a flag on the command line beats them all). */
export const ENV_VARS = {
  'dev-char-path': ['NVIDIA_CTK_DEV_CHAR_PATH', 'DEV_CHAR_PATH'],
  'driver-root': ['NVIDIA_DRIVER_ROOT', 'DRIVER_ROOT'],
  'create-all': ['CREATE_ALL'],
  'load-kernel-modules': ['LOAD_KERNEL_MODULES'],
  'create-device-nodes': ['CREATE_DEVICE_NODES'],
  'dry-run': ['DRY_RUN'],
} as const;

type Env = Readonly<Record<string, string | undefined>>;

function fromEnv(env: Env, flag: keyof typeof ENV_VARS): { name: string; value: string } | undefined {
  for (const name of ENV_VARS[flag]) {
    const value = env[name];
    if (value !== undefined) return { name, value };
  }
  return undefined;
}

function pathOption(args: DevCharArgs, env: Env, flag: 'dev-char-path' | 'driver-root', fallback: string): string {
  const given = args[flag];
  if (given !== undefined) {
    if (given === '') throw new NvrError('INPUT', `--${flag} is empty`, { fix: `pass --${flag} DIR (default ${fallback})` });
    return given;
  }
  const e = fromEnv(env, flag);
  // As with NVIDIA's toolkit an empty variable means the default.
  return e !== undefined && e.value !== '' ? e.value : fallback;
}

function boolOption(args: DevCharArgs, env: Env, flag: 'create-all' | 'load-kernel-modules' | 'create-device-nodes' | 'dry-run'): boolean {
  const given = args[flag];
  if (given !== undefined) return given;
  const e = fromEnv(env, flag);
  if (e === undefined || e.value === '') return false;
  const b = parseGoBool(e.value);
  if (b === undefined) {
    throw new NvrError('INPUT', `${e.name}=${JSON.stringify(e.value)} (for --${flag}) is not a boolean`, { fix: `set ${e.name} to true or false (1/0), or unset it` });
  }
  return b;
}

/** The options the flags and environment describe, and the warnings about what we accept but never do. */
export function resolveDevCharOptions(args: DevCharArgs, env: Env): { options: DevCharOptions; warnings: string[] } {
  const options: DevCharOptions = {
    devCharPath: resolve(pathOption(args, env, 'dev-char-path', DEFAULT_DEV_CHAR_PATH)),
    driverRoot: normalizeRoot(pathOption(args, env, 'driver-root', '/')),
    createAll: boolOption(args, env, 'create-all'),
    loadKernelModules: boolOption(args, env, 'load-kernel-modules'),
    createDeviceNodes: boolOption(args, env, 'create-device-nodes'),
    dryRun: boolOption(args, env, 'dry-run'),
  };
  const warnings: string[] = [];
  if (options.loadKernelModules) {
    warnings.push('--load-kernel-modules is ignored: nvidia-runtime never loads kernel modules; load them first (nvidia-modprobe, or modprobe nvidia nvidia-uvm)');
  }
  if (options.createDeviceNodes) {
    warnings.push('--create-device-nodes is ignored: nvidia-runtime never creates device nodes on the host; create them first (nvidia-modprobe -c 0 -u, or run nvidia-smi)');
  }
  return { options, warnings };
}

export interface LinkDirOps {
  /** 'dir', 'missing', or a description of what else is there ("a regular file"). */
  dirState: (dir: string) => 'dir' | 'missing' | string;
  mkdir: (dir: string) => void;
  /** The directory's real path (symlinks resolved); the lexical path when it does not exist. */
  realpath: (dir: string) => string;
  entry: (path: string) => LinkState;
  /** Create a new link; fails when something is at `path`. */
  symlink: (target: string, path: string) => void;
  /** Replace the link at `path` atomically (a link to `target` under a temporary name in the same directory, then rename). */
  replace: (target: string, path: string) => void;
}

export interface SystemDeps {
  env: Env;
  discover: (driverRoot: string, createAll: boolean) => Discovery;
  fs: LinkDirOps;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

function describeStat(st: { isFile(): boolean; isDirectory(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean; isSocket(): boolean }): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a fifo';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

const asRoot = 'run it as root (or pass --dev-char-path with a directory you can write)';

export const defaultLinkDirOps: LinkDirOps = {
  dirState: (dir) => {
    try {
      const st = statSync(dir);
      return st.isDirectory() ? 'dir' : describeStat(st);
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return 'missing';
      throw new NvrError('IO', `${COMMAND}: cannot read the link directory ${dir}: ${errnoOf(e)}`, { fix: asRoot, cause: e });
    }
  },
  mkdir: (dir) => {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw new NvrError('IO', `${COMMAND}: cannot create the link directory ${dir}: ${errnoOf(e)}`, { fix: asRoot, cause: e });
    }
  },
  realpath: (dir) => {
    try {
      return realpathSync(dir);
    } catch {
      return resolve(dir);
    }
  },
  entry: (path) => {
    let st;
    try {
      st = lstatSync(path);
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return { kind: 'absent' };
      throw new NvrError('IO', `${COMMAND}: cannot read ${path}: ${errnoOf(e)}`, { fix: asRoot, cause: e });
    }
    return st.isSymbolicLink() ? { kind: 'link', target: readlinkSync(path) } : { kind: 'other', what: describeStat(st) };
  },
  symlink: (target, path) => {
    try {
      symlinkSync(target, path);
    } catch (e) {
      const code = errnoOf(e);
      throw new NvrError('IO', `${COMMAND}: cannot create the symlink ${path} -> ${target}: ${code}`, {
        fix: code === 'EEXIST' ? 'something created it meanwhile; run the command again' : asRoot,
        cause: e,
      });
    }
  },
  replace: (target, path) => {
    const tmp = join(dirname(path), `.${basename(path)}.nvr-${process.pid}-${Date.now().toString(36)}`);
    try {
      symlinkSync(target, tmp);
      renameSync(tmp, path);
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {
        // the temporary link was never made, or the rename took it
      }
      throw new NvrError('IO', `${COMMAND}: cannot replace the symlink ${path} with one to ${target}: ${errnoOf(e)}`, { fix: asRoot, cause: e });
    }
  },
};


const defaultDeps: SystemDeps = {
  env: process.env,
  discover: discoverDevCharNodes,
  fs: defaultLinkDirOps,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

function describeAction(a: LinkAction, dir: string, dryRun: boolean): string | undefined {
  const link = `${join(dir, a.name)} -> ${a.target}`;
  const pending = a.node.source === 'driver' ? ' (node does not exist yet)' : '';
  if (a.kind === 'create') return `${dryRun ? 'would create' : 'created'} ${link}${pending}`;
  if (a.kind === 'replace') return `${dryRun ? 'would replace' : 'replaced'} ${link}${pending} (was -> ${a.previous})`;
  return undefined;
}

/** The last line: what was (or would be) done. */
export function summaryLine(plan: LinkPlan, o: DevCharOptions): string {
  const count = (k: LinkAction['kind']): number => plan.actions.filter((a) => a.kind === k).length;
  const devDir = o.driverRoot === '/' ? '/dev' : `${o.driverRoot}/dev`;
  if (plan.actions.length === 0) return `no NVIDIA device nodes under ${devDir}${o.createAll ? ' and none listed by the driver' : ''}; nothing to link`;
  const nodes = `${plan.actions.length} NVIDIA device node${plan.actions.length === 1 ? '' : 's'}${o.createAll ? ' (existing or listed by the driver)' : ` under ${devDir}`}`;
  const rest = `${count('keep')} already correct, ${count('leave')} left alone`;
  return o.dryRun
    ? `dry run, nothing changed in ${o.devCharPath}: would create ${count('create')}, would replace ${count('replace')}, ${rest}; ${nodes}`
    : `${o.devCharPath}: ${count('create')} created, ${count('replace')} replaced, ${rest}; ${nodes}`;
}

/** The command: resolve options, discover, plan, apply (unless --dry-run), report. */
export function runCreateDevCharSymlinks(args: DevCharArgs, deps: SystemDeps = defaultDeps): void {
  const { options, warnings } = resolveDevCharOptions(args, deps.env);
  const warn = (w: string): void => deps.stderr(`nvidia-ctk: warning: ${w}\n`);
  warnings.forEach(warn);
  const state = deps.fs.dirState(options.devCharPath);
  if (state !== 'dir' && state !== 'missing') {
    throw new NvrError('INPUT', `${COMMAND}: --dev-char-path ${options.devCharPath} is ${state}, not a directory`, { fix: `pass --dev-char-path with a directory (default ${DEFAULT_DEV_CHAR_PATH})` });
  }
  const found = deps.discover(options.driverRoot, options.createAll);
  found.warnings.forEach(warn);
  const needed = found.nodes.length > 0;
  if (needed && state === 'missing' && !options.dryRun) deps.fs.mkdir(options.devCharPath);
  const linkDir = deps.fs.realpath(options.devCharPath);
  const entry = (name: string): LinkState => (state === 'missing' && options.dryRun ? { kind: 'absent' } : deps.fs.entry(join(options.devCharPath, name)));
  const plan = planLinks(found.nodes, entry, linkDir, options.driverRoot);
  plan.warnings.forEach(warn);
  for (const a of plan.actions) {
    if (!options.dryRun && a.kind === 'create') deps.fs.symlink(a.target, join(options.devCharPath, a.name));
    if (!options.dryRun && a.kind === 'replace') deps.fs.replace(a.target, join(options.devCharPath, a.name));
    const line = describeAction(a, options.devCharPath, options.dryRun);
    if (line !== undefined) deps.stdout(`${line}\n`);
  }
  deps.stdout(`${summaryLine(plan, options)}\n`);
}

export function createSystemCommand(deps: Partial<SystemDeps> = {}): CommandModule {
  const d: SystemDeps = { ...defaultDeps, ...deps };
  const env = (flag: keyof typeof ENV_VARS): string => `[$${ENV_VARS[flag].join(', $')}]`;
  const devChar: CommandModule<object, DevCharArgs> = {
    command: COMMAND,
    describe: 'create /dev/char/MAJOR:MINOR symlinks to the NVIDIA device nodes (keeps GPU access across systemctl daemon-reload; docs/troubleshooting.md)',
    builder: (y: Argv<object>) =>
      y
        .option('dev-char-path', { type: 'string', describe: `directory of the links (default ${DEFAULT_DEV_CHAR_PATH}) ${env('dev-char-path')}` })
        .option('driver-root', { type: 'string', describe: `driver root; <driver-root>/dev is searched for NVIDIA device nodes (default /) ${env('driver-root')}` })
        .option('create-all', { type: 'boolean', describe: `also link the nodes the driver's /proc says would exist, not only the existing ones ${env('create-all')}` })
        .option('load-kernel-modules', { type: 'boolean', describe: `accepted for compatibility and ignored with a warning: nvidia-runtime never loads kernel modules ${env('load-kernel-modules')}` })
        .option('create-device-nodes', { type: 'boolean', describe: `accepted for compatibility and ignored with a warning: nvidia-runtime never creates device nodes ${env('create-device-nodes')}` })
        .option('dry-run', { type: 'boolean', describe: `print what would be done and change nothing ${env('dry-run')}` }) as unknown as Argv<DevCharArgs>,
    handler: (args) => runCreateDevCharSymlinks(args, d),
  };
  return {
    command: 'system <command>',
    describe: 'host administration: /dev/char symlinks for the NVIDIA device nodes',
    builder: (y) => y.command(devChar).demandCommand(1, `a system subcommand is required (${COMMAND})`),
    handler: () => undefined,
  };
}

export const systemCommand = createSystemCommand();
