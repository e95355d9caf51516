// A pod's side of its network made over netlink, in the agent's own process: the veth created from the
// agent's namespace with its peer put straight into the pod's, then the peer brought up, addressed and
// routed through a netlink socket opened inside the pod's namespace (a socket stays in the namespace it
// was made in; setns is a native addon, native/setns.c). About 0.7 ms where one `ip -n <ns> -batch` costs
// about 2.5 ms, most of it process start and ip's own namespace mounts.
import { closeSync, openSync } from 'node:fs';
import type * as Netlink from 'netlink';
import { loadNative } from './native/load.ts';
import { HOST_VETH_MAC, POD_GATEWAY, podMac, type PodPlumbing } from './plan.ts';

const AF_INET = 2;
const MAIN_TABLE = 254;

const ipv4 = (address: string) => Buffer.from(address.split('.').map(Number));
const macBytes = (mac: string) => Buffer.from(mac.replace(/:/g, ''), 'hex');

export class NetlinkPods {
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
    const step = async (what: string, request: () => Promise<unknown>) => {
      try {
        await request();
      } catch (err) {
        throw new Error(`${what} for ${p.address} in ${p.netns} (container ${p.containerId}): ${(err as Error).message}`, { cause: err });
      }
    };
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
        await step(`setting ${p.ifName} up`, () => pod.setLink({ index, change: { up: true }, flags: { up: true } }));
        await step(`adding ${p.address}/32 to ${p.ifName}`, () => pod.newAddress({ family: AF_INET, prefixlen: 32, index }, { local: ipv4(p.address), address: ipv4(p.address) }, createExclusive));
        await step(`adding the neighbour ${POD_GATEWAY}`, () => pod.newNeighbor({ family: AF_INET, ifindex: index, state: { permanent: true } }, { dst: ipv4(POD_GATEWAY), lladdr: macBytes(HOST_VETH_MAC) }, createExclusive));
        const route = { family: AF_INET, table: MAIN_TABLE, protocol: 'BOOT', type: 'UNICAST' } as const;
        await step(`routing ${POD_GATEWAY} to ${p.ifName}`, () => pod.newRoute({ ...route, dstLen: 32, scope: 'LINK' }, { dst: ipv4(POD_GATEWAY), oif: index }, createExclusive));
        await step(`adding the default route via ${POD_GATEWAY}`, () => pod.newRoute({ ...route, dstLen: 0, scope: 'UNIVERSE' }, { gateway: ipv4(POD_GATEWAY), oif: index }, createExclusive));
      } finally {
        pod.socket.close();
      }
    } finally {
      closeSync(podNetns);
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

/** Attributes as the bytes a nested attribute carries. */
function flat(nl: typeof Netlink, data: Netlink.StreamData): Buffer {
  const stream = new nl.AttrStream();
  stream.emit(data);
  return Buffer.concat(stream.bufs);
}
