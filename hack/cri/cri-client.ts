// A minimal CRI client: drives pod sandboxes and their containers through a runtime's runtime.v1 API the way kubelet does,
// so that a CNI plugin is called by a real runtime rather than by a test pretending to be one.
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO = fileURLToPath(new URL('./api.proto', import.meta.url));

export type SandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

/** What kubelet knows of a pod when it asks for its sandbox. */
export interface PodSpec {
  name: string;
  namespace?: string;
  /** A fresh UUID when absent, as the API server would give. */
  uid?: string;
  attempt?: number;
  labels?: Record<string, string>;
  /** Pod annotations; containerd hands them to plugins that declare the `io.kubernetes.cri.pod-annotations` capability. */
  annotations?: Record<string, string>;
  /** The node's network (spec.hostNetwork): the runtime calls no CNI plugin for it. */
  hostNetwork?: boolean;
}

export interface Sandbox {
  id: string;
  name: string;
  namespace: string;
  uid: string;
  attempt: number;
  state: SandboxState;
  /** Nanoseconds since the epoch, as a decimal string (int64 does not fit a number). */
  createdAt: string;
  labels: Record<string, string>;
}

export interface SandboxStatus extends Sandbox {
  /** The pod IP the runtime took from the CNI result; empty when the sandbox has no network (yet). */
  ip: string;
  additionalIps: string[];
  /** From the verbose info: the network namespace the runtime gave the CNI plugin. */
  netnsPath?: string;
  /** containerd's verbose info document (pid, runtimeSpec, cniResult, …); only when asked for verbose. */
  info?: Record<string, unknown>;
}

/** A container of a pod, as kubelet asks the runtime for it. */
export interface ContainerSpec {
  name: string;
  /** An image the runtime has (the harness has only SANDBOX_IMAGE: nothing is pulled). */
  image: string;
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  attempt?: number;
  /** Host paths bound into the container, as kubelet binds a pod's hostPath and configMap volumes. */
  mounts?: ContainerMount[];
  /** The container's securityContext, as kubelet turns a pod spec's into CRI (nothing given: the runtime's defaults, seccomp off). */
  securityContext?: ContainerSecurity;
  /** resources.limits.memory, in bytes: the container's memory cgroup limit. */
  memoryLimitBytes?: number;
}

export interface ContainerMount {
  containerPath: string;
  hostPath: string;
  readonly?: boolean;
  /** A pod spec's mountPropagation: HostToContainer (rslave) or Bidirectional (rshared); private when absent. */
  propagation?: 'HostToContainer' | 'Bidirectional';
}

export interface ContainerSecurity {
  /** Capability names without CAP_, as a pod spec writes them; drop ["ALL"] drops every one not added. */
  capabilities?: { add?: string[]; drop?: string[] };
  privileged?: boolean;
  readonlyRootfs?: boolean;
  runAsUser?: number;
  /** allowPrivilegeEscalation: false */
  noNewPrivs?: boolean;
  seccomp?: 'RuntimeDefault' | 'Unconfined';
  /** The pod's container.apparmor.security.beta.kubernetes.io/<name> annotation: unconfined, or the runtime's default profile. */
  apparmor?: 'RuntimeDefault' | 'Unconfined';
}

const PROPAGATION = { HostToContainer: 'PROPAGATION_HOST_TO_CONTAINER', Bidirectional: 'PROPAGATION_BIDIRECTIONAL' } as const;

export type ContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';

export interface Container {
  id: string;
  sandboxId: string;
  name: string;
  attempt: number;
  state: ContainerState;
  image: string;
  imageRef: string;
}

export interface ContainerStatus {
  id: string;
  name: string;
  attempt: number;
  state: ContainerState;
  /** Nanoseconds since the epoch, as decimal strings ("0" when not yet). */
  createdAt: string;
  startedAt: string;
  finishedAt: string;
  exitCode: number;
  image: string;
  imageRef: string;
  reason: string;
  message: string;
}

export interface RuntimeVersion {
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

/** A failed CRI call; `code` is the gRPC status (grpc.status.NOT_FOUND, …). */
export class CriError extends Error {
  constructor(
    readonly method: string,
    readonly code: grpc.status,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'CriError';
  }

  /** The runtime's own words (for a failed CNI ADD, containerd's "failed to setup network …"). */
  get details(): string {
    return (this.cause as grpc.ServiceError | undefined)?.details ?? this.message;
  }
}

// The shapes proto-loader decodes to (keepCase off, enums and int64 as strings, defaults filled in).
interface WireMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}
interface WireSandbox {
  id: string;
  metadata: WireMetadata | null;
  state: SandboxState;
  createdAt: string;
  labels: Record<string, string>;
}
interface WireStatus extends WireSandbox {
  network: { ip: string; additionalIps: Array<{ ip: string }> } | null;
}

interface WireContainer {
  id: string;
  podSandboxId: string;
  metadata: { name: string; attempt: number } | null;
  image: { image: string } | null;
  imageRef: string;
  state: ContainerState;
}
interface WireContainerStatus {
  id: string;
  metadata: { name: string; attempt: number } | null;
  state: ContainerState;
  createdAt: string;
  startedAt: string;
  finishedAt: string;
  exitCode: number;
  image: { image: string } | null;
  imageRef: string;
  reason: string;
  message: string;
}

type Callback = (error: grpc.ServiceError | null, response?: unknown) => void;
type UnaryMethod = (request: object, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback) => void;

let services: { runtime: grpc.ServiceClientConstructor; image: grpc.ServiceClientConstructor } | undefined;

function loadServices(): NonNullable<typeof services> {
  if (!services) {
    const definition = protoLoader.loadSync(PROTO, { keepCase: false, longs: String, enums: String, defaults: true });
    const v1 = (grpc.loadPackageDefinition(definition).runtime as grpc.GrpcObject).v1 as grpc.GrpcObject;
    services = { runtime: v1.RuntimeService as grpc.ServiceClientConstructor, image: v1.ImageService as grpc.ServiceClientConstructor };
  }
  return services;
}

export interface CriClientOptions {
  /** Deadline of every call. RunPodSandbox waits for the CNI ADD, so leave room for slow plugins. */
  timeoutMs?: number;
  /** Where pod log directories go (kubelet: /var/log/pods); created per pod. None when absent. */
  logRoot?: string;
  /** The cgroup pods go under, each in its own pod<uid> (kubelet: /kubepods/besteffort); the runtime's default when absent. */
  cgroupParent?: string;
}

export class CriClient {
  private readonly runtime: grpc.Client;
  private readonly image: grpc.Client;
  private readonly timeoutMs: number;
  private readonly logRoot: string | undefined;
  private readonly cgroupParent: string | undefined;

  constructor(
    readonly socket: string,
    options: CriClientOptions = {},
  ) {
    const { runtime, image } = loadServices();
    const address = `unix://${socket}`;
    this.runtime = new runtime(address, grpc.credentials.createInsecure());
    // One connection for both services: they are served on the same socket.
    this.image = new image(address, grpc.credentials.createInsecure(), { channelOverride: this.runtime.getChannel() });
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.logRoot = options.logRoot;
    this.cgroupParent = options.cgroupParent;
  }

  async version(): Promise<RuntimeVersion> {
    return this.call<RuntimeVersion>(this.runtime, 'Version', { version: 'v1' });
  }

  /** Creates and starts a sandbox: the runtime calls the CNI ADD before this returns. Returns the sandbox ID. */
  async runPodSandbox(pod: PodSpec): Promise<string> {
    const config = await this.sandboxConfig(pod);
    const { metadata } = config;
    const response = await this.call<{ podSandboxId: string }>(this.runtime, 'RunPodSandbox', { config }, `pod ${metadata.namespace}/${metadata.name}`);
    return response.podSandboxId;
  }

  /**
   * Creates a container in a sandbox (not started). `pod` must be what the sandbox was run with (its uid
   * included): CreateContainer carries the sandbox's config again, as kubelet sends it.
   */
  async createContainer(sandboxId: string, pod: PodSpec & { uid: string }, container: ContainerSpec): Promise<string> {
    const sandboxConfig = await this.sandboxConfig(pod);
    const attempt = container.attempt ?? 0;
    const config = {
      metadata: { name: container.name, attempt },
      image: { image: container.image },
      command: container.command ?? [],
      args: container.args ?? [],
      envs: Object.entries(container.env ?? {}).map(([key, value]) => ({ key, value })),
      mounts: (container.mounts ?? []).map((m) => ({
        containerPath: m.containerPath,
        hostPath: m.hostPath,
        readonly: m.readonly ?? false,
        propagation: m.propagation ? PROPAGATION[m.propagation] : 'PROPAGATION_PRIVATE',
      })),
      linux: {
        ...(container.memoryLimitBytes ? { resources: { memoryLimitInBytes: String(container.memoryLimitBytes) } } : {}),
        securityContext: containerSecurity(container.securityContext, sandboxConfig.linux.securityContext.namespaceOptions),
      },
      labels: {
        'io.kubernetes.container.name': container.name,
        'io.kubernetes.pod.name': pod.name,
        'io.kubernetes.pod.namespace': sandboxConfig.metadata.namespace,
        'io.kubernetes.pod.uid': pod.uid,
      },
      annotations: {},
      logPath: sandboxConfig.logDirectory ? `${container.name}/${attempt}.log` : '',
    };
    if (sandboxConfig.logDirectory) await mkdir(join(sandboxConfig.logDirectory, container.name), { recursive: true });
    const about = `container ${container.name} of pod ${sandboxConfig.metadata.namespace}/${pod.name}`;
    const response = await this.call<{ containerId: string }>(this.runtime, 'CreateContainer', { podSandboxId: sandboxId, config, sandboxConfig }, about);
    return response.containerId;
  }

  async startContainer(id: string): Promise<void> {
    await this.call(this.runtime, 'StartContainer', { containerId: id }, `container ${id}`);
  }

  /** Stops a container, killing it after `timeoutSeconds` (0: at once). Idempotent. */
  async stopContainer(id: string, timeoutSeconds = 0): Promise<void> {
    await this.call(this.runtime, 'StopContainer', { containerId: id, timeout: String(timeoutSeconds) }, `container ${id}`);
  }

  async removeContainer(id: string): Promise<void> {
    await this.call(this.runtime, 'RemoveContainer', { containerId: id }, `container ${id}`);
  }

  async listContainers(filter: { sandboxId?: string } = {}): Promise<Container[]> {
    const response = await this.call<{ containers: WireContainer[] }>(this.runtime, 'ListContainers', { filter: { podSandboxId: filter.sandboxId ?? '' } });
    return response.containers.map((c) => ({ id: c.id, sandboxId: c.podSandboxId, name: c.metadata?.name ?? '', attempt: c.metadata?.attempt ?? 0, state: c.state, image: c.image?.image ?? '', imageRef: c.imageRef }));
  }

  async containerStatus(id: string): Promise<ContainerStatus> {
    const response = await this.call<{ status: WireContainerStatus | null }>(this.runtime, 'ContainerStatus', { containerId: id }, `container ${id}`);
    const s = response.status;
    if (!s) throw new CriError('ContainerStatus', grpc.status.INTERNAL, `CRI ContainerStatus for container ${id} on ${this.socket}: the answer has no status`);
    return {
      id: s.id,
      name: s.metadata?.name ?? '',
      attempt: s.metadata?.attempt ?? 0,
      state: s.state,
      createdAt: s.createdAt,
      startedAt: s.startedAt,
      finishedAt: s.finishedAt,
      exitCode: s.exitCode,
      image: s.image?.image ?? '',
      imageRef: s.imageRef,
      reason: s.reason,
      message: s.message,
    };
  }

  /** The PodSandboxConfig kubelet sends for a pod (RunPodSandbox, and again with each CreateContainer). */
  private async sandboxConfig(pod: PodSpec) {
    const metadata = { name: pod.name, namespace: pod.namespace ?? 'default', uid: pod.uid ?? randomUUID(), attempt: pod.attempt ?? 0 };
    let logDirectory = '';
    if (this.logRoot) {
      logDirectory = join(this.logRoot, `${metadata.namespace}_${metadata.name}_${metadata.uid}`);
      await mkdir(logDirectory, { recursive: true });
    }
    return {
      metadata,
      // kubelet names the sandbox's host only for pods with their own network (and UTS) namespace.
      hostname: pod.hostNetwork ? '' : pod.name,
      logDirectory,
      // kubelet's labels on every sandbox; annotations are the pod's own.
      labels: {
        ...pod.labels,
        'io.kubernetes.pod.name': metadata.name,
        'io.kubernetes.pod.namespace': metadata.namespace,
        'io.kubernetes.pod.uid': metadata.uid,
      },
      annotations: pod.annotations ?? {},
      linux: {
        cgroupParent: this.cgroupParent ? `${this.cgroupParent}/pod${metadata.uid}` : '',
        // What kubelet sends for a pod with no securityContext: own network and IPC namespaces, one PID
        // namespace per container, no seccomp (SeccompDefault is off by default).
        securityContext: {
          namespaceOptions: { network: pod.hostNetwork ? 'NODE' : 'POD', pid: 'CONTAINER', ipc: 'POD' },
          seccomp: { profileType: 'Unconfined' },
        },
      },
    };
  }

  async podSandboxStatus(id: string, options: { verbose?: boolean } = {}): Promise<SandboxStatus> {
    const response = await this.call<{ status: WireStatus | null; info: Record<string, string> }>(
      this.runtime,
      'PodSandboxStatus',
      { podSandboxId: id, verbose: options.verbose ?? false },
      `sandbox ${id}`,
    );
    if (!response.status) throw new CriError('PodSandboxStatus', grpc.status.INTERNAL, `CRI PodSandboxStatus for sandbox ${id} on ${this.socket}: the answer has no status`);
    const status: SandboxStatus = {
      ...toSandbox(response.status),
      ip: response.status.network?.ip ?? '',
      additionalIps: (response.status.network?.additionalIps ?? []).map((a) => a.ip),
    };
    // containerd puts its whole verbose document, as JSON, under the single key "info".
    const raw = response.info.info;
    if (raw) {
      status.info = JSON.parse(raw) as Record<string, unknown>;
      status.netnsPath = networkNamespaceOf(status.info.runtimeSpec);
    }
    return status;
  }

  /** Stops the sandbox; the runtime calls the CNI DEL. Idempotent, as kubelet expects. */
  async stopPodSandbox(id: string): Promise<void> {
    await this.call(this.runtime, 'StopPodSandbox', { podSandboxId: id }, `sandbox ${id}`);
  }

  /** Removes a stopped sandbox (containerd calls the CNI DEL once more). Idempotent. */
  async removePodSandbox(id: string): Promise<void> {
    await this.call(this.runtime, 'RemovePodSandbox', { podSandboxId: id }, `sandbox ${id}`);
  }

  async listPodSandbox(filter: { id?: string; state?: SandboxState; labels?: Record<string, string> } = {}): Promise<Sandbox[]> {
    const wireFilter = { id: filter.id ?? '', state: filter.state ? { state: filter.state } : null, labelSelector: filter.labels ?? {} };
    const response = await this.call<{ items: WireSandbox[] }>(this.runtime, 'ListPodSandbox', { filter: wireFilter });
    return response.items.map(toSandbox);
  }

  /** Whether the runtime's CRI image store knows an image (by name or ID). */
  async hasImage(image: string): Promise<boolean> {
    const response = await this.call<{ image: unknown }>(this.image, 'ImageStatus', { image: { image } }, `image ${image}`);
    return response.image !== null;
  }

  close(): void {
    this.image.close();
    this.runtime.close();
  }

  private call<T>(client: grpc.Client, method: string, request: object, about?: string): Promise<T> {
    const what = `CRI ${method}${about ? ` for ${about}` : ''} on ${this.socket}`;
    const invoke = (client as unknown as Record<string, UnaryMethod>)[method]!;
    return new Promise<T>((resolve, reject) => {
      invoke.call(client, request, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs }, (error, response) => {
        if (error) reject(new CriError(method, error.code, `${what} failed (${grpc.status[error.code]}): ${error.details}`, { cause: error }));
        else resolve(response as T);
      });
    });
  }
}

/** LinuxContainerSecurityContext: the container shares its sandbox's namespaces, as kubelet asks. */
function containerSecurity(security: ContainerSecurity = {}, namespaceOptions: object) {
  const seccomp = security.seccomp ?? 'Unconfined';
  return {
    capabilities: { addCapabilities: security.capabilities?.add ?? [], dropCapabilities: security.capabilities?.drop ?? [] },
    privileged: security.privileged ?? false,
    namespaceOptions,
    ...(security.runAsUser !== undefined ? { runAsUser: { value: String(security.runAsUser) } } : {}),
    readonlyRootfs: security.readonlyRootfs ?? false,
    noNewPrivs: security.noNewPrivs ?? false,
    seccomp: { profileType: seccomp },
    ...(security.apparmor ? { apparmor: { profileType: security.apparmor } } : {}),
  };
}

function toSandbox(wire: WireSandbox): Sandbox {
  const meta = wire.metadata ?? { name: '', namespace: '', uid: '', attempt: 0 };
  return { id: wire.id, name: meta.name, namespace: meta.namespace, uid: meta.uid, attempt: meta.attempt, state: wire.state, createdAt: wire.createdAt, labels: wire.labels };
}

/** The network namespace path in an OCI runtime spec, where containerd records the sandbox's. */
export function networkNamespaceOf(spec: unknown): string | undefined {
  const namespaces = (spec as { linux?: { namespaces?: Array<{ type: string; path?: string }> } } | undefined)?.linux?.namespaces;
  return namespaces?.find((ns) => ns.type === 'network')?.path || undefined;
}
