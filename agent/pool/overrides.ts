// Per-node overrides of the shared-ENI pool, from the annotations of the node's NodeENIConfig. Each
// override is checked on its own; a refused one changes nothing (the value in force before stays, as seed
// 004's "修改失败" means) and says why (the agent shows the refusal on the NEC and as an event). An
// annotation is taken away by removing it: then the default is back. Rules from TKE's documentation (seed 004):
//   - the min and max warm targets come together, with 0 ≤ min ≤ max;
//   - a maximum (ENIs, addresses per ENI) may not be below what is in use, nor above the instance's quota.
// The whole-ENI pool's annotations follow the same rules (../direct/limits.ts).
import { NEC_ANNOTATIONS } from '../../shared/tke.ts';

export interface PoolLimits {
  warm: { min: number; max: number };
  /** pod ENIs the node may hold */
  maxEnis: number;
  /** secondary addresses per pod ENI */
  maxIpsPerEni: number;
}

export interface InUse {
  /** pod ENIs holding at least one pod's address */
  enis: number;
  /** the most pod addresses held on one ENI */
  ipsOnBusiestEni: number;
}

export interface OverrideResult {
  limits: PoolLimits;
  refusals: string[];
}

export interface OverrideInputs {
  /** the flags and the quota: what holds where no annotation says otherwise */
  defaults: PoolLimits;
  /** what is in force now: a refused annotation keeps it */
  current: PoolLimits;
  quota: Omit<PoolLimits, 'warm'>;
  inUse: InUse;
}

/** The limits in force: the defaults with every valid override applied, and what was in force for each refused one. */
export function applyOverrides(annotations: Record<string, string>, { defaults, current, quota, inUse }: OverrideInputs): OverrideResult {
  const limits: PoolLimits = { warm: { ...defaults.warm }, maxEnis: defaults.maxEnis, maxIpsPerEni: defaults.maxIpsPerEni };
  const refusals: string[] = [];
  const { routeEniIpMinWarmTarget: minKey, routeEniIpMaxWarmTarget: maxKey, routeEniMaxAttach: enisKey, maxIpPerRouteEni: ipsKey } = NEC_ANNOTATIONS;
  const apply = <T>(result: T | Refused | undefined, set: (value: T) => void, keep: () => void) => {
    if (result instanceof Refused) {
      refusals.push(`${result.message}; keeping what was in force`);
      keep();
    } else if (result !== undefined) set(result);
  };
  apply(warmOverride(annotations, minKey, maxKey), (w) => (limits.warm = w), () => (limits.warm = { ...current.warm }));
  apply(maxOverride(annotations, enisKey, { n: inUse.enis, what: 'ENIs in use' }, { n: quota.maxEnis, what: 'pod ENIs' }), (n) => (limits.maxEnis = n), () => (limits.maxEnis = current.maxEnis));
  apply(maxOverride(annotations, ipsKey, { n: inUse.ipsOnBusiestEni, what: 'addresses in use on one ENI' }, { n: quota.maxIpsPerEni, what: 'addresses per ENI' }), (n) => (limits.maxIpsPerEni = n), () => (limits.maxIpsPerEni = current.maxIpsPerEni));
  return { limits, refusals };
}

/** Why an override is refused. */
export class Refused {
  constructor(readonly message: string) {}
}

/** A pair of warm-target annotations: absent (undefined), refused, or the targets; together, whole numbers, 0 ≤ min ≤ max. */
export function warmOverride(annotations: Record<string, string>, minKey: string, maxKey: string): { min: number; max: number } | Refused | undefined {
  const minText = annotations[minKey];
  const maxText = annotations[maxKey];
  if (minText === undefined && maxText === undefined) return undefined;
  const min = count(minText);
  const max = count(maxText);
  if (minText === undefined || maxText === undefined) return new Refused(`${minKey} and ${maxKey} must be set together`);
  if (min === undefined || max === undefined) return new Refused(`${minKey}="${minText}" and ${maxKey}="${maxText}" must be whole numbers ≥ 0`);
  if (min > max) return new Refused(`${minKey} (${min}) is above ${maxKey} (${max})`);
  return { min, max };
}

/** A maximum's annotation: absent (undefined), refused, or the number; not below what is in use, nor above the quota. */
export function maxOverride(annotations: Record<string, string>, key: string, inUse: { n: number; what: string }, quota: { n: number; what: string }): number | Refused | undefined {
  const text = annotations[key];
  if (text === undefined) return undefined;
  const n = count(text);
  if (n === undefined) return new Refused(`${key}="${text}" must be a whole number ≥ 0`);
  if (n < inUse.n) return new Refused(`${key}=${n} is below the ${inUse.n} ${inUse.what}`);
  if (n > quota.n) return new Refused(`${key}=${n} is above the instance's quota of ${quota.n} ${quota.what}`);
  return n;
}

function count(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text.trim())) return undefined;
  return Number(text.trim());
}
