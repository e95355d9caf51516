// Label and field selectors: what each syntax matches, and what is refused with 400 BadRequest.
import { describe, expect, it } from 'vitest';
import { ApiError } from './errors.ts';
import { labelSelectorString, matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.ts';

const web = { app: 'web', tier: 'front', replicas: '3' };
const db = { app: 'db', tier: 'back' };
const bare = {};

describe('label selectors', () => {
  it.each([
    ['', [web, db, bare]],
    ['app=web', [web]],
    ['app==web', [web]],
    ['app!=web', [db, bare]],
    ['app in (web,db)', [web, db]],
    ['app in (web, db )', [web, db]],
    ['app notin (web)', [db, bare]],
    ['tier', [web, db]],
    ['!tier', [bare]],
    ['app=web,tier=front', [web]],
    ['app=web, tier=back', []],
    ['replicas>2', [web]],
    ['replicas<2', []],
    ['app=', []],
    ['app!=', [web, db, bare]],
  ])('%j selects the right objects', (selector, expected) => {
    const requirements = parseLabelSelector(selector);
    expect([web, db, bare].filter((labels) => matchesLabels(requirements, labels))).toEqual(expected);
  });

  it('matches an object without labels only by negative requirements', () => {
    expect(matchesLabels(parseLabelSelector('a!=b,!c,d notin (e)'), undefined)).toBe(true);
    expect(matchesLabels(parseLabelSelector('a'), undefined)).toBe(false);
  });

  it('takes prefixed keys', () => {
    expect(matchesLabels(parseLabelSelector('tke.cloud.tencent.com/networks=tke-route-eni'), { 'tke.cloud.tencent.com/networks': 'tke-route-eni' })).toBe(true);
  });

  it.each(['app in web', 'app in ()', 'app=(web)', 'app web', '=web', 'app in (web', 'app>x', 'bad key=1', 'a=b c', '-a=b', 'a=b,'])(
    'refuses %j with 400 BadRequest',
    (selector) => {
      let caught: unknown;
      try {
        parseLabelSelector(selector);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ApiError);
      expect((caught as ApiError).code).toBe(400);
      expect((caught as ApiError).message).toMatch(/unable to parse requirement/);
    },
  );
});

describe('field selectors', () => {
  const pod: Record<string, string> = { 'metadata.name': 'web-0', 'metadata.namespace': 'default', 'spec.nodeName': 'node-1', 'status.podIP': '' };
  const valueOf = (field: string) => pod[field] ?? '';

  it.each([
    ['', true],
    ['metadata.name=web-0', true],
    ['metadata.name==web-0', true],
    ['metadata.name!=web-0', false],
    ['spec.nodeName=node-1,metadata.namespace=default', true],
    ['spec.nodeName=node-2', false],
    ['status.podIP=', true],
    ['status.podIP!=', false],
  ])('%j matches: %s', (selector, expected) => {
    expect(matchesFields(parseFieldSelector(selector), valueOf)).toBe(expected);
  });

  it('reads escaped commas and equals signs as part of the value', () => {
    expect(parseFieldSelector('reason=a\\,b\\=c,type=Normal')).toEqual([
      { field: 'reason', operator: '=', value: 'a,b=c' },
      { field: 'type', operator: '=', value: 'Normal' },
    ]);
  });

  it.each(['metadata.name', 'reason=a\\b'])('refuses %j with 400 BadRequest', (selector) => {
    expect(() => parseFieldSelector(selector)).toThrow(ApiError);
  });
});

describe('label selector strings', () => {
  it.each([
    [undefined, ''],
    [{}, ''],
    [{ matchLabels: { tier: 'front', app: 'web' } }, 'app=web,tier=front'],
    [{ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['b', 'a'] }, { key: 'canary', operator: 'DoesNotExist' }, { key: 'env', operator: 'Exists' }] }, 'app=web,!canary,env,zone notin (a,b)'],
    [{ matchExpressions: [{ key: 'tier', operator: 'In', values: ['front'] }] }, 'tier in (front)'],
  ])('%j prints as %j', (selector, shown) => {
    expect(labelSelectorString(selector)).toBe(shown);
  });

  it('refuses an unknown operator, in without values, and exists with values', () => {
    expect(() => labelSelectorString({ matchExpressions: [{ key: 'a', operator: 'Near' }] })).toThrow('"Near" is not a valid label selector operator');
    expect(() => labelSelectorString({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] })).toThrow(ApiError);
    expect(() => labelSelectorString({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] })).toThrow(ApiError);
  });
});
