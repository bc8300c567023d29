/**
 * Doctor, the dry-run create: a minimal bundle (config.json asking for every GPU with the default capabilities, an
 * empty rootfs) in a fresh temp directory, planned by the runtime's own planCreate with this config and driver root.
 * runc is never run and nothing outside the temp dir is written; the temp dir is removed whatever happens.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FrozenRuntimeConfig } from '../config/schema.js';
import { NvrError } from '../errors.js';
import type { HostInventory } from '../host/inventory.js';
import { planCreate } from '../runtime/plan.js';
import { fail, pass, type CheckResult } from './types.js';

export interface DryRunFacts {
  /** What the sample asked for. */
  env: string[];
  granted?: string;
  edits?: { deviceNodes: string[]; mounts: number; hooks: number };
  error?: NvrError;
}

/** The sample container: runc's shape reduced to what planCreate reads, asking for all GPUs. */
export function sampleSpec(env: readonly string[]): Record<string, unknown> {
  return {
    ociVersion: '1.0.2',
    process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['true'], env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...env], cwd: '/' },
    root: { path: 'rootfs', readonly: true },
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
    linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }] },
  };
}

export const SAMPLE_ENV = ['NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_DRIVER_CAPABILITIES=compute,utility'];

export interface DryRunDeps {
  /** The snapshot the other checks took (so NVML is queried once); when absent planCreate's lookup throws its error. */
  loadInventory: (driverRoot: string) => HostInventory;
  hookPath: string;
  /** The config could not be loaded by the runtime (untrusted, invalid): the create would fail with this. */
  configError?: NvrError;
  tempParent?: string;
}

export function dryRunCreate(config: FrozenRuntimeConfig, deps: DryRunDeps): DryRunFacts {
  const facts: DryRunFacts = { env: [...SAMPLE_ENV] };
  if (deps.configError) return { ...facts, error: deps.configError };
  const dir = mkdtempSync(join(deps.tempParent ?? tmpdir(), 'nvidia-ctk-doctor-'));
  try {
    mkdirSync(join(dir, 'rootfs'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(sampleSpec(SAMPLE_ENV), null, 2));
    const plan = planCreate(dir, config, { loadInventory: deps.loadInventory, hookPath: deps.hookPath });
    return {
      ...facts,
      ...(plan.granted !== undefined ? { granted: plan.granted } : {}),
      ...(plan.edits ? { edits: { deviceNodes: (plan.edits.deviceNodes ?? []).map((d) => d.path), mounts: plan.edits.mounts?.length ?? 0, hooks: plan.edits.hooks?.length ?? 0 } } : {}),
    };
  } catch (e) {
    if (!(e instanceof NvrError)) throw e;
    return { ...facts, error: e };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function checkDryRun(f: DryRunFacts): CheckResult {
  const id = 'dry-run';
  const asked = f.env.join(' ');
  if (f.error) return fail(id, `a GPU create (${asked}) would fail: ${f.error.message}`, f.error.fix ?? 'see the other lines', { env: f.env, error: f.error.message, code: f.error.code });
  const e = f.edits;
  const what = e ? `: ${e.deviceNodes.length} device nodes (${e.deviceNodes.join(', ')}), ${e.mounts} read-only mounts, ${e.hooks} hook(s)` : '';
  return pass(id, `a GPU create (${asked}) would be granted NVIDIA_VISIBLE_DEVICES=${f.granted ?? '?'}${what}; nothing was run`, {
    details: { env: f.env, granted: f.granted ?? null, edits: e ?? null },
  });
}
