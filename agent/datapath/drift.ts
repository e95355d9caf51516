// The host's side of the node's pods as it should be (plan.ts), compared with what the kernel has: each
// pod's host end up, the route to it by its veth, the rule to it (main table) and the rule from it (its
// ENI's table). What is missing or wrong comes back per pod, as objects to mend it with. The node's state
// is read once for all pods; nothing here touches the kernel.
import { podPlan, type NetObject, type PodPlumbing } from './plan.ts';
import { diff, explain, type Diff } from './reconcile.ts';

export interface HostFacts {
  /** the node's links that are up, its routes and its rules */
  objects: NetObject[];
  /** the names of the node's links */
  links: string[];
}

export interface Drift {
  pod: Pick<PodPlumbing, 'address' | 'hostIf' | 'containerId'>;
  /** what was found wrong, in words */
  found: string[];
  /** the wrong objects to remove, the missing to add */
  mend: Diff;
}

/** Pods whose veth is gone altogether are left out: nothing on the host can bring the pod's end back. */
export function hostDrift(pods: ReadonlyArray<PodPlumbing>, facts: HostFacts): Drift[] {
  const links = new Set(facts.links);
  const drifts: Drift[] = [];
  for (const p of pods) {
    if (!links.has(p.hostIf)) continue;
    const d = diff(podPlan(p).onHost, facts.objects);
    if (d.missing.length > 0 || d.wrong.length > 0) drifts.push({ pod: p, found: explain(d), mend: d });
  }
  return drifts;
}
