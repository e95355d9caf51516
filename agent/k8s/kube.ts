// The agent's Kubernetes adapter: its own Node, its NodeENIConfig and the pods on its node, read through
// informers (list, watch, re-list after errors), and the few writes it makes: the NEC and its status, the
// node's extended resources, and events. Calls are paced by --kube-api-qps/--kube-api-burst.
import * as k8s from '@kubernetes/client-node';
import { CRD_GROUP, CRD_VERSION } from '../../shared/tke.ts';
import { RateLimiter } from '../cloud/ratelimit.ts';
import type { Nec } from './nec.ts';
import { NEC_PLURAL, patchNecStatus } from './nec-status.ts';

export { NEC_PLURAL };

export interface KubeOptions {
  /** a kubeconfig file; without it, the in-cluster service account */
  kubeconfig?: string | undefined;
  nodeName: string;
  qps: number;
  burst: number;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

type Obj = k8s.KubernetesObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };

export class Kube {
  readonly core: k8s.CoreV1Api;
  readonly custom: k8s.CustomObjectsApi;
  /** client-go's default limiter: a bucket as deep as `burst`, refilled at `qps` */
  private readonly pacer: RateLimiter;
  private readonly informers: Array<k8s.Informer<k8s.KubernetesObject>> = [];
  private pods?: k8s.ObjectCache<k8s.V1Pod>;
  /** whether the pod cache reflects a list that succeeded (an empty cache is not "no pods") */
  private podsListed = false;
  private stopped = false;

  constructor(
    private readonly kc: k8s.KubeConfig,
    readonly o: KubeOptions,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.pacer = new RateLimiter({ default: o.qps }, Date, undefined, o.burst);
  }

  static load(o: KubeOptions): Kube {
    const kc = new k8s.KubeConfig();
    if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
    else kc.loadFromCluster();
    return new Kube(kc, o);
  }

  /** Paces one API call. */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    await this.pacer.acquire('kubernetes');
    return fn();
  }

  /**
   * Starts the informers: the node's pods, its Node and its NEC. `onNec` hears every version of the NEC
   * (its annotations carry the per-node overrides).
   */
  async start(handlers: { onNec: (nec: Obj | undefined) => void; onNode?: (node: k8s.V1Node) => void }): Promise<void> {
    const node = this.o.nodeName;
    const field = (selector: string) => `fieldSelector=${encodeURIComponent(selector)}`;
    const pods = k8s.makeInformer(this.kc, `/api/v1/pods?${field(`spec.nodeName=${node}`)}`, async () => {
      const list = await this.call(() => this.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` }));
      this.podsListed = true;
      return list;
    });
    const nodes = k8s.makeInformer(this.kc, `/api/v1/nodes?${field(`metadata.name=${node}`)}`, () =>
      this.call(() => this.core.listNode({ fieldSelector: `metadata.name=${node}` })),
    );
    const necs = k8s.makeInformer<Obj>(this.kc, `/apis/${CRD_GROUP}/${CRD_VERSION}/${NEC_PLURAL}?${field(`metadata.name=${node}`)}`, () =>
      this.call(() => this.custom.listClusterCustomObject({ group: CRD_GROUP, version: CRD_VERSION, plural: NEC_PLURAL, fieldSelector: `metadata.name=${node}` })) as Promise<
        k8s.KubernetesListObject<Obj>
      >,
    );
    for (const verb of ['add', 'update'] as const) necs.on(verb, (nec) => handlers.onNec(nec));
    necs.on('delete', () => handlers.onNec(undefined));
    if (handlers.onNode) for (const verb of ['add', 'update'] as const) nodes.on(verb, (n) => handlers.onNode!(n));
    this.pods = pods;
    for (const [name, informer] of [['pods', pods], ['node', nodes], ['nec', necs]] as const) {
      // An informer stops on an error (the API server restarting, a 410): list and watch again after a pause.
      informer.on('error', (err: unknown) => {
        if (informer === (pods as unknown)) this.podsListed = false;
        if (this.stopped) return;
        this.o.log('warn', `kubernetes: the ${name} informer of ${node} failed (${(err as Error)?.message ?? err}); restarting in 2 s`);
        setTimeout(() => void informer.start().catch(() => undefined), 2000);
      });
      this.informers.push(informer as unknown as k8s.Informer<k8s.KubernetesObject>);
    }
    await Promise.all([pods.start(), nodes.start(), necs.start()]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  /** A pod of this node, from the informer's cache, else straight from the API server (it may be new). */
  async pod(namespace: string, name: string): Promise<k8s.V1Pod | undefined> {
    const cached = this.pods?.get(name, namespace);
    if (cached) return cached;
    try {
      return await this.call(() => this.core.readNamespacedPod({ namespace, name }));
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  /** The pods the API server says run on this node (namespace/name); undefined until a list has succeeded. */
  podsOnNode(): Set<string> | undefined {
    if (!this.pods || !this.podsListed) return undefined;
    return new Set(this.pods.list().map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`));
  }

  async getNec(): Promise<Obj | undefined> {
    try {
      return (await this.call(() => this.custom.getClusterCustomObject({ group: CRD_GROUP, version: CRD_VERSION, plural: NEC_PLURAL, name: this.o.nodeName }))) as Obj;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  async createNec(body: Obj): Promise<void> {
    await this.call(() => this.custom.createClusterCustomObject({ group: CRD_GROUP, version: CRD_VERSION, plural: NEC_PLURAL, body }));
  }

  /** Merge-patches the NEC's status; with `resourceVersion`, only if it is still at it (else a ConflictError). */
  patchNecStatus(status: Record<string, unknown>, resourceVersion?: string): Promise<Nec> {
    return this.call(() => patchNecStatus(this.custom, this.o.nodeName, status, resourceVersion));
  }

  async patchNodeStatus(status: Record<string, unknown>): Promise<void> {
    await this.call(() => this.core.patchNodeStatus({ name: this.o.nodeName, body: { status } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)));
  }

  async createEvent(event: k8s.CoreV1Event): Promise<void> {
    await this.call(() => this.core.createNamespacedEvent({ namespace: event.metadata?.namespace ?? 'default', body: event }));
  }
}
