/**
 * `nvidia-ctk mock-driver`: writes a fake NVIDIA driver installation (docs/mock-driver.md). Host access is
 * injected so tests can run the command without native artifacts or root.
 */
import type { Argv, CommandModule } from 'yargs';
import { NvrError } from '../errors.js';
import { generateTopology, readTopologyFile, validateTopology } from '../mock/topology.js';
import type { MockTopology } from '../mock/topology-types.js';
import { defaultArtifacts, writeMockDriver, type MockArtifacts } from '../mock/writer.js';

export interface MockDriverArgs {
  root: string;
  gpus?: number;
  model?: string;
  driverVersion?: string;
  cudaVersion?: string;
  mig?: boolean;
  topology?: string;
}

export interface MockDriverDeps {
  artifacts: () => MockArtifacts;
  write: typeof writeMockDriver;
  stdout: (text: string) => void;
}

const defaultDeps: MockDriverDeps = {
  artifacts: () => defaultArtifacts(),
  write: writeMockDriver,
  stdout: (text) => process.stdout.write(text),
};

/** The topology the flags ask for: a file (with optional version overrides) or a generated one. */
export function topologyFromArgs(args: MockDriverArgs): MockTopology {
  if (args.topology === undefined) {
    return generateTopology({
      gpus: args.gpus,
      model: args.model,
      driverVersion: args.driverVersion,
      cudaVersion: args.cudaVersion,
      mig: args.mig,
    });
  }
  const fromFile = readTopologyFile(args.topology);
  const merged = {
    ...fromFile,
    driverVersion: args.driverVersion ?? fromFile.driverVersion,
    cudaVersion: args.cudaVersion ?? fromFile.cudaVersion,
  };
  return validateTopology(merged, `topology file ${args.topology} with --driver-version/--cuda-version`);
}

/** One paragraph for humans: where, what driver, which GPUs. */
export function summarize(root: string, t: MockTopology): string {
  const models = [...new Set(t.gpus.map((g) => g.name))].join(', ');
  const migGpus = t.gpus.filter((g) => g.migEnabled);
  const migDevices = migGpus.reduce((n, g) => n + g.migDevices.length, 0);
  const mig = migGpus.length > 0 ? ` MIG is enabled on ${migGpus.length} of them (${migDevices} MIG devices).` : '';
  return (
    `Mock NVIDIA driver ${t.driverVersion} (CUDA ${t.cudaVersion}) written to ${root}: ` +
    `${t.gpus.length} GPU${t.gpus.length === 1 ? '' : 's'} (${models}), ` +
    `minors ${t.gpus.map((g) => g.minor).join(',')}.${mig} ` +
    `Use ${root} as the driver root; the topology is in ${root}/etc/nvidia-mock/topology.json.\n`
  );
}

export function createMockDriverCommand(deps: Partial<MockDriverDeps> = {}): CommandModule<object, MockDriverArgs> {
  const d: MockDriverDeps = { ...defaultDeps, ...deps };
  return {
    command: 'mock-driver',
    describe: 'Create a fake NVIDIA driver installation (libraries, device nodes, /proc) under a root directory',
    builder: (y: Argv<object>) =>
      y
        .option('root', { type: 'string', demandOption: true, describe: 'directory to create the mock driver in' })
        .option('gpus', { type: 'number', describe: 'number of GPUs, 1..254 (default 1)' })
        .option('model', { type: 'string', describe: 'GPU model name (default "NVIDIA H100 80GB HBM3")' })
        .option('driver-version', { type: 'string', describe: 'driver version (default 550.54.15)' })
        .option('cuda-version', { type: 'string', describe: 'CUDA driver version (default 12.4)' })
        .option('mig', { type: 'boolean', describe: 'enable MIG with three MIG devices per GPU' })
        .option('topology', { type: 'string', describe: 'JSON topology file (docs/mock-driver.md) instead of --gpus/--model/--mig' })
        .conflicts('topology', ['gpus', 'model', 'mig']) as unknown as Argv<MockDriverArgs>,
    handler: async (argv) => {
      if (typeof argv.root !== 'string' || argv.root === '') {
        throw new NvrError('INPUT', 'mock-driver --root is empty', { fix: 'pass --root DIR' });
      }
      const topology = topologyFromArgs(argv);
      await d.write(argv.root, topology, d.artifacts());
      d.stdout(summarize(argv.root, topology));
    },
  };
}

export const mockDriverCommand = createMockDriverCommand();
