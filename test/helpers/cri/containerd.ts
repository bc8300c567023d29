/**
 * A private containerd with its CRI plugin, for end-to-end tests of the Kubernetes node path: its own config file,
 * root, state, runc state and gRPC socket under one temp dir, started by the test and stopped by it; never the
 * host's /etc/containerd or a running system containerd. The only paths outside the dir are the ones containerd
 * 1.6 hard-codes for every instance, named by a hash of our socket: the shims' sockets in /run/containerd/s/.
 *
 * The main config holds what a node's config holds (sandbox image, snapshotter, the runc handler); the `nvidia`
 * handler is then added by our own `nvidia-ctk runtime configure --runtime=containerd`, as a drop-in the main
 * file imports. The runtime finds its config.toml through NVIDIA_CTK_CONFIG_FILE_PATH in containerd's
 * environment, which containerd passes to each shim and the shim to the runtime.
 */
import { execa, type ResultPromise } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CriClient } from './client.js';

export const CRI_PLUGIN = 'io.containerd.grpc.v1.cri';

export interface ContainerdPaths {
  dir: string;
  configFile: string;
  dropIn: string;
  socket: string;
  log: string;
  /** The runc state root of both handlers (the runc v2 shim's `Root` option). */
  runcRoot: string;
  /** CNI dirs that hold nothing: pods use the host network. */
  cniConfDir: string;
}

export function containerdPaths(dir: string): ContainerdPaths {
  return {
    dir,
    configFile: join(dir, 'config.toml'),
    dropIn: join(dir, 'conf.d', '99-nvidia.toml'),
    socket: join(dir, 'cri.sock'),
    log: join(dir, 'containerd.log'),
    runcRoot: join(dir, 'runc'),
    cniConfDir: join(dir, 'cni', 'net.d'),
  };
}

export interface MainConfigOptions {
  sandboxImage: string;
}

/** The node's own config.toml (version 2, containerd 1.6), before the nvidia handler is added. */
export function mainConfig(p: ContainerdPaths, o: MainConfigOptions): string {
  const cri = `plugins."${CRI_PLUGIN}"`;
  const lines = [
    'version = 2',
    `root = "${join(p.dir, 'root')}"`,
    `state = "${join(p.dir, 'state')}"`,
    '',
    '[grpc]',
    `  address = "${p.socket}"`,
    '',
    // Its default is /opt/containerd on the host.
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${join(p.dir, 'opt')}"`,
    '',
    `[${cri}]`,
    `  sandbox_image = "${o.sandboxImage}"`,
    '  disable_apparmor = true',
    // containerd gives a sandbox oom_score_adj -998, which needs CAP_SYS_RESOURCE; where the test runs without it
    // (root on the test VMs lacks it), runc init fails ("can't get final child's PID"). Restricting clamps to containerd's own.
    '  restrict_oom_score_adj = true',
    '  enable_selinux = false',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '',
    `[${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    '',
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    '',
    `[${cri}.containerd.runtimes.runc.options]`,
    '  SystemdCgroup = false',
    `  Root = "${p.runcRoot}"`,
    '',
    `[${cri}.cni]`,
    `  bin_dir = "${join(p.dir, 'cni', 'bin')}"`,
    `  conf_dir = "${p.cniConfDir}"`,
    '',
  ];
  return lines.join('\n');
}

export interface RunningContainerd {
  proc: ResultPromise;
  cri: CriClient;
}

/** Starts containerd on `p.configFile` with `env` added to ours; resolves once the CRI service answers Version. */
export async function startContainerd(p: ContainerdPaths, env: Record<string, string>, timeoutMs = 90000): Promise<RunningContainerd> {
  const installed = await execa('containerd', ['--version'], { reject: false });
  if (installed.exitCode !== 0) {
    throw new Error(`containerd is not installed or does not run (${installed.stderr || installed.message}): this test needs Debian's containerd package (scripts/packages.txt)`);
  }
  for (const d of [p.cniConfDir, join(p.dir, 'cni', 'bin'), p.runcRoot]) mkdirSync(d, { recursive: true });
  const proc = execa('containerd', ['--config', p.configFile, '--log-level', 'debug'], {
    env, reject: false, stdin: 'ignore', stdout: 'ignore', stderr: { file: p.log, append: true },
  });
  const cri = new CriClient(p.socket, 10000);
  const end = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (proc.exitCode !== null) {
      cri.close();
      throw new Error(`containerd exited (${proc.exitCode}) before its CRI service answered; see ${p.log}:\n${tail(p.log)}`);
    }
    if (existsSync(p.socket)) {
      try {
        await cri.version();
        return { proc, cri };
      } catch (e) {
        last = (e as Error).message; // "unknown service runtime.v1.RuntimeService" while (or if) the CRI plugin is not up
      }
    }
    if (Date.now() > end) {
      cri.close();
      proc.kill('SIGKILL');
      await proc;
      throw new Error(`containerd's CRI service did not answer within ${timeoutMs} ms (last: ${last || 'no socket'}); see ${p.log}:\n${tail(p.log)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function stopContainerd(c: RunningContainerd | undefined): Promise<void> {
  if (!c) return;
  c.cri.close();
  if (c.proc.exitCode === null) {
    c.proc.kill('SIGTERM');
    const timer = setTimeout(() => c.proc.kill('SIGKILL'), 20000);
    await c.proc;
    clearTimeout(timer);
  }
}

/** `ctr -a <sock> -n k8s.io images import <tar>`: the namespace the CRI plugin uses, unpacked for overlayfs. */
export async function importImage(p: ContainerdPaths, tar: string): Promise<void> {
  await execa('ctr', ['-a', p.socket, '-n', 'k8s.io', 'images', 'import', tar]);
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Processes whose command line names `needle` (our private socket or dir): the shims of our pods, their children. */
function processesNaming(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').some((a) => a.includes(needle))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/**
 * After a failed run: deletes containers left in our runc root, kills what is left of ours (shims started for
 * our socket keep running when containerd stops; each names our socket in its argv), unmounts what is mounted under the dir (rootfs overlays, sandbox
 * shm), deepest first, then removes the dir. Everything it touches is identified by our dir or socket.
 */
export async function cleanupContainerd(p: ContainerdPaths): Promise<string[]> {
  const notes: string[] = [];
  // Containers first (a killed shim leaves its container running): runc state of both handlers is ours alone.
  const runcRoot = join(p.runcRoot, 'k8s.io');
  const ids = existsSync(runcRoot) ? (await execa('runc', ['--root', runcRoot, 'list', '-q'], { reject: false })).stdout.split('\n').filter(Boolean) : [];
  for (const id of ids) {
    await execa('runc', ['--root', runcRoot, 'delete', '--force', id], { reject: false });
    notes.push(`deleted leftover container ${id}`);
  }
  for (const pid of processesNaming(p.socket)) {
    try {
      process.kill(pid, 'SIGKILL');
      notes.push(`killed leftover process ${pid}`);
    } catch {
      // already gone
    }
  }
  if (notes.length) await new Promise((r) => setTimeout(r, 500));
  // A killed shim leaves its socket: containerd 1.6 names it /run/containerd/s/sha256(<address>/<namespace>/<id>),
  // the id being the pod's sandbox id (one shim per pod), so only sockets of our own pods match.
  for (const id of ids) {
    const sock = join('/run/containerd/s', createHash('sha256').update(join(p.socket, 'k8s.io', id)).digest('hex'));
    if (existsSync(sock)) {
      rmSync(sock, { force: true });
      notes.push(`removed leftover shim socket ${sock}`);
    }
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && (m === p.dir || m.startsWith(`${p.dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    const r = await execa('umount', ['-l', m], { reject: false });
    notes.push(`unmounted leftover ${m}${r.exitCode === 0 ? '' : ` (failed: ${r.stderr})`}`);
  }
  rmSync(p.dir, { recursive: true, force: true });
  return notes;
}

export function writeMainConfig(p: ContainerdPaths, o: MainConfigOptions): void {
  mkdirSync(p.dir, { recursive: true });
  writeFileSync(p.configFile, mainConfig(p, o));
}
