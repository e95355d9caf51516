// The three patch formats on plain values: RFC 7386 merge patch, RFC 6902 JSON patch, and the strategic merge
// patch as kubectl apply writes it.
import { describe, expect, it } from 'vitest';
import { ApiError } from './errors.ts';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.ts';

describe('merge patch (RFC 7386)', () => {
  it.each([
    // the RFC's own examples, Appendix A
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ])('%j + %j = %j', (target, patch, expected) => {
    expect(mergePatch(target, patch)).toEqual(expected);
  });

  it('does not change its input', () => {
    const target = { metadata: { labels: { a: '1' } } };
    mergePatch(target, { metadata: { labels: { b: '2' } } });
    expect(target).toEqual({ metadata: { labels: { a: '1' } } });
  });
});

describe('JSON patch (RFC 6902)', () => {
  const doc = { metadata: { labels: { a: '1' } }, spec: { list: [1, 2, 3] } };

  it.each([
    [[{ op: 'add', path: '/metadata/labels/b', value: '2' }], { metadata: { labels: { a: '1', b: '2' } }, spec: { list: [1, 2, 3] } }],
    [[{ op: 'add', path: '/spec/list/1', value: 9 }], { ...doc, spec: { list: [1, 9, 2, 3] } }],
    [[{ op: 'add', path: '/spec/list/-', value: 4 }], { ...doc, spec: { list: [1, 2, 3, 4] } }],
    [[{ op: 'remove', path: '/spec/list/0' }], { ...doc, spec: { list: [2, 3] } }],
    [[{ op: 'replace', path: '/spec/list/2', value: 7 }], { ...doc, spec: { list: [1, 2, 7] } }],
    [[{ op: 'move', from: '/metadata/labels/a', path: '/metadata/labels/z' }], { ...doc, metadata: { labels: { z: '1' } } }],
    [[{ op: 'copy', from: '/spec/list/0', path: '/spec/first' }], { ...doc, spec: { list: [1, 2, 3], first: 1 } }],
    [[{ op: 'test', path: '/metadata/labels/a', value: '1' }, { op: 'remove', path: '/metadata/labels' }], { metadata: {}, spec: doc.spec }],
    [[{ op: 'add', path: '/metadata/annotations', value: { 'x~y/z': 'v' } }, { op: 'replace', path: '/metadata/annotations/x~0y~1z', value: 'w' }], { ...doc, metadata: { ...doc.metadata, annotations: { 'x~y/z': 'w' } } }],
  ])('%j', (patch, expected) => {
    expect(jsonPatch(doc, patch)).toEqual(expected);
    expect(doc.spec.list).toEqual([1, 2, 3]);
  });

  it.each([
    [[{ op: 'test', path: '/metadata/labels/a', value: '2' }], 422],
    [[{ op: 'remove', path: '/metadata/annotations' }], 422],
    [[{ op: 'replace', path: '/nothing/here', value: 1 }], 422],
    [[{ op: 'add', path: '/spec/list/9', value: 1 }], 422],
    [[{ op: 'jump', path: '/a' }], 400],
    [[{ op: 'add', path: '/a' }], 400],
    [{ op: 'add', path: '/a', value: 1 }, 400],
  ])('refuses %j with %i', (patch, code) => {
    let caught: unknown;
    try {
      jsonPatch(doc, patch);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ApiError);
    expect((caught as ApiError).code).toBe(code);
  });
});

describe('strategic merge patch', () => {
  const pod = {
    metadata: { labels: { app: 'web' }, finalizers: ['a', 'b'] },
    spec: {
      containers: [
        { name: 'app', image: 'busybox:1', env: [{ name: 'X', value: '1' }] },
        { name: 'sidecar', image: 'envoy:1' },
      ],
    },
  };

  it('merges a list by the key its $setElementOrder names (what kubectl apply sends)', () => {
    const result = strategicMergePatch(pod, { spec: { '$setElementOrder/containers': [{ name: 'app' }, { name: 'sidecar' }], containers: [{ name: 'sidecar', image: 'envoy:2' }] } });
    expect(result).toEqual({ ...pod, spec: { containers: [pod.spec.containers[0], { name: 'sidecar', image: 'envoy:2' }] } });
  });

  it('adds, deletes and reorders list elements by key', () => {
    const result = strategicMergePatch(pod, {
      spec: { '$setElementOrder/containers': [{ name: 'new' }, { name: 'app' }], containers: [{ name: 'new', image: 'x' }, { name: 'sidecar', $patch: 'delete' }] },
    });
    expect(result).toEqual({ ...pod, spec: { containers: [{ name: 'new', image: 'x' }, pod.spec.containers[0]] } });
  });

  it('merges a primitive list as a set and deletes from it', () => {
    expect(strategicMergePatch(pod, { metadata: { '$setElementOrder/finalizers': ['a', 'b', 'c'], finalizers: ['c'] } })).toMatchObject({ metadata: { finalizers: ['a', 'b', 'c'] } });
    expect(strategicMergePatch(pod, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } })).toMatchObject({ metadata: { finalizers: ['b'] } });
  });

  it('replaces a list without directives, as a merge patch does', () => {
    expect(strategicMergePatch(pod, { spec: { containers: [{ name: 'only', image: 'x' }] } })).toEqual({ ...pod, spec: { containers: [{ name: 'only', image: 'x' }] } });
  });

  it('obeys $patch: replace and delete on maps, and $retainKeys', () => {
    expect(strategicMergePatch(pod, { metadata: { labels: { $patch: 'replace', tier: 'front' } } })).toMatchObject({ metadata: { labels: { tier: 'front' } } });
    expect(strategicMergePatch(pod, { metadata: { labels: { $patch: 'delete' } } })).toEqual({ ...pod, metadata: { finalizers: ['a', 'b'] } });
    expect(strategicMergePatch({ s: { a: 1, b: 2 } }, { s: { $retainKeys: ['b', 'c'], c: 3 } })).toEqual({ s: { b: 2, c: 3 } });
  });

  it('deletes fields set to null and never stores a directive', () => {
    const result = strategicMergePatch(pod, { metadata: { labels: null, '$setElementOrder/finalizers': ['b', 'a'] } });
    expect(result).toEqual({ ...pod, metadata: { finalizers: ['b', 'a'] } });
    expect(JSON.stringify(result)).not.toContain('$');
  });
});
