// The subnets ipamd may open ENIs in, and how full the cluster has made each: which one a node's next ENI
// comes from, or why none can. Free counts come from the cloud (read at most every few seconds, and again
// after a create failed); ENI counts from what every node's NEC says ipamd gave it, plus creates under way.
import type { Cloud, Subnet } from '../cloud/cloud.ts';
import type { Nec } from '../k8s/nec.ts';
import { roomiestSubnet, underSoftLimit } from '../supply/subnets.ts';

/** Why a node can have no new ENI: the three causes TKE's FAQ (seed 000) tells apart. */
export type SubnetProblem = { reason: 'NoSubnetInZone' | 'SubnetExhausted'; message: string };

export interface SubnetBookOptions {
  cloud: Cloud;
  /** every NEC of the cluster, as last seen */
  necs: () => readonly Nec[];
  /** how long the cloud's free counts are trusted */
  freshMs?: number;
  clock?: { now(): number };
}

export class SubnetBook {
  private readonly known = new Map<string, Subnet>();
  private readAt = -Infinity;
  /** ENIs being created, by subnet: counted before they show in any NEC */
  private readonly creating = new Map<string, number>();

  constructor(private readonly o: SubnetBookOptions) {}

  /** The zone of a subnet (a fixed IP stays in its subnet, so in its zone); undefined when unknown. */
  async zoneOf(subnetId: string): Promise<string | undefined> {
    if (!subnetId) return undefined;
    return (await this.subnets([subnetId]).catch(() => []))[0]?.zone;
  }

  /** A subnet for a new ENI of this node, or why there is none. */
  async choose(nec: Nec, ipsPerEni: number): Promise<Subnet | SubnetProblem> {
    const node = nec.metadata?.name ?? '';
    const zone = nec.spec?.zone ?? '';
    const ids = nec.spec?.subnetIds ?? [];
    const subnets = await this.subnets(ids);
    const inZone = subnets.filter((s) => s.zone === zone);
    if (inZone.length === 0) {
      return { reason: 'NoSubnetInZone', message: `node ${node}: none of the subnets given to tke-eni-ipamd (${ids.join(', ') || 'none'}) is in its zone ${zone}` };
    }
    const enis = this.enisBySubnet();
    const soft = (s: Subnet) => underSoftLimit({ totalIps: s.totalIps, enis: enis.get(s.id) ?? 0, ipsPerEni });
    const best = roomiestSubnet(inZone, zone, soft);
    if (best) return best;
    const described = inZone.map((s) => `${s.id}: ${s.availableIps} of ${s.totalIps} free, ${enis.get(s.id) ?? 0} ENIs of ${ipsPerEni} addresses`).join('; ');
    const anyFree = inZone.some((s) => s.availableIps > 0);
    return {
      reason: 'SubnetExhausted',
      message: anyFree
        ? `node ${node}: every subnet in ${zone} is at its soft limit, the ENIs already there could fill it (${described}); add a subnet`
        : `node ${node}: no subnet in ${zone} has free addresses (${described}); add a subnet`,
    };
  }

  /**
   * Counts a create under way in `subnetId` until `done` settles. A failed one has the free counts read again
   * at the next choice (the subnet may be fuller than thought); a successful one does not: at a thousand
   * creates that would be a thousand DescribeSubnets, and the ENI counts the soft limit needs come from the NECs.
   */
  async creatingIn<T>(subnetId: string, done: () => Promise<T>): Promise<T> {
    this.creating.set(subnetId, (this.creating.get(subnetId) ?? 0) + 1);
    try {
      return await done();
    } catch (err) {
      this.readAt = -Infinity;
      throw err;
    } finally {
      this.creating.set(subnetId, this.creating.get(subnetId)! - 1);
    }
  }

  /** A subnet's CIDR (read once: it never changes). */
  async cidrOf(subnetId: string): Promise<string> {
    const known = this.known.get(subnetId) ?? (await this.subnets([subnetId], true)).find((s) => s.id === subnetId);
    if (!known) throw new Error(`the subnet ${subnetId} is unknown to the cloud`);
    return known.cidr;
  }

  private async subnets(ids: string[], force = false): Promise<Subnet[]> {
    const now = (this.o.clock ?? Date).now();
    const missing = ids.filter((id) => !this.known.has(id));
    if (force || missing.length > 0 || now - this.readAt >= (this.o.freshMs ?? 5000)) {
      const wanted = [...new Set([...this.known.keys(), ...ids])];
      for (const s of await this.o.cloud.subnets(wanted)) this.known.set(s.id, s);
      this.readAt = now;
    }
    return ids.flatMap((id) => this.known.get(id) ?? []);
  }

  private enisBySubnet(): Map<string, number> {
    const counts = new Map(this.creating);
    for (const nec of this.o.necs()) for (const eni of [...(nec.status?.ipamd?.enis ?? []), ...(nec.status?.ipamd?.directEnis ?? [])]) counts.set(eni.subnetId, (counts.get(eni.subnetId) ?? 0) + 1);
    return counts;
  }
}
