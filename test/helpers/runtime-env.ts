/**
 * A GPU host for end-to-end runtime tests: a mock driver root made by the shipped `nvidia-ctk mock-driver`, a
 * config.toml pointing the runtime at it, and bundles (config.json from `runc spec`) over local rootfs dirs.
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MockTopology } from '../../src/mock/topology-types.js';
import { distBin, tempDir } from './dist.js';

export interface GpuHost {
  dir: string;
  driverRoot: string;
  topology: MockTopology;
  configFile: string;
  /** runc state dir, private to the tests. */
  runcRoot: string;
}

/** `mockArgs`: more mock-driver flags (--graphics, --gds, --driver-version …). */
export async function makeGpuHost(gpus = 4, extraToml = '', mockArgs: readonly string[] = []): Promise<GpuHost> {
  const dir = tempDir('host');
  const driverRoot = join(dir, 'driver');
  await execa(distBin('nvidia-ctk'), ['mock-driver', '--root', driverRoot, '--gpus', String(gpus), ...mockArgs]);
  const topology = JSON.parse(readFileSync(join(driverRoot, 'etc/nvidia-mock/topology.json'), 'utf8')) as MockTopology;
  const configFile = join(dir, 'config.toml');
  writeConfig(configFile, driverRoot, extraToml);
  const runcRoot = join(dir, 'runc-state');
  mkdirSync(runcRoot);
  return { dir, driverRoot, topology, configFile, runcRoot };
}

export function writeConfig(file: string, driverRoot: string, extraToml = ''): void {
  writeFileSync(
    file,
    `${extraToml}\n[nvidia-container-cli]\nroot = "${driverRoot}"\n\n[nvidia-container-runtime]\ndebug = "${file}.log"\n`,
  );
}

export interface BundleOptions {
  env?: string[];
  args: string[];
  capabilities?: string[];
}

let counter = 0;

/** A bundle whose rootfs is `rootfs` (shared, read-only for the container) and whose config.json is runc's default. */
export async function makeBundle(host: GpuHost, rootfs: string, options: BundleOptions): Promise<string> {
  const bundle = join(host.dir, `bundle-${++counter}`);
  mkdirSync(bundle);
  await execa('runc', ['spec', '--bundle', bundle]);
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  spec.root = { path: rootfs, readonly: false };
  spec.process.terminal = false;
  spec.process.args = options.args;
  spec.process.env = [...spec.process.env, ...(options.env ?? [])];
  if (options.capabilities) {
    for (const set of ['bounding', 'effective', 'permitted']) spec.process.capabilities[set] = options.capabilities;
  }
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec, null, '\t'));
  return bundle;
}

/** Runs `nvidia-runtime --root <runc state> run -b <bundle> <id>` as Docker would call a runtime (or plain runc). */
export async function runtimeRun(host: GpuHost, bundle: string, env: Record<string, string> = {}, runtime = distBin('nvidia-runtime')) {
  const id = `t${++counter}-${process.pid}`;
  const r = await execa(runtime, ['--root', host.runcRoot, 'run', '--bundle', bundle, id], {
    reject: false,
    env: { NVIDIA_CTK_CONFIG_FILE_PATH: host.configFile, ...env },
    stdin: 'ignore',
  });
  const state = await execa('runc', ['--root', host.runcRoot, 'state', id], { reject: false });
  if (state.exitCode === 0) await execa('runc', ['--root', host.runcRoot, 'delete', '--force', id], { reject: false });
  return { ...r, id, containerCreated: state.exitCode === 0 };
}

/** `nvidia-runtime create` only: for tests that must prove runc never ran (no container exists afterwards). */
export async function runtimeCreate(host: GpuHost, bundle: string, env: Record<string, string> = {}) {
  const id = `c${++counter}-${process.pid}`;
  const r = await execa(distBin('nvidia-runtime'), ['--root', host.runcRoot, '--log', join(bundle, 'log.json'), '--log-format', 'json', 'create', '--bundle', bundle, id], {
    reject: false,
    env: { NVIDIA_CTK_CONFIG_FILE_PATH: host.configFile, ...env },
    stdin: 'ignore',
    stdout: 'ignore',
  });
  const state = await execa('runc', ['--root', host.runcRoot, 'state', id], { reject: false });
  if (state.exitCode === 0) await execa('runc', ['--root', host.runcRoot, 'delete', '--force', id], { reject: false });
  return { ...r, id, containerCreated: state.exitCode === 0 };
}
