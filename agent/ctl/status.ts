// What eni-cnictl reads from the agent's /status, and how it shows it to a person.

export interface Status {
  instance: string;
  zone: string;
  counts: { total: number; assigned: number; free: number; cooling: number };
  limits: { warm: { min: number; max: number }; maxEnis: number; maxIpsPerEni: number };
  lastError?: string;
  enis: Array<{ id: string; mac: string; subnetId: string; primaryIp: string; ifName?: string; table?: number; addresses: string[] }>;
  allocations: Array<{ address: string; eniId?: string; containerId: string; ifName: string; netns: string; hostIf: string; pod?: { namespace: string; name: string }; direct?: { hostName: string } }>;
  /** whole-ENI mode (--enable-direct-eni): the node's whole ENIs, its targets and how many it may attach */
  directEnis?: Array<{ eniId: string; mac: string; primaryIP: string; subnetId: string }>;
  directLimits?: { warm: { min: number; max: number }; maxAttach: number };
  directCapacity?: number;
}

export async function fetchStatus(healthAddress: string): Promise<Status> {
  const url = `http://${healthAddress}/status`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new Error(`the agent does not answer at ${url}: ${(err as Error).message}; is it running on this node?`, { cause: err });
  }
  if (!res.ok) throw new Error(`the agent answered ${res.status} at ${url}`);
  return (await res.json()) as Status;
}

export function formatStatus(s: Status): string {
  const lines = [
    `node ${s.instance} in ${s.zone}`,
    `pool: ${s.counts.total} bound, ${s.counts.assigned} held by pods, ${s.counts.free} free, ${s.counts.cooling} cooling down`,
    `targets: min ${s.limits.warm.min}, max ${s.limits.warm.max} free; at most ${s.limits.maxEnis} pod ENIs of ${s.limits.maxIpsPerEni} addresses`,
    ...(s.lastError ? [`last error: ${s.lastError}`] : []),
  ];
  const shared = s.allocations.filter((a) => !a.direct);
  const holder = new Map(shared.map((a) => [a.address, a]));
  const whoHolds = (a: Status['allocations'][number]) => `${a.pod ? `${a.pod.namespace}/${a.pod.name}` : '(no pod name)'}  container ${a.containerId.slice(0, 12)}  ${a.hostIf}`;
  for (const eni of s.enis) {
    lines.push('', `${eni.id}  ${eni.ifName ?? '(no link)'}  table ${eni.table ?? '-'}  ${eni.subnetId}  mac ${eni.mac}  primary ${eni.primaryIp}`);
    for (const address of [...eni.addresses].sort()) {
      const a = holder.get(address);
      lines.push(`  ${address.padEnd(15)} ${a ? whoHolds(a) : 'free'}`);
    }
  }
  // Pods whose address is on no ENI of the pool (restored from the checkpoint, their ENI detached or not taken over yet).
  const pooled = new Set(s.enis.flatMap((e) => e.addresses));
  const stray = shared.filter((a) => !pooled.has(a.address));
  if (stray.length > 0) {
    lines.push('', '(on no ENI of the pool)');
    for (const a of stray) lines.push(`  ${a.address.padEnd(15)} ${whoHolds(a)}`);
  }
  if (s.directEnis && s.directLimits) lines.push('', ...formatDirect(s, s.directEnis, s.directLimits));
  return lines.join('\n');
}

/** The whole-ENI part: each whole ENI with the pod it is the interface of, or spare. */
function formatDirect(s: Status, enis: NonNullable<Status['directEnis']>, limits: NonNullable<Status['directLimits']>): string[] {
  const owner = new Map(s.allocations.filter((a) => a.direct && a.eniId).map((a) => [a.eniId!, a]));
  const lines = [
    `whole ENIs: ${enis.length} attached, ${owner.size} held by pods; spare min ${limits.warm.min}, max ${limits.warm.max}; at most ${s.directCapacity ?? limits.maxAttach}`,
  ];
  for (const eni of [...enis].sort((a, b) => a.eniId.localeCompare(b.eniId))) {
    const a = owner.get(eni.eniId);
    const who = a ? `${a.pod ? `${a.pod.namespace}/${a.pod.name}` : '(no pod name)'}  container ${a.containerId.slice(0, 12)}  ${a.ifName} (was ${a.direct!.hostName || '?'} on the node)` : 'spare';
    lines.push(`  ${eni.eniId}  ${eni.primaryIP.padEnd(15)} ${eni.subnetId}  mac ${eni.mac}  ${who}`);
  }
  return lines;
}
