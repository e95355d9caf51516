// What the host and a pod's namespace look like now, read with `ip -j` and `iptables -S`: the facts
// `eni-cnictl doctor` compares with what the agent planned. Reads only; never on the ADD or DEL path.
import { basename, dirname } from 'node:path';
import { execa } from 'execa';

/** How to run `ip` inside a pod's namespace: by name when the runtime put it in /run/netns, else through nsenter. */
export function ipIn(netns: string): string[] {
  const dir = dirname(netns);
  if (dir === '/var/run/netns' || dir === '/run/netns') return ['ip', '-n', basename(netns)];
  return ['nsenter', `--net=${netns}`, 'ip'];
}

export interface LinkFact {
  name: string;
  up: boolean;
  mac: string;
  addresses: string[];
}

export interface RouteFact {
  dst: string;
  gateway?: string;
  dev?: string;
}

export interface RuleFact {
  priority: number;
  src?: string;
  dst?: string;
  table: string;
}

export interface Probe {
  /** A link of the host (by name, or by MAC when `byMac`), or of a pod's namespace when `netns` is given. */
  link(name: string, netns?: string): Promise<LinkFact | undefined>;
  linkByMac(mac: string): Promise<LinkFact | undefined>;
  /** Routes of a table (`main`, or an ENI's number), of the host or of a pod's namespace. */
  routes(table: string, netns?: string): Promise<RouteFact[]>;
  rules(): Promise<RuleFact[]>;
  /** `iptables -t table -S chain` lines; empty when the chain does not exist. */
  iptables(table: string, chain: string): Promise<string[]>;
}

interface IpLink {
  ifname: string;
  address?: string;
  flags?: string[];
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

export class IpProbe implements Probe {
  private async ipJson<T>(netns: string | undefined, args: string[]): Promise<T[] | undefined> {
    const [cmd, ...prefix] = netns ? ipIn(netns) : ['ip'];
    const r = await execa(cmd!, [...prefix, '-j', ...args], { reject: false });
    if (r.exitCode !== 0) return undefined;
    return r.stdout.trim() === '' ? [] : (JSON.parse(r.stdout) as T[]);
  }

  async link(name: string, netns?: string): Promise<LinkFact | undefined> {
    const links = await this.ipJson<IpLink>(netns, ['address', 'show', 'dev', name]);
    return links?.[0] ? linkFact(links[0]) : undefined;
  }

  async linkByMac(mac: string): Promise<LinkFact | undefined> {
    const links = (await this.ipJson<IpLink>(undefined, ['address', 'show'])) ?? [];
    const found = links.find((l) => l.address?.toLowerCase() === mac.toLowerCase());
    return found ? linkFact(found) : undefined;
  }

  async routes(table: string, netns?: string): Promise<RouteFact[]> {
    return (await this.ipJson<RouteFact>(netns, ['route', 'show', 'table', table])) ?? [];
  }

  async rules(): Promise<RuleFact[]> {
    const rules = (await this.ipJson<{ priority: number; src?: string; dst?: string; table?: string }>(undefined, ['rule', 'show'])) ?? [];
    return rules.map((r) => ({ priority: r.priority, table: r.table ?? '', ...(r.src ? { src: r.src } : {}), ...(r.dst ? { dst: r.dst } : {}) }));
  }

  async iptables(table: string, chain: string): Promise<string[]> {
    const r = await execa('iptables', ['-w', '-t', table, '-S', chain], { reject: false });
    return r.exitCode === 0 ? r.stdout.split('\n').filter(Boolean) : [];
  }
}

function linkFact(l: IpLink): LinkFact {
  return {
    name: l.ifname,
    up: l.flags?.includes('UP') ?? false,
    mac: l.address ?? '',
    addresses: (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
  };
}
