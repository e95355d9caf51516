import { describe, expect, it } from 'vitest';
import { applyOverrides } from './overrides.ts';

const defaults = { warm: { min: 5, max: 5 }, maxEnis: 3, maxIpsPerEni: 9 };
const quota = { maxEnis: 3, maxIpsPerEni: 9 };
const inUse = { enis: 2, ipsOnBusiestEni: 6 };
const A = 'tke.cloud.tencent.com/';

describe('NEC overrides', () => {
  it.each<[string, Record<string, string>, Partial<typeof defaults>, string[]]>([
    ['no annotations: the defaults', {}, {}, []],
    ['both warm targets', { [`${A}route-eni-ip-min-warm-target`]: '1', [`${A}route-eni-ip-max-warm-target`]: '3' }, { warm: { min: 1, max: 3 } }, []],
    ['min 0 is allowed', { [`${A}route-eni-ip-min-warm-target`]: '0', [`${A}route-eni-ip-max-warm-target`]: '0' }, { warm: { min: 0, max: 0 } }, []],
    ['min alone is refused', { [`${A}route-eni-ip-min-warm-target`]: '1' }, {}, ['must be set together']],
    ['min above max is refused', { [`${A}route-eni-ip-min-warm-target`]: '4', [`${A}route-eni-ip-max-warm-target`]: '3' }, {}, ['(4) is above']],
    ['a negative or garbage value is refused', { [`${A}route-eni-ip-min-warm-target`]: '-1', [`${A}route-eni-ip-max-warm-target`]: 'x' }, {}, ['whole numbers']],
    ['max attach within use and quota', { [`${A}route-eni-max-attach`]: '2' }, { maxEnis: 2 }, []],
    ['max attach below use is refused', { [`${A}route-eni-max-attach`]: '1' }, {}, ['below the 2 ENIs in use']],
    ['max attach above quota is refused', { [`${A}route-eni-max-attach`]: '7' }, {}, ['above the instance']],
    ['max ip per ENI', { [`${A}max-ip-per-route-eni`]: '7' }, { maxIpsPerEni: 7 }, []],
    ['max ip per ENI below use is refused', { [`${A}max-ip-per-route-eni`]: '5' }, {}, ['below the 6 addresses in use']],
    [
      'a refused override leaves the valid ones in force',
      { [`${A}route-eni-max-attach`]: '1', [`${A}max-ip-per-route-eni`]: '8' },
      { maxIpsPerEni: 8 },
      ['below the 2 ENIs in use'],
    ],
  ])('%s', (_name, annotations, changed, refusals) => {
    const result = applyOverrides(annotations, { defaults, current: defaults, quota, inUse });
    expect(result.limits).toEqual({ ...defaults, ...changed });
    expect(result.refusals).toHaveLength(refusals.length);
    refusals.forEach((r, i) => expect(result.refusals[i]).toContain(r));
  });

  it('keeps the values in force when an annotation is refused, and the defaults come back when it is removed', () => {
    const current = { warm: { min: 2, max: 8 }, maxEnis: 2, maxIpsPerEni: 7 };
    const refused = applyOverrides(
      { [`${A}route-eni-ip-min-warm-target`]: '9', [`${A}route-eni-ip-max-warm-target`]: '3', [`${A}route-eni-max-attach`]: 'x', [`${A}max-ip-per-route-eni`]: '99' },
      { defaults, current, quota, inUse },
    );
    expect(refused.limits).toEqual(current);
    expect(refused.refusals).toHaveLength(3);
    for (const r of refused.refusals) expect(r).toContain('keeping what was in force');
    expect(applyOverrides({}, { defaults, current, quota, inUse }).limits).toEqual(defaults);
  });

  it('leaves the whole-ENI annotations to the whole-ENI pool', () => {
    const result = applyOverrides({ [`${A}direct-eni-max-attach`]: 'x', [`${A}direct-eni-min-warm-target`]: '2' }, { defaults, current: defaults, quota, inUse });
    expect(result).toEqual({ limits: defaults, refusals: [] });
  });
});
