// The host datapath on Linux: carries out plan.ts with `ip -batch` (one process per namespace touched)
// and keeps the sysctls pod networking depends on.
import { existsSync, readFileSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import type { HostFacts } from './drift.ts';
import { ipBatch, ipIn } from './ip-batch.ts';
import { IpSession } from './ip-session.ts';
import { IpProbe } from './probe.ts';
import type { NetlinkPods } from './netlink-pod.ts';
import { ENI_TABLE_BASE, eniLinkCommands, hostSideCommands, hostUnrouteCommands, podSideCommands, type EniLink, type PodPlumbing } from './plan.ts';

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
  /** A description of what is wrong with a pod's plumbing, or undefined when it is as planned. */
  checkPod(pod: PodTarget): Promise<string | undefined>;
  /** The node's rules and main routes, read once for every pod (drift.ts compares them with the pods). */
  hostFacts?(): Promise<HostFacts>;
  /** Runs host commands that mend a pod's host side (what exists already is fine). */
  mendHost?(lines: string[], what: string): Promise<void>;
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
  /** the agent's own namespace, through one long-lived ip process (see ip-session.ts) */
  private readonly host = new IpSession();

  /** `pods`: the pod side over netlink (netlink-pod.ts); without it, one `ip -n <ns> -batch` per pod. */
  constructor(private readonly pods?: NetlinkPods) {}

  /** Host-side commands addressing `links` by name; an error fails the batch unless `force`. */
  private async onHost(lines: string[], what: string, options: { force?: boolean; links?: string[] } = {}): Promise<void> {
    const errors = await this.host.run(lines, options.links);
    if (errors && !options.force) throw new Error(`${what}: ${errors}`);
  }

  close(): void {
    this.host.close();
    this.pods?.close();
  }

  async setupEni(eni: { id: string; mac: string; primaryIp: string; gateway: string }, timeoutMs = 30_000): Promise<EniLink> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const link = await this.linkByMac(eni.mac);
      if (link) {
        const setup: EniLink = { ifName: link.ifname, table: ENI_TABLE_BASE + link.ifindex, primaryIp: eni.primaryIp, gateway: eni.gateway };
        await this.onHost(eniLinkCommands(setup), `setting up the link ${link.ifname} of ${eni.id}`, { links: [link.ifname] });
        this.keepSysctls([link.ifname]);
        return setup;
      }
      if (Date.now() > deadline) throw new Error(`no link with the MAC ${eni.mac} of ${eni.id} appeared within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async addPod(pod: PodTarget): Promise<void> {
    const problem = this.netnsProblem(pod.netns);
    if (problem) throw new Error(`container ${pod.containerId}: CNI_NETNS ${problem.why}`);
    const podSide = this.pods
      ? this.pods.plumb(pod)
      : ipBatch(ipIn(pod.netns), podSideCommands(pod, process.pid), `plumbing ${pod.address} into ${pod.netns} for container ${pod.containerId}`);
    await podSide.catch(async (err: Error) => {
      // Half-made: remove what this ADD made, and only that. The veth is made whole or not at all, with its
      // host end (named for this container and interface) in the agent's namespace: deleting that end
      // deletes the pod's. The pod's interface is never deleted by name: a link of that name may be
      // another container's, which is why the batch failed.
      await ipBatch(['ip'], [`link del ${pod.hostIf}`], `removing the half-made ${pod.hostIf} of ${pod.address}`, { force: true });
      throw err;
    });
    const hostSide = this.pods ? this.pods.route(pod) : this.onHost(hostSideCommands(pod), `routing ${pod.address} to ${pod.hostIf} for container ${pod.containerId}`, { links: [pod.hostIf] });
    await hostSide.catch(async (err: Error) => {
      await (await this.removePod(pod)).linkGone;
      throw err;
    });
  }

  async removePod(pod: Pick<PodPlumbing, 'hostIf' | 'address'>): Promise<{ linkGone: Promise<void> }> {
    if (this.pods) await this.pods.unroute(pod);
    else await this.onHost(hostUnrouteCommands(pod), `unrouting ${pod.address}`, { force: true });
    // Its own process: deleting a veth waits for the kernel (an RCU grace period, ~20 ms), and neither the
    // session nor the agent's netlink socket must wait with it: a netlink request is sent on the agent's
    // main thread, which the kernel would hold for that long. Started
    // on the next turn of the event loop, so that starting it (about 1 ms) does not delay the DEL's answer.
    const linkGone = new Promise((next) => setImmediate(next)).then(() => ipBatch(['ip'], [`link del ${pod.hostIf}`], `removing ${pod.hostIf}`, { force: true }));
    return { linkGone };
  }

  async checkPod(pod: PodTarget): Promise<string | undefined> {
    const problem = this.netnsProblem(pod.netns);
    if (problem) return `CNI_NETNS ${problem.why}`;
    const host = await execa('ip', ['-j', 'link', 'show', 'dev', pod.hostIf], { reject: false });
    if (host.exitCode !== 0) return `the host interface ${pod.hostIf} of ${pod.address} is missing`;
    const inside = await execa(ipIn(pod.netns)[0]!, [...ipIn(pod.netns).slice(1), '-j', 'address', 'show', 'dev', pod.ifName], { reject: false });
    if (inside.exitCode !== 0) return `the interface ${pod.ifName} is missing in ${pod.netns}`;
    const addresses = (JSON.parse(inside.stdout) as Array<{ addr_info: Array<{ local: string }> }>).flatMap((l) => l.addr_info.map((a) => a.local));
    if (!addresses.includes(pod.address)) return `${pod.ifName} in ${pod.netns} does not have ${pod.address} (has ${addresses.join(', ') || 'nothing'})`;
    const rules = await execa('ip', ['rule', 'show', 'from', `${pod.address}/32`], { reject: false });
    if (!rules.stdout.includes(`lookup ${pod.table}`)) return `the rule sending ${pod.address} to table ${pod.table} is missing`;
    return undefined;
  }

  async hostFacts(): Promise<HostFacts> {
    const probe = new IpProbe();
    const [rules, routes] = await Promise.all([probe.rules(), probe.routes('main')]);
    return { rules, routes };
  }

  async mendHost(lines: string[], what: string): Promise<void> {
    await this.onHost(lines, what, { force: true });
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

  private async linkByMac(mac: string): Promise<{ ifname: string; ifindex: number } | undefined> {
    const { stdout } = await execa('ip', ['-j', 'link', 'show']);
    const links = JSON.parse(stdout) as Array<{ ifname: string; ifindex: number; address?: string }>;
    return links.find((l) => l.address?.toLowerCase() === mac.toLowerCase());
  }
}
