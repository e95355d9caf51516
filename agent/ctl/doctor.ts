// What eni-cnictl doctor reads from the agent's /doctor (agent/doctor.ts), and how it shows it to a person.
import type { Diagnosis } from '../doctor.ts';

export type { Diagnosis };

export async function fetchDiagnoses(healthAddress: string, pod: string | undefined): Promise<Diagnosis[]> {
  const url = `http://${healthAddress}/doctor${pod ? `?pod=${encodeURIComponent(pod)}` : ''}`;
  let res: Response;
  try {
    // The cloud's answer is part of it: allow for a slow one.
    res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new Error(`the agent does not answer at ${url}: ${(err as Error).message}; is it running on this node?`, { cause: err });
  }
  if (!res.ok) throw new Error(`the agent answered ${res.status} at ${url}: ${(await res.text()).trim()}`);
  const body = (await res.json()) as Diagnosis | Diagnosis[];
  return Array.isArray(body) ? body : [body];
}

/** One pod's diagnosis, link by link, ending with the first broken link and how to see it. */
export function formatDiagnosis(d: Diagnosis): string {
  const head = d.address ? `${d.pod}  ${d.address} on ${d.eniId}` : d.pod;
  const width = Math.max(...d.findings.map((f) => f.check.length));
  const lines = [head, ...d.findings.map((f) => `  ${f.ok ? 'ok    ' : 'BROKEN'}  ${f.check.padEnd(width)}  ${f.says}`)];
  lines.push(d.broken ? `first broken link: ${d.broken.check}: ${d.broken.says}\n  see it with: ${d.broken.command}` : 'every link of the path is as planned');
  return lines.join('\n');
}

/** Every pod of the node, one line each; the broken ones say where. */
export function formatSummary(all: Diagnosis[]): string {
  const lines = all.map((d) => (d.broken ? `BROKEN  ${(d.address ?? '').padEnd(15)} ${d.pod}: ${d.broken.check}: ${d.broken.says} (see: ${d.broken.command})` : `ok      ${(d.address ?? '').padEnd(15)} ${d.pod}`));
  lines.push(`${all.filter((d) => !d.broken).length} of ${all.length} pods have every link of their path as planned`);
  return lines.join('\n');
}
