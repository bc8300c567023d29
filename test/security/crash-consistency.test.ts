/**
 * Threat: a runtime killed mid-create (SECURITY.md R7, §6 "kill -9 at random instants"; the toolkit truncates
 * config.json in place). Whatever instant SIGKILL, SIGTERM, SIGINT or SIGHUP arrives, config.json is the engine's
 * text or the runtime's complete rewrite, never a torn mix, and no temporary file outlives the next create.
 * The low-level runtime is a no-op script here, so each iteration costs one runtime start, not a container.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distBin } from '../helpers/dist.js';
import { makeBusyboxRootfs } from '../helpers/images.js';
import { makeBundle, makeGpuHost, type GpuHost } from '../helpers/runtime-env.js';

const ITERATIONS = 1000;
let host: GpuHost;
let bundle: string;
let original: string;
let rewritten: string;
let config: string;

beforeAll(async () => {
  host = await makeGpuHost(2);
  const rootfs = makeBusyboxRootfs(join(host.dir, 'rootfs'));
  bundle = await makeBundle(host, rootfs, { env: ['NVIDIA_VISIBLE_DEVICES=all'], args: ['true'] });
  original = readFileSync(join(bundle, 'config.json'), 'utf8');
  const noop = join(host.dir, 'noop-runc');
  writeFileSync(noop, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  config = join(host.dir, 'crash.toml');
  writeFileSync(config, `${readFileSync(host.configFile, 'utf8')}runtimes = ["${noop}"]\n`);
  const r = await create(undefined, 0);
  expect(r).toBe(0);
  rewritten = readFileSync(join(bundle, 'config.json'), 'utf8');
  expect(rewritten).not.toBe(original);
}, 60_000);
afterAll(() => rmSync(host.dir, { recursive: true, force: true }));

/** One create, optionally signalled after `delayMs`; resolves to its exit code (or the signal). */
function create(signal: NodeJS.Signals | undefined, delayMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    const child = spawn(distBin('nvidia-runtime'), ['--root', host.runcRoot, 'create', '--bundle', bundle, 'crash'], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NVIDIA_CTK_CONFIG_FILE_PATH: config }, stdio: 'ignore',
    });
    if (signal) setTimeout(() => child.kill(signal), delayMs);
    child.on('exit', (code, sig) => resolve(sig ?? code ?? -1));
  });
}

const temps = (): string[] => readdirSync(bundle).filter((n) => n.endsWith('.tmp'));

test(`${ITERATIONS} signals at random instants: config.json is old or new, never torn; no temp file survives`, async () => {
  const outcomes = new Map<string, number>();
  const signals: NodeJS.Signals[] = ['SIGKILL', 'SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP'];
  // Deterministic "random" instants spread over the whole create (Node start, planning, the write, runc).
  let seed = 12345;
  const next = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < ITERATIONS; i++) {
    writeFileSync(join(bundle, 'config.json'), original);
    const signal = signals[i % signals.length]!;
    const result = await create(signal, Math.floor(next() * 120));
    const text = readFileSync(join(bundle, 'config.json'), 'utf8');
    expect(text === original || text === rewritten).toBe(true);
    const key = `${signal}:${text === original ? 'old' : 'new'}:${typeof result === 'string' ? 'killed' : 'exited'}`;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  }
  // Both outcomes happened (the instants straddle the write), so the test exercised what it claims.
  const keys = [...outcomes.keys()];
  expect(keys.some((k) => k.includes(':old:killed'))).toBe(true);
  expect(keys.some((k) => k.includes(':new:'))).toBe(true);
  // Any temp file a killed writer left is removed by the next create.
  writeFileSync(join(bundle, 'config.json'), original);
  expect(await create(undefined, 0)).toBe(0);
  expect(temps()).toEqual([]);
  process.stdout.write(`crash-consistency outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}\n`);
}, 600_000);
