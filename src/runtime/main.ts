/**
 * `nvidia-runtime` behind the native launcher: the launcher execs Node with this script for every call it cannot
 * pass to runc with certainty (a GPU marker, an argv form it does not model, no valid launcher view yet). Every
 * decision is made here: argv → config → runc lookup (recorded in the launcher view) → plan (create/run only) →
 * atomic write → exec runc (same pid).
 * stdout, stderr and stdin belong to runc: nothing here touches process.stdout/stderr/stdin (SECURITY.md R11).
 * An error is written once, with fs.writeSync, to stderr and to runc's --log file, and nothing was written.
 */
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configFilePath, loadConfig } from '../config/load.js';
import type { FrozenRuntimeConfig } from '../config/schema.js';
import { isNvrError, NvrError } from '../errors.js';
import { CALLER_ENV_FD_VAR } from '../launcher-contract.js';
import { cachedHostInventory } from '../host/snapshot-cache.js';
import { createLogger } from '../log/logger.js';
import { appendRuncLogError } from '../log/runc-log.js';
import { writeFileAtomic } from '../oci/atomic-write.js';
import { parseRuncArgv, type RuncArgv } from './argv.js';
import { findLowLevelRuntime, type LowLevelRuntime } from './find-runc.js';
import { writeLauncherView } from './launcher-view.js';
import { gpuMarkers } from './markers.js';
import { planCreate } from './plan.js';

interface ExecAddon {
  execve(path: string, argv: string[], envp: string[], keepFds: number[], envFd?: number): { code: number; call: string; message: string };
}

const here = dirname(fileURLToPath(import.meta.url));
/** dist/bin holds the launcher and the hook; this file is dist/runtime/main.js. */
const binDir = join(here, '..', 'bin');

/** fds runc must inherit: `--preserve-fds N` and systemd socket activation (LISTEN_FDS for our pid). */
function inheritedFds(args: RuncArgv, env: NodeJS.ProcessEnv): number[] {
  let n = args.preserveFds;
  if (env.LISTEN_FDS && env.LISTEN_PID === String(process.pid)) n = Math.max(n, Number.parseInt(env.LISTEN_FDS, 10) || 0);
  return Array.from({ length: n }, (_, i) => 3 + i);
}

/**
 * Records this call's config and runc decisions for the launcher (launcher-view.ts), so that the next calls with
 * the same inputs need no Node. Only when the config file's identity is known: otherwise the view could go stale
 * unnoticed.
 */
function recordLauncherView(env: NodeJS.ProcessEnv, config: FrozenRuntimeConfig, runc: LowLevelRuntime): void {
  if (config.fileIdentity === undefined) return;
  const configPath = configFilePath(env);
  writeLauncherView({
    euid: process.geteuid?.() ?? 0,
    configPath,
    envPath: env.PATH,
    // Not the directories: whoever could write one can only act by replacing a file, which changes its identity.
    fingerprints: [{ path: configPath, identity: config.fileIdentity }, ...runc.consulted],
    runc: runc.path,
    markers: gpuMarkers(config),
  });
}

/**
 * The launcher ran us with an allowlisted environment and put the caller's whole environment in a sealed memfd:
 * runc gets that, byte-exact (the addon reads it). Run directly (tests, by hand), runc gets ours.
 */
function callerEnvFd(env: NodeJS.ProcessEnv): number | undefined {
  const fd = env[CALLER_ENV_FD_VAR];
  return fd !== undefined && /^\d+$/.test(fd) ? Number(fd) : undefined;
}
const runcEnv = (env: NodeJS.ProcessEnv): string[] =>
  Object.entries(env).filter(([k]) => k !== CALLER_ENV_FD_VAR).map(([k, v]) => `${k}=${v}`);

function fail(args: RuncArgv | undefined, e: unknown): never {
  const message = isNvrError(e) ? e.userMessage() : `internal error: ${e instanceof Error ? e.message : String(e)}`;
  writeSync(2, `nvidia-runtime: ${message}\n`);
  if (args?.globalFlags.log) appendRuncLogError(args.globalFlags.log, args.globalFlags.logFormat ?? 'text', `nvidia-runtime: ${message}`);
  process.exit(isNvrError(e) ? e.exitCode : 2);
}

export function main(argv: string[], env: NodeJS.ProcessEnv): never {
  let args: RuncArgv | undefined;
  try {
    args = parseRuncArgv(argv, process.cwd());
    const config = loadConfig({ env });
    const runtime = findLowLevelRuntime(config.runtime.runtimes, env.PATH, { self: join(binDir, 'nvidia-runtime') });
    recordLauncherView(env, config, runtime);
    const runc = runtime.path;
    if (args.intercept && args.bundle) {
      const logger = createLogger({ file: config.runtime.debug, level: config.runtime.logLevel });
      for (const w of config.warnings) logger.warn(w);
      const plan = planCreate(args.bundle, config, {
        // The snapshot an earlier create took, while nothing it depends on changed (src/host/snapshot-cache.ts).
        loadInventory: (driverRoot) => cachedHostInventory(driverRoot),
        hookPath: join(binDir, 'nvidia-runtime-hook'),
      }, args.configPath);
      logger.info(`${args.verb} ${args.containerId ?? ''}: ${plan.request.gpu ? `granted ${plan.granted}` : 'not a GPU container'}`, {
        reasons: plan.request.reasons,
      });
      if (plan.newText !== undefined) writeFileAtomic(plan.specFile.path, plan.newText);
    }
    const addon = createRequire(import.meta.url)('../../build/Release/nvidia_runtime.node') as ExecAddon;
    const err = addon.execve(runc, [runc, ...argv], runcEnv(env), inheritedFds(args, env), callerEnvFd(env));
    throw new NvrError('RUNTIME', `cannot exec ${runc}: ${err.message}`, { fix: 'check the low-level runtime binary' });
  } catch (e) {
    fail(args, e);
  }
}

// `nvidia-runtime serve`: the warm-path service (docs/warm-path.md), dispatched before any runc argv is parsed; its
// module loads only here (a lazily initialised part of the bundle), so the cold path runs as before.
if (process.argv[2] === 'serve') void import('../serve/server.js').then((m) => m.serveMain(process.argv.slice(3), process.env));
else main(process.argv.slice(2), process.env);
