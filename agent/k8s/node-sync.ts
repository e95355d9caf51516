// What the agent tells Kubernetes about its node, and what it reads back:
//   - the node's NodeENIConfig, whose annotations carry per-node overrides and whose status shows the
//     node's ENIs, addresses and pool, as `kubectl get nec -o yaml` does in TKE. In a cluster ipamd creates
//     it when the node joins, with its warm defaults in the spec; a standalone agent creates it if missing;
//   - the node's extended resource tke.cloud.tencent.com/eni-ip, capacity and allocatable both the most
//     addresses the node can bind (its quota, lowered by overrides): the pool grows on demand, so a node
//     with nothing warm (min 0) still takes the pods asking `eni-ip: 1`, and never more than it can hold;
//   - in a cluster, tke.cloud.tencent.com/direct-eni: the whole ENIs the node can attach for pods (its quota
//     less the primary and the shared ENIs, or direct-eni-max-attach), and the whole-ENI pool on the NEC;
//   - tke.cloud.tencent.com/eip: the EIPs pods of the node may bind, the CVM's public IP binding count
//     less the one its own public IP takes (seed 001), from the vCPUs the Node reports;
//   - events a user finds with `kubectl get event`, at most one per cause per minute.
import type { CoreV1Event } from '@kubernetes/client-node';
import { EXTENDED_RESOURCES } from '../../shared/tke.ts';
import type { DirectPool } from '../direct/pool.ts';
import type { Pool } from '../pool/pool.ts';
import type { PoolStore } from '../pool/store.ts';
import type { Kube } from './kube.ts';
import type { Nec } from './nec.ts';
import type { NodeNec } from './node-nec.ts';

export interface NodeSyncOptions {
  kube: Kube;
  pool: Pool;
  store: PoolStore;
  nodeName: string;
  instanceId: string;
  zone: string;
  subnetIds: string[];
  securityGroupIds: string[];
  /** in a cluster: the NEC ipamd made, which the supply reads too (the agent never creates it then) */
  nec?: NodeNec;
  /** in a cluster: the whole ENIs of the node */
  direct?: DirectPool;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** how long status writes are gathered before one is sent (default 500 ms) */
  debounceMs?: number;
}

const EVENT_EVERY_MS = 60_000;

export class NodeSync {
  private timer?: NodeJS.Timeout;
  private refusals: string[] = [];
  private readonly lastEvent = new Map<string, number>();
  /** what was last written (status, resources), so that a write that would change nothing is not sent */
  private lastWritten = '';
  /** when each condition last changed its status */
  private readonly transitions = new Map<string, { status: string; at: string }>();
  /** the vCPUs the Node reports, once known */
  private cpus: number | undefined;

  constructor(private readonly o: NodeSyncOptions) {}

  async start(): Promise<void> {
    const { kube } = this.o;
    if (!this.o.nec && !(await kube.getNec())) {
      await kube.createNec({
        apiVersion: 'networking.tke.cloud.tencent.com/v1',
        kind: 'NodeENIConfig',
        metadata: { name: this.o.nodeName },
        spec: { instanceId: this.o.instanceId, zone: this.o.zone, subnetIds: this.o.subnetIds, securityGroupIds: this.o.securityGroupIds },
      });
      this.o.log('info', `kubernetes: created NodeENIConfig ${this.o.nodeName}`);
    }
    await kube.start({
      onNec: (nec) => {
        this.o.nec?.seen(nec as Nec | undefined);
        // A NEC without this agent's part (made anew) gets it written again, changed or not.
        if (!nec?.status?.pool) this.lastWritten = '';
        const defaults = this.o.nec ? (nec as Nec | undefined)?.spec?.defaults : undefined;
        const warm = defaults ? { min: defaults.ipMinWarmTarget, max: defaults.ipMaxWarmTarget } : undefined;
        const annotations = (nec?.metadata?.annotations ?? {}) as Record<string, string>;
        const directWarm = defaults ? { min: defaults.eniMinWarmTarget, max: defaults.eniMaxWarmTarget } : undefined;
        this.refusals = [...this.o.pool.setOverrides(annotations, warm), ...(this.o.direct?.setOverrides(annotations, directWarm) ?? [])];
        for (const refusal of this.refusals) this.event('OverrideRefused', refusal, 'Warning');
        this.changed();
      },
      onNode: (node) => {
        const cpus = cpuCount(node.status?.capacity?.cpu);
        if (cpus === this.cpus) return;
        this.cpus = cpus;
        this.changed();
      },
    });
    this.changed();
  }

  /** Something in the pool changed: write the NEC status and the node's resources soon. */
  changed(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.write().catch((err: Error) => this.o.log('warn', `kubernetes: cannot write the status of ${this.o.nodeName}: ${err.message}`));
    }, this.o.debounceMs ?? 500);
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  /** Records an event on the node's NEC, unless the same cause was recorded in the last minute. */
  event(reason: string, message: string, type: 'Normal' | 'Warning' = 'Warning'): void {
    const cause = `${reason}/${message}`;
    const now = Date.now();
    if (now - (this.lastEvent.get(cause) ?? 0) < EVENT_EVERY_MS) return;
    this.lastEvent.set(cause, now);
    const at = new Date(now).toISOString();
    const event: CoreV1Event = {
      metadata: { generateName: `${this.o.nodeName}.`, namespace: 'default' },
      involvedObject: { apiVersion: 'networking.tke.cloud.tencent.com/v1', kind: 'NodeENIConfig', name: this.o.nodeName },
      reason,
      message,
      type,
      count: 1,
      firstTimestamp: at as unknown as Date,
      lastTimestamp: at as unknown as Date,
      source: { component: 'tke-eni-agent', host: this.o.nodeName },
    };
    this.o.kube.createEvent(event).catch((err: Error) => this.o.log('warn', `kubernetes: cannot record event ${reason} for ${this.o.nodeName}: ${err.message}`));
  }

  private async write(): Promise<void> {
    const { store, pool, kube } = this.o;
    const limits = pool.currentLimits();
    const counts = store.counts();
    const enis = [...store.enis.values()].map((e) => ({
      eniId: e.id,
      type: 'route',
      state: 'Attached',
      mac: e.mac,
      primaryIP: e.primaryIp,
      subnetId: e.subnetId,
      subnetCIDR: e.subnetCidr,
      ...(e.ifName ? { ifName: e.ifName } : {}),
      ...(e.table ? { routeTable: e.table } : {}),
      ips: [...e.addresses].sort().map((ip) => {
        const holder = store.holderOf(ip);
        return { ip, ...(holder?.pod ? { podNamespace: holder.pod.namespace, podName: holder.pod.name } : {}), ...(holder ? { containerId: holder.containerId } : {}) };
      }),
    }));
    const { direct } = this.o;
    const bound = new Map(store.allocations().filter((a) => a.direct).map((a) => [a.eniId, a]));
    const directEnis = (direct?.enis() ?? []).map((e) => {
      const holder = bound.get(e.eniId);
      const pod = holder?.pod ? { podNamespace: holder.pod.namespace, podName: holder.pod.name } : {};
      return { eniId: e.eniId, type: 'direct', state: 'Attached', mac: e.mac, primaryIP: e.primaryIP, subnetId: e.subnetId, subnetCIDR: e.subnetCIDR, ips: [{ ip: e.primaryIP, ...pod, ...(holder ? { containerId: holder.containerId } : {}) }] };
    });
    const directLimits = direct?.currentLimits();
    const conditions = [
      this.refusals.length === 0
        ? { type: 'OverridesApplied', status: 'True', reason: 'Applied', message: 'the overrides in the annotations are in force' }
        : { type: 'OverridesApplied', status: 'False', reason: 'Refused', message: this.refusals.join('; ') },
      pool.lastError
        ? { type: 'PoolHealthy', status: 'False', reason: 'CloudError', message: pool.lastError }
        : { type: 'PoolHealthy', status: 'True', reason: 'Healthy', message: 'the pool is within its targets or working towards them' },
    ];
    const status = {
      limits: { maxRouteENI: limits.maxEnis, maxIPPerENI: limits.maxIpsPerEni },
      pool: { minWarmTarget: limits.warm.min, maxWarmTarget: limits.warm.max, capacity: pool.capacity(), bound: counts.total, allocated: counts.assigned },
      ...(direct && directLimits
        ? {
            directENIPool: { minWarmTarget: directLimits.warm.min, maxWarmTarget: directLimits.warm.max, capacity: direct.capacity(), bound: directEnis.length, allocated: bound.size },
            limits: { maxRouteENI: limits.maxEnis, maxIPPerENI: limits.maxIpsPerEni, maxDirectENI: direct.capacity() },
          }
        : {}),
      enis: [...enis, ...directEnis],
      conditions,
    };
    const advertised: Record<string, string> = { [EXTENDED_RESOURCES.eniIp]: String(direct ? sharedRoom(pool.capacity(), limits, direct.quota(), direct.enis().length) : pool.capacity()) };
    if (direct) advertised[EXTENDED_RESOURCES.directEni] = String(direct.capacity());
    if (this.cpus !== undefined) advertised[EXTENDED_RESOURCES.eip] = String(eipsPerNode(this.cpus));
    const resources = { capacity: advertised, allocatable: advertised };
    // Nothing changed, nothing sent: every write is a NEC event for ipamd and for this agent's own informer.
    const content = JSON.stringify({ status, resources });
    if (content === this.lastWritten) return;
    const now = new Date().toISOString();
    const stamped = conditions.map((c) => {
      const before = this.transitions.get(c.type);
      const at = before && before.status === c.status ? before.at : now;
      this.transitions.set(c.type, { status: c.status, at });
      return { ...c, lastTransitionTime: at };
    });
    await kube.patchNecStatus({ ...status, conditions: stamped });
    await kube.patchNodeStatus(resources);
    this.lastWritten = content;
  }
}

/**
 * The addresses shared-ENI pods may have when whole ENIs take part of the node's ENI quota (`quota`: pod ENIs
 * the instance may hold): the shared pool's most, or what the ENIs left to it hold, whichever is less.
 */
export function sharedRoom(capacity: number, limits: { maxEnis: number; maxIpsPerEni: number }, quota: number, wholeEnis: number): number {
  return Math.min(capacity, Math.max(0, Math.min(limits.maxEnis, quota - wholeEnis)) * limits.maxIpsPerEni);
}

/**
 * The EIPs a node's pods may bind: Tencent's public IP binding count of a CVM (bought since 2019-09-18) by
 * its vCPUs — 2 up to 5, one more for each 6, at most 10 — less the one the node's own public IP takes.
 */
export function eipsPerNode(cpus: number): number {
  return Math.min(10, Math.floor(cpus / 6) + 2) - 1;
}

/** vCPUs from a Kubernetes quantity ("4", "4000m"); undefined when there is none. */
function cpuCount(quantity: string | undefined): number | undefined {
  if (!quantity) return undefined;
  const n = quantity.endsWith('m') ? Number(quantity.slice(0, -1)) / 1000 : Number(quantity);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : undefined;
}
