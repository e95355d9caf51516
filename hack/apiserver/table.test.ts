// Server-side printing: the JSONPath of printer columns, ages as kubectl shows them, what Accept asks for.
import { describe, expect, it } from 'vitest';
import { evaluate, humanDuration, tableVersion } from './table.ts';

describe('printer columns', () => {
  const object = { status: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'Synced', status: 'False' }], pool: { bound: 3 } } };

  it.each([
    ['.status.pool.bound', 3],
    ['.status.conditions[1].type', 'Synced'],
    ['.status.conditions[?(@.type=="Synced")].status', 'False'],
    ['.status.conditions[?(@.type=="Gone")].status', undefined],
    ['.spec.nothing', undefined],
  ])('%s is %j', (path, expected) => {
    expect(evaluate(path, object)).toEqual(expected);
  });

  it.each([
    [0, '0s'],
    [119_000, '119s'],
    [150_000, '2m30s'],
    [600_000, '10m'],
    [3 * 3600_000 + 5 * 60_000, '3h5m'],
    [30 * 3600_000, '30h'],
    [50 * 3600_000, '2d2h'],
    [400 * 86400_000, '400d'],
    [-5000, '<invalid>'],
  ])('an age of %i ms prints as %s', (ms, shown) => {
    expect(humanDuration(ms)).toBe(shown);
  });

  it('reads the Table version kubectl asks for', () => {
    expect(tableVersion('application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json')).toBe('v1');
    expect(tableVersion('application/json, */*;q=0.8')).toBeUndefined();
  });
});
