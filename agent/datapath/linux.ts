// The host datapath on Linux: carries out plan.ts over netlink (netlink.ts), compares the kernel's state with
// the plan for CHECK and the periodic mend (reconcile.ts), and keeps the sysctls pod networking depends on.
import { existsSync, readFileSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import type { HostFacts } from './drift.ts';
import type { NetlinkDatapath } from './netlink.ts';
import { ENI_TABLE_BASE, eniLinkPlan, hostUnrouting, podPlan, type EniLink, type PodPlumbing } from './plan.ts';
import { diff, explain, type Diff } from './reconcile.ts';

export interface PodTarget extends PodPlumbing {
  netns: string;
}

export interface Datapath {
  /** Waits for the link of an attached ENI (found by MAC) and makes it usable; returns how it is set up. */
  setupEni(eni: { id: string; mac: string; primaryIp: string; gateway: string }, timeoutMs?: number): Promise<EniLink>;
  addPod(pod: PodTarget): Promise<void>;
  /**
   * Removes the host side; what is already gone is fine. Resolves once nothing routes to the pod; `linkGone`
   * resolves when its veth (and so the pod's end) is deleted too.
   */
  removePod(pod: Pick<PodPlumbing, 'hostIf' | 'address'>): Promise<{ linkGone: Promise<void> }>;
  /** Deletes a pod's veth by the name of its host end, off the main thread; false when there was none. */
  removeVeth(hostIf: string, about: string): Promise<boolean>;
  /** A description of what is wrong with a pod's plumbing, or undefined when it is as planned. */
  checkPod(pod: PodTarget): Promise<string | undefined>;
  /** The node's links, rules and routes, read once for every pod (drift.ts compares them with the pods). */
  hostFacts?(): Promise<HostFacts>;
  /** Mends a pod's host side: the wrong objects removed, the missing added. */
  mendHost?(mend: Diff, what: string): Promise<void>;
  /** Sets the sysctls pod networking needs; called at start and periodically, so they stay set. Returns what could not be set. */
  keepSysctls(eniLinks: string[]): string[];
  /**
   * Why `netns` cannot be a pod's network namespace, or undefined when it can. `gone`: there is no
   * namespace there at all (missing, a stale file, not a namespace), so whatever was plumbed into it is gone.
   */
  netnsProblem(netns: string): NetnsProblem | undefined;
}

export interface NetnsProblem {
  why: string;
  gone: boolean;
}

/** statfs's f_type of the namespace filesystem, and of /proc, where namespace files lived before Linux 3.19. */
const NSFS_MAGIC = 0x6e736673;
const PROC_SUPER_MAGIC = 0x9fa0;

export class LinuxDatapath implements Datapath {
  constructor(private readonly netlink: NetlinkDatapath) {}

  close(): void {
    this.netlink.close();
  }

  async setupEni(eni: { id: string; mac: string; primaryIp: string; gateway: string }, timeoutMs = 30_000): Promise<EniLink> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const link = await this.netlink.node.linkByMac(eni.mac);
      if (link) {
        const setup: EniLink = { ifName: link.name, table: ENI_TABLE_BASE + link.index, primaryIp: eni.primaryIp, gateway: eni.gateway };
        await this.netlink.node.apply(eniLinkPlan(setup), `the link ${link.name} of ${eni.id}`);
        this.keepSysctls([link.name]);
        return setup;
      }
      if (Date.now() > deadline) throw new Error(`no link with the MAC ${eni.mac} of ${eni.id} appeared within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async addPod(pod: PodTarget): Promise<void> {
    const problem = this.netnsProblem(pod.netns);
    if (problem) throw new Error(`container ${pod.containerId}: CNI_NETNS ${problem.why}`);
    const about = `${pod.address} of container ${pod.containerId}`;
    const plan = podPlan(pod);
    await this.netlink.createVeth(plan.veth, pod.netns, about);
    // The two sides at once: each needs only the veth, and each namespace's socket keeps its own order. On
    // the host, a rule from the pod's address left by someone else (a DEL that never came) goes first: the
    // address is this pod's now, and a rule of the same priority added after it would never be looked at.
    const hostSide = this.netlink.node.remove(hostUnrouting(pod).filter((o) => o.kind === 'rule' && o.src), about).then(() => this.netlink.node.apply(plan.onHost, about));
    const sides = await Promise.allSettled([this.netlink.applyIn(pod.netns, plan.inPod, about), hostSide]);
    const failed = sides.find((side) => side.status === 'rejected');
    if (failed) {
      // Half-made: remove what this ADD made, and only that. The veth is made whole or not at all, with its
      // host end (named for this container and interface) in the agent's namespace: deleting that end
      // deletes the pod's. The pod's interface is never deleted by name: a link of that name may be
      // another container's, which is why the ADD failed. The ADD's own error is the one reported.
      await this.netlink.node.remove(hostUnrouting(pod), about).catch(() => undefined);
      await this.netlink.deleteLink(pod.hostIf, about).catch(() => undefined);
      throw failed.reason;
    }
  }

  async removePod(pod: Pick<PodPlumbing, 'hostIf' | 'address'>): Promise<{ linkGone: Promise<void> }> {
    await this.netlink.node.remove(hostUnrouting(pod), `unrouting ${pod.address}`);
    // Deleting a veth waits for the kernel (an RCU grace period, ~20 ms), which the DEL's answer need not:
    // nothing routes to the pod any more. Waited for off the main thread (netlink.ts).
    return { linkGone: this.removeVeth(pod.hostIf, `the veth of ${pod.address}`).then(() => undefined) };
  }

  removeVeth(hostIf: string, about: string): Promise<boolean> {
    return this.netlink.deleteLink(hostIf, about);
  }

  async checkPod(pod: PodTarget): Promise<string | undefined> {
    const problem = this.netnsProblem(pod.netns);
    if (problem) return `CNI_NETNS ${problem.why}`;
    const plan = podPlan(pod);
    const host = await this.netlink.node.read(['up', 'route', 'rule']);
    if (!host.links.some((l) => l.name === pod.hostIf)) return `the host interface ${pod.hostIf} of ${pod.address} is missing`;
    const inside = await this.netlink.in(pod.netns, (ns) => ns.read(['up', 'address', 'route', 'neigh']));
    if (!inside.links.some((l) => l.name === pod.ifName)) return `the interface ${pod.ifName} is missing in ${pod.netns}`;
    const wrong = [...explain(diff(plan.inPod, inside.objects)).map((w) => `${w} in ${pod.netns}`), ...explain(diff(plan.onHost, host.objects)).map((w) => `${w} on the node`)];
    return wrong.length > 0 ? `the plumbing of ${pod.address} is not as planned: ${wrong.join('; ')}` : undefined;
  }

  async hostFacts(): Promise<HostFacts> {
    const { objects, links } = await this.netlink.node.read(['up', 'route', 'rule']);
    return { objects, links: links.map((l) => l.name) };
  }

  async mendHost(mend: Diff, what: string): Promise<void> {
    await this.netlink.node.remove(mend.wrong, what);
    await this.netlink.node.apply(mend.missing, what);
  }

  keepSysctls(eniLinks: string[]): string[] {
    const problems: string[] = [];
    /** Sets a value unless one of `acceptable` is already there; a read-only /proc/sys is reported, not fatal. */
    const set = (path: string, value: string, acceptable = [value]) => {
      const file = `/proc/sys/net/ipv4/${path}`;
      try {
        if (existsSync(file) && !acceptable.includes(readFileSync(file, 'utf8').trim())) writeFileSync(file, value);
      } catch (err) {
        problems.push(`cannot set net.ipv4.${path.replace(/\//g, '.')}=${value}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    set('ip_forward', '1');
    // Replies to pods arrive by the pod's ENI while the main table points elsewhere: strict reverse-path
    // filtering (1) would drop them; loose (2), as systemd sets it, is as good as off here.
    set('conf/all/rp_filter', '0', ['0', '2']);
    set('conf/default/rp_filter', '0', ['0', '2']);
    for (const link of eniLinks) set(`conf/${link}/rp_filter`, '0', ['0', '2']);
    return problems;
  }

  netnsProblem(netns: string): NetnsProblem | undefined {
    const gone = (why: string) => ({ why: `${JSON.stringify(netns)} ${why}`, gone: true });
    if (netns === '') return gone('is empty: no network namespace');
    try {
      // A namespace file (a bind mount in /run/netns, or /proc/PID/ns/net) is an empty regular file on
      // nsfs, whose inode number is the namespace's. Nothing is opened: a device (/dev/watchdog) or a fifo
      // is refused unopened. (Which kind of namespace an nsfs file is cannot be told without an ioctl; a
      // mount namespace's file gets past here, and its plumbing then fails with nsenter's error.)
      const it = statSync(netns);
      if (!it.isFile()) return gone('is not a network namespace (not even a file)');
      const fsType = statfsSync(netns).type;
      const onProc = fsType === PROC_SUPER_MAGIC && /^\/proc\/(\d+|self|thread-self)\/(task\/\d+\/)?ns\/net$/.test(netns);
      if (fsType !== NSFS_MAGIC && !onProc) return gone('is not a network namespace (a stale file, its mount gone?)');
      const own = statSync('/proc/self/ns/net');
      if (it.ino === own.ino && it.dev === own.dev) return { why: `${JSON.stringify(netns)} is the node's own network namespace, not a pod's`, gone: false };
      return undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return gone('does not exist');
      return { why: `${JSON.stringify(netns)} cannot be looked at: ${code ?? (err as Error).message}`, gone: false };
    }
  }
}
