// A whole ENI made a pod's interface (tke-direct-eni): its link, found by MAC in the agent's namespace, is
// moved into the pod's namespace under the name the runtime asks (eth0), with the ENI's primary address in
// its subnet, and the subnet's gateway as the default route; nothing on the node routes to the pod, whose
// traffic leaves by its own ENI. DEL moves the link back under the name it had. A link is always found by
// its MAC, never by name alone: a name in the pod's namespace may be another interface's. Over netlink in
// the agent's process (netlink-pod.ts) when its natives are there, else by spawning ip.
import { execa } from 'execa';
import type { NetlinkPods } from './netlink-pod.ts';
import type { DirectPart } from '../pool/store.ts';
import { ipBatch, ipIn } from './ip-batch.ts';

export interface DirectTarget {
  containerId: string;
  netns: string;
  ifName: string;
  address: string;
  eniId: string;
  direct: DirectPart;
}

export interface DirectDatapath {
  /** whether the link with this MAC is in the agent's namespace */
  hasLink(mac: string): Promise<boolean>;
  /** Makes the ENI the pod's interface; answers the name its link had on the node. */
  attach(target: DirectTarget, timeoutMs?: number): Promise<string>;
  /** Brings the ENI's link back to the node, down and unaddressed; nothing to do when the namespace is gone. */
  detach(target: DirectTarget): Promise<void>;
  /** What is wrong with the pod's interface, or undefined when it is as made. */
  check(target: DirectTarget): Promise<string | undefined>;
}

interface LinkJson {
  ifname: string;
  address?: string;
  flags?: string[];
  addr_info?: Array<{ local: string; prefixlen: number }>;
}

async function links(inPod: string | undefined): Promise<LinkJson[]> {
  const [cmd, ...args] = inPod ? ipIn(inPod) : ['ip'];
  const shown = await execa(cmd!, [...args, '-j', 'address', 'show'], { reject: false });
  if (shown.exitCode !== 0) throw new Error(shown.stderr.trim() || `ip exited with ${shown.exitCode}`);
  return JSON.parse(shown.stdout || '[]') as LinkJson[];
}

const byMac = (all: LinkJson[], mac: string) => all.find((l) => l.address?.toLowerCase() === mac.toLowerCase());

/** A name for a link given back whose old name is taken: "d" and the ENI id's suffix. */
const fallbackName = (eniId: string) => `d${eniId.replace(/^eni-/, '')}`.slice(0, 15);

export class DirectLinks implements DirectDatapath {
  constructor(private readonly netlink?: NetlinkPods) {}

  async hasLink(mac: string): Promise<boolean> {
    return (await this.onNode(mac)) !== undefined;
  }

  async attach(t: DirectTarget, timeoutMs = 10_000): Promise<string> {
    // The path goes into an `ip -batch` line: a space or a newline in it would be a command of its own.
    if (/[\s\0]/.test(t.netns)) throw new Error(`container ${t.containerId}: CNI_NETNS ${JSON.stringify(t.netns)} has whitespace or control characters; it cannot be given to ip`);
    const who = `${t.eniId} (${t.direct.mac}) for container ${t.containerId}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const onNode = await this.onNode(t.direct.mac);
      if (onNode) {
        // The move in a process of its own (the kernel takes 20-30 ms over it), then the pod's side.
        await ipBatch(['ip'], [`link set dev ${onNode} down`, `link set dev ${onNode} netns ${t.netns} name ${t.ifName}`], `moving ${who} into ${t.netns}`);
        try {
          await this.configure(t);
        } catch (err) {
          // Never left half-made in a namespace that may go: the ENI goes back to the node.
          await this.detach({ ...t, direct: { ...t.direct, hostName: onNode } }).catch(() => undefined);
          throw err;
        }
        return onNode;
      }
      // Not on the node: moved already (an ADD cut short, then repeated), or not come yet.
      const done: true | Error = await this.configure(t).then(() => true as const, (err: Error) => err);
      if (done === true) return t.direct.hostName;
      if (Date.now() > deadline) throw new Error(`${who}: no link with the ENI's MAC on the node within ${timeoutMs} ms (${done.message})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The name of the link with this MAC in the agent's namespace, if it is there. */
  private async onNode(mac: string): Promise<string | undefined> {
    if (this.netlink) return (await this.netlink.hostLinkByMac(mac))?.name;
    return byMac(await links(undefined), mac)?.ifname;
  }

  /** The pod's side of a whole ENI whose link is in its namespace as ifName: addressed, up, routed. */
  private async configure(t: DirectTarget): Promise<void> {
    if (this.netlink) return this.netlink.configureIn({ ...t, ...t.direct });
    const inPod = byMac(await links(t.netns), t.direct.mac);
    if (inPod?.ifname !== t.ifName) throw new Error(`the ENI's link (${t.direct.mac}) is ${inPod ? `${inPod.ifname}, not ${t.ifName},` : 'not'} in ${t.netns}`);
    await ipBatch(
      ipIn(t.netns),
      [`address replace ${t.address}/${t.direct.prefix} dev ${t.ifName}`, `link set ${t.ifName} up`, `route replace default via ${t.direct.gateway} dev ${t.ifName}`],
      `addressing ${t.address} on ${t.ifName} (${t.eniId}) in ${t.netns}`,
    );
  }

  async detach(t: DirectTarget): Promise<void> {
    let name: string | undefined;
    let taken: (wanted: string) => Promise<boolean>;
    if (this.netlink) {
      try {
        name = await this.netlink.unconfigureIn({ ...t, ...t.direct });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // the namespace is gone, and what was in it
        throw err;
      }
      const names = await this.netlink.hostLinkNames();
      taken = async (wanted) => names.includes(wanted);
    } else {
      let inPod: LinkJson | undefined;
      try {
        inPod = byMac(await links(t.netns), t.direct.mac);
      } catch {
        return; // the namespace is gone, and what was in it with it
      }
      name = inPod?.ifname;
      taken = async (wanted) => (await links(undefined)).some((l) => l.ifname === wanted);
    }
    if (!name) return;
    const wanted = t.direct.hostName || fallbackName(t.eniId);
    const as = (await taken(wanted)) ? fallbackName(t.eniId) : wanted;
    await ipBatch(ipIn(t.netns), [`link set dev ${name} down`, `address flush dev ${name}`, `link set dev ${name} netns ${process.pid} name ${as}`], `moving ${t.eniId} (${t.address}) of container ${t.containerId} back to the node`);
  }

  async check(t: DirectTarget): Promise<string | undefined> {
    let inPod: LinkJson | undefined;
    try {
      inPod = byMac(await links(t.netns), t.direct.mac);
    } catch (err) {
      return `cannot look into ${t.netns}: ${(err as Error).message}`;
    }
    if (!inPod) return `the link of ${t.eniId} (${t.direct.mac}) is not in ${t.netns}`;
    if (inPod.ifname !== t.ifName) return `the link of ${t.eniId} is ${inPod.ifname} in ${t.netns}, not ${t.ifName}`;
    if (!inPod.flags?.includes('UP')) return `${t.ifName} (${t.eniId}) in ${t.netns} is down`;
    if (!inPod.addr_info?.some((a) => a.local === t.address && a.prefixlen === t.direct.prefix)) return `${t.ifName} in ${t.netns} does not have ${t.address}/${t.direct.prefix}`;
    const [cmd, ...args] = ipIn(t.netns);
    const route = await execa(cmd!, [...args, '-j', 'route', 'show', 'default'], { reject: false });
    const routes = JSON.parse(route.stdout || '[]') as Array<{ gateway?: string; dev?: string }>;
    if (!routes.some((r) => r.gateway === t.direct.gateway && r.dev === t.ifName)) return `the default route via ${t.direct.gateway} on ${t.ifName} is missing in ${t.netns}`;
    return undefined;
  }
}
