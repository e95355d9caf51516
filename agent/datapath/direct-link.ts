// A whole ENI made a pod's interface (tke-direct-eni): its link, found by MAC in the agent's namespace, is
// moved into the pod's namespace under the name the runtime asks (eth0), with the ENI's primary address in
// its subnet, and the subnet's gateway as the default route (wholeEniPlan in plan.ts); nothing on the node
// routes to the pod, whose traffic leaves by its own ENI. DEL moves the link back under the name it had. A
// link is always found by its MAC, never by name alone: a name in the pod's namespace may be another
// interface's. All over netlink (netlink.ts).
import type { NetlinkDatapath } from './netlink.ts';
import { wholeEniPlan } from './plan.ts';
import { diff, explain } from './reconcile.ts';
import type { DirectPart } from '../pool/store.ts';

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

/** A name for a link given back whose old name is taken: "d" and the ENI id's suffix. */
const fallbackName = (eniId: string) => `d${eniId.replace(/^eni-/, '')}`.slice(0, 15);

const planOf = (t: DirectTarget) => wholeEniPlan({ ifName: t.ifName, address: t.address, prefix: t.direct.prefix, gateway: t.direct.gateway });

export class DirectLinks implements DirectDatapath {
  constructor(private readonly netlink: NetlinkDatapath) {}

  async hasLink(mac: string): Promise<boolean> {
    return (await this.netlink.node.linkByMac(mac)) !== undefined;
  }

  async attach(t: DirectTarget, timeoutMs = 10_000): Promise<string> {
    const who = `${t.eniId} (${t.direct.mac}) for container ${t.containerId}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const onNode = await this.netlink.node.linkByMac(t.direct.mac);
      if (onNode) {
        await this.netlink.node.down(onNode, who);
        try {
          // Inside: the kernel moves a link before it renames it, so a move whose renaming fails (the pod has
          // an eth0 already) leaves the ENI in the pod's namespace, to be brought back.
          await this.netlink.moveLink(onNode, { to: t.netns }, t.ifName, who);
          await this.configure(t);
        } catch (err) {
          // Never left half-made in a namespace that may go: the ENI goes back to the node.
          await this.detach({ ...t, direct: { ...t.direct, hostName: onNode.name } }).catch(() => undefined);
          throw err;
        }
        return onNode.name;
      }
      // Not on the node: moved already (an ADD cut short, then repeated), or not come yet.
      const done: true | Error = await this.configure(t).then(() => true as const, (err: Error) => err);
      if (done === true) return t.direct.hostName;
      if (Date.now() > deadline) throw new Error(`${who}: no link with the ENI's MAC on the node within ${timeoutMs} ms (${done.message})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The pod's side of a whole ENI whose link is in its namespace as ifName: addressed, up, routed. */
  private async configure(t: DirectTarget): Promise<void> {
    await this.netlink.in(t.netns, async (pod) => {
      const link = await pod.linkByMac(t.direct.mac);
      if (link?.name !== t.ifName) throw new Error(`the ENI's link (${t.direct.mac}) is ${link ? `${link.name}, not ${t.ifName},` : 'not'} in ${t.netns}`);
      await pod.apply(planOf(t), `${t.eniId} of container ${t.containerId}`);
    });
  }

  async detach(t: DirectTarget): Promise<void> {
    const about = `${t.eniId} (${t.address}) of container ${t.containerId}`;
    let inPod;
    try {
      inPod = await this.netlink.in(t.netns, async (pod) => {
        const link = await pod.linkByMac(t.direct.mac);
        if (!link) return undefined;
        await pod.down(link, about);
        await pod.remove([{ kind: 'address', dev: link.name, local: t.address, prefix: t.direct.prefix }], about);
        return link;
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // the namespace is gone, and what was in it
      throw err;
    }
    if (!inPod) return;
    const names = new Set((await this.netlink.node.links()).map((l) => l.name));
    const wanted = t.direct.hostName || fallbackName(t.eniId);
    await this.netlink.moveLink(inPod, { from: t.netns }, names.has(wanted) ? fallbackName(t.eniId) : wanted, about);
  }

  async check(t: DirectTarget): Promise<string | undefined> {
    try {
      return await this.netlink.in(t.netns, async (pod) => {
        const state = await pod.read(['up', 'address', 'route']);
        const link = state.links.find((l) => l.mac === t.direct.mac.toLowerCase());
        if (!link) return `the link of ${t.eniId} (${t.direct.mac}) is not in ${t.netns}`;
        if (link.name !== t.ifName) return `the link of ${t.eniId} is ${link.name} in ${t.netns}, not ${t.ifName}`;
        const wrong = explain(diff(planOf(t), state.objects));
        return wrong.length > 0 ? `${t.ifName} (${t.eniId}) in ${t.netns} is not as planned: ${wrong.join('; ')}` : undefined;
      });
    } catch (err) {
      return `cannot look into ${t.netns}: ${(err as Error).message}`;
    }
  }
}
