/**
 * `nvidia-ctk doctor [--json] [--config FILE] [--driver-root DIR] [...]`: checks the host the way the runtime sees it
 * (src/doctor/) and prints one `PASS|INFO|WARN|FAIL <check>: <what>` line per check, with a `fix:` line under each
 * WARN and FAIL; `--json` prints the same report as one document. Exit 1 when any check FAILs, else 0.
 */
import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { NvrError } from '../errors.js';
import { CONFIG_PATH_ENV } from '../launcher-contract.js';
import { runDoctor, type DoctorOptions } from '../doctor/run.js';
import { formatReport, type DoctorReport } from '../doctor/types.js';
import { distBinDir } from './package-paths.js';

interface DoctorArgs {
  json: boolean;
  config?: string;
  'driver-root'?: string;
  'docker-config'?: string;
  'containerd-config'?: string;
  'crio-config'?: string;
  'dev-char-path'?: string;
  'serve-socket'?: string;
}

export interface DoctorCommandDeps {
  env: Readonly<Record<string, string | undefined>>;
  stdout: (text: string) => void;
  setExitCode: (code: number) => void;
  run: (o: DoctorOptions) => Promise<DoctorReport>;
}

const defaultDeps: DoctorCommandDeps = {
  env: process.env,
  stdout: (t) => process.stdout.write(t),
  setExitCode: (c) => {
    process.exitCode = c;
  },
  run: runDoctor,
};

/** The flags as options; an empty value is refused (it would silently mean the default). */
export function doctorOptions(args: DoctorArgs, env: Readonly<Record<string, string | undefined>>): DoctorOptions {
  const path = (flag: keyof DoctorArgs): string | undefined => {
    const v = args[flag];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') throw new NvrError('INPUT', `--${flag} is empty`, { fix: `give --${flag} a path, or leave it out for the default` });
    return resolve(v);
  };
  const devChar = path('dev-char-path') ?? (env.NVIDIA_CTK_DEV_CHAR_PATH ? resolve(env.NVIDIA_CTK_DEV_CHAR_PATH) : undefined);
  const o: DoctorOptions = { env, self: resolve(distBinDir(), 'nvidia-runtime'), hookPath: resolve(distBinDir(), 'nvidia-runtime-hook') };
  const set = <K extends keyof DoctorOptions>(k: K, v: DoctorOptions[K] | undefined): void => {
    if (v !== undefined) o[k] = v;
  };
  set('config', path('config'));
  set('driverRoot', path('driver-root'));
  set('dockerConfig', path('docker-config'));
  set('containerdConfig', path('containerd-config'));
  set('crioConfig', path('crio-config'));
  set('devCharPath', devChar);
  set('serveSocket', path('serve-socket'));
  return o;
}

export function createDoctorCommand(deps: Partial<DoctorCommandDeps> = {}): CommandModule<object, DoctorArgs> {
  const d: DoctorCommandDeps = { ...defaultDeps, ...deps };
  return {
    command: 'doctor',
    describe: 'check the driver, device nodes, config.toml, CDI specs, engine registrations and the warm path, and dry-run a GPU create (docs/doctor.md)',
    builder: (y: Argv<object>) =>
      y
        .usage('$0 doctor [--json] [--config FILE] [--driver-root DIR] [--docker-config FILE] [--containerd-config FILE] [--crio-config FILE] [--dev-char-path DIR] [--serve-socket PATH]')
        .option('json', { type: 'boolean', default: false, describe: 'print {checks: [{id, status, message, fix?, details?}], summary} as JSON' })
        .option('config', { type: 'string', describe: `config.toml to check (default: $${CONFIG_PATH_ENV} or /etc/nvidia-container-runtime/config.toml)` })
        .option('driver-root', { alias: 'root', type: 'string', describe: "driver root (default: config.toml's [nvidia-container-cli] root, else /)" })
        .option('docker-config', { type: 'string', describe: "Docker's daemon.json (default /etc/docker/daemon.json)" })
        .option('containerd-config', { type: 'string', describe: "containerd's config.toml (default /etc/containerd/config.toml; its imports are read too)" })
        .option('crio-config', { type: 'string', describe: "CRI-O's crio.conf (default /etc/crio/crio.conf; the crio.conf.d next to it is read too)" })
        .option('dev-char-path', { type: 'string', describe: 'where the /dev/char links are looked for (default /dev/char) [$NVIDIA_CTK_DEV_CHAR_PATH]' })
        .option('serve-socket', { type: 'string', describe: 'the warm-path socket (default /run/nvidia-runtime/serve.sock)' }) as unknown as Argv<DoctorArgs>,
    handler: async (args) => {
      const report = await d.run(doctorOptions(args, d.env));
      d.stdout(args.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
      d.setExitCode(report.summary.ok ? 0 : 1);
    },
  };
}

export const doctorCommand = createDoctorCommand();
