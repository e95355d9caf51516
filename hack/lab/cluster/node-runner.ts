// kubelet's part for one lab node: registers the Node (capacity, zone and instance-type labels, Ready),
// watches the pods bound to it and runs them through the node's own containerd — a sandbox (so containerd
// calls the installed CNI plugin, eni-cni, for its ADD) and the pod's containers in the local busybox
// image — then writes the pod's status (phase, podIP, conditions, container IDs). A pod being deleted has
// its containers killed and its sandbox stopped and removed (the runtime's CNI DEL) before the runner
// deletes it for good, as kubelet does at the end of a graceful deletion. Sandboxes of pods that no longer
// exist are removed on every resync (kubelet's housekeeping). The runtime is the runner's only state.
//
// Honest limits: every image is the local busybox image (nothing is pulled; the pod's command and args
// run in it), containers are killed at once rather than after the grace period, no probes, volumes,
// restarts of exited containers, logs or exec through the API (the lab's `exec` enters the pod's netns).
import * as k8s from '@kubernetes/client-node';
import { SANDBOX_IMAGE, startContainerd, type Containerd } from '../../cri/containerd.ts';
import { CriError, type CriClient, type PodSpec, type Sandbox } from '../../cri/cri-client.ts';
import { EventRecorder } from './events.ts';
import { watchAll, type Log } from './watch.ts';

const UID_LABEL = 'io.kubernetes.pod.uid';
const KUBELET_VERSION = 'v1.32.0';
/** pods started at once on one node (each waits on its CNI ADD) */
const CONCURRENCY = 4;
const RESYNC_MS = 10_000;

export interface RunnerNode {
  name: string;
  instanceId: string;
  zone: string;
  instanceType: string;
  privateIp: string;
  publicIp?: string | undefined;
  /** the node's network namespace: containerd runs in it */
  ns: string;
  cpu: number;
  memoryGb: number;
}

export interface NodeRunnerOptions {
  kc: k8s.KubeConfig;
  node: RunnerNode;
  /** where containerd finds CNI plugins and the network config (the agent's install) */
  cniBinDir: string;
  cniConfDir: string;
  log: Log;
}

interface Work {
  running: boolean;
  again: boolean;
  failures: number;
  timer?: NodeJS.Timeout;
}

export class NodeRunner {
  private readonly core: k8s.CoreV1Api;
  private readonly cri: CriClient;
  private readonly events: EventRecorder;
  /** the pods bound to this node, by uid, as last seen */
  private readonly pods = new Map<string, k8s.V1Pod>();
  private readonly work = new Map<string, Work>();
  private readonly written = new Map<string, string>();
  private active = 0;
  /** pod work under way: stop() waits for it, so that no sandbox is half made when containerd goes */
  private readonly inFlight = new Set<Promise<void>>();
  private readonly waiting: Array<() => void> = [];
  private stopWatch?: () => Promise<void>;
  private resync?: NodeJS.Timeout;
  private stopped = false;

  private constructor(
    private readonly o: NodeRunnerOptions,
    readonly containerd: Containerd,
  ) {
    this.core = o.kc.makeApiClient(k8s.CoreV1Api);
    this.cri = containerd.client();
    this.events = new EventRecorder(this.core, { component: 'kubelet', host: o.node.name }, o.log);
  }

  /** Starts the node's containerd, registers the Node, and starts running its pods. */
  static async start(o: NodeRunnerOptions): Promise<NodeRunner> {
    const containerd = await startContainerd({ cniBinDir: o.cniBinDir, cniConfDir: o.cniConfDir, netns: o.node.ns, netnsMountsUnder: 'host' });
    const runner = new NodeRunner(o, containerd);
    try {
      await runner.register();
      const { stop } = await watchAll<k8s.V1Pod>(
        o.kc,
        {
          path: '/api/v1/pods',
          fieldSelector: `spec.nodeName=${o.node.name}`,
          list: () => runner.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${o.node.name}` }),
        },
        (type, pod) => runner.seen(type, pod),
        o.log,
      );
      runner.stopWatch = stop;
      runner.resync = setInterval(() => void runner.housekeeping(), RESYNC_MS);
      await runner.housekeeping();
      return runner;
    } catch (err) {
      await runner.stop();
      throw err;
    }
  }

  get name(): string {
    return this.o.node.name;
  }

  /** The network namespace of a running pod's sandbox, for looking from inside it. */
  netnsOf(uid: string): Promise<string | undefined> {
    return podNetns(this.cri, uid);
  }

  /**
   * Stops watching, waits for pod work under way (a RunPodSandbox cut short by containerd's stop would
   * leave its network namespace behind), then stops containerd, which removes every sandbox left (their DEL).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resync);
    for (const w of this.work.values()) clearTimeout(w.timer);
    await this.stopWatch?.();
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, 40_000))]);
    await this.containerd.stop();
  }

  private async register(): Promise<void> {
    const n = this.o.node;
    const labels = {
      'kubernetes.io/hostname': n.name,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': process.arch === 'arm64' ? 'arm64' : 'amd64',
      'topology.kubernetes.io/zone': n.zone,
      'failure-domain.beta.kubernetes.io/zone': n.zone,
      'node.kubernetes.io/instance-type': n.instanceType,
      'beta.kubernetes.io/instance-type': n.instanceType,
    };
    const spec = { providerID: `qcloud:///${n.zone}/${n.instanceId}` };
    try {
      await this.core.createNode({ body: { metadata: { name: n.name, labels }, spec } });
    } catch (err) {
      if (!(err instanceof k8s.ApiException && err.code === 409)) throw err;
      await this.core.patchNode({ name: n.name, body: { metadata: { labels }, spec } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    }
    const resources = { cpu: String(n.cpu), memory: `${Math.round(n.memoryGb * 1024)}Mi`, pods: '110', 'ephemeral-storage': '50Gi' };
    const version = await this.cri.version();
    const now = new Date();
    // A merge patch of the runner's own keys: the agent's extended resources in the same maps stay.
    const status = {
      capacity: resources,
      allocatable: resources,
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now }],
      addresses: [{ type: 'InternalIP', address: n.privateIp }, ...(n.publicIp ? [{ type: 'ExternalIP', address: n.publicIp }] : []), { type: 'Hostname', address: n.name }],
      nodeInfo: {
        kubeletVersion: KUBELET_VERSION,
        kubeProxyVersion: KUBELET_VERSION,
        containerRuntimeVersion: `${version.runtimeName}://${version.runtimeVersion}`,
        operatingSystem: 'linux',
        architecture: labels['kubernetes.io/arch'],
        osImage: 'eni-cni lab node',
        kernelVersion: '',
        machineID: n.instanceId,
        systemUUID: n.instanceId,
        bootID: '',
      },
    };
    await this.core.patchNodeStatus({ name: n.name, body: { status } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  }

  private seen(type: 'add' | 'update' | 'delete', pod: k8s.V1Pod): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    if (type === 'delete') this.pods.delete(uid);
    else this.pods.set(uid, pod);
    this.enqueue(uid);
  }

  /** Every known pod again, and every sandbox whose pod is gone (removed). */
  private async housekeeping(): Promise<void> {
    if (this.stopped) return;
    const sandboxes = await this.cri.listPodSandbox().catch((err: Error) => {
      this.o.log('warn', `${this.name}: listing sandboxes failed: ${err.message}`);
      return [] as Sandbox[];
    });
    for (const uid of new Set([...this.pods.keys(), ...sandboxes.map((s) => s.labels[UID_LABEL] ?? s.uid)])) this.enqueue(uid);
  }

  /** One worker per pod at a time; a change during its work gives one more run. */
  private enqueue(uid: string): void {
    if (this.stopped) return;
    const w = this.work.get(uid) ?? { running: false, again: false, failures: 0 };
    this.work.set(uid, w);
    if (w.running) {
      w.again = true;
      return;
    }
    clearTimeout(w.timer);
    w.running = true;
    const work = this.runWork(uid, w).finally(() => this.inFlight.delete(work));
    this.inFlight.add(work);
  }

  private async runWork(uid: string, w: Work): Promise<void> {
    await this.slot();
    try {
      do {
        w.again = false;
        try {
          await this.sync(uid);
          w.failures = 0;
        } catch (err) {
          w.failures++;
          // kubelet's back-off, shortened for a lab: 1, 2, 4, 8, then every 10 s.
          const delay = Math.min(1000 * 2 ** (w.failures - 1), 10_000);
          const pod = this.pods.get(uid);
          this.o.log('warn', `${this.name}: pod ${pod ? `${pod.metadata?.namespace}/${pod.metadata?.name}` : uid}: ${(err as Error).message}; again in ${delay} ms`);
          w.timer = setTimeout(() => this.enqueue(uid), delay);
        }
      } while (w.again && !this.stopped);
    } finally {
      w.running = false;
      this.release();
      if (!this.pods.has(uid) && !w.timer) this.work.delete(uid);
    }
  }

  private async sync(uid: string): Promise<void> {
    const pod = this.pods.get(uid);
    const sandboxes = await this.cri.listPodSandbox({ labels: { [UID_LABEL]: uid } });
    const wanted = pod && !pod.metadata?.deletionTimestamp && pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed';
    if (!wanted) {
      for (const s of sandboxes) await this.removeSandbox(s);
      this.written.delete(uid);
      if (pod?.metadata?.deletionTimestamp) await this.finishDeletion(pod);
      return;
    }
    const ready = sandboxes.find((s) => s.state === 'SANDBOX_READY');
    if (ready) {
      // Containers a failed earlier run did not get to (the sandbox stays: its address is the pod's).
      await this.startContainers(pod, ready.id, ready.attempt);
      return this.writeStatus(pod, ready.id);
    }
    // A sandbox that is not ready (its network or process gone) is replaced, as kubelet does.
    for (const s of sandboxes) await this.removeSandbox(s);
    await this.writeStatus(pod, undefined);
    await this.runPod(pod, Math.max(-1, ...sandboxes.map((s) => s.attempt)) + 1);
  }

  private async runPod(pod: k8s.V1Pod, attempt: number): Promise<void> {
    const meta = pod.metadata!;
    let sandboxId: string;
    try {
      sandboxId = await this.cri.runPodSandbox(sandboxSpec(pod, attempt));
    } catch (err) {
      const details = err instanceof CriError ? err.details : (err as Error).message;
      await this.events.record({ kind: 'Pod', metadata: meta }, 'Warning', 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${details}`);
      throw err;
    }
    await this.startContainers(pod, sandboxId, attempt);
    await this.writeStatus(pod, sandboxId);
  }

  /** Creates and starts each of the pod's containers that its sandbox does not have yet. */
  private async startContainers(pod: k8s.V1Pod, sandboxId: string, attempt: number): Promise<void> {
    const meta = pod.metadata!;
    const spec = sandboxSpec(pod, attempt);
    const have = new Set((await this.cri.listContainers({ sandboxId })).map((c) => c.name));
    for (const c of (pod.spec?.containers ?? []).filter((c) => !have.has(c.name))) {
      const id = await this.cri.createContainer(sandboxId, spec, { name: c.name, image: SANDBOX_IMAGE, command: c.command ?? [], args: c.args ?? [], env: envOf(c) });
      await this.cri.startContainer(id);
      await this.events.record({ kind: 'Pod', metadata: meta }, 'Normal', 'Started', `Started container ${c.name}`);
    }
  }

  private async removeSandbox(s: Sandbox): Promise<void> {
    for (const c of await this.cri.listContainers({ sandboxId: s.id })) {
      await this.cri.stopContainer(c.id, 0);
      await this.cri.removeContainer(c.id);
    }
    await this.cri.stopPodSandbox(s.id);
    await this.cri.removePodSandbox(s.id);
  }

  /** The end of a graceful deletion: the pod's containers and sandbox are gone, so its object goes. */
  private async finishDeletion(pod: k8s.V1Pod): Promise<void> {
    const { name, namespace, uid } = pod.metadata!;
    try {
      await this.core.deleteNamespacedPod({ name: name!, namespace: namespace!, body: { gracePeriodSeconds: 0, preconditions: { uid } } });
    } catch (err) {
      // Gone already, or a new pod of the same name: neither is this runner's to delete.
      if (!(err instanceof k8s.ApiException && (err.code === 404 || err.code === 409))) throw err;
    }
  }

  private async writeStatus(pod: k8s.V1Pod, sandboxId: string | undefined): Promise<void> {
    const meta = pod.metadata!;
    const sandbox = sandboxId ? await this.cri.podSandboxStatus(sandboxId) : undefined;
    const containers = sandboxId ? await this.cri.listContainers({ sandboxId }) : [];
    const statuses = await Promise.all(
      (pod.spec?.containers ?? []).map(async (c) => {
        const found = containers.find((k) => k.name === c.name);
        const s = found ? await this.cri.containerStatus(found.id) : undefined;
        const running = s?.state === 'CONTAINER_RUNNING';
        const state = running
          ? { running: { startedAt: nanosToDate(s.startedAt) } }
          : s?.state === 'CONTAINER_EXITED'
            ? { terminated: { exitCode: s.exitCode, reason: s.reason || 'Error', startedAt: nanosToDate(s.startedAt), finishedAt: nanosToDate(s.finishedAt) } }
            : { waiting: { reason: 'ContainerCreating' } };
        return { name: c.name, image: c.image ?? '', imageID: s?.imageRef ?? '', ...(s ? { containerID: `containerd://${s.id}` } : {}), ready: running, started: running, restartCount: 0, state };
      }),
    );
    const allReady = statuses.length > 0 && statuses.every((s) => s.ready);
    const podIp = pod.spec?.hostNetwork ? this.o.node.privateIp : sandbox?.ip;
    const condition = (type: string, ok: boolean) => ({ type, status: ok ? 'True' : 'False', ...(ok ? {} : { reason: type === 'Initialized' ? undefined : 'ContainersNotReady' }) });
    const status = {
      phase: allReady ? 'Running' : 'Pending',
      hostIP: this.o.node.privateIp,
      hostIPs: [{ ip: this.o.node.privateIp }],
      ...(podIp ? { podIP: podIp, podIPs: [{ ip: podIp }] } : {}),
      conditions: [
        condition('PodReadyToStartContainers', Boolean(sandbox)),
        condition('Initialized', true),
        condition('Ready', allReady),
        condition('ContainersReady', allReady),
        condition('PodScheduled', true),
      ],
      containerStatuses: statuses,
      qosClass: 'BestEffort',
    };
    const content = JSON.stringify(status);
    if (this.written.get(meta.uid!) === content) return;
    const now = new Date();
    const before = new Map((pod.status?.conditions ?? []).map((c) => [c.type, c]));
    const stamped = {
      ...status,
      startTime: pod.status?.startTime ?? now,
      conditions: status.conditions.map((c) => ({ ...c, lastTransitionTime: before.get(c.type)?.status === c.status ? before.get(c.type)!.lastTransitionTime : now })),
    };
    // The test op makes the write conditional on the uid: never the status of a new pod of the same name.
    const patch = [
      { op: 'test', path: '/metadata/uid', value: meta.uid },
      { op: 'add', path: '/status', value: stamped },
    ];
    await this.core.patchNamespacedPodStatus({ name: meta.name!, namespace: meta.namespace!, body: patch }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch));
    this.written.set(meta.uid!, content);
  }

  private async slot(): Promise<void> {
    if (this.active >= CONCURRENCY) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
  }

  private release(): void {
    this.active--;
    this.waiting.shift()?.();
  }
}

/** The network namespace path of the running sandbox of the pod with this uid, on the runtime `cri` talks to. */
export async function podNetns(cri: CriClient, uid: string): Promise<string | undefined> {
  const [sandbox] = await cri.listPodSandbox({ labels: { [UID_LABEL]: uid }, state: 'SANDBOX_READY' });
  return sandbox ? (await cri.podSandboxStatus(sandbox.id, { verbose: true })).netnsPath : undefined;
}

/** What the runtime is told of a pod for its sandbox (the same again with each of its containers). */
function sandboxSpec(pod: k8s.V1Pod, attempt: number): PodSpec & { uid: string } {
  const meta = pod.metadata!;
  return { name: meta.name!, namespace: meta.namespace!, uid: meta.uid!, attempt, labels: meta.labels ?? {}, annotations: meta.annotations ?? {}, hostNetwork: pod.spec?.hostNetwork === true };
}

function envOf(c: k8s.V1Container): Record<string, string> {
  return Object.fromEntries((c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
}

function nanosToDate(nanos: string): Date {
  return new Date(Number(BigInt(nanos) / 1_000_000n));
}
