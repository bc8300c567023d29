/**
 * The CDI registry: every device of every valid spec in the spec directories, by fully-qualified name
 * (FACTS §3.4). A later directory has priority (a device in /var/run/cdi overrides the same name in /etc/cdi).
 * The same name defined twice at the same priority (two files of one directory) is a conflict: both definitions
 * are dropped — and so is any lower-priority one, since the higher-priority directory meant to override it — and an
 * error is recorded for each file. Errors are per file and never hide the valid files.
 */
import { NvrError } from '../errors.js';
import { mergeEdits, type ContainerEdits } from '../edits/types.js';
import { trustProblem } from '../trust.js';
import { fillDeviceNodes } from './device-nodes.js';
import { listSpecFiles, readSpecFile, type ReadSpecOptions } from './load.js';
import { isQualifiedName, qualify } from './names.js';
import type { CdiContainerEdits, CdiDevice, CdiSpec } from './types.js';

export interface CdiRegistryEntry {
  kind: string;
  spec: CdiSpec;
  device: CdiDevice;
  file: string;
}

export interface CdiRegistry {
  devices: Map<string, CdiRegistryEntry>;
  errors: { file: string; reason: string }[];
  specDirs: string[];
}

/** The message without the "CDI spec <file>: " prefix load.ts puts on it (the file is recorded separately). */
function reasonOf(e: unknown, file: string): string {
  const msg = e instanceof Error ? e.message : String(e);
  const prefix = `CDI spec ${file}: `;
  return msg.startsWith(prefix) ? msg.slice(prefix.length) : msg;
}

export function loadCdiRegistry(specDirs: readonly string[], options: ReadSpecOptions = {}): CdiRegistry {
  const devices = new Map<string, CdiRegistryEntry>();
  const errors: CdiRegistry['errors'] = [];
  for (const dir of specDirs) {
    let files: string[];
    try {
      files = listSpecFiles(dir);
    } catch (e) {
      errors.push({ file: dir, reason: reasonOf(e, dir) });
      continue;
    }
    const here = new Map<string, CdiRegistryEntry>();
    const conflicts = new Map<string, Set<string>>();
    for (const file of files) {
      let spec: CdiSpec;
      try {
        spec = readSpecFile(file, options);
      } catch (e) {
        errors.push({ file, reason: reasonOf(e, file) });
        continue;
      }
      for (const device of spec.devices) {
        const name = qualify(spec.kind, device.name);
        const prior = here.get(name);
        if (prior) conflicts.set(name, (conflicts.get(name) ?? new Set([prior.file])).add(file));
        else here.set(name, { kind: spec.kind, spec, device, file });
      }
    }
    for (const [name, inFiles] of conflicts) {
      here.delete(name);
      devices.delete(name);
      const list = [...inFiles];
      for (const file of list) {
        errors.push({ file, reason: `conflicting definitions of device ${name} in ${list.join(', ')}: both ignored` });
      }
    }
    for (const [name, entry] of here) devices.set(name, entry);
  }
  return { devices, errors, specDirs: [...specDirs] };
}

/** Fully-qualified names of the registry, sorted. */
export function listCdiDevices(registry: CdiRegistry): string[] {
  return [...registry.devices.keys()].sort();
}

function unsupported(e: CdiContainerEdits | undefined, what: string): void {
  if (!e) return;
  // netDevices (runtime-spec 1.2) is not applied: runc 1.1 ignores linux.netDevices, so the device would be lost.
  const fields = [(e.netDevices?.length ?? 0) > 0 ? 'netDevices' : ''].filter(Boolean);
  if (fields.length > 0) {
    throw new NvrError('DEVICE', `${what} uses ${fields.join(' and ')}, which this runtime does not apply`, {
      fix: 'request a device whose spec does not need them',
    });
  }
}

/** Edits for the requested fully-qualified names, in request order; spec-level containerEdits once per contributing spec, first. */
export function resolveCdiDevices(registry: CdiRegistry, names: readonly string[]): ContainerEdits {
  const invalid = names.filter((n) => !isQualifiedName(n));
  if (invalid.length > 0) {
    throw new NvrError('INPUT', `invalid CDI device names: ${invalid.join(', ')}`, { fix: 'use fully-qualified names such as nvidia.com/gpu=0' });
  }
  const missing = names.filter((n) => !registry.devices.has(n));
  if (missing.length > 0) {
    const broken = registry.errors.length > 0 ? `; ${registry.errors.length} spec file(s) were ignored as invalid (nvidia-ctk cdi list shows why)` : '';
    throw new NvrError('DEVICE', `unresolvable CDI devices: ${[...new Set(missing)].join(', ')} (searched ${registry.specDirs.join(', ')})`, {
      fix: `generate a spec with \`nvidia-ctk cdi generate --output /var/run/cdi/nvidia.yaml\` or request a device that \`nvidia-ctk cdi list\` shows${broken}`,
    });
  }
  const entries = [...new Set(names)].map((n) => ({ name: n, ...registry.devices.get(n)! }));
  const specs: CdiSpec[] = [];
  for (const e of entries) if (!specs.includes(e.spec)) specs.push(e.spec);
  for (const s of specs) unsupported(s.containerEdits, `CDI spec of kind ${s.kind}`);
  for (const e of entries) unsupported(e.device.containerEdits, `CDI device ${e.name}`);
  // Nodes that name only their path get type and numbers from the host, as the CDI library fills them.
  return fillDeviceNodes(mergeEdits(...specs.map((s) => s.containerEdits), ...entries.map((e) => e.device.containerEdits)));
}

/**
 * Refuses edits whose hooks name a binary someone other than root could replace: CDI hooks run as host root
 * (src/trust.ts). Throws NvrError DEVICE naming the hook.
 */
export function requireTrustedHooks(edits: ContainerEdits): void {
  for (const h of edits.hooks ?? []) {
    const untrusted = trustProblem(h.path);
    if (untrusted) {
      throw new NvrError('DEVICE', `CDI ${h.hookName} hook ${h.path} is not trusted: ${untrusted.problem}: refusing to run it as root`, { fix: untrusted.fix });
    }
  }
}
