/**
 * `nvidia-ctk explain [--bundle DIR] [-- RUNC-ARGV…]`: what `nvidia-runtime` would do with a call, without writing
 * or exec'ing: the native launcher's decision (asked of the launcher itself, as `nvidia-runtime-decide`), whether
 * the runtime intercepts the argv (the same parseRuncArgv), and for a create the same planCreate the runtime runs:
 * what the container asked for, what it is granted and why (or why not), and the exact config.json diff.
 * Exit 0 when the call would succeed, 1 when it would fail.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { loadConfig } from '../config/load.js';
import type { FrozenRuntimeConfig } from '../config/schema.js';
import { specDiff } from '../edits/diff.js';
import { isNvrError } from '../errors.js';
import { loadHostInventory } from '../host/inventory.js';
import { readSpec } from '../oci/spec-file.js';
import { parseRuncArgv } from '../runtime/argv.js';
import { planCreate, type CreatePlan } from '../runtime/plan.js';
import { distBinDir } from './package-paths.js';

interface ExplainArgs {
  bundle: string;
  json: boolean;
  config?: string;
  '--'?: Array<string | number>;
}

/** The native launcher's decision for a call: exec runc itself, or hand the call to the runtime (and why). */
export interface LauncherDecision {
  action: 'runc' | 'runtime';
  detail: string;
}

export interface Explanation {
  /** The runc command line explained (without the program name). */
  runcArgv: string[];
  launcher: LauncherDecision | null;
  /** False when the runtime passes the call to runc untouched (not a create/run, or one runc would refuse). */
  intercepted: boolean;
  bundle: string;
  configFile: string | null;
  /** config.toml keys that were ignored (unknown, or read but not acted on). */
  configWarnings: string[];
  driverRoot: string;
  wouldSucceed: boolean;
  gpuContainer: boolean | null;
  reasons: string[];
  capabilities: string[];
  requirements: string[];
  devices: { index: number; minor: number; uuid: string; name: string; mig?: string }[];
  /** Fully-qualified CDI device names, when the request took the CDI path. */
  cdiDevices: string[];
  granted: string | null;
  edits: { deviceNodes: number; mounts: number; hooks: number } | null;
  diff: string;
  error: string | null;
}

/**
 * Asks the shipped launcher what it would do with this argv, in this cwd, with this config file: the environment
 * it sees is ours (PATH and the config path are part of its decision), minus what it never passes to Node.
 */
export function askLauncher(runcArgv: readonly string[], cwd: string, configFile: string | undefined): LauncherDecision | null {
  const env = { ...process.env, ...(configFile ? { NVIDIA_CTK_CONFIG_FILE_PATH: configFile } : {}) };
  const r = spawnSync(resolve(distBinDir(), 'nvidia-runtime-decide'), [...runcArgv], { cwd, env, encoding: 'utf8' });
  const m = r.status === 0 ? /^(runc|node)\t(.*)\n$/s.exec(r.stdout) : null;
  if (!m) return null;
  return m[1] === 'runc' ? { action: 'runc', detail: m[2]! } : { action: 'runtime', detail: m[2]! };
}

export interface ExplainOptions {
  /** The call to explain; default `create --bundle <bundle> explain`. */
  runcArgv?: readonly string[];
  cwd?: string;
  launcher?: (runcArgv: readonly string[], cwd: string) => LauncherDecision | null;
}

export function explain(bundleDir: string, config: FrozenRuntimeConfig, options: ExplainOptions = {}): Explanation {
  const cwd = options.cwd ?? process.cwd();
  const runcArgv = [...(options.runcArgv ?? ['create', '--bundle', bundleDir, 'explain'])];
  const args = parseRuncArgv(runcArgv, cwd);
  const bundle = args.bundle ?? bundleDir;
  const base: Explanation = {
    runcArgv, launcher: options.launcher?.(runcArgv, cwd) ?? null, intercepted: args.intercept,
    bundle, configFile: config.file ?? null, configWarnings: [...config.warnings], driverRoot: config.cli.root, wouldSucceed: false, gpuContainer: null,
    reasons: [], capabilities: [], requirements: [], devices: [], cdiDevices: [], granted: null, edits: null, diff: '', error: null,
  };
  if (!args.intercept) return { ...base, wouldSucceed: true, gpuContainer: false };
  let plan: CreatePlan;
  try {
    plan = planCreate(bundle, config, {
      loadInventory: (driverRoot) => loadHostInventory({ driverRoot }),
      hookPath: resolve(distBinDir(), 'nvidia-runtime-hook'),
    }, args.configPath);
  } catch (e) {
    if (!isNvrError(e)) throw e;
    return { ...base, error: e.userMessage() };
  }
  const r = plan.resolved;
  return {
    ...base,
    wouldSucceed: true,
    gpuContainer: plan.request.gpu,
    reasons: plan.request.reasons,
    capabilities: plan.request.gpu && !plan.request.cdiDevices ? plan.request.capabilities : [],
    cdiDevices: plan.request.cdiDevices ?? [],
    requirements: plan.request.requirements,
    devices: [
      ...(r?.gpus ?? []).map((g) => ({ index: g.index, minor: g.minor, uuid: g.uuid, name: g.name })),
      ...(r?.migDevices ?? []).map(({ gpu, mig }) => ({ index: gpu.index, minor: gpu.minor, uuid: mig.uuid, name: mig.name, mig: `${gpu.index}:${mig.index}` })),
    ],
    granted: plan.granted ?? null,
    edits: plan.edits ? { deviceNodes: plan.edits.deviceNodes?.length ?? 0, mounts: plan.edits.mounts?.length ?? 0, hooks: plan.edits.hooks?.length ?? 0 } : null,
    diff: plan.newText === undefined ? '' : specDiff(plan.specFile.spec, plan.spec, { fromLabel: 'config.json', toLabel: 'config.json (after create)' }),
  };
}

function launcherLine(d: LauncherDecision | null): string {
  if (!d) return 'unknown (the launcher could not be asked)';
  return d.action === 'runc' ? `execs ${d.detail} directly (certain the runtime would do only that)` : `hands the call to the runtime: ${d.detail}`;
}

export function formatExplanation(x: Explanation): string {
  const l = (k: string, v: string) => `${k.padEnd(14)} ${v}`;
  const out = [
    l('Call:', `nvidia-runtime ${x.runcArgv.join(' ')}`), l('Launcher:', launcherLine(x.launcher)),
    l('Config:', x.configFile ?? 'defaults (no config.toml)'),
    ...x.configWarnings.map((w) => `  - warning: ${w}`),
  ];
  if (!x.intercepted) {
    out.push(l('Runtime:', 'passes the call to runc untouched (not a create/run runc would perform)'), l('Result:', 'runc runs as called'));
    return out.join('\n') + '\n';
  }
  out.push(l('Bundle:', x.bundle), l('Driver root:', x.driverRoot));
  if (x.error) {
    out.push(l('Result:', 'create would FAIL'), l('Why:', x.error));
    return out.join('\n') + '\n';
  }
  out.push(l('GPU container:', x.gpuContainer ? 'yes' : 'no: passed to runc untouched, config.json stays byte-identical'));
  for (const reason of x.reasons) out.push(`  - ${reason}`);
  if (x.gpuContainer && x.cdiDevices.length > 0) {
    out.push(l('CDI devices:', x.cdiDevices.join(', ')));
    out.push(l('Granted:', 'the containerEdits of those devices and of their specs'));
    if (x.edits) out.push(l('Edits:', `${x.edits.deviceNodes} device nodes, ${x.edits.mounts} bind mounts, ${x.edits.hooks} hook(s)`));
  } else if (x.gpuContainer) {
    out.push(l('Capabilities:', x.capabilities.join(', ')));
    out.push(l('Requirements:', x.requirements.length ? `${x.requirements.join('; ')} (all met)` : 'none'));
    out.push(l('Devices:', x.devices.length ? '' : 'none (driver files only)'));
    for (const d of x.devices) out.push(`  - ${d.mig ? `MIG ${d.mig}` : `GPU ${d.index}`}: ${d.name} (${d.uuid}), /dev/nvidia${d.minor}`);
    out.push(l('Granted:', `NVIDIA_VISIBLE_DEVICES=${x.granted}`));
    if (x.edits) out.push(l('Edits:', `${x.edits.deviceNodes} device nodes, ${x.edits.mounts} bind mounts, ${x.edits.hooks} createContainer hook(s)`));
  }
  out.push(l('Result:', 'create would succeed'));
  if (x.diff) out.push('', x.diff.trimEnd());
  return out.join('\n') + '\n';
}

export function createExplainCommand(print: (s: string) => void = (s) => process.stdout.write(s)): CommandModule<object, ExplainArgs> {
  return {
    command: 'explain',
    describe: 'show what nvidia-runtime would do for a bundle or a runc command line (launcher decision, request, grant, config.json diff) without doing it',
    builder: (y) =>
      y
        .parserConfiguration({ 'populate--': true })
        .usage('$0 explain [--bundle DIR] [--json] [--config FILE] [-- RUNC-ARGV...]')
        .option('bundle', { alias: 'b', type: 'string', default: '.', describe: 'the OCI bundle (directory with config.json); ignored when a runc command line follows --' })
        .option('json', { type: 'boolean', default: false, describe: 'JSON output' })
        .option('config', { type: 'string', describe: 'config.toml to use (default: $NVIDIA_CTK_CONFIG_FILE_PATH or /etc/nvidia-container-runtime/config.toml)' }) as never,
    handler: (args) => {
      const runcArgv = args['--']?.map(String);
      const bundle = resolve(args.bundle);
      if (!runcArgv) readSpec(bundle); // an unreadable bundle is an error of this command, not an explanation
      const config = loadConfig({ env: process.env, file: args.config });
      const x = explain(bundle, config, {
        ...(runcArgv ? { runcArgv } : {}),
        launcher: (argv, cwd) => askLauncher(argv, cwd, args.config ? resolve(args.config) : undefined),
      });
      print(args.json ? JSON.stringify(x, null, 2) + '\n' : formatExplanation(x));
      if (!x.wouldSucceed) process.exitCode = 1;
    },
  };
}

export const explainCommand = createExplainCommand();
