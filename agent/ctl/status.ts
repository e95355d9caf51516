// What eni-cnictl reads from the agent's /status, and how it shows it to a person.

export interface Status {
  instance: string;
  zone: string;
  counts: { total: number; assigned: number; free: number; cooling: number };
  limits: { warm: { min: number; max: number }; maxEnis: number; maxIpsPerEni: number };
  lastError?: string;
  enis: Array<{ id: string; mac: string; subnetId: string; primaryIp: string; ifName?: string; table?: number; addresses: string[] }>;
  allocations: Array<{ address: string; containerId: string; ifName: string; netns: string; hostIf: string; pod?: { namespace: string; name: string } }>;
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
  const holder = new Map(s.allocations.map((a) => [a.address, a]));
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
  const stray = s.allocations.filter((a) => !pooled.has(a.address));
  if (stray.length > 0) {
    lines.push('', '(on no ENI of the pool)');
    for (const a of stray) lines.push(`  ${a.address.padEnd(15)} ${whoHolds(a)}`);
  }
  return lines.join('\n');
}
