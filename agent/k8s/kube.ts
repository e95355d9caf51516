// The agent's Kubernetes adapter: its own Node, its NodeENIConfig and the pods on its node, read through
// informers (list, watch, re-list after errors), and the few writes it makes: the NEC and its status, the
// node's extended resources, and events. Calls are paced by --kube-api-qps/--kube-api-burst.
import * as k8s from '@kubernetes/client-node';
import { CRD_GROUP, CRD_VERSION } from '../../shared/tke.ts';
import { RateLimiter } from '../cloud/ratelimit.ts';
import { CLAIM_NODE_LABEL, CLAIM_PLURAL, VPCIP_PLURAL, type ClaimStatus, type VpcIp, type VpcIpClaim } from './claims.ts';
import { ConflictError, type Nec } from './nec.ts';
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

  /** A pod's fixed-IP claim, or undefined when it has none. */
  async getClaim(namespace: string, name: string): Promise<VpcIpClaim | undefined> {
    try {
      return (await this.call(() => this.custom.getNamespacedCustomObject({ group: CRD_GROUP, version: CRD_VERSION, plural: CLAIM_PLURAL, namespace, name }))) as VpcIpClaim;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  /** The VpcIP of an address (named by it), or undefined when there is none. */
  async getVpcIp(address: string): Promise<VpcIp | undefined> {
    try {
      return (await this.call(() => this.custom.getClusterCustomObject({ group: CRD_GROUP, version: CRD_VERSION, plural: VPCIP_PLURAL, name: address }))) as VpcIp;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  /** Creates a claim (status included, written right after); a ConflictError when one of that name exists. */
  async createClaim(claim: VpcIpClaim): Promise<VpcIpClaim> {
    const { namespace } = claim.metadata;
    try {
      const made = (await this.call(() => this.custom.createNamespacedCustomObject({ group: CRD_GROUP, version: CRD_VERSION, plural: CLAIM_PLURAL, namespace, body: claim }))) as VpcIpClaim;
      return claim.status ? await this.patchClaimStatus(made, claim.status) : made;
    } catch (err) {
      if ((err as { code?: number }).code === 409) throw new ConflictError(`VpcIPClaim ${namespace}/${claim.metadata.name} exists`);
      throw err;
    }
  }

  /**
   * Merge-patches a claim's status, conditional on the version `claim` was read at (a ConflictError when
   * it changed), and moves its node label along with status.nodeName.
   */
  async patchClaimStatus(claim: VpcIpClaim, status: ClaimStatus | Record<string, unknown>): Promise<VpcIpClaim> {
    const { namespace, name, resourceVersion } = claim.metadata;
    const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
    try {
      const patched = (await this.call(() =>
        this.custom.patchNamespacedCustomObjectStatus({ group: CRD_GROUP, version: CRD_VERSION, plural: CLAIM_PLURAL, namespace, name, body: { metadata: { resourceVersion }, status } }, merge),
      )) as VpcIpClaim;
      const node = (status as ClaimStatus).nodeName;
      if (node && patched.metadata.labels?.[CLAIM_NODE_LABEL] !== node) {
        return (await this.call(() =>
          this.custom.patchNamespacedCustomObject({ group: CRD_GROUP, version: CRD_VERSION, plural: CLAIM_PLURAL, namespace, name, body: { metadata: { labels: { [CLAIM_NODE_LABEL]: node } } } }, merge),
        )) as VpcIpClaim;
      }
      return patched;
    } catch (err) {
      if ((err as { code?: number }).code === 409) throw new ConflictError(`VpcIPClaim ${namespace}/${name} changed since version ${resourceVersion}`);
      throw err;
    }
  }

  /** Merge-patches a claim's metadata and spec, conditional on the version it was read at (else a ConflictError). */
  async patchClaim(claim: VpcIpClaim, body: { metadata?: Record<string, unknown>; spec?: Record<string, unknown> }): Promise<VpcIpClaim> {
    const { namespace, name, resourceVersion } = claim.metadata;
    try {
      return (await this.call(() =>
        this.custom.patchNamespacedCustomObject(
          { group: CRD_GROUP, version: CRD_VERSION, plural: CLAIM_PLURAL, namespace, name, body: { ...body, metadata: { ...body.metadata, resourceVersion } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        ),
      )) as VpcIpClaim;
    } catch (err) {
      if ((err as { code?: number }).code === 409) throw new ConflictError(`VpcIPClaim ${namespace}/${name} changed since version ${resourceVersion}`);
      throw err;
    }
  }

  /** Removes a finalizer from a claim (a JSON patch that tests the list it read). */
  async removeClaimFinalizer(claim: VpcIpClaim, finalizer: string): Promise<void> {
    const list = claim.metadata.finalizers ?? [];
    if (!list.includes(finalizer)) return;
    const { namespace, name } = claim.metadata;
    const patch = [
      { op: 'test', path: '/metadata/finalizers', value: list },
      { op: 'replace', path: '/metadata/finalizers', value: list.filter((f) => f !== finalizer) },
    ];
    await this.call(() =>
      this.custom.patchNamespacedCustomObject({ group: CRD_GROUP, version: CRD_VERSION, plural: CLAIM_PLURAL, namespace, name, body: patch }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch)),
    ).catch((err: { code?: number }) => {
      if (err.code !== 404) throw err;
    });
  }

  /** Watches the claims whose address this node holds (their node label), calling `onClaim` for each change. */
  async watchClaims(onClaim: (type: 'add' | 'update' | 'delete', claim: VpcIpClaim) => void): Promise<void> {
    const selector = `${CLAIM_NODE_LABEL}=${this.o.nodeName}`;
    const claims = new k8s.ListWatch<VpcIpClaim & k8s.KubernetesObject>(
      `/apis/${CRD_GROUP}/${CRD_VERSION}/${CLAIM_PLURAL}`,
      new k8s.Watch(this.kc),
      () => this.call(() => this.custom.listCustomObjectForAllNamespaces({ group: CRD_GROUP, version: CRD_VERSION, plural: CLAIM_PLURAL, labelSelector: selector })) as Promise<k8s.KubernetesListObject<VpcIpClaim & k8s.KubernetesObject>>,
      false,
      selector,
    );
    for (const verb of ['add', 'update', 'delete'] as const) claims.on(verb, (c) => onClaim(verb, c));
    claims.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.o.log('warn', `kubernetes: the claims informer of ${this.o.nodeName} failed (${(err as Error)?.message ?? err}); restarting in 2 s`);
      setTimeout(() => void claims.start().catch(() => undefined), 2000);
    });
    try {
      await claims.start();
    } catch (err) {
      // The caller starts a new watch later: this one must not go on by itself.
      await claims.stop();
      throw err;
    }
    this.informers.push(claims as unknown as k8s.Informer<k8s.KubernetesObject>);
  }

  async createEvent(event: k8s.CoreV1Event): Promise<void> {
    await this.call(() => this.core.createNamespacedEvent({ namespace: event.metadata?.namespace ?? 'default', body: event }));
  }
}
