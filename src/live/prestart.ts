/**
 * `nvidia-container-runtime-hook prestart` (alias `nvidia-container-toolkit`): the OCI prestart hook that
 * `docker run --gpus` inserts when it finds the hook on dockerd's PATH, with plain runc as the runtime. The request
 * is read from the bundle's spec by the runtime's own reading (runtime/plan.ts requestOfSpec: same env, mounts,
 * privilege and config rules), turned into the `nvidia-container-cli configure` command line the toolkit's hook
 * would exec (PEER §3.3), and that command runs in this process through the same parser as the CLI.
 */
import { basename } from 'node:path';
import type { FrozenRuntimeConfig } from '../config/schema.js';
import { NvrError } from '../errors.js';
import type { SpecFile } from '../oci/spec-file.js';
import { formatSelector } from '../request/devices.js';
import type { DeviceRequest } from '../request/types.js';

export interface OciState {
  pid: number;
  bundle: string;
}

/** The state runc writes on the hook's stdin: `bundle` (or pre-17.06 Docker's `bundlePath`) and `pid`. */
export function parseState(text: string): OciState {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new NvrError('INPUT', `container state on stdin: not JSON (${(e as Error).message})`, { fix: 'run the hook as an OCI prestart hook: the runtime writes the state on its stdin' });
  }
  const o = (doc ?? {}) as Record<string, unknown>;
  const bundle = typeof o.bundle === 'string' ? o.bundle : typeof o.bundlePath === 'string' ? o.bundlePath : undefined;
  if (bundle === undefined || !bundle.startsWith('/')) throw new NvrError('INPUT', 'container state on stdin: no absolute "bundle"', { fix: 'run the hook as an OCI prestart hook' });
  if (typeof o.pid !== 'number' || !Number.isInteger(o.pid) || o.pid <= 0) throw new NvrError('INPUT', 'container state on stdin: no "pid" (the hook must run as a prestart hook, after the container process exists)', { fix: 'register it under hooks.prestart' });
  return { pid: o.pid, bundle };
}

/** Names of the hooks that mean nvidia-runtime (or a CDI spec of ours or NVIDIA's) already gave the GPUs. */
const INJECTED_BY = ['nvidia-runtime-hook', 'nvidia-cdi-hook'];

/** Why this spec already has its GPUs (so the hook must do nothing: never both), or undefined. The runtime's spec
 *  path always adds its createContainer hook, CDI specs theirs. */
export function alreadyInjected(spec: SpecFile['spec']): string | undefined {
  const hooks = Object.values(spec.hooks ?? {}).flat() as Array<{ path?: unknown; args?: unknown }>;
  const ours = hooks.find((h) => INJECTED_BY.includes(basename(String(h.path ?? ''))) || INJECTED_BY.includes(String((h.args as unknown[] | undefined)?.[0] ?? '')));
  // Only our hooks count: a /dev/nvidia* device alone may come from `docker run --device`, which brings no driver files.
  return ours ? `the spec already has the ${basename(String(ours.path))} hook: nvidia-runtime or a CDI spec injected the GPUs` : undefined;
}

/** The `nvidia-container-cli` argv the toolkit's hook would exec for this request (PEER §3.3). */
export function configureArgv(request: DeviceRequest, config: FrozenRuntimeConfig, pid: number, rootfs: string): string[] {
  const argv: string[] = [];
  if (config.cli.root !== '/') argv.push(`--root=${config.cli.root}`);
  argv.push('configure');
  if (config.cli.ldconfig !== '') argv.push(`--ldconfig=${config.cli.ldconfig}`);
  // As the toolkit's hook passes the config's mode. No runtime adds an enable-cuda-compat hook on this path, so
  // `hook` becomes the in-process equivalent (ldconfig), unless that hook is turned off.
  const compat = config.runtime.legacy.cudaCompatMode;
  argv.push(`--cuda-compat-mode=${compat !== 'hook' ? compat : config.features['disable-cuda-compat-lib-hook'] === true ? 'disabled' : 'ldconfig'}`);
  if (config.cli.noCgroups) argv.push('--no-cgroups');
  for (const o of config.cli.driverOptions) argv.push(`--${o}`);
  if (request.devices.length > 0) argv.push(`--device=${request.devices.map(formatSelector).join(',')}`);
  for (const which of request.migAdmin ?? []) argv.push(`--mig-${which}=all`);
  if (request.imexChannels?.length) argv.push(`--imex-channel=${request.imexChannels.join(',')}`);
  for (const cap of request.capabilities) argv.push(`--${cap}`);
  for (const r of request.requirements) argv.push(`--require=${r}`);
  argv.push(`--pid=${pid}`, rootfs);
  return argv;
}

export type PrestartDecision = { kind: 'skip'; reason: string } | { kind: 'configure'; argv: string[] };

export function decidePrestart(specFile: SpecFile, request: DeviceRequest, config: FrozenRuntimeConfig, state: OciState, rootfs: string): PrestartDecision {
  const injected = alreadyInjected(specFile.spec);
  if (injected) return { kind: 'skip', reason: injected };
  if (!request.gpu) return { kind: 'skip', reason: 'not a GPU container' };
  if (request.cdiDevices) {
    throw new NvrError('INPUT', `CDI devices (${request.cdiDevices.join(', ')}) cannot be injected by the prestart hook`, {
      fix: 'run the container with --runtime=nvidia (or the engine\'s CDI support: docker --device nvidia.com/gpu=…)',
    });
  }
  return { kind: 'configure', argv: configureArgv(request, config, state.pid, rootfs) };
}
