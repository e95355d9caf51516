// A pod's side of its network made over netlink, in the agent's own process: the veth created from the
// agent's namespace with its peer put straight into the pod's, then the peer brought up, addressed and
// routed through a netlink socket opened inside the pod's namespace (a socket stays in the namespace it
// was made in; setns is a native addon, native/setns.c). About 0.7 ms where one `ip -n <ns> -batch` costs
// about 2.5 ms, most of it process start and ip's own namespace mounts. A whole ENI's side in a pod's
// namespace (tke-direct-eni) is made and undone here too (configureIn, unconfigureIn).
import { closeSync, openSync } from 'node:fs';
import type * as Netlink from 'netlink';
import { loadNative } from './native/load.ts';
import { HOST_VETH_MAC, POD_GATEWAY, podMac, RULE_PREF, type PodPlumbing } from './plan.ts';

const AF_INET = 2;
const MAIN_TABLE = 254;
/** A rule's table above 255 goes in its FRA_TABLE attribute; the header then says RT_TABLE_COMPAT. */
const COMPAT_TABLE = 252;
/** What a teardown finds already gone: fine. */
const GONE = /\b(ENOENT|ESRCH|ENODEV)\b/;

const ipv4 = (address: string) => Buffer.from(address.split('.').map(Number));
const macBytes = (mac: string) => Buffer.from(mac.replace(/:/g, ''), 'hex');

export class NetlinkPods {
  /** the host socket's dump under way, if any */
  private dumping: Promise<void> = Promise.resolve();

  private constructor(
    private readonly nl: typeof Netlink,
    private readonly setns: (fd: number) => void,
    /** the agent's own namespace, to come back to */
    private readonly ownNetns: number,
    private readonly host: Netlink.RtNetlinkSocket,
  ) {}

  /** The netlink datapath, or why it cannot be had here (the addons missing, say): the agent then spawns ip. */
  static async load(): Promise<NetlinkPods | Error> {
    try {
      const { setns } = loadNative('setns') as { setns: (fd: number) => void };
      const nl = await import('netlink');
      return new NetlinkPods(nl, setns, openSync('/proc/thread-self/ns/net', 'r'), nl.createRtNetlink());
    } catch (err) {
      return err as Error;
    }
  }

  close(): void {
    this.host.socket.close();
    closeSync(this.ownNetns);
  }

  /** Creates the veth (its host end in the agent's namespace, `ifName` in the pod's) and sets the pod's end up. */
  async plumb(p: PodPlumbing & { netns: string }): Promise<void> {
    const { nl } = this;
    const step = stepFor(p, p.netns);
    const createExclusive = { flags: nl.FlagsNew.CREATE | nl.FlagsNew.EXCL };
    const podNetns = openSync(p.netns, 'r');
    try {
      const peer = Buffer.concat([nl.rt.formatLink({}), flat(nl, nl.ifla.formatLinkAttrs({ ifname: p.ifName, address: macBytes(podMac(p.address)), netNsFd: podNetns }))]);
      const linkinfo = flat(nl, nl.ifla.formatInfo({ kind: 'veth', data: flat(nl, nl.ifla.formatVethInfo({ peer })) }));
      await step(`creating the veth ${p.hostIf} / ${p.ifName}`, () => this.host.newLink({}, { ifname: p.hostIf, address: macBytes(HOST_VETH_MAC), linkinfo }, createExclusive));
      const pod = this.socketIn(podNetns);
      try {
        let index = 0;
        await step(`finding ${p.ifName}`, async () => {
          const [link] = await pod.getLink({}, { ifname: p.ifName });
          index = link?.data.index ?? 0;
          if (!index) throw new Error('not there after its creation');
        });
        const route = { family: AF_INET, table: MAIN_TABLE, protocol: 'BOOT', type: 'UNICAST' } as const;
        // Sent together: the kernel carries out one socket's requests in order, so each finds the ones before
        // it done (the default route its gateway's route), and the first failure is the one reported.
        await Promise.all([
          step(`setting ${p.ifName} up`, () => pod.setLink({ index, change: { up: true }, flags: { up: true } })),
          step(`adding ${p.address}/32 to ${p.ifName}`, () => pod.newAddress({ family: AF_INET, prefixlen: 32, index }, { local: ipv4(p.address), address: ipv4(p.address) }, createExclusive)),
          step(`adding the neighbour ${POD_GATEWAY}`, () => pod.newNeighbor({ family: AF_INET, ifindex: index, state: { permanent: true } }, { dst: ipv4(POD_GATEWAY), lladdr: macBytes(HOST_VETH_MAC) }, createExclusive)),
          step(`routing ${POD_GATEWAY} to ${p.ifName}`, () => pod.newRoute({ ...route, dstLen: 32, scope: 'LINK' }, { dst: ipv4(POD_GATEWAY), oif: index }, createExclusive)),
          step(`adding the default route via ${POD_GATEWAY}`, () => pod.newRoute({ ...route, dstLen: 0, scope: 'UNIVERSE' }, { gateway: ipv4(POD_GATEWAY), oif: index }, createExclusive)),
        ]);
      } finally {
        pod.socket.close();
      }
    } finally {
      closeSync(podNetns);
    }
  }

  /**
   * The host's side of a pod, as hostSideCommands (plan.ts) says it: the host end up, the route to the pod
   * by it, the rule to the pod (main table) and the rule from it (its ENI's table).
   */
  async route(p: PodPlumbing): Promise<void> {
    const { nl } = this;
    const step = stepFor(p, 'the node');
    let index = 0;
    await step(`finding ${p.hostIf}`, async () => {
      const [link] = await this.host.getLink({}, { ifname: p.hostIf });
      index = link?.data.index ?? 0;
      if (!index) throw new Error('not there');
    });
    const replace = { flags: nl.FlagsNew.CREATE | nl.FlagsNew.REPLACE };
    const exclusive = { flags: nl.FlagsNew.CREATE | nl.FlagsNew.EXCL };
    // Sent together, carried out in order (as in plumb).
    await Promise.all([
      step(`setting ${p.hostIf} up`, () => this.host.setLink({ index, change: { up: true }, flags: { up: true } })),
      step(`routing ${p.address} to ${p.hostIf}`, () => this.host.newRoute({ family: AF_INET, dstLen: 32, table: MAIN_TABLE, protocol: 'BOOT', scope: 'LINK', type: 'UNICAST' }, { dst: ipv4(p.address), oif: index }, replace)),
      step(`adding the rule to ${p.address}`, () => this.host.newRule(...rule({ priority: RULE_PREF.toPod, dst: p.address, table: MAIN_TABLE }), exclusive)),
      step(`adding the rule from ${p.address} to table ${p.table}`, () => this.host.newRule(...rule({ priority: RULE_PREF.fromPod, src: p.address, table: p.table }), exclusive)),
    ]);
  }

  /** Undoes route() but for the link (hostUnrouteCommands in plan.ts); what is already gone is fine. */
  async unroute(p: Pick<PodPlumbing, 'address'>): Promise<void> {
    const quietly = async (what: string, request: () => Promise<unknown>) => {
      try {
        await request();
      } catch (err) {
        if (!GONE.test((err as Error).message)) throw new Error(`${what} of ${p.address}: ${(err as Error).message}`, { cause: err });
      }
    };
    await quietly('deleting the rule to', () => this.host.delRule(...rule({ priority: RULE_PREF.toPod, dst: p.address, table: MAIN_TABLE })));
    await quietly('deleting the rule from', () => this.host.delRule(...rule({ priority: RULE_PREF.fromPod, src: p.address })));
    await quietly('deleting the route to', () => this.host.delRoute({ family: AF_INET, dstLen: 32, table: MAIN_TABLE, scope: 'NOWHERE' }, { dst: ipv4(p.address) }));
  }

  /** The names of the links in the agent's namespace. */
  async hostLinkNames(): Promise<string[]> {
    return (await this.hostLinks()).map((l) => l.attrs.ifname ?? '');
  }

  /** The link with this MAC in the agent's namespace: its index and name. */
  async hostLinkByMac(mac: string): Promise<{ index: number; name: string } | undefined> {
    return byMac(await this.hostLinks(), mac);
  }

  /** Every link of the agent's namespace. One dump at a time: the kernel refuses a second on the same socket (EBUSY). */
  private hostLinks(): Promise<Netlink.rt.LinkMessage[]> {
    const dump = this.dumping.then(() => this.host.getLinks());
    this.dumping = dump.then(() => undefined, () => undefined);
    return dump;
  }

  /**
   * A whole ENI made the pod's interface, its link moved into the pod's namespace already as `ifName`: up,
   * addressed `address/prefix` and routed by `gateway`. (The move itself is left to a process of its own:
   * the kernel takes 20-30 ms over a namespace change, which a netlink request would hold the agent for.)
   */
  async configureIn(t: { netns: string; ifName: string; address: string; prefix: number; gateway: string; mac: string; containerId: string }): Promise<void> {
    const { nl } = this;
    const step = stepFor(t, t.netns);
    await this.inPod(t.netns, async (pod) => {
      const link = byMac(await pod.getLinks(), t.mac);
      if (!link || link.name !== t.ifName) throw new Error(`the ENI's link (${t.mac}) is ${link ? `${link.name}, not ${t.ifName},` : 'not'} in ${t.netns}`);
      const route = { family: AF_INET, table: MAIN_TABLE, protocol: 'BOOT', type: 'UNICAST' } as const;
      const replace = { flags: nl.FlagsNew.CREATE | nl.FlagsNew.REPLACE };
      await Promise.all([
        step(`adding ${t.address}/${t.prefix} to ${t.ifName}`, () => pod.newAddress({ family: AF_INET, prefixlen: t.prefix, index: link.index }, { local: ipv4(t.address), address: ipv4(t.address) }, replace)),
        step(`setting ${t.ifName} up`, () => pod.setLink({ index: link.index, change: { up: true }, flags: { up: true } })),
        step(`adding the default route via ${t.gateway}`, () => pod.newRoute({ ...route, dstLen: 0, scope: 'UNIVERSE' }, { gateway: ipv4(t.gateway), oif: link.index }, replace)),
      ]);
    });
  }

  /**
   * A whole ENI leaving a pod: its link (by MAC) down and unaddressed; answers its name in the pod's
   * namespace, or undefined when the namespace has no such link (gone with it, or never moved).
   */
  async unconfigureIn(t: { netns: string; address: string; prefix: number; mac: string; containerId: string }): Promise<string | undefined> {
    const step = stepFor(t, t.netns);
    return this.inPod(t.netns, async (pod) => {
      const link = byMac(await pod.getLinks(), t.mac);
      if (!link) return undefined;
      await step(`setting the ENI's link ${link.name} down`, () => pod.setLink({ index: link.index, change: { up: true }, flags: {} }));
      await pod.delAddress({ family: AF_INET, prefixlen: t.prefix, index: link.index }, { local: ipv4(t.address), address: ipv4(t.address) }).catch((err: Error) => {
        if (!GONE.test(err.message) && !/EADDRNOTAVAIL/.test(err.message)) throw err;
      });
      return link.name;
    });
  }

  /** Runs `work` with a netlink socket in the namespace at `path`. */
  private async inPod<T>(path: string, work: (pod: Netlink.RtNetlinkSocket) => Promise<T>): Promise<T> {
    const fd = openSync(path, 'r');
    try {
      const pod = this.socketIn(fd);
      try {
        return await work(pod);
      } finally {
        pod.socket.close();
      }
    } finally {
      closeSync(fd);
    }
  }

  /**
   * A netlink socket inside the namespace `netns` refers to. The main thread is in that namespace only for
   * the synchronous socket() call: nothing else runs meanwhile, and no thread is started there.
   */
  private socketIn(netns: number): Netlink.RtNetlinkSocket {
    this.setns(netns);
    try {
      return this.nl.createRtNetlink();
    } finally {
      try {
        this.setns(this.ownNetns);
      } catch (err) {
        // Left in a pod's namespace, every later step would act on the wrong node: stop here.
        process.stderr.write(`eni-agent: cannot return to its own network namespace: ${(err as Error).message}\n`);
        process.exit(70);
      }
    }
  }
}

/** The link of a MAC among those a dump answered. */
function byMac(links: Netlink.rt.LinkMessage[], mac: string): { index: number; name: string } | undefined {
  const want = mac.toLowerCase();
  const link = links.find((l) => l.attrs.address && [...l.attrs.address].map((b) => b.toString(16).padStart(2, '0')).join(':') === want);
  return link ? { index: link.data.index!, name: link.attrs.ifname ?? '' } : undefined;
}

/** Runs one netlink request, its error naming what it was for. */
function stepFor(p: Pick<PodPlumbing, 'address' | 'containerId'>, where: string) {
  return async (what: string, request: () => Promise<unknown>): Promise<void> => {
    try {
      await request();
    } catch (err) {
      throw new Error(`${what} for ${p.address} in ${where} (container ${p.containerId}): ${(err as Error).message}`, { cause: err });
    }
  };
}

/** A policy rule's header and attributes: `pref P [from SRC/32] [to DST/32] [lookup TABLE]`. */
type RuleRequest = Parameters<Netlink.RtNetlinkSocket['newRule']>;
function rule(r: { priority: number; src?: string; dst?: string; table?: number }): [RuleRequest[0], RuleRequest[1]] {
  const table = r.table ?? 0;
  return [
    { family: AF_INET, table: table < 256 ? table : COMPAT_TABLE, action: 'toTbl', srcLen: r.src ? 32 : 0, dstLen: r.dst ? 32 : 0 },
    { priority: r.priority, ...(table ? { table } : {}), ...(r.src ? { src: ipv4(r.src) } : {}), ...(r.dst ? { dst: ipv4(r.dst) } : {}) },
  ];
}

/** Attributes as the bytes a nested attribute carries. */
function flat(nl: typeof Netlink, data: Netlink.StreamData): Buffer {
  const stream = new nl.AttrStream();
  stream.emit(data);
  return Buffer.concat(stream.bufs);
}
