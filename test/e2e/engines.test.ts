/**
 * `nvidia-ctk runtime configure` against real engines: a private dockerd whose daemon.json we configure and reload
 * with SIGHUP, and a private containerd 1.6 whose config.toml we configure (its handler proven by `config dump`,
 * the runtime under the runc v2 shim by `ctr run --runc-binary`). Both get the mock GPU host's config.toml
 * through NVIDIA_CTK_CONFIG_FILE_PATH in their environment.
 */
import { execa, type ResultPromise } from 'execa';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distBin, tempDir } from '../helpers/dist.js';
import { dockerImport, makeBusyboxRootfs } from '../helpers/images.js';
import { makeGpuHost, type GpuHost } from '../helpers/runtime-env.js';

let host: GpuHost;
let dir: string; // short: sockets live under it (108-byte limit)
const procs: ResultPromise[] = [];
const IMAGE = 'gpu-test:engines';
const nvidiaNodes = (ls: string) => ls.split('\n').filter((l) => l.startsWith('nvidia')).sort();
const ctk = (...args: string[]) => execa(distBin('nvidia-ctk'), args);

async function waitFor(what: string, ok: () => Promise<boolean>, proc: ResultPromise, log: string): Promise<void> {
  for (let i = 0; !(await ok()); i++) {
    if (i > 120 || proc.exitCode !== null) throw new Error(`${what} did not come up; see ${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function start(cmd: string, args: string[], log: string): ResultPromise {
  const p = execa(cmd, args, { env: { NVIDIA_CTK_CONFIG_FILE_PATH: host.configFile }, reject: false, stdout: 'ignore', stderr: { file: log } });
  procs.push(p);
  return p;
}

beforeAll(async () => {
  host = await makeGpuHost(4);
  dir = tempDir('en');
}, 120000);

afterAll(async () => {
  for (const p of procs.reverse()) {
    p.kill('SIGTERM');
    await p;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (host) rmSync(host.dir, { recursive: true, force: true });
}, 60000);

describe('docker', () => {
  let docker: (args: string[]) => Promise<{ stdout: string }>;
  let daemonJson: string;

  beforeAll(async () => {
    daemonJson = join(dir, 'daemon.json');
    writeFileSync(daemonJson, JSON.stringify({ 'max-concurrent-downloads': 2 }, null, 2));
    const d = join(dir, 'd');
    const sock = `unix://${join(dir, 'd.sock')}`;
    const proc = start('dockerd', ['--iptables=false', '--bridge=none', '--config-file', daemonJson, '-H', sock, '--data-root', join(d, 'data'),
      '--exec-root', join(d, 'x'), '--pidfile', join(d, 'docker.pid')], join(dir, 'dockerd.log'));
    docker = (args) => execa('docker', ['-H', sock, ...args]);
    await waitFor('dockerd', async () => (await execa('docker', ['-H', sock, 'info'], { reject: false })).exitCode === 0, proc, join(dir, 'dockerd.log'));
    await dockerImport(docker, makeBusyboxRootfs(join(dir, 'bb')), IMAGE);
  }, 300000);

  test('configure, SIGHUP, docker run --runtime=nvidia sees only the requested GPU', async () => {
    const r = await ctk('runtime', 'configure', '--runtime=docker', '--config', daemonJson, '--nvidia-runtime-path', distBin('nvidia-runtime'));
    expect(r.stdout).toContain('kill -HUP');
    expect(JSON.parse(readFileSync(daemonJson, 'utf8'))).toEqual({ 'max-concurrent-downloads': 2, runtimes: { nvidia: { path: distBin('nvidia-runtime'), runtimeArgs: [] } } });
    expect((await ctk('runtime', 'configure', '--runtime=docker', '--config', daemonJson, '--nvidia-runtime-path', distBin('nvidia-runtime'))).stdout).toMatch(/^Already configured/);

    process.kill(Number(readFileSync(join(dir, 'd', 'docker.pid'), 'utf8')), 'SIGHUP');
    const runtimes = async () => Object.keys(JSON.parse((await docker(['info', '--format', '{{json .Runtimes}}'])).stdout));
    for (let i = 0; !(await runtimes()).includes('nvidia') && i < 40; i++) await new Promise((r) => setTimeout(r, 250));

    const { stdout } = await docker(['run', '--rm', '--runtime=nvidia', '--network', 'none', '-e', 'NVIDIA_VISIBLE_DEVICES=1', IMAGE, 'ls', '/dev']);
    expect(nvidiaNodes(stdout)).toEqual(['nvidia-uvm', 'nvidia-uvm-tools', 'nvidia1', 'nvidiactl']);
  });

  test('unconfigure restores daemon.json; after SIGHUP the runtime is gone', async () => {
    await ctk('runtime', 'unconfigure', '--runtime=docker', '--config', daemonJson);
    expect(JSON.parse(readFileSync(daemonJson, 'utf8'))).toEqual({ 'max-concurrent-downloads': 2, runtimes: {} });
    process.kill(Number(readFileSync(join(dir, 'd', 'docker.pid'), 'utf8')), 'SIGHUP');
    for (let i = 0; i < 40; i++) {
      const r = JSON.parse((await docker(['info', '--format', '{{json .Runtimes}}'])).stdout);
      if (!('nvidia' in r)) return;
      await new Promise((res) => setTimeout(res, 250));
    }
    throw new Error('dockerd still lists the nvidia runtime after SIGHUP');
  });

  describe('containerd 1.6', () => {
    const sock = () => join(dir, 'c.sock');
    const base = () => [
      'version = 2',
      `root = "${join(dir, 'c', 'root')}"`,
      `state = "${join(dir, 'c', 'state')}"`,
      '',
      '[grpc]',
      `  address = "${sock()}"`,
      '',
      '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
      '  runtime_type = "io.containerd.runc.v2"',
      '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
      '  SystemdCgroup = false',
      '',
    ].join('\n');
    const dump = async (file: string) => (await execa('containerd', ['--config', file, 'config', 'dump'])).stdout;

    test('--no-drop-in: containerd accepts the config and shows the nvidia handler', async () => {
      const file = join(dir, 'config.toml');
      writeFileSync(file, base());
      await ctk('runtime', 'configure', '--runtime=containerd', '--config', file, '--no-drop-in', '--nvidia-runtime-path', distBin('nvidia-runtime'));
      const out = await dump(file);
      expect(out).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]');
      expect(out).toContain(`BinaryName = "${distBin('nvidia-runtime')}"`);
      expect(out).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]');
    });

    test('drop-in: containerd merges it and keeps the main file\'s runc handler', async () => {
      const file = join(dir, 'main-dropin.toml');
      const dropIn = join(dir, 'conf.d', '99-nvidia.toml');
      writeFileSync(file, base());
      await ctk('runtime', 'configure', '--runtime=containerd', '--config', file, '--drop-in-config', dropIn, '--set-as-default', '--nvidia-runtime-path', distBin('nvidia-runtime'));
      const out = await dump(file);
      expect(out).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]');
      expect(out).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]');
      expect(out).toContain('default_runtime_name = "nvidia"');
      await ctk('runtime', 'unconfigure', '--runtime=containerd', '--config', file, '--drop-in-config', dropIn);
      expect(await dump(file)).not.toContain('runtimes.nvidia');
    });

    test('ctr run --runc-binary nvidia-runtime under the runc v2 shim sees only the requested GPU', async () => {
      const file = join(dir, 'config.toml');
      const tar = join(dir, 'image.tar');
      await docker(['save', '-o', tar, IMAGE]);
      const proc = start('containerd', ['--config', file], join(dir, 'containerd.log'));
      const ctr = (...args: string[]) => execa('ctr', ['--address', sock(), ...args]);
      await waitFor('containerd', async () => (await execa('ctr', ['--address', sock(), 'version'], { reject: false })).exitCode === 0, proc, join(dir, 'containerd.log'));
      await ctr('images', 'import', tar);
      const { stdout } = await ctr('run', '--rm', '--runc-binary', distBin('nvidia-runtime'), '--env', 'NVIDIA_VISIBLE_DEVICES=1',
        `docker.io/library/${IMAGE}`, `nvr-${process.pid}`, 'ls', '/dev');
      expect(nvidiaNodes(stdout)).toEqual(['nvidia-uvm', 'nvidia-uvm-tools', 'nvidia1', 'nvidiactl']);
    });
  });
});
