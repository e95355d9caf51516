// Deletion, and what follows it, as kube-apiserver's registry decides it (rest.BeforeDelete, and the pod
// strategy's CheckGracefulDelete):
// - A pod on a node (spec.nodeName) that has not finished (phase neither Succeeded nor Failed) is deleted
//   gracefully, its kubelet (hack/lab has a stand-in) finishing the job: a delete with a grace period above 0
//   (DeleteOptions.gracePeriodSeconds, else the pod's spec.terminationGracePeriodSeconds, else 30) only marks it
//   (deletionTimestamp now + grace, deletionGracePeriodSeconds grace: 200 with the pod, a MODIFIED event). Its
//   kubelet stops the containers and deletes it with grace 0, which removes it. While it waits, a delete may
//   only shorten the grace period. Nothing here ends a grace period on its own: a pod whose kubelet is gone stays
//   marked, as in kube-apiserver (where the pod GC controller force-deletes pods of nodes that are gone).
// - An object with finalizers is marked (deletionTimestamp, deletionGracePeriodSeconds 0; 202) and goes when an
//   update removes its last finalizer (objects.ts); a pod with finalizers, when both its grace period has been
//   ended by a delete with grace 0 and its finalizers are gone, in either order.
// - Anything else goes at once (pods not on a node, or finished, too), and then, as kube-apiserver's controllers
//   would do a moment later:
//   - a namespace takes its objects with it (at once, not through a Terminating phase): they are deleted as above,
//     so its pods on nodes are marked and stay until their kubelet removes them;
//   - a CRD takes its custom resources with it (even those with finalizers);
//   - dependents (metadata.ownerReferences) whose owners are all gone are deleted the same way (a StatefulSet's
//     pods are marked and left to their kubelet), and references to the deleted owner are removed from
//     dependents that have another owner (background propagation; Foreground is treated as Background); with
//     propagationPolicy=Orphan the references are removed and the dependents stay.
import { type Answer, type Context, formatTime } from './context.ts';
import { badRequest, conflict, notFound, status } from './errors.ts';
import { isObject } from './patch.ts';
import { apiVersionOf, CRD_STORAGE_KEY, type CrdSpec, type ResourceType, served } from './resources.ts';
import type { KubeObject } from './store.ts';

export type Propagation = 'Orphan' | 'Background' | 'Foreground';

export interface DeleteOptions {
  propagationPolicy?: Propagation;
  preconditions?: { uid?: string; resourceVersion?: string };
  /** only pods have a grace period; other kinds ignore it, as in kube-apiserver */
  gracePeriodSeconds?: number;
  dryRun?: boolean;
}

/**
 * DeleteOptions from the request body (may be empty) and the query. kube-apiserver reads the query only when
 * there is no body; here a query parameter wins over the body's field, so send them in the body to be portable.
 */
export function deleteOptions(body: unknown, query: URLSearchParams): DeleteOptions {
  const given = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const policy = query.get('propagationPolicy') ?? given.propagationPolicy ?? (given.orphanDependents === true ? 'Orphan' : undefined);
  if (policy !== undefined && policy !== 'Orphan' && policy !== 'Background' && policy !== 'Foreground') {
    throw badRequest(`propagationPolicy: Unsupported value: "${String(policy)}": supported values: "Foreground", "Background", "Orphan"`);
  }
  const grace = query.get('gracePeriodSeconds') ?? given.gracePeriodSeconds ?? undefined;
  if (grace !== undefined && grace !== null && !(typeof grace === 'number' ? Number.isInteger(grace) : /^-?\d+$/.test(String(grace)))) {
    throw badRequest(`gracePeriodSeconds: Invalid value: ${JSON.stringify(grace)}: must be an integer`);
  }
  const dryRun = query.getAll('dryRun').includes('All') || (Array.isArray(given.dryRun) && given.dryRun.includes('All'));
  return {
    ...(policy ? { propagationPolicy: policy } : {}),
    preconditions: (given.preconditions ?? {}) as DeleteOptions['preconditions'],
    ...(grace !== undefined && grace !== null ? { gracePeriodSeconds: Number(grace) } : {}),
    dryRun,
  };
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
  const outcome = options.dryRun
    ? decide(ctx, type.storageKey, existing, options.gracePeriodSeconds)
    : deleteStored(ctx, type.storageKey, existing, options.propagationPolicy ?? 'Background', options.gracePeriodSeconds);
  return deletedAnswer(type, outcome);
}

/** What a delete did (or, in a dry run, would do) to one object. */
export type Outcome =
  /** removed from the store; `object` is its last state */
  | { gone: true; object: KubeObject }
  /** still there, marked; `changed` when this delete marked it (or shortened its grace period) */
  | { gone: false; object: KubeObject; changed: boolean; waitsFor: 'kubelet' | 'finalizers' };

/**
 * 200 when the object is gone (the object or a Status, as the resource does) or waits for its kubelet (the
 * pod), 202 with the object when it waits for finalizers.
 */
function deletedAnswer(type: ResourceType, outcome: Outcome): Answer {
  const { object } = outcome;
  if (!outcome.gone) return { code: outcome.waitsFor === 'finalizers' ? 202 : 200, body: served(object, type) };
  if (type.returnsDeletedObject) return { code: 200, body: served(object, type) };
  const { name, uid } = object.metadata;
  return { code: 200, body: status({ status: 'Success', details: { name, ...(type.group ? { group: type.group } : {}), kind: type.plural, uid } }) };
}

/** Deletes a stored object: marks it (grace period, finalizers) or removes it, as `decide` says. */
export function deleteStored(ctx: Context, key: string, object: KubeObject, policy: Propagation, gracePeriodSeconds?: number): Outcome {
  const outcome = decide(ctx, key, object, gracePeriodSeconds);
  if (outcome.gone) return { gone: true, object: removeNow(ctx, key, outcome.object, policy) };
  return outcome.changed ? { ...outcome, object: ctx.store.update(key, outcome.object) } : outcome;
}

/** What a delete does to an object, without doing it (the rules at the top of this file). */
function decide(ctx: Context, key: string, object: KubeObject, requested: number | undefined): Outcome {
  const meta = object.metadata;
  const finalizers = (meta.finalizers ?? []).length > 0;
  const mark = (at: number, seconds: number) => {
    const marked = structuredClone(object);
    marked.metadata.deletionTimestamp = formatTime(new Date(at));
    marked.metadata.deletionGracePeriodSeconds = seconds;
    return marked;
  };
  const now = ctx.clock.now().getTime();
  // A negative grace period is taken as 1 s, as kube-apiserver does.
  const asked = requested === undefined ? undefined : requested < 0 ? 1 : requested;
  if (!meta.deletionTimestamp) {
    const grace = key === 'pods' ? podGracePeriod(object, asked) : 0;
    if (grace > 0) return { gone: false, object: mark(now + grace * 1000, grace), changed: true, waitsFor: 'kubelet' };
    if (finalizers) return { gone: false, object: mark(now, 0), changed: true, waitsFor: 'finalizers' };
    return { gone: true, object };
  }
  const running = Number(meta.deletionGracePeriodSeconds ?? 0);
  if (running > 0) {
    // A graceful deletion under way: a delete may only shorten it, moving deletionTimestamp back as much.
    if (asked === undefined || asked >= running) return { gone: false, object, changed: false, waitsFor: 'kubelet' };
    const shortened = mark(Date.parse(meta.deletionTimestamp) - (running - asked) * 1000, asked);
    if (asked > 0) return { gone: false, object: shortened, changed: true, waitsFor: 'kubelet' };
    return finalizers ? { gone: false, object: shortened, changed: true, waitsFor: 'finalizers' } : { gone: true, object: shortened };
  }
  return finalizers ? { gone: false, object, changed: false, waitsFor: 'finalizers' } : { gone: true, object };
}

/** The pod strategy's grace period: the one asked for, else the pod's own, else 30 s; 0 off a node or finished. */
function podGracePeriod(pod: KubeObject, asked: number | undefined): number {
  const spec = isObject(pod.spec) ? pod.spec : {};
  const phase = isObject(pod.status) ? pod.status.phase : undefined;
  if (!spec.nodeName || phase === 'Succeeded' || phase === 'Failed') return 0;
  const own = typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : DEFAULT_TERMINATION_GRACE_SECONDS;
  const grace = asked ?? own;
  return grace < 0 ? 1 : grace;
}

/** What kube-apiserver defaults spec.terminationGracePeriodSeconds to. */
const DEFAULT_TERMINATION_GRACE_SECONDS = 30;

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
    const outcome = options.dryRun
      ? decide(ctx, type.storageKey, current, options.gracePeriodSeconds)
      : deleteStored(ctx, type.storageKey, current, options.propagationPolicy ?? 'Background', options.gracePeriodSeconds);
    deleted.push(outcome.object);
  }
  return {
    code: 200,
    body: { kind: type.listKind, apiVersion: apiVersionOf(type), metadata: { resourceVersion: String(ctx.store.resourceVersion) }, items: deleted.map((o) => served(o, type)) },
  };
}
