// What a lab leaves on the host (namespaces, a veth, a routing rule, files under /run/eni-cni-lab),
// written down when it starts, so that a later run can remove it after a crash.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { removeStaleInstances } from '../cri/containerd.ts';
import { ip, listNamespaces, run } from './sh.ts';

/** Every lab's names start with this; `lab down` and stale clean-up look for it. */
export const LAB_PREFIX = 'ecl';
export const RECORDS = '/run/eni-cni-lab';
/** Priority of the host rule that routes the emulator's answers back into a lab. */
export const RULE_PREF = 1500;

/** What a lab leaves on the host, written down so that a later run can remove it after a crash. */
export interface LabRecord {
  prefix: string;
  pid: number;
  hostLink: string;
  hostAddress: string;
  table: number;
}

/**
 * Removes labs whose owning process is gone: their namespaces (and the processes in them), host link
 * and routing rule; then any lab namespace that no live lab claims (a lab whose record was lost).
 * Labs of live processes (another test run, the lab command's own) are left alone.
 */
export async function removeStaleLabs(): Promise<string[]> {
  const removed: string[] = [];
  const live = new Set<string>();
  for (const record of readRecords()) {
    if (isAlive(record.pid)) {
      live.add(record.prefix);
      continue;
    }
    await removeLab(record);
    removed.push(record.prefix);
  }
  for (const ns of await listNamespaces()) {
    const prefix = /^(ecl-[0-9a-f]{4})-/.exec(ns)?.[1];
    if (prefix && !live.has(prefix)) {
      await removeNamespace(ns);
      if (!removed.includes(prefix)) removed.push(prefix);
    }
  }
  // The containerd of a cluster lab's nodes dies with its lab process; its pods' netns, mounts and cgroups stay.
  await removeStaleInstances();
  return removed;
}

export async function removeLab(record: LabRecord): Promise<void> {
  await ip(undefined, 'rule', 'del', 'from', `${record.hostAddress}/32`, 'lookup', String(record.table), 'pref', String(RULE_PREF)).catch(() => undefined);
  await ip(undefined, 'route', 'flush', 'table', String(record.table)).catch(() => undefined);
  await ip(undefined, 'link', 'del', record.hostLink).catch(() => undefined);
  for (const ns of await listNamespaces()) if (ns === record.prefix || ns.startsWith(`${record.prefix}-`)) await removeNamespace(ns);
  rmSync(`${RECORDS}/${record.prefix}`, { recursive: true, force: true });
  rmSync(`${RECORDS}/${record.prefix}.json`, { force: true });
}

/** Kills what still runs in a namespace, then deletes it. */
export async function removeNamespace(ns: string): Promise<void> {
  const pids = await run('ip', ['netns', 'pids', ns], { allowFailure: true });
  for (const pid of pids.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await ip(undefined, 'netns', 'del', ns).catch(() => undefined);
}

export async function freeSlot(): Promise<number> {
  const used = new Set(readRecords().map((r) => Number.parseInt(r.prefix.split('-')[1] ?? '', 16)));
  const namespaces = new Set(await listNamespaces());
  for (;;) {
    const slot = randomInt(1, 16000);
    if (!used.has(slot) && !namespaces.has(`${LAB_PREFIX}-${slot.toString(16).padStart(4, '0')}-vpc`)) return slot;
  }
}

export function writeRecord(record: LabRecord): void {
  mkdirSync(RECORDS, { recursive: true });
  writeFileSync(`${RECORDS}/${record.prefix}.json`, JSON.stringify(record));
}

function readRecords(): LabRecord[] {
  let files: string[];
  try {
    files = readdirSync(RECORDS).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  return files.flatMap((f) => {
    try {
      return [JSON.parse(readFileSync(`${RECORDS}/${f}`, 'utf8')) as LabRecord];
    } catch {
      return [];
    }
  });
}

/** Whether a process runs (a zombie, killed but not yet reaped, does not). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
