// What the host and the pod should look like, as typed data: pure functions, tested with tables. The
// netlink executor (netlink.ts) applies these objects and reads the kernel's own back as the same objects,
// so that reconcile.ts can compare wanted with actual. `describe` writes one in iproute2's words, for logs
// and errors. Routing, for a pod with address P on an ENI whose link has table T:
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
export const MAIN_TABLE = 254;

/** A link that must be up. */
export interface LinkUp {
  kind: 'up';
  dev: string;
}
export interface Address {
  kind: 'address';
  dev: string;
  local: string;
  prefix: number;
}
/** A unicast route; without `via` it is on-link (scope link). `onlink`: the gateway is reached by `dev` whatever its address. */
export interface Route {
  kind: 'route';
  table: number;
  dst: string;
  prefix: number;
  dev: string;
  via?: string;
  onlink?: boolean;
}
/** A policy rule that looks up `table`; removing one of table 0 removes the rule of its priority and selector whatever it looks up. */
export interface Rule {
  kind: 'rule';
  priority: number;
  src?: string;
  dst?: string;
  table: number;
}
/** A permanent neighbour entry. */
export interface Neighbour {
  kind: 'neigh';
  dev: string;
  ip: string;
  mac: string;
}
export type NetObject = LinkUp | Address | Route | Rule | Neighbour;

/** A veth made from the agent's namespace with `ifName` put straight into the pod's. */
export interface Veth {
  hostIf: string;
  hostMac: string;
  ifName: string;
  podMac: string;
}

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

export interface PodPlan {
  veth: Veth;
  /** in the pod's namespace, once the veth is there */
  inPod: NetObject[];
  /** in the agent's namespace: the host end up, the route to the pod, the rules to and from it */
  onHost: NetObject[];
}

/** A locally administered MAC derived from the pod's address (0a:58 then the four address bytes). */
export function podMac(address: string): string {
  const n = ipToInt(address);
  return ['0a', '58', ...[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** What makes an ENI link usable by pods: up, its own address, and the default route of its own table. */
export function eniLinkPlan(eni: EniLink): NetObject[] {
  return [
    { kind: 'up', dev: eni.ifName },
    // The ENI's own address, so ARP from this link carries a source the VPC knows is this ENI's.
    { kind: 'address', dev: eni.ifName, local: eni.primaryIp, prefix: 32 },
    { kind: 'route', table: eni.table, dst: '0.0.0.0', prefix: 0, dev: eni.ifName, via: eni.gateway, onlink: true },
  ];
}

export function podPlan(p: PodPlumbing): PodPlan {
  return {
    veth: { hostIf: p.hostIf, hostMac: HOST_VETH_MAC, ifName: p.ifName, podMac: podMac(p.address) },
    // In order: the default route needs the gateway's route before it.
    inPod: [
      { kind: 'up', dev: p.ifName },
      { kind: 'address', dev: p.ifName, local: p.address, prefix: 32 },
      { kind: 'neigh', dev: p.ifName, ip: POD_GATEWAY, mac: HOST_VETH_MAC },
      { kind: 'route', table: MAIN_TABLE, dst: POD_GATEWAY, prefix: 32, dev: p.ifName },
      { kind: 'route', table: MAIN_TABLE, dst: '0.0.0.0', prefix: 0, dev: p.ifName, via: POD_GATEWAY },
    ],
    onHost: [
      { kind: 'up', dev: p.hostIf },
      ...hostRouting(p),
    ],
  };
}

/** A whole ENI as a pod's interface (tke-direct-eni), in the pod's namespace: up, addressed in its subnet, the default route by its gateway. */
export function wholeEniPlan(t: { ifName: string; address: string; prefix: number; gateway: string }): NetObject[] {
  return [
    { kind: 'up', dev: t.ifName },
    { kind: 'address', dev: t.ifName, local: t.address, prefix: t.prefix },
    { kind: 'route', table: MAIN_TABLE, dst: '0.0.0.0', prefix: 0, dev: t.ifName, via: t.gateway },
  ];
}

/** The host's routing of a pod. */
function hostRouting(p: Pick<PodPlumbing, 'address' | 'hostIf' | 'table'>): NetObject[] {
  return [
    { kind: 'route', table: MAIN_TABLE, dst: p.address, prefix: 32, dev: p.hostIf },
    { kind: 'rule', priority: RULE_PREF.toPod, dst: p.address, table: MAIN_TABLE },
    { kind: 'rule', priority: RULE_PREF.fromPod, src: p.address, table: p.table },
  ];
}

/**
 * What DEL takes away: the host's routing of the pod, the rule from it whatever table it looks up. (The link
 * itself goes separately: deleting a veth waits for the kernel, which a DEL need not wait for once nothing
 * routes to the pod any more.)
 */
export function hostUnrouting(p: Pick<PodPlumbing, 'address' | 'hostIf'>): NetObject[] {
  return hostRouting({ ...p, table: 0 });
}

const tableName = (t: number) => (t === MAIN_TABLE ? 'main' : String(t));
const cidr = (ip: string, prefix: number) => (prefix === 0 ? 'default' : `${ip}/${prefix}`);

/** An object in iproute2's words ("rule from 10.0.16.5/32 lookup 2003 pref 1536"). */
export function describe(o: NetObject): string {
  switch (o.kind) {
    case 'up':
      return `link ${o.dev} up`;
    case 'address':
      return `address ${o.local}/${o.prefix} dev ${o.dev}`;
    case 'route':
      return `route ${cidr(o.dst, o.prefix)}${o.via ? ` via ${o.via}` : ''} dev ${o.dev}${o.onlink ? ' onlink' : ''}${o.table === MAIN_TABLE ? '' : ` table ${o.table}`}`;
    case 'rule':
      return `rule${o.src ? ` from ${o.src}/32` : ''}${o.dst ? ` to ${o.dst}/32` : ''}${o.table ? ` lookup ${tableName(o.table)}` : ''} pref ${o.priority}`;
    case 'neigh':
      return `neigh ${o.ip} lladdr ${o.mac} dev ${o.dev}`;
  }
}
