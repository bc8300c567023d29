/**
 * `nvidia-ctk doctor`: the check table. Each area gathers its facts once (driver snapshot first: the device, CDI and
 * dry-run checks reuse it, so NVML is initialised once) and turns them into results with its pure check functions.
 * The order here is the order of the report.
 */
import type { FrozenRuntimeConfig } from '../config/schema.js';
import type { HostInventory } from '../host/inventory.js';
import { normalizeRoot } from '../host/root.js';
import type { NvmlAddon } from '../host/nvml.js';
import { cdiChecks, gatherCdi } from './cdi.js';
import { checkDevChar, gatherDevChar } from './cgroup.js';
import { configChecks, gatherConfig } from './config.js';
import { deviceChecks, gatherDevices } from './devices.js';
import { driverChecks, gatherDriver } from './driver.js';
import { checkDryRun, dryRunCreate } from './dry-run.js';
import { engineChecks, gatherEngines } from './engines.js';
import { checkServe, gatherServe } from './serve.js';
import { summarize, type DoctorReport } from './types.js';

export interface DoctorOptions {
  env: Readonly<Record<string, string | undefined>>;
  /** --config (must exist); else $NVIDIA_CTK_CONFIG_FILE_PATH, else the default location. */
  config?: string;
  /** --driver-root; else config.toml's [nvidia-container-cli] root. */
  driverRoot?: string;
  dockerConfig?: string;
  containerdConfig?: string;
  crioConfig?: string;
  devCharPath?: string;
  serveSocket?: string;
  /** Our nvidia-runtime (never chosen as runc) and nvidia-runtime-hook (named in the planned edits). */
  self: string;
  hookPath: string;
  /** Tests: a fake NVML. */
  addon?: NvmlAddon;
  cgroupV2?: boolean;
}

export async function runDoctor(o: DoctorOptions): Promise<DoctorReport> {
  const cfg = gatherConfig({ env: o.env, ...(o.config !== undefined ? { file: o.config } : {}), self: o.self });
  const driverRoot = normalizeRoot(o.driverRoot ?? cfg.config.cli.root);
  const config: FrozenRuntimeConfig = driverRoot === cfg.config.cli.root ? cfg.config : { ...cfg.config, cli: { ...cfg.config.cli, root: driverRoot } };

  const driver = gatherDriver(driverRoot, o.addon ? { addon: o.addon } : {});
  const inventory: HostInventory | undefined = driver.inventory;
  const devices = gatherDevices(driverRoot, inventory);
  const engines = gatherEngines({
    env: o.env,
    ...(o.dockerConfig !== undefined ? { dockerConfig: o.dockerConfig } : {}),
    ...(o.containerdConfig !== undefined ? { containerdConfig: o.containerdConfig } : {}),
    ...(o.crioConfig !== undefined ? { crioConfig: o.crioConfig } : {}),
    ...(o.cgroupV2 !== undefined ? { cgroupV2: o.cgroupV2 } : {}),
  });
  const devChar = gatherDevChar(driverRoot, o.devCharPath);
  const cdi = gatherCdi(config.runtime.cdi.specDirs, inventory);
  const serve = await gatherServe(o.serveSocket);
  const configError = cfg.usable ? undefined : (cfg.trustError ?? cfg.parseError);
  const dry = dryRunCreate(config, {
    loadInventory: () => {
      if (inventory) return inventory;
      throw driver.error!;
    },
    hookPath: o.hookPath,
    ...(configError ? { configError } : {}),
  });

  const checks = [
    ...driverChecks(driver),
    ...deviceChecks(devices),
    checkDevChar(devChar, engines, driverRoot),
    ...configChecks(cfg),
    ...cdiChecks(cdi),
    ...engineChecks(engines, cdi.devices, config.runtime.cdi.annotationPrefixes),
    checkServe(serve),
    checkDryRun(dry),
  ];
  return { checks, summary: summarize(checks) };
}
