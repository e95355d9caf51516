// The whole-ENI pool's limits on a node: ipamd's warm defaults (--eni-min-warm-target,
// --eni-max-warm-target, written in the NEC's spec when the node joined) with the NEC's overrides, checked
// as the shared pool's are (../pool/overrides.ts, seed 004): min and max come together with 0 ≤ min ≤ max;
// direct-eni-max-attach may not be below the whole ENIs pods hold, nor above the instance's quota. A
// refused override keeps what was in force and says why.
import { NEC_ANNOTATIONS } from '../../shared/tke.ts';
import { count } from '../pool/overrides.ts';

export interface DirectLimits {
  /** spare whole ENIs kept attached: at least min, at most max */
  warm: { min: number; max: number };
  /** whole ENIs the node may attach for pods, from its quota or direct-eni-max-attach */
  maxAttach: number;
}

export interface DirectOverrideInputs {
  defaults: DirectLimits;
  current: DirectLimits;
  /** pod ENIs the instance may hold (its quota less the primary) */
  quota: number;
  /** whole ENIs pods hold */
  inUse: number;
}

export function applyDirectOverrides(annotations: Record<string, string>, { defaults, current, quota, inUse }: DirectOverrideInputs): { limits: DirectLimits; refusals: string[] } {
  const limits: DirectLimits = { warm: { ...defaults.warm }, maxAttach: defaults.maxAttach };
  const refusals: string[] = [];
  const { directEniMinWarmTarget: minKey, directEniMaxWarmTarget: maxKey, directEniMaxAttach: attachKey } = NEC_ANNOTATIONS;
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
  const attachText = annotations[attachKey];
  if (attachText !== undefined) {
    const n = count(attachText);
    const keep = () => (limits.maxAttach = current.maxAttach);
    if (n === undefined) refuse(`${attachKey}="${attachText}" must be a whole number ≥ 0`, keep);
    else if (n < inUse) refuse(`${attachKey}=${n} is below the ${inUse} whole ENIs pods hold`, keep);
    else if (n > quota) refuse(`${attachKey}=${n} is above the instance's quota of ${quota} pod ENIs`, keep);
    else limits.maxAttach = n;
  }
  return { limits, refusals };
}
