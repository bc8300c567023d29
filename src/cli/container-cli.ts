/**
 * `nvidia-container-cli`: the seed's `info` and `list`, answered from the host inventory (NVML through the addon +
 * driver files under the driver root), and `configure`, the live path (src/live/configure.ts). Global flags come
 * before the command, as in the seed.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isNvrError, NvrError, type ErrorCode } from '../errors.js';
import type { Argv } from 'yargs';
import { CAPABILITIES, DRIVER_OPTIONS, type Capability, type DriverOption } from '../host/capabilities.js';
import { configure, defaultApplyDeps, LIVE_CUDA_COMPAT_MODES, type ApplyDeps, type ConfigureRequest, type LiveCudaCompatMode } from '../live/configure.js';
import { listDeviceNodes, listDrmDevices, listDriverFiles, loadHostInventory, type HostInventory } from '../host/inventory.js';
import { hostPathOf } from '../host/root.js';
import { selectDevices } from './device-selection.js';
import { formatInfo, formatInfoCsv, formatInfoJson } from './info-format.js';
import { baseParser } from './yargs-base.js';

export interface CliDeps {
  print: (text: string) => void;
  loadInventory: (driverRoot: string) => HostInventory;
  apply: ApplyDeps;
}

/** dist/bin holds the applier (nvidia-runtime-hook); this file is dist/cli/ or, bundled, dist/runtime/. */
const APPLIER = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'nvidia-runtime-hook');

const defaultDeps: CliDeps = {
  print: (text) => process.stdout.write(text),
  loadInventory: (driverRoot) => loadHostInventory({ driverRoot }),
  apply: defaultApplyDeps(APPLIER),
};

/** libnvidia-container's error categories ("nvidia-container-cli: <category> error: <msg>", FACTS §1.1). */
const CATEGORY: Partial<Record<ErrorCode, string>> = {
  INPUT: 'input', CONFIG: 'input', NVML: 'initialization', DRIVER_ROOT: 'initialization', LDCACHE: 'ldcache',
  DEVICE: 'device', REQUIREMENT: 'requirement', IO: 'container',
};

/** An error of `configure` in the toolkit's words: the category first, then our one line. */
function categorized(e: unknown): unknown {
  if (!isNvrError(e)) return e;
  return new NvrError(e.code, `${CATEGORY[e.code] ?? 'container'} error: ${e.message}`, { ...(e.fix ? { fix: e.fix } : {}), exitCode: e.exitCode });
}

/** The configure flags as the request; capability flags none → utility (libnvidia-container's default). */
function configureRequestOf(args: Record<string, unknown>): ConfigureRequest {
  const list = (v: unknown): string[] => ((v as unknown[] | undefined) ?? []).map(String);
  const chosen = CAPABILITIES.filter((c) => args[c] === true);
  return {
    driverRoot: String(args.root),
    rootfs: String(args.rootfs),
    ...(args.pid !== undefined ? { pid: String(args.pid) } : {}),
    devices: list(args.device).flatMap((d) => d.split(',')),
    capabilities: chosen.length > 0 ? chosen : ['utility'],
    requirements: list(args.require),
    ...(args['mig-config'] !== undefined ? { migConfig: String(args['mig-config']) } : {}),
    ...(args['mig-monitor'] !== undefined ? { migMonitor: String(args['mig-monitor']) } : {}),
    imexChannels: list(args['imex-channel']),
    ...(args.ldconfig !== undefined ? { ldconfig: String(args.ldconfig) } : {}),
    noCgroups: args['no-cgroups'] === true,
    noDevbind: args['no-devbind'] === true,
    driverOptions: driverOptionsOf(args),
    ...(args['cuda-compat-mode'] !== undefined ? { cudaCompatMode: args['cuda-compat-mode'] as LiveCudaCompatMode } : {}),
  };
}

/** The driver-option flags (--no-glvnd, --no-persistenced, …) that are set. */
function driverOptionsOf(args: Record<string, unknown>): DriverOption[] {
  return DRIVER_OPTIONS.filter((o) => args[o] === true);
}

/** libnvidia-container's driver options as flags of list and configure. */
const DRIVER_OPTION_HELP: Record<DriverOption, string> = {
  'no-glvnd': 'the non-glvnd GL libraries (libGL, libEGL, libGLES*) instead of the glvnd vendor libraries',
  'no-uvm': 'leave out nvidia-uvm and nvidia-uvm-tools',
  'no-modeset': 'leave out nvidia-modeset',
  'no-mps': 'leave out the MPS binaries and pipe directory',
  'no-persistenced': 'leave out the persistenced socket',
  'no-fabricmanager': 'leave out the fabricmanager socket',
  'no-gsp-firmware': 'leave out the GSP firmware',
};

function withDriverOptions<T>(y: Argv<T>): Argv<T> {
  let built = y;
  for (const o of DRIVER_OPTIONS) built = built.option(o, { type: 'boolean', default: false, describe: DRIVER_OPTION_HELP[o] }) as unknown as Argv<T>;
  return built;
}

export interface ListedFile {
  kind: 'device' | 'binary' | 'library' | 'library32' | 'ipc' | 'firmware' | 'config';
  /** Path inside the driver root, which is also the path inside the container. */
  path: string;
  /** Absolute path on the host (driver root + path). */
  hostPath: string;
}

/** What `list` prints, in the seed's order: devices, binaries, libraries, IPC, firmware (FACTS.md §1.3), then the
 *  graphics/display configuration files and X modules the seed did not have. */
export function listFiles(inv: HostInventory, caps: Capability[], deviceIds: string[] | undefined, opts: DriverOption[] = []): ListedFile[] {
  const out: ListedFile[] = [];
  const add = (kind: ListedFile['kind'], root: string, paths: string[]) =>
    paths.forEach((path) => out.push({ kind, path, hostPath: hostPathOf(root, path) }));
  if (deviceIds !== undefined) {
    const selection = selectDevices(deviceIds, inv.driver);
    const devices = listDeviceNodes(inv, caps, selection, opts);
    out.push(...devices.nodes.map((n) => ({ kind: 'device' as const, path: n.path, hostPath: n.hostPath })));
    if (caps.includes('graphics') || caps.includes('display')) {
      out.push(...listDrmDevices(inv, selection.gpus).nodes.map((n) => ({ kind: 'device' as const, path: n.path, hostPath: n.hostPath })));
    }
    for (const cap of devices.migCapabilities) {
      add('device', inv.root, [cap.procPath]);
      if (cap.node) out.push({ kind: 'device', path: cap.node.path, hostPath: cap.node.hostPath });
    }
  }
  const files = listDriverFiles(inv, caps, opts);
  add('binary', inv.root, files.binaries.paths);
  add('library', inv.root, files.libraries.libraries);
  add('library32', inv.root, files.libraries.libraries32);
  add('ipc', inv.root, files.ipcs.paths);
  add('firmware', inv.root, files.firmware);
  for (const c of files.configs) out.push({ kind: 'config', path: c.path, hostPath: hostPathOf(inv.root, c.source) });
  return out;
}

/** What `list --json` prints (docs/doctor.md): the driver root, the capabilities listed, and every file the text
 *  lists (its host path) with its kind and its path inside the container, in the text's order. */
export interface ListJson {
  root: string;
  capabilities: Capability[];
  files: ListedFile[];
}

export function listJson(root: string, capabilities: Capability[], files: ListedFile[]): ListJson {
  return { root, capabilities, files };
}

export async function containerCliMain(argv: string[], deps: CliDeps = defaultDeps): Promise<number> {
  await baseParser(argv, 'nvidia-container-cli')
    // --no-cgroups, --no-pivot … are flags of their own (as in libnvidia-container), not negations; a repeatable
    // flag takes one value each time (argp's way), so --require=X never swallows the rootfs after it.
    .parserConfiguration({ 'boolean-negation': false, 'greedy-arrays': false })
    .usage('$0 [--root DIR] <info|list|configure> [options]')
    .option('root', { alias: 'r', type: 'string', default: '/', describe: 'driver root (e.g. /run/nvidia/driver)' })
    .option('load-kmods', { alias: 'k', type: 'boolean', default: false, describe: 'accepted for compatibility; the mock and containerized drivers need none' })
    .option('debug', { alias: 'd', type: 'string', describe: 'accepted for compatibility' })
    .option('ldcache', { alias: 'l', type: 'string', describe: 'accepted for compatibility (the root\'s /etc/ld.so.cache is used)' })
    .option('user', { alias: 'u', type: 'string', describe: 'accepted for compatibility (no helper runs as another user; in a user namespace device nodes are bind-mounted)' })
    .option('no-pivot', { alias: 'n', type: 'boolean', default: false, describe: 'accepted for compatibility (ldconfig always runs chrooted in a private mount namespace)' })
    .option('no-create-imex-channels', { type: 'boolean', default: false, describe: 'accepted for compatibility (IMEX channel nodes are never created on the host)' })
    .command(
      'info',
      'print the driver and its GPUs',
      (y) =>
        y
          .option('csv', { type: 'boolean', default: false, describe: 'CSV output, as the seed prints it' })
          .option('json', { type: 'boolean', default: false, describe: 'JSON output (wins over --csv)' }),
      (args) => {
        const inv = deps.loadInventory(args.root);
        deps.print(args.json ? formatInfoJson(inv.driver) : args.csv ? formatInfoCsv(inv.driver) : formatInfo(inv.driver));
      },
    )
    .command(
      'list',
      'print the host paths of what would be injected',
      (y) => {
        let built = y
          .option('device', { type: 'string', array: true, describe: 'GPUs whose device nodes to list: all, indices, UUIDs, MIG 0:1 (comma-separated or repeated)' })
          .option('json', { type: 'boolean', default: false, describe: 'JSON output with container and host paths' });
        for (const cap of CAPABILITIES) built = built.option(cap, { type: 'boolean', default: false, describe: `files for the ${cap} capability` });
        return withDriverOptions(built);
      },
      (args) => {
        const chosen = CAPABILITIES.filter((c) => args[c] === true);
        const caps: Capability[] = chosen.length > 0 ? chosen : ['utility', 'compute'];
        const ids = args.device?.flatMap((d) => String(d).split(',')).filter((d) => d !== '');
        const inv = deps.loadInventory(args.root);
        const files = listFiles(inv, caps, ids, driverOptionsOf(args));
        deps.print(
          args.json
            ? JSON.stringify(listJson(inv.root, caps, files), null, 2) + '\n'
            : files.map((f) => f.hostPath).join('\n') + (files.length ? '\n' : ''),
        );
      },
    )
    .command(
      'configure <rootfs>',
      'give a container that is being started (prestart or LXC mount hook) its GPUs, driver files and ld cache',
      (y) => {
        let built = y
          .positional('rootfs', { type: 'string', describe: 'the container rootfs (absolute, as seen in its mount namespace)' })
          .option('pid', { alias: 'p', type: 'string', describe: 'container init pid (without: the mount namespace this runs in, as an LXC mount hook)' })
          .option('device', { type: 'string', array: true, describe: 'GPUs: all, indices, UUIDs, PCI bus ids, MIG 0:1 or MIG UUIDs (comma-separated or repeated)' })
          .option('require', { type: 'string', array: true, describe: 'a requirement (cuda>=12.0 arch=8.0 …), one per NVIDIA_REQUIRE_*' })
          .option('ldconfig', { type: 'string', describe: 'host ldconfig as @/path (the container\'s own is never run as root)' })
          .option('mig-config', { type: 'string', describe: 'all: the MIG config capability' })
          .option('mig-monitor', { type: 'string', describe: 'all: the MIG monitor capability' })
          .option('imex-channel', { type: 'string', array: true, describe: 'IMEX channel numbers' })
          .option('no-cgroups', { type: 'boolean', default: false, describe: 'do not change the device cgroup (rootless, user namespaces, cgroup v2)' })
          .option('no-devbind', { type: 'boolean', default: false, describe: 'do not create the device nodes' })
          .option('cuda-compat-mode', { type: 'string', choices: [...LIVE_CUDA_COMPAT_MODES], describe: 'CUDA forward compatibility: mount the image\'s newer compat libraries (default), list their directory first in the ld cache (ldconfig), or disabled' });
        for (const cap of CAPABILITIES) built = built.option(cap, { type: 'boolean', default: false, describe: `files for the ${cap} capability` });
        return withDriverOptions(built);
      },
      (args) => {
        try {
          const req = configureRequestOf(args);
          configure(req, deps.loadInventory(req.driverRoot), deps.apply);
        } catch (e) {
          throw categorized(e);
        }
      },
    )
    .demandCommand(1, 'a command is required: info, list or configure')
    .parseAsync();
  return 0;
}
