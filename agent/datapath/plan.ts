// What the host and the pod should look like, as `ip` commands: pure functions, tested with tables.
// Routing, for a pod with address P on an ENI whose link has table T:
//   pref 512   to P lookup main        traffic to a pod on this node goes straight to its veth
//   pref 1024  fwmark 0x80 lookup main traffic to be masqueraded leaves by the node's primary ENI (masq.ts)
//   pref 1536  from P lookup T         everything else from the pod leaves by its own ENI (the VPC drops
//                                      a source that arrives by another ENI)
// The pod reaches everything through a link-local gateway whose MAC it knows statically, so no ARP
// proxying is needed on the host.
import { ipToInt } from '../../shared/ip.ts';

export const POD_GATEWAY = '169.254.1.1';
/** MAC of every host-side pod veth: each veth is its own L2 segment, so one address serves all. */
export const HOST_VETH_MAC = 'ee:ee:ee:ee:ee:ee';
export const RULE_PREF = { toPod: 512, masquerade: 1024, fromPod: 1536 } as const;
export const MASQ_MARK = '0x80';
/** An ENI link's route table: its ifindex plus this, as TKE numbers them. */
export const ENI_TABLE_BASE = 2000;

export interface EniLink {
  ifName: string;
  table: number;
  primaryIp: string;
  gateway: string;
}

export interface PodPlumbing {
  containerId: string;
  ifName: string;
  hostIf: string;
  address: string;
  table: number;
}

/** A locally administered MAC derived from the pod's address (0a:58 then the four address bytes). */
export function podMac(address: string): string {
  const n = ipToInt(address);
  return ['0a', '58', ...[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** Host commands that make an ENI link usable by pods: up, its own address, and its own table. */
export function eniLinkCommands(eni: EniLink): string[] {
  return [
    `link set ${eni.ifName} up`,
    // The ENI's own address, so ARP from this link carries a source the VPC knows is this ENI's.
    `address replace ${eni.primaryIp}/32 dev ${eni.ifName}`,
    `route replace default via ${eni.gateway} dev ${eni.ifName} onlink table ${eni.table}`,
  ];
}

/**
 * Commands run inside the pod's namespace: create the veth there (its host end moves to the agent's
 * namespace, named by `agentPid`), address it, and route through the link-local gateway.
 */
export function podSideCommands(p: PodPlumbing, agentPid: number): string[] {
  return [
    `link add ${p.ifName} address ${podMac(p.address)} type veth peer name ${p.hostIf} address ${HOST_VETH_MAC} netns ${agentPid}`,
    `link set ${p.ifName} up`,
    `address add ${p.address}/32 dev ${p.ifName}`,
    `neigh add ${POD_GATEWAY} lladdr ${HOST_VETH_MAC} dev ${p.ifName} nud permanent`,
    `route add ${POD_GATEWAY} dev ${p.ifName} scope link`,
    `route add default via ${POD_GATEWAY} dev ${p.ifName}`,
  ];
}

export function hostSideCommands(p: PodPlumbing): string[] {
  return [
    `link set ${p.hostIf} up`,
    `route replace ${p.address}/32 dev ${p.hostIf} scope link`,
    `rule add to ${p.address}/32 lookup main pref ${RULE_PREF.toPod}`,
    `rule add from ${p.address}/32 lookup ${p.table} pref ${RULE_PREF.fromPod}`,
  ];
}

/**
 * Undoes the routing of hostSideCommands (run with -force: what is already gone is fine). The link itself
 * goes separately: deleting a veth waits for the kernel (an RCU grace period, ~20 ms), which a DEL need
 * not wait for once nothing routes to the pod any more.
 */
export function hostUnrouteCommands(p: Pick<PodPlumbing, 'address'>): string[] {
  return [
    `rule del to ${p.address}/32 lookup main pref ${RULE_PREF.toPod}`,
    `rule del from ${p.address}/32 pref ${RULE_PREF.fromPod}`,
    `route del ${p.address}/32`,
  ];
}
