/**
 * `nvidia-ctk cdi generate|list|transform root` (PEER.md §3.4, docs/cdi.md). Host access and output are injected so
 * tests can run the command in-process.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { stringify as toYaml } from 'yaml';
import { generateCdiSpec, generateFeatureSpec, generateImexSpec } from '../cdi/generate.js';
import { FEATURES, type Feature } from '../host/graphics.js';
import { DEFAULT_SPEC_DIRS, MAX_SPEC_BYTES, parseSpecText } from '../cdi/load.js';
import { listCdiDevices, loadCdiRegistry } from '../cdi/registry.js';
import { normaliseRoot, RELATIVE_TO, transformSpecRoot, type RelativeTo } from '../cdi/transform.js';
import type { CdiSpec } from '../cdi/types.js';
import { specProblem } from '../cdi/validate.js';
import { loadConfig } from '../config/load.js';
import { NvrError } from '../errors.js';
import { loadHostInventory, type HostInventory } from '../host/inventory.js';
import { writeFileAtomic } from '../oci/atomic-write.js';
import { distBinDir } from './package-paths.js';

export interface CdiDeps {
  loadInventory: (driverRoot: string, devRoot?: string) => HostInventory;
  /** The driver root when --driver-root is not given. */
  defaultDriverRoot: () => string;
  hookPath: () => string;
  writeFile: (file: string, text: string) => void;
  /** Reads a spec to transform: a file, or stdin for `-`. Throws an errno-style error or NvrError. */
  readInput: (file: string) => string;
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
  readInput: (file) => readBounded(file === '-' ? 0 : file),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  setExitCode: (code) => {
    process.exitCode = code;
  },
};

/** A spec file (or stdin, fd 0) read whole, refusing anything larger than a spec can be. */
function readBounded(file: string | number): string {
  const what = typeof file === 'number' ? 'on stdin' : file;
  const tooLarge = (): NvrError => new NvrError('INPUT', `CDI spec ${what}: larger than ${MAX_SPEC_BYTES} bytes`, { fix: 'this is not a CDI spec; check --input' });
  const fd = typeof file === 'number' ? file : openSync(file, 'r');
  try {
    const st = fstatSync(fd);
    if (st.isFile() && st.size > MAX_SPEC_BYTES) throw tooLarge();
    const text = readFileSync(fd, 'utf8');
    if (Buffer.byteLength(text) > MAX_SPEC_BYTES) throw tooLarge();
    return text;
  } finally {
    if (typeof file !== 'number') closeSync(fd);
  }
}

interface GenerateArgs {
  output?: string;
  format?: string;
  vendor: string;
  class?: string;
  mode: string;
  'device-name-strategy'?: string[];
  'disable-hook'?: string[];
  'driver-root'?: string;
  'dev-root'?: string;
}

interface ListArgs {
  'spec-dir'?: string[];
  json?: boolean;
}

interface TransformRootArgs {
  from: string;
  to: string;
  'relative-to': string;
  input: string;
  output?: string;
  format?: string;
}

/** What `cdi list --json` prints (docs/cdi.md). */
export interface CdiListJson {
  specDirs: string[];
  devices: { name: string; kind: string; file: string }[];
  errors: { file: string; reason: string }[];
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

/** --disable-hook names we understand; the toolkit's others (create-symlinks, update-ldcache, chmod) are not
 *  separate hooks in our specs, so leaving them out would break the spec: refused with a line that says so. */
function disabledHooks(names: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const n of names.flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter(Boolean)) {
    if (n === 'all' || n === 'enable-cuda-compat') out.add('enable-cuda-compat');
    else throw new NvrError('INPUT', `--disable-hook ${n}: only enable-cuda-compat (or all) can be left out`, { fix: 'our specs make links and the ld cache in one hook that every spec needs; drop this --disable-hook' });
  }
  return out;
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
        .option('class', { alias: 'cdi-class', type: 'string', describe: 'class of the device kind (default gpu; imex-channel with --mode imex)' })
        .option('mode', { alias: 'discovery-mode', type: 'string', choices: ['auto', 'nvml', 'imex', ...FEATURES], default: 'auto', describe: 'auto/nvml: the GPUs and MIG devices; imex, gds, mofed, nvswitch, gdrcopy: a spec of its own for those nodes (nvidia.com/<mode>)' })
        .option('disable-hook', { type: 'string', array: true, describe: 'leave out a hook: enable-cuda-compat (CUDA forward compatibility in the ld cache hook), or all' })
        .option('device-name-strategy', { type: 'string', array: true, describe: 'index, uuid or type-index (repeatable; default index and uuid)' })
        .option('driver-root', { type: 'string', describe: 'driver root (default: config.toml [nvidia-container-cli] root, else /)' })
        .option('dev-root', { type: 'string', describe: 'where the device nodes are (default: the driver root)' }) as unknown as Argv<GenerateArgs>,
    handler: (args) => {
      const format = outputFormat(args.format, args.output);
      const driverRoot = args['driver-root'] ?? d.defaultDriverRoot();
      const inventory = d.loadInventory(driverRoot, args['dev-root']);
      const kindOpts = { vendor: args.vendor, ...(args.class !== undefined ? { class: args.class } : {}) };
      const disabled = disabledHooks(args['disable-hook'] ?? []);
      const spec =
        args.mode === 'imex'
          ? generateImexSpec(inventory, kindOpts)
          : (FEATURES as readonly string[]).includes(args.mode)
            ? generateFeatureSpec(inventory, args.mode as Feature, kindOpts)
            : generateCdiSpec(inventory, {
                vendor: args.vendor,
                class: args.class ?? 'gpu',
                deviceNameStrategies: args['device-name-strategy'],
                hookPath: d.hookPath(),
                cudaCompat: !disabled.has('enable-cuda-compat'),
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
      y
        .option('spec-dir', { type: 'string', array: true, describe: `spec directory, later ones win (repeatable; default ${DEFAULT_SPEC_DIRS.join(', ')})` })
        .option('json', { type: 'boolean', default: false, describe: 'print {specDirs, devices: [{name, kind, file}], errors: [{file, reason}]} as JSON' }) as unknown as Argv<ListArgs>,
    handler: (args) => {
      const dirs = args['spec-dir'] && args['spec-dir'].length > 0 ? args['spec-dir'] : [...DEFAULT_SPEC_DIRS];
      const registry = loadCdiRegistry(dirs);
      const names = listCdiDevices(registry);
      if (args.json) {
        const out: CdiListJson = {
          specDirs: registry.specDirs,
          devices: names.map((name) => {
            const e = registry.devices.get(name)!;
            return { name, kind: e.kind, file: e.file };
          }),
          errors: registry.errors.map((e) => ({ file: e.file, reason: e.reason })),
        };
        d.stdout(JSON.stringify(out, null, 2) + '\n');
      } else {
        for (const e of registry.errors) d.stderr(`${e.file}: ${e.reason}\n`);
        if (names.length > 0) d.stdout(names.map((n) => `${n}\n`).join(''));
      }
      // Broken files are reported but do not fail the listing as long as something usable was found.
      if (names.length === 0 && registry.errors.length > 0) d.setExitCode(1);
    },
  };
}

function checkedSpec(doc: unknown, name: string): CdiSpec {
  const p = specProblem(doc);
  if (p) throw new NvrError('INPUT', `CDI spec ${name}: ${p.field ? `${p.field}: ` : ''}${p.reason}`, { fix: 'give a valid CDI spec as --input (nvidia-ctk cdi list shows why a spec is refused; see docs/cdi.md)' });
  return doc as CdiSpec;
}

function transformRootCommand(d: CdiDeps): CommandModule<object, TransformRootArgs> {
  return {
    command: 'root',
    describe: "move a CDI spec's paths from one root to another (e.g. a driver container's /run/nvidia/driver to /)",
    builder: (y: Argv<object>) =>
      y
        .option('from', { type: 'string', demandOption: true, describe: 'the root the paths are under now' })
        .option('to', { type: 'string', demandOption: true, describe: 'the root to move them to' })
        .option('relative-to', { type: 'string', default: 'host', describe: 'which paths move: host (host paths, the default) or container' })
        .option('input', { type: 'string', default: '-', describe: 'spec to read (.json as JSON, else YAML); - = stdin' })
        .option('output', { type: 'string', describe: 'file to write (atomically); default stdout' })
        .option('format', { type: 'string', describe: 'yaml or json (default yaml, or the --output extension)' }) as unknown as Argv<TransformRootArgs>,
    handler: (args) => {
      const relativeTo = args['relative-to'];
      if (!(RELATIVE_TO as readonly string[]).includes(relativeTo)) {
        throw new NvrError('INPUT', `--relative-to ${relativeTo}: must be host or container`, { fix: 'use --relative-to host (the default) or --relative-to container' });
      }
      const roots = { from: normaliseRoot(args.from, '--from'), to: normaliseRoot(args.to, '--to'), relativeTo: relativeTo as RelativeTo };
      if (args.input === '') throw new NvrError('INPUT', '--input is empty', { fix: 'give the spec file to read, or - for stdin' });
      const format = outputFormat(args.format, args.output);
      const name = args.input === '-' ? '<stdin>' : args.input;
      let text: string;
      try {
        text = d.readInput(args.input);
      } catch (e) {
        if (e instanceof NvrError) throw e;
        const code = (e as NodeJS.ErrnoException).code;
        throw new NvrError('IO', `CDI spec ${name}: cannot be read${code ? ` (${code})` : ''}`, { fix: 'check --input (a spec file, or - for stdin)', cause: e });
      }
      const spec = checkedSpec(parseSpecText(text, name), name);
      const out = checkedSpec(transformSpecRoot(spec, roots), `${name} after the transform`);
      const result = formatSpec(out, format);
      if (args.output !== undefined && args.output !== '-' && args.output !== '') d.writeFile(args.output, result);
      else d.stdout(result);
    },
  };
}

function transformCommand(d: CdiDeps): CommandModule<object, object> {
  return {
    command: 'transform',
    describe: 'rewrite a CDI spec',
    builder: (y: Argv<object>) =>
      y.command(transformRootCommand(d) as unknown as CommandModule<object, object>).demandCommand(1, 'cdi transform needs a subcommand: root'),
    handler: () => undefined,
  };
}

export function createCdiCommand(deps: Partial<CdiDeps> = {}): CommandModule<object, object> {
  const d: CdiDeps = { ...defaultDeps, ...deps };
  return {
    command: 'cdi <command>',
    describe: 'Container Device Interface: generate a spec for this host, list the defined devices, transform a spec',
    builder: (y: Argv<object>) =>
      y
        .command(generateCommand(d) as unknown as CommandModule<object, object>)
        .command(listCommand(d) as unknown as CommandModule<object, object>)
        .command(transformCommand(d))
        .demandCommand(1, 'cdi needs a subcommand: generate, list or transform'),
    handler: () => undefined,
  };
}

export const cdiCommand = createCdiCommand();
