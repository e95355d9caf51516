// The simulated VPC fabric, in a network namespace of its own, driven by the emulator's events:
// - every subnet gateway answers on every ENI link (gateways live on the fabric's loopback), and so does
//   every other address of the VPC (proxy ARP);
// - each address assigned to an attached ENI is routed to that ENI's link, with the ENI's MAC as a
//   permanent neighbour (the fabric knows where addresses live, as the real VPC does);
// - strict reverse-path filtering drops a packet whose source is not an address of the ENI it came in on;
// - node public IPs and EIPs are mapped 1:1 to their private addresses towards the "internet" namespace.
import type { CloudEvent, CloudModel, Eni } from '../emulator/model.ts';
import { nthAddress } from '../../shared/ip.ts';
import { inNs, ip, ipBatch, listNamespaces, sysctl } from './sh.ts';

/** Addresses of the lab's own making, outside every VPC. */
export const INTERNET = {
  /** the fabric's side and the internet's side of their link */
  vpcSide: '100.126.0.1',
  inetSide: '100.126.0.2',
  /** a host on the internet that tests talk to */
  server: '203.0.113.10',
} as const;

export interface FabricNames {
  vpc: string;
  inet: string;
  node(instanceId: string): string;
}

export function fabricNames(prefix: string): FabricNames {
  return {
    vpc: `${prefix}-vpc`,
    inet: `${prefix}-inet`,
    node: (instanceId) => `${prefix}-${instanceId.replace(/^ins-/, '')}`,
  };
}

/** Name of an ENI's link on the fabric side: "v" and the ENI id's suffix. */
function fabricLink(eniId: string): string {
  return `v${eniId.replace(/^eni-/, '')}`.slice(0, 15);
}

export class Fabric {
  /** ENIs whose link exists, by id */
  private readonly links = new Map<string, { link: string; mac: string }>();
  private queue: Promise<void> = Promise.resolve();
  private failures: Error[] = [];

  constructor(
    readonly names: FabricNames,
    private readonly model: CloudModel,
  ) {}

  /** Creates the fabric and internet namespaces and their link (the fabric's namespace may exist already). */
  async create(): Promise<void> {
    const { vpc, inet } = this.names;
    if (!(await listNamespaces()).includes(vpc)) await ip(undefined, 'netns', 'add', vpc);
    await ip(undefined, 'netns', 'add', inet);
    const gateways = [...this.model.subnets.keys()].map((id) => `address add ${this.model.gateway(id)}/32 dev lo`);
    await ipBatch(vpc, [
      'link set lo up',
      ...gateways,
      `link add inet0 type veth peer name up0 netns ${inet}`,
      `address add ${INTERNET.vpcSide}/30 dev inet0`,
      'link set inet0 up',
      `route add default via ${INTERNET.inetSide}`,
    ]);
    await ipBatch(inet, [
      'link set lo up',
      `address add ${INTERNET.server}/32 dev lo`,
      `address add ${INTERNET.inetSide}/30 dev up0`,
      'link set up0 up',
      `route add ${this.model.world.publicIpPool} via ${INTERNET.vpcSide}`,
    ]);
    // Proxy ARP: like the real VPC, the fabric answers a node's ARP for any address it routes elsewhere,
    // so nodes in one subnet reach each other through it.
    await sysctl(vpc, {
      'net.ipv4.ip_forward': 1,
      'net.ipv4.conf.all.rp_filter': 1,
      'net.ipv4.conf.default.rp_filter': 1,
      'net.ipv4.conf.all.proxy_arp': 1,
    });
    // The internet drops what claims a private source: only mapped public addresses come back.
    await sysctl(inet, { 'net.ipv4.conf.all.rp_filter': 1, 'net.ipv4.conf.default.rp_filter': 1 });
  }

  /** Creates a node's namespace with its primary ENI as eth0, addressed and routed as cloud-init would. */
  async addNode(instanceId: string): Promise<string> {
    const instance = this.model.instance(instanceId);
    const primary = this.model.eni(instance.primaryEniId);
    const ns = this.names.node(instanceId);
    const subnet = this.model.subnet(primary.subnetId);
    await ip(undefined, 'netns', 'add', ns);
    await ip(ns, 'link', 'set', 'lo', 'up');
    await this.plug(primary, ns, 'eth0');
    await ipBatch(ns, [
      'link set eth0 up',
      `address add ${instance.spec.privateIp}/${subnet.cidr.prefix} dev eth0`,
      `route add default via ${nthAddress(subnet.cidr, 1)} dev eth0`,
    ]);
    if (instance.spec.publicIp) await this.mapPublic(instance.spec.publicIp, instance.spec.privateIp, true);
    return ns;
  }

  /** The fabric's end of an attached ENI's link, by the ENI's id. */
  linkOf(eniId: string): string | undefined {
    return this.links.get(eniId)?.link;
  }

  /** Follows one emulator event; changes are applied in order, one at a time. */
  follow(event: CloudEvent): void {
    this.queue = this.queue.then(() => this.apply(event)).catch((err: Error) => {
      this.failures.push(err);
    });
  }

  /** Resolves once every event so far has been applied; rejects if any failed. */
  async settled(): Promise<void> {
    await this.queue;
    if (this.failures.length > 0) {
      const failures = this.failures;
      this.failures = [];
      throw new Error(`the fabric could not follow the cloud: ${failures.map((f) => f.message).join('; ')}`);
    }
  }

  async destroy(): Promise<void> {
    await this.queue;
  }

  private async apply(event: CloudEvent): Promise<void> {
    switch (event.type) {
      case 'eni-attached': {
        const eni = this.model.enis.get(event.eniId);
        const instance = this.model.instances.get(event.instanceId);
        if (!eni || !instance) return;
        await this.plug(eni, this.names.node(event.instanceId), `eth${event.deviceIndex}`);
        return;
      }
      case 'eni-detached': {
        const held = this.links.get(event.eniId);
        if (!held) return;
        this.links.delete(event.eniId);
        // Deleting one end of a veth removes the other: the NIC leaves the node, its routes leave the fabric.
        await ip(this.names.vpc, 'link', 'del', held.link);
        return;
      }
      case 'ip-assigned':
        return this.route(event.eniId, event.address);
      case 'ip-released':
        return this.unroute(event.eniId, event.address);
      case 'ip-moved':
        await this.unroute(event.fromEniId, event.address);
        return this.route(event.toEniId, event.address);
      case 'eip-associated':
        return this.mapPublic(event.publicIp, event.privateIp, true);
      case 'eip-disassociated':
        return this.mapPublic(event.publicIp, event.privateIp, false);
    }
  }

  /** Creates an ENI's link pair: the fabric's end, and the NIC (with the ENI's MAC) in the node. */
  private async plug(eni: Eni, nodeNs: string, nicName: string): Promise<void> {
    const link = fabricLink(eni.id);
    await ipBatch(this.names.vpc, [
      `link add ${link} type veth peer name ${nicName} address ${eni.mac} netns ${nodeNs}`,
      // Linux delays proxy ARP answers by up to 0.8 s; the VPC answers at once.
      `ntable change name arp_cache dev ${link} proxy_delay 0`,
      `link set ${link} up`,
    ]);
    this.links.set(eni.id, { link, mac: eni.mac });
    for (const address of eni.ips) await this.route(eni.id, address.address);
  }

  private async route(eniId: string, address: string): Promise<void> {
    const held = this.links.get(eniId);
    if (!held) return;
    await ipBatch(this.names.vpc, [
      `route replace ${address}/32 dev ${held.link}`,
      `neigh replace ${address} lladdr ${held.mac} dev ${held.link} nud permanent`,
    ]);
  }

  private async unroute(eniId: string, address: string): Promise<void> {
    const held = this.links.get(eniId);
    if (!held) return;
    await ip(this.names.vpc, 'route', 'del', `${address}/32`, 'dev', held.link).catch(() => undefined);
  }

  private async mapPublic(publicIp: string, privateIp: string, on: boolean): Promise<void> {
    const op = on ? '-A' : '-D';
    const { vpc } = this.names;
    await inNs(vpc, 'iptables', ['-w', '-t', 'nat', op, 'PREROUTING', '-d', `${publicIp}/32`, '-j', 'DNAT', '--to-destination', privateIp]);
    await inNs(vpc, 'iptables', ['-w', '-t', 'nat', op, 'POSTROUTING', '-s', `${privateIp}/32`, '-o', 'inet0', '-j', 'SNAT', '--to-source', publicIp]);
  }
}
