// The supply of a standalone agent: it calls the cloud itself, with the node's own credentials (the CVM
// role's keys, or a file). ENIs it creates carry OWNER_TAG naming the instance: the ENIs it may fill,
// empty and delete. Looking also mends what a killed agent or a lost answer left behind: ENIs made for the
// node but attached nowhere are deleted on the side, unless a pod still references one.
import { OWNER_TAG, type Cloud, type Eni, type InstanceLimits } from '../cloud/cloud.ts';
import { roomiestSubnet } from './subnets.ts';
import type { CloudEniFact, SuppliedEni, Supply, SupplyView } from './supply.ts';

export interface CloudSupplyOptions {
  cloud: Cloud;
  instanceId: string;
  zone: string;
  /** subnets pod addresses may come from; a new ENI goes to the one with most free addresses in the node's zone */
  subnetIds: string[];
  securityGroupIds: string[];
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export class CloudSupply implements Supply {
  private readonly cidrs = new Map<string, string>();
  /** leftover deletes under way, by ENI */
  private readonly deleting = new Map<string, Promise<void>>();

  constructor(private readonly o: CloudSupplyOptions) {}

  limits(): Promise<InstanceLimits> {
    return this.o.cloud.limits(this.o.instanceId);
  }

  async look(referenced: ReadonlySet<string>): Promise<SupplyView> {
    const { cloud, instanceId } = this.o;
    // Attached here: from the instance's own listing (the tag index may lag); ours by the tag on each.
    const here = (await cloud.enisOf(instanceId)).filter((e) => !e.primary && e.tags[OWNER_TAG] === instanceId);
    const ids = new Set(here.map((e) => e.id));
    const leftovers = (await cloud.enisTagged(OWNER_TAG, instanceId)).filter((e) => !e.attachedTo && !ids.has(e.id));
    for (const eni of leftovers) if (eni.state === 'AVAILABLE' && !referenced.has(eni.id)) this.deleteLeftover(eni);
    const enis = await Promise.all(here.map((e) => this.withCidr(e)));
    return { enis, settling: [...here, ...leftovers].some((e) => e.settling) };
  }

  assign(eniId: string, count: number): Promise<string[]> {
    return this.o.cloud.assignIps(eniId, count);
  }

  async createEni(count: number): Promise<SuppliedEni> {
    const { cloud, instanceId, log } = this.o;
    const subnets = await cloud.subnets(this.o.subnetIds);
    const subnet = roomiestSubnet(subnets, this.o.zone);
    if (!subnet) throw Object.assign(new Error(`no subnet of ${this.o.subnetIds.join(', ')} in ${this.o.zone} has free addresses`), { code: 'NoSubnetRoom' });
    const created = await cloud.createEni({ subnetId: subnet.id, name: `${instanceId}-pods`, securityGroupIds: this.o.securityGroupIds, tags: { [OWNER_TAG]: instanceId }, secondaryIps: count });
    log('info', `supply: created ${created.id} in ${subnet.id} with ${created.secondaryIps.length} addresses; attaching to ${instanceId}`);
    try {
      await cloud.attachEni(created.id, instanceId);
    } catch (err) {
      // An ENI that cannot be attached is given back rather than left behind.
      await cloud.deleteEni(created.id).catch(() => undefined);
      throw err;
    }
    return { ...created, attachedTo: instanceId, subnetCidr: subnet.cidr };
  }

  release(eniId: string, addresses: string[]): Promise<void> {
    return this.o.cloud.unassignIps(eniId, addresses);
  }

  async deleteEni(eniId: string): Promise<void> {
    await this.o.cloud.detachEni(eniId, this.o.instanceId);
    await this.o.cloud.deleteEni(eniId);
  }

  pending(): number {
    return 0;
  }

  async cloudEni(eniId: string): Promise<CloudEniFact | undefined> {
    const eni = (await this.o.cloud.enisOf(this.o.instanceId)).find((e) => e.id === eniId);
    const command = `tccli vpc DescribeNetworkInterfaces --NetworkInterfaceIds '["${eniId}"]'`;
    return eni ? { attachedHere: true, secondaryIps: eni.secondaryIps, source: 'the cloud', command } : undefined;
  }

  async drain(): Promise<void> {
    await Promise.all(this.deleting.values());
  }

  private async withCidr(eni: Eni): Promise<SuppliedEni> {
    let cidr = this.cidrs.get(eni.subnetId);
    if (!cidr) {
      cidr = (await this.o.cloud.subnets([eni.subnetId]))[0]?.cidr;
      if (!cidr) throw new Error(`the subnet ${eni.subnetId} of ${eni.id} is unknown`);
      this.cidrs.set(eni.subnetId, cidr);
    }
    return { ...eni, subnetCidr: cidr };
  }

  /** On the side: the delete's task must not hold up a pass that grows for waiting ADDs. */
  private deleteLeftover(eni: Eni): void {
    if (this.deleting.has(eni.id)) return;
    const { log, instanceId } = this.o;
    const deleting = this.o.cloud
      .deleteEni(eni.id)
      .then(
        () => log('warn', `supply: deleted ${eni.id} (${eni.primaryIp}, ${eni.secondaryIps.length} addresses), made for ${instanceId} but attached nowhere`),
        (err: Error) => log('error', `supply: cannot delete the leftover ${eni.id}: ${err.message}; trying again at the next look`),
      )
      .finally(() => this.deleting.delete(eni.id));
    this.deleting.set(eni.id, deleting);
  }
}
