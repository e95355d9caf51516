// The warm pool's law (TKE's seed 004, and where TKE stops), as a pure function of the pool's state.
//   bound  = addresses on the node's pod ENIs (held by pods, free, or cooling down after a DEL)
//   pods   = addresses held by pods, plus ADDs waiting for one
//   - fewer available than min (or than the ADDs waiting): bind up to pods + min at once, in as few calls
//     as the limits allow (≤10 a call), on the fullest ENI with room, a new ENI only when all are full;
//   - bound above the node's maximum (an override lowered it): release down to it at once;
//   - bound above pods + max: slow release frees one idle address per release period; quick release frees
//     all the excess each period. An ENI left with no secondary address is detached and deleted.
// Cooling addresses are soon free (a few seconds): they count toward the minimum and toward ADDs waiting,
// never as missing. Otherwise churn faster than the cool-down grows the pool without bound (each DEL's
// address cools while the next ADD asks for another) and deleting pods opens ENIs. An ADD that finds only
// cooling addresses waits for the first to come back rather than for a new one from the cloud.

export interface PolicyEni {
  id: string;
  /** secondary addresses on it */
  bound: number;
  /** of those, held by pods */
  assigned: number;
  /** secondary addresses it may hold */
  capacity: number;
}

export interface PolicyInput {
  enis: PolicyEni[];
  /** addresses free to give out now (not cooling) */
  available: number;
  /** addresses resting after a DEL: bound, idle, not available yet but soon */
  cooling: number;
  /** addresses asked of the supply that have not come yet (ipamd at work): soon free, never asked twice */
  pending?: number;
  /** ADDs waiting for an address */
  waiting: number;
  warm: { min: number; max: number };
  /** the most pod ENIs the node may hold, and secondary addresses per ENI (quota, lowered by overrides) */
  maxEnis: number;
  maxIpsPerEni: number;
  quickRelease: boolean;
  /** whether a release period has passed since the last release */
  releaseDue: boolean;
  /** growth paused after a quota error (ENI quota, subnet exhausted) */
  growthPaused: boolean;
}

export type PolicyAction =
  | { kind: 'assign'; eniId: string; count: number }
  | { kind: 'create-eni'; count: number }
  | { kind: 'release'; eniId: string; count: number }
  | { kind: 'delete-eni'; eniId: string }
  | { kind: 'none'; why: string };

export const MAX_IPS_PER_CALL = 10;

export function maxBindable(input: Pick<PolicyInput, 'maxEnis' | 'maxIpsPerEni'>): number {
  return input.maxEnis * input.maxIpsPerEni;
}

export function decide(input: PolicyInput): PolicyAction {
  const bound = input.enis.reduce((n, e) => n + e.bound, 0);
  const assigned = input.enis.reduce((n, e) => n + e.assigned, 0);
  const pods = assigned + input.waiting;
  const ceiling = maxBindable(input);
  const idle = (e: PolicyEni) => e.bound - e.assigned;

  // An ENI with no secondary address left serves nobody: give it back.
  const empty = input.enis.find((e) => e.bound === 0 && e.assigned === 0);
  if (empty && (bound >= Math.min(pods + input.warm.min, ceiling) || input.enis.length > input.maxEnis)) {
    return { kind: 'delete-eni', eniId: empty.id };
  }

  // Over the node's maximum (an override lowered it): down to it at once, from the emptiest ENI.
  if (bound > ceiling || input.enis.some((e) => e.bound > input.maxIpsPerEni)) {
    const over = input.enis.filter((e) => idle(e) > 0 && (e.bound > input.maxIpsPerEni || bound > ceiling));
    const eni = emptiest(over.length > 0 ? over : input.enis.filter((e) => idle(e) > 0));
    if (!eni) return { kind: 'none', why: `bound ${bound} is over the maximum ${ceiling}, but every address is held by a pod` };
    const excess = Math.max(bound - ceiling, eni.bound - input.maxIpsPerEni);
    return { kind: 'release', eniId: eni.id, count: Math.min(excess, idle(eni), MAX_IPS_PER_CALL) };
  }

  const wanted = Math.max(input.warm.min, input.waiting);
  const soonFree = input.available + input.cooling + (input.pending ?? 0);
  if (soonFree < wanted) {
    if (input.growthPaused) return { kind: 'none', why: 'growth is paused after a quota error' };
    const deficit = Math.min(wanted - soonFree, ceiling - bound - (input.pending ?? 0));
    if (deficit <= 0) return { kind: 'none', why: `the node holds its maximum of ${ceiling} addresses` };
    const roomy = input.enis.filter((e) => e.bound < Math.min(e.capacity, input.maxIpsPerEni)).sort((a, b) => b.bound - a.bound)[0];
    if (roomy) return { kind: 'assign', eniId: roomy.id, count: Math.min(deficit, Math.min(roomy.capacity, input.maxIpsPerEni) - roomy.bound, MAX_IPS_PER_CALL) };
    if (input.enis.length >= input.maxEnis) return { kind: 'none', why: `all ${input.enis.length} ENIs are full and the node may hold no more` };
    return { kind: 'create-eni', count: Math.min(deficit, input.maxIpsPerEni, MAX_IPS_PER_CALL) };
  }

  const excess = bound - (pods + input.warm.max);
  if (excess > 0) {
    if (!input.releaseDue) return { kind: 'none', why: `${excess} above pods + max; waiting for the release period` };
    const eni = emptiest(input.enis.filter((e) => idle(e) > 0));
    // Never release what would take available below the minimum (cooling addresses go first).
    const spare = Math.min(excess, input.cooling + input.available - wanted);
    if (!eni || spare <= 0) return { kind: 'none', why: 'nothing idle to release' };
    return { kind: 'release', eniId: eni.id, count: input.quickRelease ? Math.min(spare, idle(eni), MAX_IPS_PER_CALL) : 1 };
  }
  return { kind: 'none', why: 'within the warm targets' };
}

/** The ENI with the fewest pods (least-ENI principle: empty the emptiest so it can go). */
function emptiest(enis: PolicyEni[]): PolicyEni | undefined {
  return [...enis].sort((a, b) => a.assigned - b.assigned || a.bound - b.bound)[0];
}
