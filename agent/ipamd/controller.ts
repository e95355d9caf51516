// ipamd's controller, while it leads: every Node and NEC change queues the node's name; working on a name
//   - a Node without a NEC joins: ipamd makes its NEC, owned by the Node, with the instance's quota, the
//     subnets and security groups for its ENIs, and ipamd's warm defaults now (later flags affect only new
//     nodes, as TKE's do);
//   - a Node with its NEC: its ENIs and addresses are brought to its agent's demand (node-ipam.ts);
//   - a name whose Node is gone: its ENIs are detached and deleted, its NEC goes.
// Every resync interval every node is queued, so nothing waits for a change to be looked at.
import type { V1Node } from '@kubernetes/client-node';
import { CRD_GROUP, CRD_VERSION } from '../../shared/tke.ts';
import type { Cloud } from '../cloud/cloud.ts';
import type { Nec, NecSpec } from '../k8s/nec.ts';
import type { Budget } from './budget.ts';
import type { NodeIpam } from './node-ipam.ts';
import { WorkQueue } from './queue.ts';

/** What the controller reads and writes of the cluster (the Cluster adapter). */
export interface ClusterAccess {
  node(name: string): V1Node | undefined;
  nodeNames(): string[];
  nec(name: string): Nec | undefined;
  createNec(body: Nec): Promise<void>;
  patchNecSpec(name: string, spec: Record<string, unknown>): Promise<void>;
  deleteNec(name: string): Promise<void>;
}

export interface ControllerOptions {
  cluster: ClusterAccess;
  ipam: NodeIpam;
  cloud: Cloud;
  budget: Budget;
  /** subnets new ENIs may come from (each node uses those in its zone) */
  subnetIds: string[];
  /** security groups of new ENIs; empty: those of each node's primary ENI */
  securityGroupIds: string[];
  defaults: NonNullable<NecSpec['defaults']>;
  resyncMs: number;
  workers: number;
  event(node: string, reason: string, message: string): void;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/** The node's CVM: TKE's label, else the provider ID (qcloud:///<zone>/<instance>). */
export function instanceOf(node: V1Node): string | undefined {
  const label = node.metadata?.labels?.['cloud.tencent.com/node-instance-id'];
  if (label) return label;
  return /(ins-[0-9a-z]+)$/.exec(node.spec?.providerID ?? '')?.[1];
}

export function zoneOf(node: V1Node): string | undefined {
  const labels = node.metadata?.labels ?? {};
  return labels['topology.kubernetes.io/zone'] ?? labels['failure-domain.beta.kubernetes.io/zone'] ?? /^qcloud:\/\/\/([^/]+)\//.exec(node.spec?.providerID ?? '')?.[1];
}

export class Controller {
  private readonly queue: WorkQueue;
  /** each node's instance, remembered so that its ENIs can be found after its Node and NEC are gone */
  private readonly instances = new Map<string, string>();
  /** quotas by instance type: every node of a type has the same, so a thousand joining nodes ask once */
  private readonly quotas = new Map<string, Promise<{ enis: number; ipsPerEni: number }>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ControllerOptions) {
    this.queue = new WorkQueue((name) => this.handle(name), o.workers, o.log);
  }

  start(): void {
    for (const name of this.o.cluster.nodeNames()) this.queue.add(name);
    this.timer = setInterval(() => {
      for (const name of this.o.cluster.nodeNames()) this.queue.add(name);
    }, this.o.resyncMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.queue.stop();
  }

  /** A Node or a NEC of this name changed. */
  changed(name: string): void {
    const instance = this.o.cluster.nec(name)?.spec?.instanceId;
    if (instance) this.instances.set(name, instance);
    this.queue.add(name);
  }

  /** Names queued or being worked on. */
  get backlog(): number {
    return this.queue.length;
  }

  private async handle(name: string): Promise<number | undefined> {
    const { cluster, ipam } = this.o;
    const node = cluster.node(name);
    if (!node) {
      const instance = this.instances.get(name) ?? cluster.nec(name)?.spec?.instanceId;
      if (instance) await ipam.cleanUp(name, instance);
      await cluster.deleteNec(name);
      this.instances.delete(name);
      return undefined;
    }
    const nec = cluster.nec(name);
    if (!nec?.spec?.quota) {
      await this.join(name, node, nec);
      return undefined; // the NEC's informer event queues the node again
    }
    return ipam.reconcile(name);
  }

  /** The instance's quota: by its type when the node says it (DescribeNetworkInterfaceLimit is 20 a second). */
  private quotaOf(node: V1Node, instanceId: string): Promise<{ enis: number; ipsPerEni: number }> {
    const labels = node.metadata?.labels ?? {};
    const type = labels['node.kubernetes.io/instance-type'] ?? labels['beta.kubernetes.io/instance-type'];
    if (!type) return this.o.cloud.limits(instanceId);
    let quota = this.quotas.get(type);
    if (!quota) {
      quota = this.o.cloud.limits(instanceId);
      this.quotas.set(type, quota);
      quota.catch(() => this.quotas.delete(type));
    }
    return quota;
  }

  /** Makes the node's NEC (or completes one a standalone agent made, keeping what it says). */
  private async join(name: string, node: V1Node, existing: Nec | undefined): Promise<void> {
    const instanceId = instanceOf(node);
    const zone = zoneOf(node);
    if (!instanceId || !zone) {
      this.o.event(name, 'UnknownInstance', `node ${name} names no CVM instance and zone (label cloud.tencent.com/node-instance-id or providerID qcloud:///<zone>/<ins-…>): it gets no ENI`);
      return;
    }
    this.instances.set(name, instanceId);
    // Without configured subnets or groups, the node's own: those of its primary ENI.
    const { quota, subnetIds, securityGroupIds } = await this.o.budget.as(name, 'warm', async () => {
      const limits = await this.quotaOf(node, instanceId);
      const configured = this.o.subnetIds.length > 0 && this.o.securityGroupIds.length > 0;
      const primary = configured ? undefined : (await this.o.cloud.enisOf(instanceId)).find((e) => e.primary);
      return {
        quota: limits,
        subnetIds: this.o.subnetIds.length > 0 ? this.o.subnetIds : primary ? [primary.subnetId] : [],
        securityGroupIds: this.o.securityGroupIds.length > 0 ? this.o.securityGroupIds : (primary?.securityGroupIds ?? []),
      };
    });
    if (existing) {
      const given = existing.spec ?? { instanceId };
      await this.o.cluster.patchNecSpec(name, { quota, defaults: given.defaults ?? this.o.defaults, ...(given.subnetIds?.length ? {} : { subnetIds }), ...(given.securityGroupIds?.length ? {} : { securityGroupIds }), ...(given.zone ? {} : { zone }) });
      this.o.log('info', `ipamd: completed the NodeENIConfig of node ${name} (${instanceId}) with its quota, ${quota.enis} ENIs of ${quota.ipsPerEni} addresses`);
      return;
    }
    const spec: NecSpec = { instanceId, zone, subnetIds, securityGroupIds, quota, defaults: this.o.defaults };
    await this.o.cluster.createNec({
      apiVersion: `${CRD_GROUP}/${CRD_VERSION}`,
      kind: 'NodeENIConfig',
      // Owned by the Node: when the node goes, Kubernetes takes its NEC with it.
      metadata: { name, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: node.metadata!.uid!, blockOwnerDeletion: true }] },
      spec,
    });
    this.o.log('info', `ipamd: node ${name} (${instanceId}, ${zone}) joined: made its NodeENIConfig, ${quota.enis} ENIs of ${quota.ipsPerEni} addresses, warm ${this.o.defaults.ipMinWarmTarget}–${this.o.defaults.ipMaxWarmTarget}`);
  }
}
