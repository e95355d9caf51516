// Wanted against actual: which planned objects (plan.ts) the kernel lacks, and which of its own stand where
// a planned one should (a rule from the pod that looks up another table, a route to it by another link, its
// address with another prefix). Pure: CHECK, the periodic mend and its tests all compare state this way.
import { describe, type NetObject } from './plan.ts';

export interface Diff {
  /** wanted, and not there */
  missing: NetObject[];
  /** there, where a wanted object should be, and not as wanted: to be removed before the missing are added */
  wrong: NetObject[];
}

/**
 * Where an object sits: two objects of one slot cannot both be as planned. (A rule's slot is its priority
 * and selector; a route's its table and destination; an address's its link and local address.)
 */
function slotOf(o: NetObject): string {
  switch (o.kind) {
    case 'up':
      return `up ${o.dev}`;
    case 'address':
      return `address ${o.dev} ${o.local}`;
    case 'route':
      return `route ${o.table} ${o.dst}/${o.prefix}`;
    case 'rule':
      return `rule ${o.priority} ${o.src ?? ''} ${o.dst ?? ''}`;
    case 'neigh':
      return `neigh ${o.dev} ${o.ip}`;
  }
}

/** The same object: equal in every field a plan sets (`describe` names them all). */
const same = (a: NetObject, b: NetObject) => a.kind === b.kind && describe(a) === describe(b);

export function diff(wanted: readonly NetObject[], actual: readonly NetObject[]): Diff {
  const slots = new Set(wanted.map(slotOf));
  return {
    missing: wanted.filter((w) => !actual.some((a) => same(a, w))),
    wrong: actual.filter((a) => slots.has(slotOf(a)) && !wanted.some((w) => same(w, a))),
  };
}

/** What a diff found, in words ("missing: rule from … ; wrong: rule from … lookup 2004 …"). */
export function explain(d: Diff): string[] {
  return [...d.missing.map((o) => `missing: ${describe(o)}`), ...d.wrong.map((o) => `wrong: ${describe(o)}`)];
}
