// The store's versions and history: one counter for everything, changes kept for watches, frozen objects.
import { describe, expect, it } from 'vitest';
import { Store } from './store.ts';

const object = (name: string, data = '') => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { data } });

describe('Store', () => {
  it('stamps every change with the next resource version, across kinds', () => {
    const store = new Store();
    expect(store.create('configmaps', object('a')).metadata.resourceVersion).toBe('1');
    expect(store.create('pods', object('a')).metadata.resourceVersion).toBe('2');
    expect(store.update('configmaps', object('a', 'x')).metadata.resourceVersion).toBe('3');
    expect(store.remove('configmaps', 'default', 'a').metadata.resourceVersion).toBe('4');
    expect(store.resourceVersion).toBe(4);
    expect(store.changesSince(1).map((c) => `${c.type} ${c.key} ${c.revision}`)).toEqual(['ADDED pods 2', 'MODIFIED configmaps 3', 'DELETED configmaps 4']);
  });

  it('keeps the last historySize changes and refuses to replay from before them', () => {
    const store = new Store(2);
    for (const name of ['a', 'b', 'c', 'd']) store.create('configmaps', object(name));
    expect(store.oldestResumable).toBe(2);
    expect(store.changesSince(2).map((c) => c.object.metadata.name)).toEqual(['c', 'd']);
    expect(() => store.changesSince(1)).toThrow(/compacted/);
  });

  it('tells subscribers of each change, with the object before it', () => {
    const store = new Store();
    const seen: string[] = [];
    const unsubscribe = store.subscribe((c) => seen.push(`${c.type} ${c.previous?.data ? JSON.stringify(c.previous.data) : '-'}`));
    store.create('configmaps', object('a', 'one'));
    store.update('configmaps', object('a', 'two'));
    unsubscribe();
    store.remove('configmaps', 'default', 'a');
    expect(seen).toEqual(['ADDED -', 'MODIFIED {"data":"one"}']);
  });

  it('lists by namespace and name, and hands out frozen objects', () => {
    const store = new Store();
    store.create('configmaps', { ...object('b'), metadata: { name: 'b', namespace: 'z' } });
    store.create('configmaps', object('b'));
    store.create('configmaps', object('a'));
    expect(store.list('configmaps').map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual(['default/a', 'default/b', 'z/b']);
    expect(store.list('configmaps', 'z')).toHaveLength(1);
    expect(() => {
      store.get('configmaps', 'default', 'a')!.metadata.name = 'changed';
    }).toThrow(TypeError);
  });
});
