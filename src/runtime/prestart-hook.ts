/**
 * `nvidia-container-runtime-hook` / `nvidia-container-toolkit` behind the native launcher (which gives Node only its
 * allowlisted environment: dockerd hands the hook its whole environment). Flags as the toolkit's hook (Go `flag`):
 * `-debug`, `-config FILE`, `-version`; commands `prestart` (the work: src/live/prestart.ts), `poststart` and
 * `poststop` (nothing). Errors: one line on stderr, exit 1, and runc fails the container's start.
 */
import { readFileSync } from 'node:fs';
import { containerCliMain } from '../cli/container-cli.js';
import { loadConfig } from '../config/load.js';
import { isNvrError, NvrError } from '../errors.js';
import { decidePrestart, parseState } from '../live/prestart.js';
import { readBundleSpec, requestOfSpec, rootfsOf } from './plan.js';

const PROG = 'nvidia-container-runtime-hook';

interface HookArgs {
  command?: string;
  config?: string;
  debug: boolean;
  version: boolean;
}

export function parseHookArgs(argv: readonly string[]): HookArgs {
  const out: HookArgs = { debug: false, version: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) {
      out.command = a;
      break; // the rest is the command's (the toolkit ignores it)
    }
    const [name, value] = a.replace(/^--?/, '').split(/=(.*)/s, 2) as [string, string | undefined];
    if (name === 'debug' || name === 'version') out[name] = value === undefined || value === 'true';
    else if (name === 'config') {
      const v = value ?? argv[++i];
      if (v === undefined) throw new NvrError('INPUT', '-config needs a file', { fix: 'pass -config /etc/nvidia-container-runtime/config.toml' });
      out.config = v;
    } else throw new NvrError('INPUT', `unknown flag ${a}`, { fix: 'flags: -debug, -config FILE, -version' });
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  const args = parseHookArgs(argv);
  if (args.version) {
    process.stdout.write('nvidia-container-runtime-hook (nvidia-runtime)\n');
    return 0;
  }
  if (args.command === 'poststart' || args.command === 'poststop') return 0;
  if (args.command !== 'prestart') {
    throw new NvrError('INPUT', args.command === undefined ? 'no command' : `unknown command ${args.command}`, { fix: 'commands: prestart, poststart, poststop' });
  }
  const state = parseState(readFileSync(0, 'utf8'));
  const config = loadConfig({ env: process.env, ...(args.config !== undefined ? { file: args.config } : {}) });
  const specFile = readBundleSpec(state.bundle);
  const decision = decidePrestart(specFile, requestOfSpec(specFile, config), config, state, rootfsOf(specFile));
  if (decision.kind === 'skip') {
    if (args.debug) process.stderr.write(`${PROG}: ${decision.reason}: nothing to do\n`);
    return 0;
  }
  if (args.debug) process.stderr.write(`${PROG}: nvidia-container-cli ${decision.argv.join(' ')}\n`);
  await containerCliMain(decision.argv);
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`${PROG}: ${isNvrError(e) ? e.userMessage() : `internal error: ${e instanceof Error ? e.message : String(e)}`}\n`);
  process.exitCode = 1;
}
