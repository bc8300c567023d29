import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../helpers/dist.js';
import { baseParser } from '../../../src/cli/yargs-base.js';
import { createRuntimeCommand, defaultRuntimeCommandDeps } from '../../../src/cli/runtime-command.js';
import { NvrError } from '../../../src/errors.js';
import { backupName } from '../../../src/engines/backup.js';
import { defaultApplyDeps, planConfigure, readConfigFile, type ConfigureRequest } from '../../../src/engines/configure.js';
import { parseToml } from '../../../src/engines/containerd.js';

const fixture = (name: string) => readFileSync(join(PACKAGE_ROOT, 'test/fixtures/engines', name), 'utf8');

let dir: string;
let out: string[];
let containerdVersion: string | undefined;
/** What the runtime's config.toml would say (`annotation-prefixes`). */
let annotationPrefixes: string[];
beforeEach(() => {
  annotationPrefixes = ['cdi.k8s.io/'];
  dir = mkdtempSync(join(tmpdir(), 'nvr-engines-'));
  out = [];
  containerdVersion = undefined;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** `nvidia-ctk <argv>` with the runtime command only, real files, recorded stdout and a fake `containerd --version`. */
async function ctk(...argv: string[]): Promise<string> {
  out = [];
  const command = createRuntimeCommand({
    configure: { readFile: readConfigFile, containerdVersion: () => containerdVersion },
    apply: defaultApplyDeps,
    stdout: (t) => out.push(t),
    cdiAnnotationPrefixes: () => annotationPrefixes,
  });
  await baseParser(argv, 'nvidia-ctk').command(command).demandCommand(1).parseAsync();
  return out.join('');
}

const backups = (file: string) => readdirSync(join(file, '..')).filter((f) => f.startsWith(`${file.split('/').pop()}.`) && f.endsWith('.bak'));
const read = (f: string) => readFileSync(f, 'utf8');

describe('docker', () => {
  let file: string;
  beforeEach(() => {
    file = join(dir, 'daemon.json');
    writeFileSync(file, fixture('docker-existing.json'), { mode: 0o600 });
  });

  test('configure writes the golden result atomically, keeps the mode and backs up the original', async () => {
    const msg = await ctk('runtime', 'configure', '--runtime=docker', '--config', file, '--set-as-default', '--cdi.enabled');
    expect(read(file)).toBe(fixture('docker-existing.golden.json'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const [bak] = backups(file);
    expect(read(join(dir, bak))).toBe(fixture('docker-existing.json'));
    expect(msg).toContain(`Updated ${file} (previous content saved as ${join(dir, bak)})`);
    expect(msg).toContain('kill -HUP $(pidof dockerd)');
  });

  test('a second run changes nothing, makes no backup and says so', async () => {
    await ctk('runtime', 'configure', '--config', file);
    const { ino, mtimeMs } = statSync(file);
    const msg = await ctk('runtime', 'configure', '--config', file);
    expect(msg).toMatch(/^Already configured: runtime "nvidia" for docker/);
    expect(statSync(file)).toMatchObject({ ino, mtimeMs });
    expect(backups(file)).toHaveLength(1);
  });

  test('--dry-run prints the result and writes nothing', async () => {
    const msg = await ctk('runtime', 'configure', '--config', file, '--dry-run', '--nvidia-runtime-path', '/opt/nv/nvidia-runtime');
    expect(msg).toContain(`# ${file}\n`);
    expect(JSON.parse(msg.slice(msg.indexOf('\n') + 1)).runtimes.nvidia).toEqual({ path: '/opt/nv/nvidia-runtime', runtimeArgs: [] });
    expect(read(file)).toBe(fixture('docker-existing.json'));
    expect(backups(file)).toEqual([]);
  });

  test('a missing file is created (no backup); uninstall (and its alias unconfigure) restores the original', async () => {
    const fresh = join(dir, 'new', 'daemon.json');
    await ctk('runtime', 'configure', '--config', fresh, '--set-as-default');
    expect(JSON.parse(read(fresh))).toEqual({ runtimes: { nvidia: { path: '/usr/bin/nvidia-runtime', runtimeArgs: [] } }, 'default-runtime': 'nvidia' });
    expect(backups(fresh)).toEqual([]);
    await ctk('runtime', 'unconfigure', '--config', fresh);
    expect(JSON.parse(read(fresh))).toEqual({ runtimes: {}, 'default-runtime': 'runc' });

    await ctk('runtime', 'configure', '--config', file);
    await ctk('runtime', 'configure', '--uninstall', '--config', file);
    expect(JSON.parse(read(file))).toEqual(JSON.parse(fixture('docker-existing.json')));
    expect(await ctk('runtime', 'unconfigure', '--config', file)).toMatch(/^Nothing to remove/);
  });

  test('a malformed file is an NvrError naming it; the file is untouched and no backup is made', async () => {
    writeFileSync(file, fixture('malformed.json'));
    await expect(ctk('runtime', 'configure', '--config', file)).rejects.toThrow(new RegExp(`^${file}: not valid JSON`));
    expect(read(file)).toBe(fixture('malformed.json'));
    expect(backups(file)).toEqual([]);
  });

  test('bad flags are INPUT errors', async () => {
    await expect(ctk('runtime', 'configure', '--config', file, '--nvidia-runtime-path', 'nvidia-runtime')).rejects.toThrow(/is not an absolute path/);
    await expect(ctk('runtime', 'configure', '--config', file, '--nvidia-runtime-name', 'runc')).rejects.toThrow(/reserved/);
    await expect(ctk('runtime', 'configure', '--config', file, '--drop-in-config', '/x')).rejects.toThrow(/not supported for docker/);
    await expect(ctk('runtime', 'configure', '--runtime', 'podman')).rejects.toThrow(NvrError);
    expect(read(file)).toBe(fixture('docker-existing.json'));
  });
});

describe('containerd', () => {
  let main: string;
  let dropIn: string;
  beforeEach(() => {
    main = join(dir, 'config.toml');
    dropIn = join(dir, 'conf.d', '99-nvidia.toml');
  });

  test('drop-in mode: the drop-in holds the CRI table with our handler, the main file only gains the import', async () => {
    writeFileSync(main, fixture('containerd-v2.toml'));
    await ctk('runtime', 'configure', '--runtime=containerd', '--config', main, '--drop-in-config', dropIn, '--set-as-default', '--cdi.enabled');
    expect(read(dropIn)).toBe(fixture('containerd-v2.drop-in.golden.toml'));
    expect(parseToml(read(main), 'm')).toEqual({ ...parseToml(fixture('containerd-v2.toml'), 'm'), imports: [dropIn] });
    expect(backups(main)).toHaveLength(1);
    expect(backups(dropIn)).toEqual([]);

    expect(await ctk('runtime', 'configure', '--runtime=containerd', '--config', main, '--drop-in-config', dropIn, '--set-as-default', '--cdi.enabled')).toMatch(/^Already configured/);
    expect(backups(main)).toHaveLength(1);

    const msg = await ctk('runtime', 'unconfigure', '--runtime=containerd', '--config', main, '--drop-in-config', dropIn);
    expect(msg.indexOf(`Updated ${main}`)).toBeLessThan(msg.indexOf(`Removed ${dropIn}`)); // never an import of a missing file
    expect(existsSync(dropIn)).toBe(false);
    expect(parseToml(read(main), 'm')).toEqual(parseToml(fixture('containerd-v2.toml'), 'm'));
  });

  test('--no-drop-in edits the main file (golden); uninstall restores it', async () => {
    writeFileSync(main, fixture('containerd-v3.toml'));
    await ctk('runtime', 'configure', '--runtime=containerd', '--config', main, '--no-drop-in', '--set-as-default', '--enable-cdi');
    expect(read(main)).toBe(fixture('containerd-v3.golden.toml'));
    await ctk('runtime', 'configure', '--uninstall', '--runtime=containerd', '--config', main, '--no-drop-in');
    const back = parseToml(read(main), 'm') as any;
    const original = parseToml(fixture('containerd-v3.toml'), 'm') as any;
    delete original.plugins['io.containerd.cri.v1.runtime'].containerd.default_runtime_name; // was "runc", the default
    delete back.plugins['io.containerd.cri.v1.runtime'].enable_cdi; // CDI stays enabled (engine-wide)
    expect(back).toEqual(original);
  });

  test('no config file: the installed containerd decides the version (2.x → 3, none → 2)', async () => {
    containerdVersion = 'containerd github.com/containerd/containerd/v2 v2.1.3 abc';
    await ctk('runtime', 'configure', '--runtime=containerd', '--config', main, '--no-drop-in');
    expect(read(main)).toMatch(/^version = 3\n/);
    expect(read(main)).toContain('[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvidia.options]');
    const req: ConfigureRequest = { engine: 'containerd', configFile: join(dir, 'none.toml'), dropInFile: null, uninstall: false, runtimeName: 'nvidia', runtimePath: '/x', setAsDefault: false, cdiEnabled: false, cdiAnnotationPrefixes: [] };
    const [c] = planConfigure(req, { readFile: () => null, containerdVersion: () => undefined });
    expect(c.after).toMatch(/^version = 2\n/);
  });

  test("the handler's container_annotations come from the runtime's config.toml ($NVIDIA_CTK_CONFIG_FILE_PATH)", async () => {
    const runtimeConfig = join(dir, 'runtime.toml');
    writeFileSync(runtimeConfig, '[nvidia-container-runtime.modes.cdi]\nannotation-prefixes = ["cdi.k8s.io/", "example.com/gpu/"]\n', { mode: 0o644 });
    writeFileSync(main, 'version = 2\n');
    const saved = process.env.NVIDIA_CTK_CONFIG_FILE_PATH;
    process.env.NVIDIA_CTK_CONFIG_FILE_PATH = runtimeConfig;
    try {
      const command = createRuntimeCommand({ ...defaultRuntimeCommandDeps, stdout: (t) => out.push(t) });
      await baseParser(['runtime', 'configure', '--runtime=containerd', '--config', main, '--no-drop-in'], 'nvidia-ctk').command(command).parseAsync();
      const handler = (parseToml(read(main), 'm') as any).plugins['io.containerd.grpc.v1.cri'].containerd.runtimes.nvidia;
      expect(handler.container_annotations).toEqual(['cdi.k8s.io/*', 'example.com/gpu/*']);
      // docker has no such list: an unreadable runtime config does not stop its configure.
      writeFileSync(runtimeConfig, 'not = [toml');
      const daemon = join(dir, 'daemon.json');
      await baseParser(['runtime', 'configure', '--config', daemon], 'nvidia-ctk').command(command).parseAsync();
      expect(JSON.parse(read(daemon)).runtimes.nvidia.path).toBe('/usr/bin/nvidia-runtime');
      // containerd: it does, with the config's own error line.
      const other = ['runtime', 'configure', '--runtime=containerd', '--config', join(dir, 'other.toml'), '--no-drop-in'];
      await expect(async () => baseParser(other, 'nvidia-ctk').command(command).parseAsync()).rejects.toThrow(new RegExp(`^config.toml ${runtimeConfig}: `));
      expect(existsSync(join(dir, 'other.toml'))).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.NVIDIA_CTK_CONFIG_FILE_PATH;
      else process.env.NVIDIA_CTK_CONFIG_FILE_PATH = saved;
    }
  });

  test('malformed or version 1 config: NvrError, nothing written', async () => {
    for (const f of ['malformed.toml', 'containerd-v1.toml']) {
      writeFileSync(main, fixture(f));
      await expect(ctk('runtime', 'configure', '--runtime=containerd', '--config', main, '--drop-in-config', dropIn)).rejects.toThrow(new RegExp(`^${main}: `));
      expect(read(main)).toBe(fixture(f));
      expect(existsSync(dropIn)).toBe(false);
      expect(backups(main)).toEqual([]);
    }
  });
});

describe('crio', () => {
  test('drop-in mode leaves crio.conf untouched; --no-drop-in edits it with a backup; uninstall removes both', async () => {
    const conf = join(dir, 'crio.conf');
    const dropIn = join(dir, 'crio.conf.d', '99-nvidia.toml');
    writeFileSync(conf, fixture('crio.conf'));
    const msg = await ctk('runtime', 'configure', '--runtime=crio', '--config', conf, '--drop-in-config', dropIn, '--cdi.enabled');
    expect(read(dropIn)).toBe(fixture('crio-drop-in.golden.toml'));
    expect(read(conf)).toBe(fixture('crio.conf'));
    expect(msg).toContain('CRI-O always reads CDI specs');

    await ctk('runtime', 'configure', '--runtime=crio', '--config', conf, '--no-drop-in', '--set-as-default');
    expect(read(conf)).toBe(fixture('crio.conf.golden.toml'));
    expect(backups(conf)).toHaveLength(1);

    await ctk('runtime', 'unconfigure', '--runtime=crio', '--config', conf, '--drop-in-config', dropIn);
    expect(existsSync(dropIn)).toBe(false);
    const back = parseToml(read(conf), 'c') as any;
    expect(back.crio.runtime.runtimes).toEqual({ crun: { runtime_path: '/usr/bin/crun', runtime_type: 'oci', runtime_root: '/run/crun' } });
  });
});

test('backup names are timestamped and distinct within a second', () => {
  const now = new Date('2025-01-02T03:04:05.678Z');
  expect(backupName('/etc/docker/daemon.json', now)).toBe('/etc/docker/daemon.json.20250102T030405Z.bak');
  expect(backupName('/etc/docker/daemon.json', now, 1)).toBe('/etc/docker/daemon.json.20250102T030405Z-1.bak');
});
