// The in-memory stand-in for etcd: objects by storage key ("pods", "apps/deployments", "<group>/<plural>" of a
// CRD) and namespace/name, one counter of resource versions for everything (as etcd's revision), and the
// recent history of changes that watches replay from. The history keeps the last `historySize` changes; a
// watch from a version older than that is answered 410 Gone, as after an etcd compaction.
//
// Stored objects are frozen: a handler that wants to change one clones it first, so nothing changes the
// store behind its back. Semantics (validation, status, deletion rules) are not here but in objects.ts.

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
  [field: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface Change {
  type: ChangeType;
  /** the resource version this change made */
  revision: number;
  key: string;
  /** the object after the change; for DELETED its last state, stamped with the deletion's version */
  object: KubeObject;
  /** the object before the change (MODIFIED, DELETED) */
  previous?: KubeObject;
}

export class Store {
  private revision = 0;
  /** the newest revision no longer in the history: a watch must start at or after it */
  private compactedRevision = 0;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly history: Change[] = [];
  private readonly listeners = new Set<(change: Change) => void>();

  constructor(private readonly historySize = 1000) {}

  /** The newest resource version: what a list at "now" reports. */
  get resourceVersion(): number {
    return this.revision;
  }

  /** The oldest version a watch can resume from. */
  get oldestResumable(): number {
    return this.compactedRevision;
  }

  get(key: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.objects.get(key)?.get(slot(namespace, name));
  }

  /** Objects of one storage key, in one namespace or all, ordered by namespace then name as etcd keys are. */
  list(key: string, namespace?: string): KubeObject[] {
    const all = [...(this.objects.get(key)?.entries() ?? [])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => o);
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  keys(): string[] {
    return [...this.objects.keys()];
  }

  create(key: string, object: KubeObject): KubeObject {
    const { namespace, name } = object.metadata;
    if (this.get(key, namespace, name)) throw new Error(`store: ${key} ${slot(namespace, name)} already exists`);
    return this.commit('ADDED', key, object);
  }

  update(key: string, object: KubeObject): KubeObject {
    const { namespace, name } = object.metadata;
    const previous = this.get(key, namespace, name);
    if (!previous) throw new Error(`store: ${key} ${slot(namespace, name)} does not exist`);
    return this.commit('MODIFIED', key, object, previous);
  }

  /** Removes an object; `finalState` is what watchers see in the DELETED event (default: as stored). */
  remove(key: string, namespace: string | undefined, name: string, finalState?: KubeObject): KubeObject {
    const previous = this.get(key, namespace, name);
    if (!previous) throw new Error(`store: ${key} ${slot(namespace, name)} does not exist`);
    return this.commit('DELETED', key, finalState ?? previous, previous);
  }

  /** Changes after `revision`, oldest first; throws if some of them are no longer kept. */
  changesSince(revision: number): Change[] {
    if (revision < this.compactedRevision) throw new Error(`store: revision ${revision} is compacted (oldest kept ${this.compactedRevision})`);
    return this.history.filter((c) => c.revision > revision);
  }

  /** Calls `listener` with every change from now on; returns the unsubscribe function. */
  subscribe(listener: (change: Change) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private commit(type: ChangeType, key: string, object: KubeObject, previous?: KubeObject): KubeObject {
    const revision = ++this.revision;
    const stored = deepFreeze({ ...structuredClone(object), metadata: { ...structuredClone(object.metadata), resourceVersion: String(revision) } });
    const { namespace, name } = stored.metadata;
    let bucket = this.objects.get(key);
    if (!bucket) this.objects.set(key, (bucket = new Map()));
    if (type === 'DELETED') bucket.delete(slot(namespace, name));
    else bucket.set(slot(namespace, name), stored);
    const change: Change = { type, revision, key, object: stored, ...(previous ? { previous } : {}) };
    this.history.push(change);
    while (this.history.length > this.historySize) this.compactedRevision = this.history.shift()!.revision;
    for (const listener of [...this.listeners]) listener(change);
    return stored;
  }
}

function slot(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
