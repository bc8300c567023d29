/**
 * `nvidia-ctk explain --bundle DIR`: runs the create pipeline (the same planCreate the runtime uses) without
 * writing or exec'ing, and says what the container asked for, what it is granted and why (or why not), and the
 * exact config.json diff. Exit 0 when `create` would succeed, 1 when it would fail.
 */
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { loadConfig } from '../config/load.js';
import type { FrozenRuntimeConfig } from '../config/schema.js';
import { specDiff } from '../edits/diff.js';
import { isNvrError } from '../errors.js';
import { loadHostInventory } from '../host/inventory.js';
import { readSpec } from '../oci/spec-file.js';
import { planCreate, type CreatePlan } from '../runtime/plan.js';
import { distBinDir } from './package-paths.js';

interface ExplainArgs {
  bundle: string;
  json: boolean;
  config?: string;
}

export interface Explanation {
  bundle: string;
  configFile: string | null;
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

export function explain(bundle: string, config: FrozenRuntimeConfig): Explanation {
  const base: Explanation = {
    bundle, configFile: config.file ?? null, driverRoot: config.cli.root, wouldSucceed: false, gpuContainer: null,
    reasons: [], capabilities: [], requirements: [], devices: [], cdiDevices: [], granted: null, edits: null, diff: '', error: null,
  };
  let plan: CreatePlan;
  try {
    plan = planCreate(bundle, config, {
      loadInventory: (driverRoot) => loadHostInventory({ driverRoot }),
      hookPath: resolve(distBinDir(), 'nvidia-runtime-hook'),
    });
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

export function formatExplanation(x: Explanation): string {
  const l = (k: string, v: string) => `${k.padEnd(14)} ${v}`;
  const out = [l('Bundle:', x.bundle), l('Config:', x.configFile ?? 'defaults (no config.toml)'), l('Driver root:', x.driverRoot)];
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
    describe: 'show what nvidia-runtime would do for a bundle (request, grant, config.json diff) without doing it',
    builder: (y) =>
      y
        .option('bundle', { alias: 'b', type: 'string', default: '.', describe: 'the OCI bundle (directory with config.json)' })
        .option('json', { type: 'boolean', default: false, describe: 'JSON output' })
        .option('config', { type: 'string', describe: 'config.toml to use (default: $NVIDIA_CTK_CONFIG_FILE_PATH or /etc/nvidia-container-runtime/config.toml)' }) as never,
    handler: (args) => {
      const bundle = resolve(args.bundle);
      readSpec(bundle); // an unreadable bundle is an error of this command, not an explanation
      const config = loadConfig({ env: process.env, file: args.config });
      const x = explain(bundle, config);
      print(args.json ? JSON.stringify(x, null, 2) + '\n' : formatExplanation(x));
      if (!x.wouldSucceed) process.exitCode = 1;
    },
  };
}

export const explainCommand = createExplainCommand();
