/**
 * A private dockerd for the tests: its own data/exec roots and socket, `nvidia` registered (and made the default
 * runtime) from daemon.json, and NVIDIA_CTK_CONFIG_FILE_PATH in its environment so the runtime uses the test's mock
 * driver root. It never touches a dockerd the machine may already run.
 */
import { execa, type ResultPromise } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { distBin, tempDir } from './dist.js';
import { dockerImport, makeBusyboxRootfs, makeGlibcRootfs } from './images.js';

export interface Dockerd {
  host: string;
  docker: (args: string[], opts?: { reject?: boolean }) => Promise<{ stdout: string; stderr: string; exitCode?: number }>;
  stop: () => Promise<void>;
}

export interface DockerdOptions {
  /** Plain runc as the default runtime, and our bin directory first on dockerd's PATH: dockerd then finds
   *  nvidia-container-runtime-hook and `docker run --gpus` inserts it as a prestart hook. */
  gpusHook?: boolean;
}

export async function startDockerd(dir: string, configFile: string, options: DockerdOptions = {}): Promise<Dockerd> {
  mkdirSync(dir, { recursive: true });
  const sock = join(dir, 'docker.sock');
  const daemonJson = join(dir, 'daemon.json');
  const runtimes = { runtimes: { nvidia: { path: distBin('nvidia-runtime') } } };
  writeFileSync(daemonJson, JSON.stringify(options.gpusHook ? runtimes : { ...runtimes, 'default-runtime': 'nvidia' }, null, 2));
  const path = options.gpusHook ? `${dirname(distBin('nvidia-runtime'))}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` : process.env.PATH;
  const proc: ResultPromise = execa(
    'dockerd',
    ['--iptables=false', '--bridge=none', '--config-file', daemonJson, '-H', `unix://${sock}`, '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'x'), '--pidfile', join(dir, 'docker.pid')],
    { env: { NVIDIA_CTK_CONFIG_FILE_PATH: configFile, ...(path !== undefined ? { PATH: path } : {}) }, reject: false, stdout: 'ignore', stderr: { file: join(dir, 'dockerd.log') } },
  );
  const host = `unix://${sock}`;
  const docker: Dockerd['docker'] = (args, opts = {}) => execa('docker', ['-H', host, ...args], { reject: opts.reject ?? true });
  for (let i = 0; ; i++) {
    if ((await execa('docker', ['-H', host, 'info'], { reject: false })).exitCode === 0) break;
    if (i > 120 || proc.exitCode !== null) throw new Error(`dockerd did not start; see ${join(dir, 'dockerd.log')}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    host,
    docker,
    stop: async () => {
      proc.kill('SIGTERM');
      await proc;
    },
  };
}

/** A private dockerd for a GPU host with the two test images (gpu-test:busybox, gpu-test:glibc) imported. */
export async function startGpuDockerd(host: { dir: string; configFile: string }, prefix: string, options: DockerdOptions = {}): Promise<Dockerd & { dir: string }> {
  const dir = tempDir(prefix); // short: containerd's socket path under it must stay below 108 bytes
  const d = await startDockerd(dir, host.configFile, options);
  await dockerImport(d.docker, makeBusyboxRootfs(join(host.dir, 'bb')), 'gpu-test:busybox');
  await dockerImport(d.docker, await makeGlibcRootfs(join(host.dir, 'glibc')), 'gpu-test:glibc');
  return { ...d, dir };
}
