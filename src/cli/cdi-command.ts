/**
 * `nvidia-ctk cdi generate|list` (PEER.md §3.4, docs/cdi.md). Host access and output are injected so tests can
 * run the command in-process.
 */
import { extname, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { stringify as toYaml } from 'yaml';
import { generateCdiSpec } from '../cdi/generate.js';
import { DEFAULT_SPEC_DIRS } from '../cdi/load.js';
import { listCdiDevices, loadCdiRegistry } from '../cdi/registry.js';
import type { CdiSpec } from '../cdi/types.js';
import { loadConfig } from '../config/load.js';
import { NvrError } from '../errors.js';
import { loadHostInventory, type HostInventory } from '../host/inventory.js';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../oci/atomic-write.js';
import { distBinDir } from './package-paths.js';

export interface CdiDeps {
  loadInventory: (driverRoot: string, devRoot?: string) => HostInventory;
  /** The driver root when --driver-root is not given. */
  defaultDriverRoot: () => string;
  hookPath: () => string;
  writeFile: (file: string, text: string) => void;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  setExitCode: (code: number) => void;
}

const defaultDeps: CdiDeps = {
  loadInventory: (driverRoot, devRoot) => loadHostInventory({ driverRoot, devRoot }),
  defaultDriverRoot: () => loadConfig({ env: process.env }).cli.root || '/',
  hookPath: () => resolve(distBinDir(), 'nvidia-runtime-hook'),
  writeFile: (file, text) => {
    // /etc/cdi does not exist on a fresh host; creating the spec directory is part of writing a spec there.
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    writeFileAtomic(file, text);
  },
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  setExitCode: (code) => {
    process.exitCode = code;
  },
};

interface GenerateArgs {
  output?: string;
  format?: string;
  vendor: string;
  class: string;
  'device-name-strategy'?: string[];
  'driver-root'?: string;
  'dev-root'?: string;
}

interface ListArgs {
  'spec-dir'?: string[];
}

/** yaml unless asked otherwise, by --format or by the output file's extension. */
export function outputFormat(format: string | undefined, output: string | undefined): 'yaml' | 'json' {
  if (format !== undefined) {
    if (format !== 'yaml' && format !== 'json') throw new NvrError('INPUT', `--format ${format}: must be yaml or json`, { fix: 'use --format yaml or --format json' });
    return format;
  }
  return output !== undefined && extname(output) === '.json' ? 'json' : 'yaml';
}

export function formatSpec(spec: CdiSpec, format: 'yaml' | 'json'): string {
  return format === 'json' ? JSON.stringify(spec, null, 2) + '\n' : toYaml(spec, { lineWidth: 0 });
}

function generateCommand(d: CdiDeps): CommandModule<object, GenerateArgs> {
  return {
    command: 'generate',
    describe: 'write a CDI spec for the GPUs and MIG devices of this host',
    builder: (y: Argv<object>) =>
      y
        .option('output', { type: 'string', describe: 'file to write (atomically); default stdout' })
        .option('format', { type: 'string', choices: ['yaml', 'json'], describe: 'output format (default yaml, or the --output extension)' })
        .option('vendor', { alias: 'cdi-vendor', type: 'string', default: 'nvidia.com', describe: 'vendor of the device kind' })
        .option('class', { alias: 'cdi-class', type: 'string', default: 'gpu', describe: 'class of the device kind' })
        .option('device-name-strategy', { type: 'string', array: true, describe: 'index, uuid or type-index (repeatable; default index and uuid)' })
        .option('driver-root', { type: 'string', describe: 'driver root (default: config.toml [nvidia-container-cli] root, else /)' })
        .option('dev-root', { type: 'string', describe: 'where the device nodes are (default: the driver root)' }) as unknown as Argv<GenerateArgs>,
    handler: (args) => {
      const format = outputFormat(args.format, args.output);
      const driverRoot = args['driver-root'] ?? d.defaultDriverRoot();
      const inventory = d.loadInventory(driverRoot, args['dev-root']);
      const spec = generateCdiSpec(inventory, {
        vendor: args.vendor,
        class: args.class,
        deviceNameStrategies: args['device-name-strategy'],
        hookPath: d.hookPath(),
      });
      const text = formatSpec(spec, format);
      if (args.output !== undefined && args.output !== '-') d.writeFile(args.output, text);
      else d.stdout(text);
    },
  };
}

function listCommand(d: CdiDeps): CommandModule<object, ListArgs> {
  return {
    command: 'list',
    describe: 'list the fully-qualified CDI device names defined in the spec directories',
    builder: (y: Argv<object>) =>
      y.option('spec-dir', { type: 'string', array: true, describe: `spec directory, later ones win (repeatable; default ${DEFAULT_SPEC_DIRS.join(', ')})` }) as unknown as Argv<ListArgs>,
    handler: (args) => {
      const dirs = args['spec-dir'] && args['spec-dir'].length > 0 ? args['spec-dir'] : [...DEFAULT_SPEC_DIRS];
      const registry = loadCdiRegistry(dirs);
      for (const e of registry.errors) d.stderr(`${e.file}: ${e.reason}\n`);
      const names = listCdiDevices(registry);
      if (names.length > 0) d.stdout(names.map((n) => `${n}\n`).join(''));
      // Broken files are reported but do not fail the listing as long as something usable was found.
      if (names.length === 0 && registry.errors.length > 0) d.setExitCode(1);
    },
  };
}

export function createCdiCommand(deps: Partial<CdiDeps> = {}): CommandModule<object, object> {
  const d: CdiDeps = { ...defaultDeps, ...deps };
  return {
    command: 'cdi <command>',
    describe: 'Container Device Interface: generate a spec for this host, list the defined devices',
    builder: (y: Argv<object>) =>
      y
        .command(generateCommand(d) as unknown as CommandModule<object, object>)
        .command(listCommand(d) as unknown as CommandModule<object, object>)
        .demandCommand(1, 'cdi needs a subcommand: generate or list'),
    handler: () => undefined,
  };
}

export const cdiCommand = createCdiCommand();
