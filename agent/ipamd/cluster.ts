// ipamd's Kubernetes adapter: every Node and every NodeENIConfig through informers (list, watch, re-list
// after errors), the writes ipamd makes (NECs, their status, events) and its Lease. Calls are paced by
// --kube-api-qps/--kube-api-burst.
import * as k8s from '@kubernetes/client-node';
import { CRD_GROUP, CRD_VERSION } from '../../shared/tke.ts';
import { RateLimiter } from '../cloud/ratelimit.ts';
import type { Nec } from '../k8s/nec.ts';
import { NEC_PLURAL, patchNecStatus } from '../k8s/nec-status.ts';
import type { LeaseRecord, LeaseStore } from './leader.ts';

export interface ClusterOptions {
  /** a kubeconfig file; without it, the in-cluster service account */
  kubeconfig?: string | undefined;
  qps: number;
  burst: number;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export interface ClusterHandlers {
  onNode(name: string, node: k8s.V1Node | undefined): void;
  onNec(name: string, nec: Nec | undefined): void;
}

const nec = { group: CRD_GROUP, version: CRD_VERSION, plural: NEC_PLURAL };
const mergePatch = () => k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

export class Cluster {
  private readonly core: k8s.CoreV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly coordination: k8s.CoordinationV1Api;
  private readonly pacer: RateLimiter;
  private readonly informers: Array<k8s.Informer<k8s.KubernetesObject>> = [];
  private nodes?: k8s.ObjectCache<k8s.V1Node>;
  private necs?: k8s.ObjectCache<Nec & k8s.KubernetesObject>;
  private stopped = false;

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly o: ClusterOptions,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    this.pacer = new RateLimiter({ default: o.qps }, Date, undefined, o.burst);
  }

  /** The API server's address and credentials, for the parts that keep their own informers (fixed IPs). */
  get kubeConfig(): k8s.KubeConfig {
    return this.kc;
  }

  static load(o: ClusterOptions): Cluster {
    const kc = new k8s.KubeConfig();
    if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
    else kc.loadFromCluster();
    return new Cluster(kc, o);
  }

  /** Paces one API call; the Lease's calls have their own pace, so that status writes never hold up a renewal. */
  private async call<T>(fn: () => Promise<T>, pace = 'kubernetes'): Promise<T> {
    await this.pacer.acquire(pace);
    return fn();
  }

  /** Starts the informers of Nodes and NECs; every change reaches the handlers by name. */
  async start(handlers: ClusterHandlers): Promise<void> {
    const nodes = k8s.makeInformer(this.kc, '/api/v1/nodes', () => this.call(() => this.core.listNode()));
    const necs = k8s.makeInformer<Nec & k8s.KubernetesObject>(this.kc, `/apis/${CRD_GROUP}/${CRD_VERSION}/${NEC_PLURAL}`, () =>
      this.call(() => this.custom.listClusterCustomObject(nec)) as Promise<k8s.KubernetesListObject<Nec & k8s.KubernetesObject>>,
    );
    for (const verb of ['add', 'update'] as const) {
      nodes.on(verb, (n) => handlers.onNode(n.metadata!.name!, n));
      necs.on(verb, (n) => handlers.onNec(n.metadata!.name!, n));
    }
    nodes.on('delete', (n) => handlers.onNode(n.metadata!.name!, undefined));
    necs.on('delete', (n) => handlers.onNec(n.metadata!.name!, undefined));
    this.nodes = nodes;
    this.necs = necs;
    for (const [name, informer] of [['nodes', nodes], ['nodeeniconfigs', necs]] as const) {
      informer.on('error', (err: unknown) => {
        if (this.stopped) return;
        this.o.log('warn', `kubernetes: the ${name} informer failed (${(err as Error)?.message ?? err}); restarting in 2 s`);
        setTimeout(() => void informer.start().catch(() => undefined), 2000);
      });
      this.informers.push(informer as unknown as k8s.Informer<k8s.KubernetesObject>);
    }
    await Promise.all([nodes.start(), necs.start()]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  node(name: string): k8s.V1Node | undefined {
    return this.nodes?.get(name);
  }

  nodeNames(): string[] {
    return (this.nodes?.list() ?? []).map((n) => n.metadata!.name!);
  }

  nec(name: string): Nec | undefined {
    return this.necs?.get(name);
  }

  allNecs(): readonly Nec[] {
    return this.necs?.list() ?? [];
  }

  async createNec(body: Nec): Promise<void> {
    try {
      await this.call(() => this.custom.createClusterCustomObject({ ...nec, body }));
    } catch (err) {
      if ((err as { code?: number }).code === 409) return; // made meanwhile (by a standalone agent, or a previous leader)
      throw err;
    }
  }

  async deleteNec(name: string): Promise<void> {
    try {
      await this.call(() => this.custom.deleteClusterCustomObject({ ...nec, name }));
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
  }

  /** Merge-patches a NEC's spec (never its status). */
  async patchNecSpec(name: string, spec: Record<string, unknown>): Promise<void> {
    await this.call(() => this.custom.patchClusterCustomObject({ ...nec, name, body: { spec } }, mergePatch()));
  }

  /** Merge-patches a NEC's status; with `resourceVersion`, only if it is still at it (else a ConflictError). */
  patchNecStatus(name: string, status: Record<string, unknown>, resourceVersion?: string): Promise<Nec> {
    return this.call(() => patchNecStatus(this.custom, name, status, resourceVersion));
  }

  async createEvent(event: k8s.CoreV1Event): Promise<void> {
    await this.call(() => this.core.createNamespacedEvent({ namespace: event.metadata?.namespace ?? 'default', body: event }));
  }

  /** The Lease of `namespace/name`, as leader election reads and writes it. */
  lease(namespace: string, name: string): LeaseStore {
    const toRecord = (lease: k8s.V1Lease): LeaseRecord => ({
      holder: lease.spec?.holderIdentity ?? '',
      durationMs: (lease.spec?.leaseDurationSeconds ?? 0) * 1000,
      acquiredAt: String(lease.spec?.acquireTime ?? ''),
      renewedAt: String(lease.spec?.renewTime ?? ''),
      transitions: lease.spec?.leaseTransitions ?? 0,
    });
    const toLease = (record: LeaseRecord, resourceVersion?: string): k8s.V1Lease => ({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name, namespace, ...(resourceVersion ? { resourceVersion } : {}) },
      spec: {
        holderIdentity: record.holder,
        leaseDurationSeconds: Math.ceil(record.durationMs / 1000),
        acquireTime: record.acquiredAt as unknown as Date,
        renewTime: record.renewedAt as unknown as Date,
        leaseTransitions: record.transitions,
      },
    });
    const failedWith = (err: unknown, code: number) => (err as { code?: number }).code === code;
    return {
      get: async () => {
        try {
          const lease = await this.call(() => this.coordination.readNamespacedLease({ name, namespace }), 'lease');
          return { record: toRecord(lease), version: lease.metadata?.resourceVersion ?? '' };
        } catch (err) {
          if (failedWith(err, 404)) return undefined;
          throw err;
        }
      },
      create: async (record) => {
        try {
          await this.call(() => this.coordination.createNamespacedLease({ namespace, body: toLease(record) }), 'lease');
          return true;
        } catch (err) {
          if (failedWith(err, 409)) return false;
          throw err;
        }
      },
      update: async (record, version) => {
        try {
          await this.call(() => this.coordination.replaceNamespacedLease({ name, namespace, body: toLease(record, version) }), 'lease');
          return true;
        } catch (err) {
          if (failedWith(err, 409)) return false;
          throw err;
        }
      },
    };
  }
}
