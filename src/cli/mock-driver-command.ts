/**
 * `nvidia-ctk mock-driver`: writes a fake NVIDIA driver installation (docs/mock-driver.md). Host access is
 * injected so tests can run the command without native artifacts or root.
 */
import type { Argv, CommandModule } from 'yargs';
import { NvrError } from '../errors.js';
import { MOCK_FEATURES } from '../mock/features.js';
import { generateTopology, readTopologyFile, validateTopology, withFeatures } from '../mock/topology.js';
import type { MockFeature, MockTopology } from '../mock/topology-types.js';
import { defaultArtifacts, writeMockDriver, type MockArtifacts } from '../mock/writer.js';

export interface MockDriverArgs {
  root: string;
  gpus?: number;
  model?: string;
  driverVersion?: string;
  cudaVersion?: string;
  mig?: boolean;
  topology?: string;
  graphics?: boolean;
  gds?: boolean;
  mofed?: boolean;
  nvswitch?: boolean;
  gdrcopy?: boolean;
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

/** The features the boolean flags (--graphics, --gds, …) turn on; a flag can only add one. */
export function featuresFromArgs(args: MockDriverArgs): MockFeature[] {
  return MOCK_FEATURES.filter((f) => args[f] === true);
}

/** The topology the flags ask for: a file (with optional version overrides and added features) or a generated one. */
export function topologyFromArgs(args: MockDriverArgs): MockTopology {
  const features = featuresFromArgs(args);
  if (args.topology === undefined) {
    return generateTopology({
      gpus: args.gpus,
      model: args.model,
      driverVersion: args.driverVersion,
      cudaVersion: args.cudaVersion,
      mig: args.mig,
      features,
    });
  }
  const fromFile = readTopologyFile(args.topology);
  const merged = withFeatures(
    {
      ...fromFile,
      driverVersion: args.driverVersion ?? fromFile.driverVersion,
      cudaVersion: args.cudaVersion ?? fromFile.cudaVersion,
    },
    features,
  );
  // Revalidated: a new version must match the schema, and --graphics claims the BMC's bus id.
  return validateTopology(merged, `topology file ${args.topology} with the command-line flags`);
}

/** One paragraph for humans: where, what driver, which GPUs. */
export function summarize(root: string, t: MockTopology): string {
  const models = [...new Set(t.gpus.map((g) => g.name))].join(', ');
  const migGpus = t.gpus.filter((g) => g.migEnabled);
  const migDevices = migGpus.reduce((n, g) => n + g.migDevices.length, 0);
  const mig = migGpus.length > 0 ? ` MIG is enabled on ${migGpus.length} of them (${migDevices} MIG devices).` : '';
  const features = t.features && t.features.length > 0 ? ` Features: ${t.features.join(', ')}.` : '';
  return (
    `Mock NVIDIA driver ${t.driverVersion} (CUDA ${t.cudaVersion}) written to ${root}: ` +
    `${t.gpus.length} GPU${t.gpus.length === 1 ? '' : 's'} (${models}), ` +
    `minors ${t.gpus.map((g) => g.minor).join(',')}.${mig}${features} ` +
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
        .option('graphics', { type: 'boolean', describe: 'add graphics and display files: EGL/Vulkan/X.Org configs, X modules, non-glvnd GL, DRM nodes' })
        .option('gds', { type: 'boolean', describe: 'add GPUDirect Storage: /dev/nvidia-fs*, /etc/cufile.json, /run/udev' })
        .option('mofed', { type: 'boolean', describe: 'add MOFED: /dev/infiniband/uverbs*, rdma_cm' })
        .option('nvswitch', { type: 'boolean', describe: 'add NVSwitch: /dev/nvidia-nvswitchctl, /dev/nvidia-nvswitch*' })
        .option('gdrcopy', { type: 'boolean', describe: 'add GDRCopy: /dev/gdrdrv' })
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
