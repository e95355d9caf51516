// Create, update and patch, with kube-apiserver's rules for what a client may set: the server owns uid,
// creationTimestamp, resourceVersion, generation and deletionTimestamp; a stale resourceVersion is a 409
// Conflict; with a status subresource, writes to the object keep its status and writes to /status keep
// everything else; a write that changes nothing is not stored (no new resourceVersion, no watch event).
import { randomInt, randomUUID } from 'node:crypto';
import { type Answer, type Context, timestamp } from './context.ts';
import { removeNow } from './deletion.ts';
import { alreadyExists, ApiError, badRequest, conflict, fieldError, invalid, notFound, STALE_OBJECT, type StatusCause } from './errors.ts';
import { KIND_RULES } from './kinds.ts';
import { applyPatch, deepEqual, isObject, PATCH_TYPES, type PatchType } from './patch.ts';
import { apiVersionOf, type ResourceType, served, toStorage } from './resources.ts';
import { applySchema } from './schema.ts';
import type { KubeObject, ObjectMeta } from './store.ts';
import { validateMetadata } from './validate.ts';

export interface WriteOptions {
  /** `dryRun=All`: everything but the store write */
  dryRun?: boolean;
  /** what to do with fields a custom resource's schema does not know: Strict refuses, Warn (default) warns */
  fieldValidation?: 'Strict' | 'Warn' | 'Ignore';
}

/** A request body as an object of this resource, in the namespace of the URL. */
function incoming(type: ResourceType, body: unknown, namespace: string | undefined): KubeObject {
  if (!isObject(body)) throw badRequest(`the body of the request is not a ${type.kind} object`);
  const object = structuredClone(body) as unknown as KubeObject;
  if (object.kind !== undefined && object.kind !== type.kind) throw badRequest(`the kind in the data (${object.kind}) does not match the expected kind (${type.kind})`);
  if (object.apiVersion !== undefined && object.apiVersion !== apiVersionOf(type)) {
    throw badRequest(`the API version in the data (${object.apiVersion}) does not match the expected API version (${apiVersionOf(type)})`);
  }
  if (object.metadata === undefined) object.metadata = {} as ObjectMeta;
  if (!isObject(object.metadata)) throw badRequest(`the metadata of the ${type.kind} is not an object`);
  const meta = object.metadata;
  if (type.namespaced) {
    if (meta.namespace && meta.namespace !== namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    meta.namespace = namespace;
  } else {
    delete meta.namespace;
  }
  return { ...object, apiVersion: apiVersionOf(type), kind: type.kind };
}

// Fields a client cannot set, or that this server does not keep (no server-side apply, so no managedFields).
const SERVER_OWNED = ['uid', 'creationTimestamp', 'generation', 'deletionTimestamp', 'deletionGracePeriodSeconds'] as const;
const NOT_KEPT = ['selfLink', 'managedFields'] as const;

/** The random suffix kube-apiserver adds to generateName: five characters without vowels or look-alikes. */
function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return Array.from({ length: 5 }, () => alphabet[randomInt(alphabet.length)]).join('');
}

export function createObject(ctx: Context, type: ResourceType, namespace: string | undefined, body: unknown, options: WriteOptions): Answer {
  const object = incoming(type, body, namespace);
  const meta = object.metadata;
  if (!meta.name && typeof meta.generateName === 'string' && meta.generateName) meta.name = `${meta.generateName}${randomSuffix()}`;
  if (type.namespaced && !ctx.store.get('namespaces', undefined, namespace!)) throw notFound({ group: '', plural: 'namespaces' }, namespace!);
  for (const field of [...SERVER_OWNED, ...NOT_KEPT, 'resourceVersion']) delete meta[field];
  meta.uid = randomUUID();
  meta.creationTimestamp = timestamp(ctx.clock);
  if (type.tracksGeneration) meta.generation = 1;
  const rules = KIND_RULES[type.storageKey];
  if (type.hasStatus && !rules?.keepsStatusOnCreate) delete object.status;
  rules?.created?.(object);
  const { object: checked, warnings } = check(ctx, type, object, undefined, options, false);
  if (ctx.store.get(type.storageKey, namespace, meta.name)) throw alreadyExists(type, meta.name);
  if (options.dryRun) return { code: 201, body: checked, warnings };
  const stored = ctx.store.create(type.storageKey, toStorage(checked, type));
  return { code: 201, body: served(stored, type), warnings };
}

export interface UpdateTarget {
  type: ResourceType;
  namespace: string | undefined;
  name: string;
  subresource?: 'status';
}

export function updateObject(ctx: Context, target: UpdateTarget, body: unknown, options: WriteOptions, fromPatch = false): Answer {
  const { type, namespace, name, subresource } = target;
  const existing = ctx.store.get(type.storageKey, namespace, name);
  if (!existing) throw notFound(type, name);
  const given = incoming(type, body, namespace);
  if (given.metadata.name !== name) throw badRequest(`the name of the object (${given.metadata.name ?? ''}) does not match the name on the URL (${name})`);
  checkPreconditions(type, existing, given.metadata, fromPatch);

  const current = served(existing, type);
  let next: KubeObject;
  if (subresource === 'status') {
    next = structuredClone(current);
    if ('status' in given) next.status = given.status;
    else delete next.status;
  } else {
    next = given;
    const meta: Record<string, unknown> = next.metadata;
    for (const field of SERVER_OWNED) {
      if (current.metadata[field] === undefined) delete meta[field];
      else meta[field] = current.metadata[field];
    }
    for (const field of NOT_KEPT) delete next.metadata[field];
    if (type.hasStatus) {
      if ('status' in current) next.status = structuredClone(current.status);
      else delete next.status;
    }
  }
  next.metadata.resourceVersion = current.metadata.resourceVersion;
  if (current.metadata.deletionTimestamp) {
    const added = (next.metadata.finalizers ?? []).filter((f) => !(current.metadata.finalizers ?? []).includes(f));
    if (added.length > 0) throw invalid(type, name, [fieldError('FieldValueForbidden', 'metadata.finalizers', 'no new finalizers can be added if the object is being deleted', added)]);
  }
  const { object: checked, warnings } = check(ctx, type, next, current, options, subresource === 'status');
  if (type.tracksGeneration && subresource !== 'status' && !deepEqual(specOf(checked, type), specOf(current, type))) {
    checked.metadata.generation = (current.metadata.generation ?? 0) + 1;
  }
  if (deepEqual(checked, current)) return { code: 200, body: current, warnings };
  if (options.dryRun) return { code: 200, body: checked, warnings };
  // The last finalizer of an object being deleted is gone: the update is its deletion — unless it is a pod whose
  // grace period runs yet (deletion.ts): then the kubelet's delete with grace 0 removes it.
  const graceRuns = Number(checked.metadata.deletionGracePeriodSeconds ?? 0) > 0;
  if (checked.metadata.deletionTimestamp && (checked.metadata.finalizers ?? []).length === 0 && !graceRuns) {
    const removed = removeNow(ctx, type.storageKey, toStorage(checked, type));
    return { code: 200, body: served(removed, type), warnings };
  }
  const stored = ctx.store.update(type.storageKey, toStorage(checked, type));
  return { code: 200, body: served(stored, type), warnings };
}

export function patchObject(ctx: Context, target: UpdateTarget, contentType: string, patch: unknown, options: WriteOptions): Answer {
  const { type, namespace, name } = target;
  const patchType = patchTypeFor(type, contentType);
  const existing = ctx.store.get(type.storageKey, namespace, name);
  if (!existing) throw notFound(type, name);
  const patched = applyPatch(patchType, served(existing, type), patch);
  if (!isObject(patched) || !isObject(patched.metadata)) throw new ApiError('Invalid', `the patch made ${type.kind} ${namespace ? `${namespace}/` : ''}${name} something other than an object with metadata`);
  return updateObject(ctx, target, patched, options, true);
}

/** The patch a Content-Type names; 415 for an unknown one, and for strategic merge on a custom resource. */
export function patchTypeFor(type: ResourceType, contentType: string): PatchType {
  const patchType = PATCH_TYPES[contentType as keyof typeof PATCH_TYPES];
  if (!patchType || (patchType === 'strategic' && type.custom)) {
    const accepted = type.custom ? Object.keys(PATCH_TYPES).filter((t) => PATCH_TYPES[t as keyof typeof PATCH_TYPES] !== 'strategic') : Object.keys(PATCH_TYPES);
    throw new ApiError('UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`);
  }
  return patchType;
}

/** A PUT must name the version it read (unless the resource allows unconditional updates), and the same uid. */
function checkPreconditions(type: ResourceType, existing: KubeObject, given: ObjectMeta, fromPatch: boolean): void {
  const name = existing.metadata.name;
  if (!given.resourceVersion) {
    // A patch that leaves resourceVersion out applies to whatever is current; a PUT must say what it read.
    if (!type.unconditionalUpdate && !fromPatch) throw invalid(type, name, [fieldError('FieldValueInvalid', 'metadata.resourceVersion', 'must be specified for an update', 0)]);
  } else if (given.resourceVersion !== existing.metadata.resourceVersion) {
    throw conflict(type, name, STALE_OBJECT);
  }
  if (given.uid && given.uid !== existing.metadata.uid) {
    throw conflict(type, name, `Precondition failed: UID in precondition: ${given.uid}, UID in object meta: ${existing.metadata.uid}`);
  }
}

/** What generation counts: everything but metadata, and but status when status is a subresource. */
function specOf(object: KubeObject, type: ResourceType): Record<string, unknown> {
  const { metadata: _, status, ...rest } = object;
  return type.hasStatus ? rest : { ...rest, status };
}

/** The checks every write passes: metadata, the kind's own rules, a custom resource's schema. */
function check(ctx: Context, type: ResourceType, object: KubeObject, previous: KubeObject | undefined, options: WriteOptions, statusOnly: boolean): { object: KubeObject; warnings: string[] } {
  const causes: StatusCause[] = [...validateMetadata(type, object)];
  if (!statusOnly) causes.push(...(KIND_RULES[type.storageKey]?.written?.(object, previous, timestamp(ctx.clock)) ?? []));
  let checked = object;
  const warnings: string[] = [];
  if (type.schema) {
    const result = applySchema(object, type.schema);
    checked = result.object as KubeObject;
    causes.push(...result.causes);
    const unknown = result.unknownFields.map((f) => `unknown field "${f}"`);
    if (unknown.length > 0 && options.fieldValidation === 'Strict') throw badRequest(`strict decoding error: ${unknown.join(', ')}`);
    if (options.fieldValidation !== 'Ignore') warnings.push(...unknown);
  }
  if (causes.length > 0) throw invalid(type, object.metadata.name ?? '', causes);
  return { object: checked, warnings };
}
