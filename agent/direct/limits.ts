// The whole-ENI pool's limits on a node: ipamd's warm defaults (--eni-min-warm-target,
// --eni-max-warm-target, written in the NEC's spec when the node joined) with the NEC's overrides, checked
// as the shared pool's are (../pool/overrides.ts, seed 004): min and max come together with 0 ≤ min ≤ max;
// direct-eni-max-attach may not be below the whole ENIs pods hold, nor above the instance's quota. A
// refused override keeps what was in force and says why.
import { NEC_ANNOTATIONS } from '../../shared/tke.ts';
import { maxOverride, Refused, warmOverride } from '../pool/overrides.ts';

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
  const warm = warmOverride(annotations, minKey, maxKey);
  if (warm instanceof Refused) {
    refusals.push(`${warm.message}; keeping what was in force`);
    limits.warm = { ...current.warm };
  } else if (warm) limits.warm = warm;
  const attach = maxOverride(annotations, attachKey, { n: inUse, what: 'whole ENIs pods hold' }, { n: quota, what: 'pod ENIs' });
  if (attach instanceof Refused) {
    refusals.push(`${attach.message}; keeping what was in force`);
    limits.maxAttach = current.maxAttach;
  } else if (attach !== undefined) limits.maxAttach = attach;
  return { limits, refusals };
}
