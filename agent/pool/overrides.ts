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
  const refuse = (why: string, keep: () => void) => {
    refusals.push(`${why}; keeping what was in force`);
    keep();
  };

  const minText = annotations[minKey];
  const maxText = annotations[maxKey];
  if (minText !== undefined || maxText !== undefined) {
    const min = count(minText);
    const max = count(maxText);
    const keep = () => (limits.warm = { ...current.warm });
    if (minText === undefined || maxText === undefined) refuse(`${minKey} and ${maxKey} must be set together`, keep);
    else if (min === undefined || max === undefined) refuse(`${minKey}="${minText}" and ${maxKey}="${maxText}" must be whole numbers ≥ 0`, keep);
    else if (min > max) refuse(`${minKey} (${min}) is above ${maxKey} (${max})`, keep);
    else limits.warm = { min, max };
  }

  const enisText = annotations[enisKey];
  if (enisText !== undefined) {
    const n = count(enisText);
    const keep = () => (limits.maxEnis = current.maxEnis);
    if (n === undefined) refuse(`${enisKey}="${enisText}" must be a whole number ≥ 0`, keep);
    else if (n < inUse.enis) refuse(`${enisKey}=${n} is below the ${inUse.enis} ENIs in use`, keep);
    else if (n > quota.maxEnis) refuse(`${enisKey}=${n} is above the instance's quota of ${quota.maxEnis} pod ENIs`, keep);
    else limits.maxEnis = n;
  }

  const ipsText = annotations[ipsKey];
  if (ipsText !== undefined) {
    const n = count(ipsText);
    const keep = () => (limits.maxIpsPerEni = current.maxIpsPerEni);
    if (n === undefined) refuse(`${ipsKey}="${ipsText}" must be a whole number ≥ 0`, keep);
    else if (n < inUse.ipsOnBusiestEni) refuse(`${ipsKey}=${n} is below the ${inUse.ipsOnBusiestEni} addresses in use on one ENI`, keep);
    else if (n > quota.maxIpsPerEni) refuse(`${ipsKey}=${n} is above the instance's quota of ${quota.maxIpsPerEni} addresses per ENI`, keep);
    else limits.maxIpsPerEni = n;
  }
  return { limits, refusals };
}

export function count(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text.trim())) return undefined;
  return Number(text.trim());
}
