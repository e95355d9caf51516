// The pool's law as a table of cases, from TKE's seed 004 and beyond.
import { describe, expect, it } from 'vitest';
import { decide, type PolicyInput } from './policy.ts';

const base: PolicyInput = {
  enis: [],
  available: 0,
  cooling: 0,
  waiting: 0,
  warm: { min: 5, max: 5 },
  maxEnis: 3,
  maxIpsPerEni: 9,
  quickRelease: false,
  releaseDue: true,
  growthPaused: false,
};
const eni = (id: string, bound: number, assigned: number, capacity = 9) => ({ id, bound, assigned, capacity });

describe('warm pool policy', () => {
  it.each<[string, Partial<PolicyInput>, ReturnType<typeof decide>]>([
    // bound < pods + min: bind up to pods + min at once
    ['an empty node opens an ENI with min addresses', {}, { kind: 'create-eni', count: 5 }],
    ['3 pods, 0 free: 5 more on the ENI with room', { enis: [eni('a', 3, 3)] }, { kind: 'assign', eniId: 'a', count: 5 }],
    ['a deficit larger than the ENI: fill it first', { enis: [eni('a', 6, 6)], warm: { min: 8, max: 8 } }, { kind: 'assign', eniId: 'a', count: 3 }],
    ['the fullest ENI with room takes them', { enis: [eni('a', 2, 2), eni('b', 7, 7)], available: 0 }, { kind: 'assign', eniId: 'b', count: 2 }],
    ['all ENIs full: a new one', { enis: [eni('a', 9, 9)], available: 0 }, { kind: 'create-eni', count: 5 }],
    ['at most 10 a call', { warm: { min: 25, max: 25 }, maxIpsPerEni: 29, enis: [eni('a', 0, 0, 29)] }, { kind: 'assign', eniId: 'a', count: 10 }],
    ['all ENIs full and no more allowed', { enis: [eni('a', 9, 9), eni('b', 9, 9), eni('c', 9, 9)] }, { kind: 'none', why: 'the node holds its maximum of 27 addresses' }],
    ['never above the node maximum', { maxEnis: 1, enis: [eni('a', 7, 7)], available: 0 }, { kind: 'assign', eniId: 'a', count: 2 }],
    // addresses asked of ipamd and not come yet: never asked twice, and never past the node's maximum
    ['5 pending with min 5: nothing more asked', { enis: [eni('a', 3, 3)], pending: 5 }, { kind: 'none', why: 'within the warm targets' }],
    ['2 pending of 5 wanted: 3 more', { enis: [eni('a', 3, 3)], pending: 2 }, { kind: 'assign', eniId: 'a', count: 3 }],
    ['pending counts toward the maximum', { maxEnis: 1, enis: [eni('a', 7, 7)], pending: 1 }, { kind: 'assign', eniId: 'a', count: 1 }],
    // within targets
    ['5 free with min 5 max 5: nothing', { enis: [eni('a', 8, 3)], available: 5 }, { kind: 'none', why: 'within the warm targets' }],
    // bound > pods + max: slow release, one a period
    ['slow release: one idle address when the period is due', { enis: [eni('a', 9, 1)], available: 8 }, { kind: 'release', eniId: 'a', count: 1 }],
    ['slow release waits for its period', { enis: [eni('a', 9, 1)], available: 8, releaseDue: false }, { kind: 'none', why: '3 above pods + max; waiting for the release period' }],
    ['quick release: all the excess', { enis: [eni('a', 9, 1)], available: 8, quickRelease: true }, { kind: 'release', eniId: 'a', count: 3 }],
    ['release from the ENI with the fewest pods', { enis: [eni('a', 9, 6), eni('b', 9, 1)], available: 11, quickRelease: true, warm: { min: 5, max: 5 } }, { kind: 'release', eniId: 'b', count: 6 }],
    ['an ENI with nothing left goes', { enis: [eni('a', 9, 4), eni('b', 0, 0)], available: 5 }, { kind: 'delete-eni', eniId: 'b' }],
    // over the node's maximum: at once, whatever the period
    ['an override lowered addresses per ENI: release at once', { enis: [eni('a', 9, 2)], available: 7, maxIpsPerEni: 6, releaseDue: false }, { kind: 'release', eniId: 'a', count: 3 }],
    ['an override lowered the ENIs: the emptiest empties', { enis: [eni('a', 9, 5), eni('b', 4, 0)], available: 8, maxEnis: 1, releaseDue: false }, { kind: 'release', eniId: 'b', count: 4 }],
    // beyond TKE
    ['min 0: nothing bound until an ADD waits', { warm: { min: 0, max: 0 } }, { kind: 'none', why: 'within the warm targets' }],
    ['min 0, a burst of 7 ADDs waiting: one batch of 7', { warm: { min: 0, max: 0 }, waiting: 7 }, { kind: 'create-eni', count: 7 }],
    ['cooling addresses are soon free: they count toward min', { enis: [eni('a', 3, 0)], available: 0, cooling: 3, warm: { min: 3, max: 6 } }, { kind: 'none', why: 'within the warm targets' }],
    ['churn: ADDs waiting while the last DELs cool take those, no new ENI', { enis: [eni('a', 9, 0), eni('b', 9, 2)], available: 0, cooling: 16, waiting: 16, warm: { min: 0, max: 0 }, releaseDue: false }, { kind: 'none', why: 'within the warm targets' }],
    ['only what cooling cannot cover is bound', { enis: [eni('a', 5, 3)], available: 0, cooling: 2, waiting: 4, warm: { min: 0, max: 2 } }, { kind: 'assign', eniId: 'a', count: 2 }],
    ['release cooling addresses first, never below min', { enis: [eni('a', 9, 0)], available: 5, cooling: 4, quickRelease: true, warm: { min: 5, max: 5 } }, { kind: 'release', eniId: 'a', count: 4 }],
    ['a quota error pauses growth', { growthPaused: true }, { kind: 'none', why: 'growth is paused after a quota error' }],
  ])('%s', (_name, changes, expected) => {
    expect(decide({ ...base, ...changes })).toEqual(expected);
  });
});
