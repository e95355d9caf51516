// The host's side of the node's pods as it should be, compared with what the kernel has: the route to each
// pod by its veth, the rule to it (main table) and the rule from it (its ENI's table). What is missing or
// wrong comes back as the commands that mend it, per pod. Facts, not text: the rules and routes are read
// once for all pods (`ip -j`, or netlink), and nothing here runs a command.
import { RULE_PREF, type PodPlumbing } from './plan.ts';
import type { RouteFact, RuleFact } from './probe.ts';

export interface HostFacts {
  rules: RuleFact[];
  /** the main table's routes */
  routes: RouteFact[];
}

export interface Drift {
  pod: Pick<PodPlumbing, 'address' | 'hostIf' | 'containerId'>;
  /** what was found wrong, in words */
  found: string[];
  /** host commands (ip -batch, run with -force) that mend it */
  mend: string[];
}

const is = (value: string | undefined, address: string) => value === address || value === `${address}/32`;

export function hostDrift(pods: ReadonlyArray<Pick<PodPlumbing, 'address' | 'hostIf' | 'table' | 'containerId'>>, facts: HostFacts): Drift[] {
  const drifts: Drift[] = [];
  for (const p of pods) {
    const found: string[] = [];
    const mend: string[] = [];
    if (!facts.routes.some((r) => is(r.dst, p.address) && r.dev === p.hostIf)) {
      found.push(`no route to ${p.address} by ${p.hostIf}`);
      mend.push(`route replace ${p.address}/32 dev ${p.hostIf} scope link`);
    }
    if (!facts.rules.some((r) => r.priority === RULE_PREF.toPod && is(r.dst, p.address) && r.table === 'main')) {
      found.push(`no rule to ${p.address} lookup main`);
      mend.push(`rule add to ${p.address}/32 lookup main pref ${RULE_PREF.toPod}`);
    }
    const from = facts.rules.filter((r) => r.priority === RULE_PREF.fromPod && is(r.src, p.address));
    if (!from.some((r) => r.table === String(p.table))) {
      found.push(from.length ? `the rule from ${p.address} looks up ${from.map((r) => r.table).join(', ')}, not ${p.table}` : `no rule from ${p.address} lookup ${p.table}`);
      for (const r of from) mend.push(`rule del from ${p.address}/32 lookup ${r.table} pref ${RULE_PREF.fromPod}`);
      mend.push(`rule add from ${p.address}/32 lookup ${p.table} pref ${RULE_PREF.fromPod}`);
    }
    if (found.length > 0) drifts.push({ pod: p, found, mend });
  }
  return drifts;
}
