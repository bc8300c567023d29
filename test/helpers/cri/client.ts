/**
 * A small CRI client (what the kubelet is to containerd): gRPC over a unix socket with @grpc/grpc-js, the messages
 * from api.proto next to this file (upstream's runtime.v1 names and field numbers), each call a typed promise.
 * Field names are the proto's own (snake_case, keepCase); enums are their names; int64 fields are numbers.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CRI_PROTO = join(dirname(fileURLToPath(import.meta.url)), 'api.proto');

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
export type ContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';

export interface NamespaceOption { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode }
export interface KeyValue { key: string; value: string }
export interface Mount { container_path: string; host_path: string; readonly?: boolean; propagation?: 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL' }

export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  hostname?: string;
  /** Absolute: container log_path values are relative to it. */
  log_directory?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroup_parent?: string;
    security_context?: { namespace_options?: NamespaceOption; privileged?: boolean };
  };
}

export interface ContainerConfig {
  metadata: { name: string; attempt?: number };
  image: { image: string };
  command?: string[];
  args?: string[];
  envs?: KeyValue[];
  mounts?: Mount[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Relative to the sandbox's log_directory. */
  log_path?: string;
  linux?: {
    security_context?: {
      capabilities?: { add_capabilities?: string[]; drop_capabilities?: string[] };
      privileged?: boolean;
      namespace_options?: NamespaceOption;
    };
  };
}

export interface ContainerStatus {
  id: string;
  state: ContainerState;
  exit_code: number;
  reason: string;
  message: string;
  log_path: string;
  annotations: Record<string, string>;
}

export interface PodSandboxStatus {
  id: string;
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  runtime_handler: string;
}

export interface Image { id: string; repo_tags: string[]; repo_digests: string[]; size: number }

export interface VersionResponse { version: string; runtime_name: string; runtime_version: string; runtime_api_version: string }

type Unary = (req: object, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;
type Stub = grpc.Client & Record<string, Unary>;

export class CriClient {
  private readonly runtime: Stub;
  private readonly images: Stub;

  /** `socket`: the path of the CRI gRPC socket (containerd's [grpc] address). */
  constructor(socket: string, private readonly deadlineMs = 120000) {
    const def = protoLoader.loadSync(CRI_PROTO, { keepCase: true, longs: Number, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: Record<string, grpc.ServiceClientConstructor> } };
    const credentials = grpc.credentials.createInsecure();
    const target = `unix:${socket}`;
    this.runtime = new pkg.runtime.v1.RuntimeService!(target, credentials) as unknown as Stub;
    this.images = new pkg.runtime.v1.ImageService!(target, credentials) as unknown as Stub;
  }

  private call<T>(stub: Stub, method: string, req: object): Promise<T> {
    return new Promise((resolve, reject) => {
      stub[method]!.call(stub, req, { deadline: Date.now() + this.deadlineMs }, (err, res) => {
        if (err) reject(Object.assign(new Error(`CRI ${method}: ${err.details || err.message}`), { code: err.code, details: err.details }));
        else resolve(res as T);
      });
    });
  }

  version(): Promise<VersionResponse> {
    return this.call(this.runtime, 'Version', { version: 'v1' });
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = ''): Promise<string> {
    return (await this.call<{ pod_sandbox_id: string }>(this.runtime, 'RunPodSandbox', { config, runtime_handler: runtimeHandler })).pod_sandbox_id;
  }

  async podSandboxStatus(id: string): Promise<PodSandboxStatus> {
    return (await this.call<{ status: PodSandboxStatus }>(this.runtime, 'PodSandboxStatus', { pod_sandbox_id: id })).status;
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.call(this.runtime, 'StopPodSandbox', { pod_sandbox_id: id });
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.call(this.runtime, 'RemovePodSandbox', { pod_sandbox_id: id });
  }

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    return (await this.call<{ container_id: string }>(this.runtime, 'CreateContainer', { pod_sandbox_id: podSandboxId, config, sandbox_config: sandboxConfig })).container_id;
  }

  async startContainer(id: string): Promise<void> {
    await this.call(this.runtime, 'StartContainer', { container_id: id });
  }

  async stopContainer(id: string, timeoutSeconds = 10): Promise<void> {
    await this.call(this.runtime, 'StopContainer', { container_id: id, timeout: timeoutSeconds });
  }

  async removeContainer(id: string): Promise<void> {
    await this.call(this.runtime, 'RemoveContainer', { container_id: id });
  }

  async containerStatus(id: string): Promise<ContainerStatus> {
    return (await this.call<{ status: ContainerStatus }>(this.runtime, 'ContainerStatus', { container_id: id })).status;
  }

  async listContainers(podSandboxId = ''): Promise<{ id: string; pod_sandbox_id: string; state: ContainerState }[]> {
    return (await this.call<{ containers: { id: string; pod_sandbox_id: string; state: ContainerState }[] }>(this.runtime, 'ListContainers', { filter: { pod_sandbox_id: podSandboxId } })).containers;
  }

  async execSync(id: string, cmd: string[], timeoutSeconds = 30): Promise<{ stdout: string; stderr: string; exit_code: number }> {
    const r = await this.call<{ stdout: Buffer; stderr: Buffer; exit_code: number }>(this.runtime, 'ExecSync', { container_id: id, cmd, timeout: timeoutSeconds });
    return { stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), exit_code: r.exit_code };
  }

  /** null when the CRI image store does not know the image (ImageStatus answers an empty image, not an error). */
  async imageStatus(image: string): Promise<Image | null> {
    const r = await this.call<{ image: Image | null }>(this.images, 'ImageStatus', { image: { image } });
    return r.image && r.image.id ? r.image : null;
  }

  async listImages(): Promise<Image[]> {
    return (await this.call<{ images: Image[] }>(this.images, 'ListImages', {})).images;
  }

  /** Polls ContainerStatus until the container has exited (a short-lived container's normal end). */
  async waitExited(id: string, timeoutMs = 60000): Promise<ContainerStatus> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.containerStatus(id);
      if (s.state === 'CONTAINER_EXITED') return s;
      if (Date.now() > end) throw new Error(`container ${id} did not exit within ${timeoutMs} ms (state ${s.state})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  close(): void {
    this.runtime.close();
    this.images.close();
  }
}

/**
 * The lines a container wrote to stdout and stderr, from its CRI log file (`<RFC 3339 time> <stream> <P|F> <text>`
 * per line, P = a partial line continued by the next record).
 */
export function parseCriLog(text: string): { stdout: string; stderr: string } {
  const out = { stdout: '', stderr: '' };
  for (const line of text.split('\n')) {
    const m = /^\S+ (stdout|stderr) (P|F) (.*)$/.exec(line);
    if (!m) continue;
    out[m[1] as 'stdout' | 'stderr'] += m[3] + (m[2] === 'F' ? '\n' : '');
  }
  return out;
}
