// Per-node overrides of the shared-ENI pool, from the annotations of the node's NodeENIConfig. Each
// override is checked on its own; a refused one changes nothing and says why (the agent shows the
// refusal on the NEC and as an event). Rules from TKE's documentation (seed 004):
//   - the min and max warm targets come together, with 0 ≤ min ≤ max;
//   - a maximum (ENIs, addresses per ENI) may not be below what is in use, nor above the instance's quota.
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

/** The limits in force: the defaults (flags and quota) with every valid override applied. */
export function applyOverrides(annotations: Record<string, string>, defaults: PoolLimits, quota: Omit<PoolLimits, 'warm'>, inUse: InUse): OverrideResult {
  const limits: PoolLimits = { warm: { ...defaults.warm }, maxEnis: defaults.maxEnis, maxIpsPerEni: defaults.maxIpsPerEni };
  const refusals: string[] = [];
  const { routeEniIpMinWarmTarget: minKey, routeEniIpMaxWarmTarget: maxKey, routeEniMaxAttach: enisKey, maxIpPerRouteEni: ipsKey } = NEC_ANNOTATIONS;

  const minText = annotations[minKey];
  const maxText = annotations[maxKey];
  if (minText !== undefined || maxText !== undefined) {
    const min = count(minText);
    const max = count(maxText);
    if (minText === undefined || maxText === undefined) refusals.push(`${minKey} and ${maxKey} must be set together`);
    else if (min === undefined || max === undefined) refusals.push(`${minKey}="${minText}" and ${maxKey}="${maxText}" must be whole numbers ≥ 0`);
    else if (min > max) refusals.push(`${minKey} (${min}) is above ${maxKey} (${max})`);
    else limits.warm = { min, max };
  }

  const enisText = annotations[enisKey];
  if (enisText !== undefined) {
    const n = count(enisText);
    if (n === undefined) refusals.push(`${enisKey}="${enisText}" must be a whole number ≥ 0`);
    else if (n < inUse.enis) refusals.push(`${enisKey}=${n} is below the ${inUse.enis} ENIs in use`);
    else if (n > quota.maxEnis) refusals.push(`${enisKey}=${n} is above the instance's quota of ${quota.maxEnis} pod ENIs`);
    else limits.maxEnis = n;
  }

  const ipsText = annotations[ipsKey];
  if (ipsText !== undefined) {
    const n = count(ipsText);
    if (n === undefined) refusals.push(`${ipsKey}="${ipsText}" must be a whole number ≥ 0`);
    else if (n < inUse.ipsOnBusiestEni) refusals.push(`${ipsKey}=${n} is below the ${inUse.ipsOnBusiestEni} addresses in use on one ENI`);
    else if (n > quota.maxIpsPerEni) refusals.push(`${ipsKey}=${n} is above the instance's quota of ${quota.maxIpsPerEni} addresses per ENI`);
    else limits.maxIpsPerEni = n;
  }
  return { limits, refusals };
}

function count(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text.trim())) return undefined;
  return Number(text.trim());
}
