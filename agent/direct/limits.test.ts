import { describe, expect, it } from 'vitest';
import { applyDirectOverrides, type DirectLimits } from './limits.ts';

const defaults: DirectLimits = { warm: { min: 1, max: 1 }, maxAttach: 3 };
const A = 'tke.cloud.tencent.com/';

describe("the whole-ENI pool's overrides", () => {
  it.each<[string, Record<string, string>, Partial<DirectLimits>, string[]]>([
    ['no annotations: the defaults', {}, {}, []],
    ['both warm targets', { [`${A}direct-eni-min-warm-target`]: '0', [`${A}direct-eni-max-warm-target`]: '2' }, { warm: { min: 0, max: 2 } }, []],
    ['max alone is refused', { [`${A}direct-eni-max-warm-target`]: '2' }, {}, ['must be set together']],
    ['min above max is refused', { [`${A}direct-eni-min-warm-target`]: '3', [`${A}direct-eni-max-warm-target`]: '2' }, {}, ['(3) is above']],
    ['garbage is refused', { [`${A}direct-eni-min-warm-target`]: '1.5', [`${A}direct-eni-max-warm-target`]: '2' }, {}, ['whole numbers']],
    ['max attach lowers the capacity', { [`${A}direct-eni-max-attach`]: '2' }, { maxAttach: 2 }, []],
    ['max attach below what pods hold is refused', { [`${A}direct-eni-max-attach`]: '0' }, {}, ['below the 1 whole ENIs pods hold']],
    ['max attach above the quota is refused', { [`${A}direct-eni-max-attach`]: '4' }, {}, ['above the instance']],
  ])('%s', (_name, annotations, changed, refusals) => {
    const current: DirectLimits = { warm: { min: 1, max: 1 }, maxAttach: 3 };
    const result = applyDirectOverrides(annotations, { defaults, current, quota: 3, inUse: 1 });
    expect(result.limits).toEqual({ ...defaults, ...changed });
    expect(result.refusals).toHaveLength(refusals.length);
    refusals.forEach((r, i) => expect(result.refusals[i]).toContain(r));
  });
});
