// Server-side printing: the JSONPath of printer columns, ages as kubectl shows them, what Accept asks for.
import { describe, expect, it } from 'vitest';
import { humanDuration } from './printers.ts';
import { BUILTIN_TYPES } from './resources.ts';
import { evaluate, tableVersion, toTable } from './table.ts';

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

describe('tables', () => {
  const type = (plural: string) => BUILTIN_TYPES.find((t) => t.plural === plural)!;
  const request = { version: 'v1', includeObject: 'Metadata', now: new Date('2025-06-01T12:00:00Z') } as const;
  const created = '2025-06-01T11:59:00Z';

  it('gives built-in kinds their printer\'s columns, wide ones at priority 1, and a finished pod\'s row the Completed condition', () => {
    const pods = [
      { metadata: { name: 'a', creationTimestamp: created }, spec: { containers: [{ name: 'app' }] }, status: { phase: 'Succeeded' } },
      { metadata: { name: 'b', creationTimestamp: created }, spec: { containers: [{ name: 'app' }] }, status: { phase: 'Pending' } },
    ];
    const table = toTable(type('pods'), pods, { resourceVersion: '9' }, request) as { columnDefinitions: { name: string; priority: number }[]; rows: Record<string, unknown>[] };
    expect(table.columnDefinitions.map((c) => `${c.name}:${c.priority}`)).toEqual(['Name:0', 'Ready:0', 'Status:0', 'Restarts:0', 'Age:0', 'IP:1', 'Node:1', 'Nominated Node:1', 'Readiness Gates:1']);
    expect(table.rows[0]).toMatchObject({ cells: ['a', '0/1', 'Succeeded', '0', '60s', '<none>', '<none>', '<none>', '<none>'], conditions: [{ type: 'Completed', status: 'True' }] });
    expect(table.rows[0]!.object).toEqual({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: pods[0]!.metadata });
    expect(table.rows[1]!.conditions).toBeUndefined();
  });

  it('gives other built-in kinds Name and Age', () => {
    const table = toTable(type('configmaps'), [{ metadata: { name: 'cfg', creationTimestamp: created } }], {}, request) as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    expect(table.columnDefinitions.map((c) => c.name)).toEqual(['Name', 'Age']);
    expect(table.rows[0]!.cells).toEqual(['cfg', '60s']);
  });
});
