// Which subnet a new ENI comes from: one of the configured subnets in the node's zone, the one with most
// free addresses. ipamd adds the soft limit (seed 000's FAQ): a subnet the nodes already holding ENIs in it
// could fill is passed over, since every new ENI costs the subnet its primary address and the room those
// nodes may still grow into.
import type { Subnet } from '../cloud/cloud.ts';

export function roomiestSubnet(subnets: Subnet[], zone: string, usable: (s: Subnet) => boolean = () => true): Subnet | undefined {
  return subnets.filter((s) => s.zone === zone && s.availableIps > 0 && usable(s)).sort((a, b) => b.availableIps - a.availableIps)[0];
}

export interface SoftLimitInput {
  /** addresses the subnet holds in all (Tencent's TotalIpAddressCount) */
  totalIps: number;
  /** ENIs of the cluster's nodes already in the subnet */
  enis: number;
  /** addresses one ENI may hold, its primary included */
  ipsPerEni: number;
}

/** Whether one more ENI fits under the soft limit: every ENI there, the new one too, could fill up. */
export function underSoftLimit({ totalIps, enis, ipsPerEni }: SoftLimitInput): boolean {
  return (enis + 1) * ipsPerEni <= totalIps;
}
