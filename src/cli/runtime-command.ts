/**
 * `nvidia-ctk runtime configure|unconfigure`: registers nvidia-runtime with Docker, containerd or CRI-O
 * (docs/engines.md). Flags follow NVIDIA's `nvidia-ctk runtime configure` (PEER §3.4).
 */
import type { Argv, CommandModule } from 'yargs';
import { loadConfig } from '../config/load.js';
import {
  applyChanges, DEFAULT_CONFIG_FILE, DEFAULT_DROP_IN, DEFAULT_RUNTIME_NAME, DEFAULT_RUNTIME_PATH, defaultApplyDeps,
  defaultConfigureDeps, ENGINES, formatDryRun, nextSteps, planConfigure, type ApplyDeps, type ConfigureDeps,
  type ConfigureRequest, type EngineName,
} from '../engines/configure.js';

export interface RuntimeConfigureArgs {
  runtime: EngineName;
  config?: string;
  dryRun: boolean;
  nvidiaRuntimeName: string;
  nvidiaRuntimePath: string;
  setAsDefault: boolean;
  'cdi.enabled': boolean;
  dropIn: boolean;
  dropInConfig?: string;
  uninstall: boolean;
}

export interface RuntimeCommandDeps {
  configure: ConfigureDeps;
  apply: ApplyDeps;
  stdout: (text: string) => void;
  /** The CDI annotation prefixes the runtime will read: its config.toml ($NVIDIA_CTK_CONFIG_FILE_PATH or the default). */
  cdiAnnotationPrefixes: () => readonly string[];
}

export const defaultRuntimeCommandDeps: RuntimeCommandDeps = {
  configure: defaultConfigureDeps,
  apply: defaultApplyDeps,
  stdout: (t) => process.stdout.write(t),
  cdiAnnotationPrefixes: () => loadConfig({ env: process.env }).runtime.cdi.annotationPrefixes,
};

/** The request the flags describe: the drop-in is the default for containerd and CRI-O, `--no-drop-in` edits the main file. */
export function requestFromArgs(args: RuntimeConfigureArgs, uninstall: boolean, deps: Pick<RuntimeCommandDeps, 'cdiAnnotationPrefixes'>): ConfigureRequest {
  const engine = args.runtime;
  const removing = uninstall || args.uninstall;
  return {
    engine,
    configFile: args.config ?? DEFAULT_CONFIG_FILE[engine],
    dropInFile: args.dropInConfig ?? (args.dropIn ? DEFAULT_DROP_IN[engine] : null),
    runtimeName: args.nvidiaRuntimeName,
    runtimePath: args.nvidiaRuntimePath,
    setAsDefault: args.setAsDefault,
    cdiEnabled: args['cdi.enabled'],
    // Only a containerd handler lists them; the runtime's config is read only then, so a broken one stops nothing else.
    cdiAnnotationPrefixes: engine === 'containerd' && !removing ? deps.cdiAnnotationPrefixes() : [],
    uninstall: removing,
  };
}

export function runRuntimeConfigure(req: ConfigureRequest, dryRun: boolean, deps: RuntimeCommandDeps = defaultRuntimeCommandDeps): void {
  const changes = planConfigure(req, deps.configure);
  const what = `runtime "${req.runtimeName}" for ${req.engine}`;
  if (changes.length === 0) {
    deps.stdout(req.uninstall ? `Nothing to remove: ${what} is not configured in ${req.configFile}.\n` : `Already configured: ${what} in ${req.dropInFile ?? req.configFile}; nothing changed.\n`);
    return;
  }
  if (dryRun) {
    deps.stdout(formatDryRun(changes));
    return;
  }
  const done = applyChanges(changes, deps.apply);
  deps.stdout([`${req.uninstall ? 'Removed' : 'Configured'} ${what}:`, ...done.map((l) => `  ${l}`), ...nextSteps(req.engine, req)].join('\n') + '\n');
}

function options(y: Argv): Argv<RuntimeConfigureArgs> {
  // `--cdi.enabled` is one flag name, not a nested `cdi` object (which strict mode would reject).
  return y
    .parserConfiguration({ 'dot-notation': false })
    .option('runtime', { choices: ENGINES, default: 'docker' as EngineName, describe: 'the container engine to configure' })
    .option('config', { type: 'string', describe: 'the engine config file (default: /etc/docker/daemon.json, /etc/containerd/config.toml, /etc/crio/crio.conf)' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'print the resulting file(s) and write nothing' })
    .option('nvidia-runtime-name', { type: 'string', default: DEFAULT_RUNTIME_NAME, describe: 'the runtime (handler) name' })
    .option('nvidia-runtime-path', { alias: 'runtime-path', type: 'string', default: DEFAULT_RUNTIME_PATH, describe: 'absolute path of nvidia-runtime' })
    .option('set-as-default', { alias: 'nvidia-set-as-default', type: 'boolean', default: false, describe: 'make it the engine\'s default runtime' })
    .option('cdi.enabled', { alias: 'enable-cdi', type: 'boolean', default: false, describe: 'enable CDI in the engine (docker features.cdi, containerd enable_cdi)' })
    .option('drop-in', { type: 'boolean', default: true, describe: 'containerd/CRI-O: write a drop-in file (--no-drop-in edits the main config)' })
    .option('drop-in-config', { type: 'string', describe: 'the drop-in file (default: /etc/containerd/conf.d/99-nvidia.toml, /etc/crio/crio.conf.d/99-nvidia.toml)' })
    .option('uninstall', { type: 'boolean', default: false, describe: 'remove what configure added' }) as never;
}

export function createRuntimeCommand(deps: RuntimeCommandDeps = defaultRuntimeCommandDeps): CommandModule {
  const sub = (name: 'configure' | 'unconfigure'): CommandModule<object, RuntimeConfigureArgs> => ({
    command: name,
    describe: name === 'configure' ? 'register nvidia-runtime with docker, containerd or CRI-O' : 'remove what `runtime configure` added (= configure --uninstall)',
    builder: options,
    handler: (args) => runRuntimeConfigure(requestFromArgs(args, name === 'unconfigure', deps), args.dryRun, deps),
  });
  return {
    command: 'runtime <command>',
    describe: 'configure container engines to use nvidia-runtime',
    builder: (y) => y.command(sub('configure')).command(sub('unconfigure')).demandCommand(1, 'a runtime subcommand is required (configure or unconfigure)'),
    handler: () => undefined,
  };
}

export const runtimeCommand = createRuntimeCommand();
