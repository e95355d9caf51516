// Deletion, and what follows it. An object with finalizers is only marked (deletionTimestamp) and goes when an
// update removes its last finalizer (objects.ts). Otherwise it goes at once — pods too: there is no kubelet, so
// no graceful termination — and then, as kube-apiserver's controllers would do a moment later:
// - a namespace takes its objects with it (at once, not through a Terminating phase);
// - a CRD takes its custom resources with it (even those with finalizers);
// - dependents (metadata.ownerReferences) whose owners are all gone are deleted, and references to the deleted
//   owner are removed from dependents that have another owner (background propagation; Foreground is treated
//   as Background); with propagationPolicy=Orphan the references are removed and the dependents stay.
import { type Answer, type Context, timestamp } from './context.ts';
import { badRequest, conflict, notFound, status } from './errors.ts';
import { apiVersionOf, CRD_STORAGE_KEY, type CrdSpec, type ResourceType, served } from './resources.ts';
import type { KubeObject } from './store.ts';

export type Propagation = 'Orphan' | 'Background' | 'Foreground';

export interface DeleteOptions {
  propagationPolicy?: Propagation;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

/** DeleteOptions from the request body (may be empty) and query, as kube-apiserver merges them. */
export function deleteOptions(body: unknown, query: URLSearchParams): DeleteOptions {
  const given = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const policy = query.get('propagationPolicy') ?? given.propagationPolicy ?? (given.orphanDependents === true ? 'Orphan' : undefined);
  if (policy !== undefined && policy !== 'Orphan' && policy !== 'Background' && policy !== 'Foreground') {
    throw badRequest(`propagationPolicy: Unsupported value: "${String(policy)}": supported values: "Foreground", "Background", "Orphan"`);
  }
  const dryRun = query.getAll('dryRun').includes('All') || (Array.isArray(given.dryRun) && given.dryRun.includes('All'));
  return { ...(policy ? { propagationPolicy: policy } : {}), preconditions: (given.preconditions ?? {}) as DeleteOptions['preconditions'], dryRun };
}

export function deleteObject(ctx: Context, type: ResourceType, namespace: string | undefined, name: string, options: DeleteOptions): Answer {
  const existing = ctx.store.get(type.storageKey, namespace, name);
  if (!existing) throw notFound(type, name);
  const { uid, resourceVersion } = options.preconditions ?? {};
  if (uid && uid !== existing.metadata.uid) {
    throw conflict(type, name, `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${existing.metadata.uid}`);
  }
  if (resourceVersion && resourceVersion !== existing.metadata.resourceVersion) {
    throw conflict(type, name, `Precondition failed: ResourceVersion in precondition: ${resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion}`);
  }
  if (options.dryRun) return deletedAnswer(type, existing, (existing.metadata.finalizers ?? []).length === 0);
  const after = deleteStored(ctx, type.storageKey, existing, options.propagationPolicy ?? 'Background');
  return deletedAnswer(type, after.object, after.gone);
}

/** 200 when the object is gone (the object or a Status, as the resource does), 202 with the object when it waits for finalizers. */
function deletedAnswer(type: ResourceType, object: KubeObject, gone: boolean): Answer {
  if (!gone) return { code: 202, body: served(object, type) };
  if (type.returnsDeletedObject) return { code: 200, body: served(object, type) };
  const { name, uid } = object.metadata;
  return { code: 200, body: status({ status: 'Success', details: { name, ...(type.group ? { group: type.group } : {}), kind: type.plural, uid } }) };
}

/** Deletes a stored object: marks it if it has finalizers, removes it otherwise. */
export function deleteStored(ctx: Context, key: string, object: KubeObject, policy: Propagation): { object: KubeObject; gone: boolean } {
  if ((object.metadata.finalizers ?? []).length > 0) {
    if (object.metadata.deletionTimestamp) return { object, gone: false };
    const marked = structuredClone(object);
    marked.metadata.deletionTimestamp = timestamp(ctx.clock);
    marked.metadata.deletionGracePeriodSeconds = 0;
    return { object: ctx.store.update(key, marked), gone: false };
  }
  return { object: removeNow(ctx, key, object, policy), gone: true };
}

/** Removes the object from the store (watchers see `finalState`), then what depends on it. */
export function removeNow(ctx: Context, key: string, finalState: KubeObject, policy: Propagation = 'Background'): KubeObject {
  const { namespace, name } = finalState.metadata;
  const removed = ctx.store.remove(key, namespace, name, finalState);
  if (key === 'namespaces') {
    for (const k of ctx.store.keys()) {
      for (const object of ctx.store.list(k, name)) deleteIfPresent(ctx, k, object, 'Background');
    }
  }
  if (key === CRD_STORAGE_KEY) {
    const spec = removed.spec as CrdSpec;
    for (const object of ctx.store.list(`${spec.group}/${spec.names.plural}`)) {
      if (ctx.store.get(`${spec.group}/${spec.names.plural}`, object.metadata.namespace, object.metadata.name)) removeNow(ctx, `${spec.group}/${spec.names.plural}`, object);
    }
  }
  collectDependents(ctx, removed.metadata.uid!, policy);
  return removed;
}

function deleteIfPresent(ctx: Context, key: string, object: KubeObject, policy: Propagation): void {
  const current = ctx.store.get(key, object.metadata.namespace, object.metadata.name);
  if (current) deleteStored(ctx, key, current, policy);
}

/** The garbage collector's work for one deleted owner. */
function collectDependents(ctx: Context, ownerUid: string, policy: Propagation): void {
  for (const key of ctx.store.keys()) {
    for (const dependent of ctx.store.list(key)) {
      const refs = dependent.metadata.ownerReferences ?? [];
      if (!refs.some((r) => r.uid === ownerUid)) continue;
      const current = ctx.store.get(key, dependent.metadata.namespace, dependent.metadata.name);
      if (!current) continue;
      const others = refs.filter((r) => r.uid !== ownerUid);
      if (policy !== 'Orphan' && !others.some((r) => uidExists(ctx, r.uid))) {
        deleteStored(ctx, key, current, 'Background');
        continue;
      }
      const kept = structuredClone(current);
      if (others.length > 0) kept.metadata.ownerReferences = others;
      else delete kept.metadata.ownerReferences;
      ctx.store.update(key, kept);
    }
  }
}

function uidExists(ctx: Context, uid: string): boolean {
  return ctx.store.keys().some((key) => ctx.store.list(key).some((o) => o.metadata.uid === uid));
}

export function deleteCollection(ctx: Context, type: ResourceType, objects: KubeObject[], options: DeleteOptions): Answer {
  const deleted: KubeObject[] = [];
  for (const object of objects) {
    // An earlier deletion in this collection may have taken this one with it (owner references).
    const current = ctx.store.get(type.storageKey, object.metadata.namespace, object.metadata.name);
    if (!current) continue;
    deleted.push(options.dryRun ? current : deleteStored(ctx, type.storageKey, current, options.propagationPolicy ?? 'Background').object);
  }
  return {
    code: 200,
    body: { kind: type.listKind, apiVersion: apiVersionOf(type), metadata: { resourceVersion: String(ctx.store.resourceVersion) }, items: deleted.map((o) => served(o, type)) },
  };
}
