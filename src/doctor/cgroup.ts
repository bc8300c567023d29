/**
 * Doctor, the `systemctl daemon-reload` risk (docs/troubleshooting.md): with the systemd cgroup driver runc hands
 * a container's device rules to systemd by /dev/char/MAJOR:MINOR; the NVIDIA nodes have no such links unless
 * `nvidia-ctk system create-dev-char-symlinks` made them, and the next daemon-reload then takes the GPUs away
 * ("Failed to initialize NVML: Unknown Error" inside the container). The links are planned with the command's own
 * code (discoverDevCharNodes, planLinks): whatever it would create or replace is missing.
 */
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { discoverDevCharNodes } from '../host/dev-char-nodes.js';
import { DEFAULT_DEV_CHAR_PATH, planLinks, type LinkState } from '../host/dev-char.js';
import { NvrError } from '../errors.js';
import type { EngineFact } from './engines.js';
import { info, pass, warn, type CheckResult } from './types.js';

export interface DevCharFacts {
  linkDir: string;
  /** Links that `create-dev-char-symlinks` would create or replace, as `name -> target`. */
  missing: string[];
  /** Nodes that already have a right link. */
  linked: number;
  error?: NvrError;
}

function entry(path: string): LinkState {
  try {
    const st = lstatSync(path);
    return st.isSymbolicLink() ? { kind: 'link', target: readlinkSync(path) } : { kind: 'other', what: 'not a symbolic link' };
  } catch {
    return { kind: 'absent' };
  }
}

export function gatherDevChar(driverRoot: string, devCharPath = DEFAULT_DEV_CHAR_PATH): DevCharFacts {
  const linkDir = resolve(devCharPath);
  try {
    const nodes = discoverDevCharNodes(driverRoot, false).nodes;
    let real = linkDir;
    try {
      real = realpathSync(linkDir);
    } catch {
      // no directory yet: every link is missing
    }
    const plan = planLinks(nodes, (name) => entry(join(linkDir, name)), real, resolve(driverRoot));
    const todo = plan.actions.filter((a) => a.kind === 'create' || a.kind === 'replace' || a.kind === 'leave');
    return { linkDir, missing: todo.map((a) => `${a.name} -> ${a.target}`), linked: plan.actions.filter((a) => a.kind === 'keep').length };
  } catch (e) {
    if (!(e instanceof NvrError)) throw e;
    return { linkDir, missing: [], linked: 0, error: e };
  }
}

/** Pure: the links against the engines that let systemd own container cgroups. */
export function checkDevChar(f: DevCharFacts, engines: readonly EngineFact[], driverRoot: string): CheckResult {
  const id = 'devices.dev-char';
  const systemd = engines.filter((e) => e.installed && e.systemdCgroup === true);
  const who = systemd.map((e) => `${e.engine} (${e.systemdWhy})`).join(', ');
  const details = { linkDir: f.linkDir, missing: f.missing, linked: f.linked, systemdEngines: systemd.map((e) => e.engine) };
  if (f.error) return info(id, `cannot plan the ${f.linkDir} links: ${f.error.message}`, { details });
  if (f.missing.length === 0) return pass(id, `${f.linked} NVIDIA device node(s) linked in ${f.linkDir}`, { details });
  const fix = `nvidia-ctk system create-dev-char-symlinks --create-all${driverRoot === '/' ? '' : ` --driver-root ${driverRoot}`}${f.linkDir === DEFAULT_DEV_CHAR_PATH ? '' : ` --dev-char-path ${f.linkDir}`} (and at every boot: docs/troubleshooting.md)`;
  const what = `${f.missing.length} NVIDIA device node(s) without a ${f.linkDir} link (${f.missing.slice(0, 3).join(', ')}${f.missing.length > 3 ? ', …' : ''})`;
  if (systemd.length === 0) return info(id, `${what}; no engine uses the systemd cgroup driver, so daemon-reload cannot take GPUs away`, { details });
  return warn(id, `${what} and the systemd cgroup driver in ${who}: after systemctl daemon-reload containers lose their GPUs ("Failed to initialize NVML: Unknown Error")`, fix, details);
}
