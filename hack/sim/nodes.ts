// Simulated nodes: the agent's real pool logic (Pool, PoolStore, NecSupply or CloudSupply) with a datapath
// that only names links, many to a process. One NEC informer serves them all, so a thousand nodes cost a
// thousand pools, not three thousand watches. Pods are taken and given back as the agent's ADD and DEL do.
// For tests of ipamd and for `npm run bench:scale`; not part of eni-cni.
import * as k8s from '@kubernetes/client-node';
import type { Datapath } from '../../agent/datapath/linux.ts';
import type { Nec } from '../../agent/k8s/nec.ts';
import { NEC_PLURAL, patchNecStatus } from '../../agent/k8s/nec-status.ts';
import { Pool } from '../../agent/pool/pool.ts';
import { PoolStore } from '../../agent/pool/store.ts';
import { NodeNec } from '../../agent/k8s/node-nec.ts';
import { NecSupply } from '../../agent/supply/nec-supply.ts';
import type { Supply } from '../../agent/supply/supply.ts';
import { CRD_GROUP, CRD_VERSION } from '../../shared/tke.ts';

const necApi = { group: CRD_GROUP, version: CRD_VERSION, plural: NEC_PLURAL };

/** Links are not real here: the datapath only names them. */
export const NAMING_DATAPATH = { setupEni: async (eni: { primaryIp: string; gateway: string }) => ({ ifName: 'eth9', table: 2009, ...eni }) } as unknown as Datapath;

export interface SimPoolSettings {
  warm?: { min: number; max: number };
  quickRelease?: boolean;
  releasePeriodMs?: number;
  checkIntervalMs?: number;
  resyncIntervalMs?: number;
  cooldownMs?: number;
}

/** The NECs of the cluster, watched once for every simulated node of this process. */
export class SimCluster {
  readonly custom: k8s.CustomObjectsApi;
  private readonly ports = new Map<string, NodeNec>();
  private informer?: k8s.Informer<Nec & k8s.KubernetesObject> & k8s.ObjectCache<Nec & k8s.KubernetesObject>;

  constructor(private readonly kc: k8s.KubeConfig) {
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async start(): Promise<void> {
    const informer = k8s.makeInformer<Nec & k8s.KubernetesObject>(this.kc, `/apis/${CRD_GROUP}/${CRD_VERSION}/${NEC_PLURAL}`, () =>
      this.custom.listClusterCustomObject(necApi) as Promise<k8s.KubernetesListObject<Nec & k8s.KubernetesObject>>,
    );
    for (const verb of ['add', 'update'] as const) informer.on(verb, (nec) => this.ports.get(nec.metadata!.name!)?.seen(nec));
    informer.on('delete', (nec) => this.ports.get(nec.metadata!.name!)?.seen(undefined));
    informer.on('error', () => setTimeout(() => void informer.start().catch(() => undefined), 1000));
    this.informer = informer;
    await informer.start();
  }

  async stop(): Promise<void> {
    await this.informer?.stop();
  }

  /** The NEC port of a node, starting from what the informer already holds. */
  port(name: string, onChange: () => void): NodeNec {
    const port = new NodeNec((status, rv) => patchNecStatus(this.custom, name, status, rv), onChange);
    this.ports.set(name, port);
    const known = this.informer?.get(name);
    if (known) port.seen(known);
    return port;
  }
}

/** One simulated node: its pool, fed by ipamd through its NEC (or by the cloud, standalone). */
export class SimNode {
  readonly store = new PoolStore();
  readonly pool: Pool;
  readonly port: NodeNec | undefined;

  constructor(
    readonly name: string,
    readonly instanceId: string,
    source: { cluster: SimCluster } | { supply: Supply },
    settings: SimPoolSettings = {},
    log: (level: 'info' | 'warn' | 'error', message: string) => void = () => {},
  ) {
    this.port = 'cluster' in source ? source.cluster.port(name, () => this.necChanged()) : undefined;
    const supply = 'supply' in source ? source.supply : new NecSupply({ nec: this.port!, nodeName: name, inForce: () => this.pool.currentLimits(), log });
    this.pool = new Pool({
      supply,
      store: this.store,
      datapath: NAMING_DATAPATH,
      instanceId,
      warm: settings.warm ?? { min: 5, max: 5 },
      quickRelease: settings.quickRelease ?? false,
      releasePeriodMs: settings.releasePeriodMs ?? 120_000,
      checkIntervalMs: settings.checkIntervalMs ?? 10_000,
      resyncIntervalMs: settings.resyncIntervalMs ?? 60_000,
      log,
    });
  }

  async start(): Promise<void> {
    this.necChanged();
    await this.pool.start();
    void this.pool.kick();
  }

  stop(): Promise<void> {
    return this.pool.stop();
  }

  /** As the agent's ADD: an address for the pod, waiting for the pool to grow; undefined after `waitMs`. */
  async addPod(pod: string, waitMs = 30_000): Promise<string | undefined> {
    const details = { containerId: `c-${pod}`, ifName: 'eth0', netns: `/var/run/netns/${pod}`, hostIf: `veth${pod}`.slice(0, 15), pod: { namespace: 'default', name: pod }, allocatedAt: Date.now() };
    const deadline = Date.now() + waitMs;
    let allocation = this.store.take(details);
    while (!allocation && (await this.pool.waitForFree(deadline - Date.now()))) allocation = this.store.take(details);
    void this.pool.kick();
    return allocation?.address;
  }

  /** As the agent's DEL. */
  delPod(pod: string): void {
    this.store.release(`c-${pod}`, 'eth0', Date.now());
    void this.pool.kick();
  }

  private necChanged(): void {
    // The port may already know the NEC while this node is being made: the pool reads it when it starts.
    if (!(this.pool as Pool | undefined)) return;
    const nec = this.port?.current();
    const defaults = nec?.spec?.defaults;
    this.pool.setOverrides(nec?.metadata?.annotations ?? {}, defaults ? { min: defaults.ipMinWarmTarget, max: defaults.ipMaxWarmTarget } : undefined);
    this.pool.supplyChanged();
  }
}
