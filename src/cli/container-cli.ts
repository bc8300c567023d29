/**
 * `nvidia-container-cli`: the seed's `info` and `list`, answered from the host inventory (NVML through the addon +
 * driver files under the driver root). Global flags come before the command, as in the seed.
 */
import { CAPABILITIES, type Capability } from '../host/capabilities.js';
import { listDeviceNodes, listDriverFiles, loadHostInventory, type HostInventory } from '../host/inventory.js';
import { hostPathOf } from '../host/root.js';
import { selectDevices } from './device-selection.js';
import { formatInfo, formatInfoCsv, formatInfoJson } from './info-format.js';
import { baseParser } from './yargs-base.js';

export interface CliDeps {
  print: (text: string) => void;
  loadInventory: (driverRoot: string) => HostInventory;
}

const defaultDeps: CliDeps = {
  print: (text) => process.stdout.write(text),
  loadInventory: (driverRoot) => loadHostInventory({ driverRoot }),
};

export interface ListedFile {
  kind: 'device' | 'binary' | 'library' | 'library32' | 'ipc' | 'firmware';
  /** Path inside the driver root, which is also the path inside the container. */
  path: string;
  /** Absolute path on the host (driver root + path). */
  hostPath: string;
}

/** What `list` prints, in the seed's order: devices, binaries, libraries, IPC, firmware (FACTS.md §1.3). */
export function listFiles(inv: HostInventory, caps: Capability[], deviceIds: string[] | undefined): ListedFile[] {
  const out: ListedFile[] = [];
  const add = (kind: ListedFile['kind'], root: string, paths: string[]) =>
    paths.forEach((path) => out.push({ kind, path, hostPath: hostPathOf(root, path) }));
  if (deviceIds !== undefined) {
    const selection = selectDevices(deviceIds, inv.driver);
    const devices = listDeviceNodes(inv, caps, selection);
    out.push(...devices.nodes.map((n) => ({ kind: 'device' as const, path: n.path, hostPath: n.hostPath })));
    for (const cap of devices.migCapabilities) {
      add('device', inv.root, [cap.procPath]);
      if (cap.node) out.push({ kind: 'device', path: cap.node.path, hostPath: cap.node.hostPath });
    }
  }
  const files = listDriverFiles(inv, caps);
  add('binary', inv.root, files.binaries.paths);
  add('library', inv.root, files.libraries.libraries);
  add('library32', inv.root, files.libraries.libraries32);
  add('ipc', inv.root, files.ipcs.paths);
  add('firmware', inv.root, files.firmware);
  return out;
}

export async function containerCliMain(argv: string[], deps: CliDeps = defaultDeps): Promise<number> {
  await baseParser(argv, 'nvidia-container-cli')
    .usage('$0 [--root DIR] <info|list> [options]')
    .option('root', { alias: 'r', type: 'string', default: '/', describe: 'driver root (e.g. /run/nvidia/driver)' })
    .option('load-kmods', { alias: 'k', type: 'boolean', default: false, describe: 'accepted for compatibility; the mock and containerized drivers need none' })
    .option('debug', { alias: 'd', type: 'string', describe: 'accepted for compatibility' })
    .option('ldcache', { alias: 'l', type: 'string', describe: 'accepted for compatibility (the root\'s /etc/ld.so.cache is used)' })
    .option('user', { alias: 'u', type: 'string', describe: 'accepted for compatibility' })
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
        return built;
      },
      (args) => {
        const chosen = CAPABILITIES.filter((c) => args[c] === true);
        const caps: Capability[] = chosen.length > 0 ? chosen : ['utility', 'compute'];
        const ids = args.device?.flatMap((d) => String(d).split(',')).filter((d) => d !== '');
        const inv = deps.loadInventory(args.root);
        const files = listFiles(inv, caps, ids);
        deps.print(
          args.json
            ? JSON.stringify({ root: inv.root, capabilities: caps, files }, null, 2) + '\n'
            : files.map((f) => f.hostPath).join('\n') + (files.length ? '\n' : ''),
        );
      },
    )
    .demandCommand(1, 'a command is required: info or list')
    .parseAsync();
  return 0;
}
