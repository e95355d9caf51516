// The subresources beside status: pods/binding, with which a scheduler puts a pod on a node, and the scale of
// the apps kinds with replicas (an autoscaling/v1 Scale), which `kubectl scale` and autoscalers write. Both are
// views of the object they belong to, written through the same store rules as any write to it.
import { type Answer, type Context, timestamp } from './context.ts';
import { ApiError, badRequest, conflict, fieldError, invalid, notFound, status } from './errors.ts';
import { patchTypeFor, updateObject, type UpdateTarget, type WriteOptions } from './objects.ts';
import { applyPatch, isObject } from './patch.ts';
import { served } from './resources.ts';
import { labelSelectorString } from './selectors.ts';
import type { KubeObject } from './store.ts';

/** A request body of a subresource's own kind (Binding, Scale), checked as kube-apiserver decodes it. */
function incoming(body: unknown, kind: string, apiVersion: string, namespace: string | undefined): Record<string, unknown> & { metadata: Record<string, unknown> } {
  if (!isObject(body)) throw badRequest(`the body of the request is not a ${kind} object`);
  if (body.kind !== undefined && body.kind !== kind) throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${kind})`);
  if (body.apiVersion !== undefined && body.apiVersion !== apiVersion) {
    throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${apiVersion})`);
  }
  const metadata = isObject(body.metadata) ? body.metadata : {};
  if (metadata.namespace && metadata.namespace !== namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  return { ...body, metadata };
}

/**
 * POST pods/<name>/binding, as kube-apiserver's BindingREST: sets spec.nodeName to the target node, copies the
 * Binding's annotations, and sets the PodScheduled condition True; answers 201 with a Success Status. A pod
 * that is on a node already, is being deleted, or has scheduling gates is 409 Conflict; the Binding's uid and
 * resourceVersion are preconditions, as the scheduler sends its pod's uid.
 */
export function bindPod(ctx: Context, target: UpdateTarget, body: unknown, options: WriteOptions): Answer {
  const { type, namespace, name } = target;
  const binding = incoming(body, 'Binding', 'v1', namespace);
  if (binding.metadata.name !== name) throw badRequest('name in URL does not match name in Binding object');
  const node = isObject(binding.target) ? binding.target : {};
  // kube-apiserver returns these as a plain error (not a Status), which it answers as a 500 with this message.
  const problems = [
    ...(node.kind && node.kind !== 'Node' ? [`target.kind: Unsupported value: "${String(node.kind)}": supported values: "Node", "<empty>"`] : []),
    ...(typeof node.name !== 'string' || node.name === '' ? ['target.name: Required value'] : []),
  ];
  if (problems.length > 0) throw new ApiError('InternalError', problems.length === 1 ? problems[0]! : `[${problems.join(', ')}]`);

  const pod = ctx.store.get(type.storageKey, namespace, name);
  if (!pod) throw notFound(type, name);
  const { uid, resourceVersion } = binding.metadata;
  if (uid && uid !== pod.metadata.uid) throw conflict(type, name, `Precondition failed: UID in precondition: ${String(uid)}, UID in object meta: ${pod.metadata.uid}`);
  if (resourceVersion && resourceVersion !== pod.metadata.resourceVersion) {
    throw conflict(type, name, `Precondition failed: ResourceVersion in precondition: ${String(resourceVersion)}, ResourceVersion in object meta: ${pod.metadata.resourceVersion}`);
  }
  const refuse = (why: string) => conflict({ group: '', plural: 'pods/binding' }, name, why);
  const spec = isObject(pod.spec) ? pod.spec : {};
  if (pod.metadata.deletionTimestamp) throw refuse(`pod ${name} is being deleted, cannot be assigned to a host`);
  if (spec.nodeName) throw refuse(`pod ${name} is already assigned to node "${String(spec.nodeName)}"`);
  if (Array.isArray(spec.schedulingGates) && spec.schedulingGates.length > 0) throw refuse(`pod ${name} has non-empty .spec.schedulingGates`);

  const bound = structuredClone(pod);
  bound.spec = { ...spec, nodeName: node.name };
  const annotations = isObject(binding.metadata.annotations) ? (binding.metadata.annotations as Record<string, string>) : {};
  if (Object.keys(annotations).length > 0) bound.metadata.annotations = { ...bound.metadata.annotations, ...annotations };
  const podStatus = isObject(bound.status) ? bound.status : {};
  bound.status = { ...podStatus, conditions: scheduledTrue(podStatus.conditions, timestamp(ctx.clock)) };
  if (!options.dryRun) ctx.store.update(type.storageKey, bound);
  return { code: 201, body: status({ status: 'Success', code: 201 }) };
}

/** The conditions with PodScheduled True, as podutil.UpdatePodCondition: it keeps its transition time if it was True. */
function scheduledTrue(conditions: unknown, now: string): unknown[] {
  const list = Array.isArray(conditions) ? conditions.filter(isObject) : [];
  const old = list.find((c) => c.type === 'PodScheduled');
  const condition = { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: old?.status === 'True' ? old.lastTransitionTime : now };
  return old ? list.map((c) => (c === old ? condition : c)) : [...list, condition];
}

/**
 * The object's Scale, as kube-apiserver's scaleFromDeployment (and StatefulSet's, ReplicaSet's): spec.replicas,
 * status.replicas and the selector string. Go's omitempty drops a spec.replicas of 0; status.replicas is always there.
 */
function scaleOf(object: KubeObject): KubeObject {
  const { name, namespace, uid, resourceVersion, creationTimestamp } = object.metadata;
  const spec = isObject(object.spec) ? object.spec : {};
  const objectStatus = isObject(object.status) ? object.status : {};
  const replicas = typeof spec.replicas === 'number' ? spec.replicas : 0;
  const selector = labelSelectorString(spec.selector);
  return {
    apiVersion: 'autoscaling/v1',
    kind: 'Scale',
    metadata: { name, namespace, uid, resourceVersion, creationTimestamp },
    spec: replicas === 0 ? {} : { replicas },
    status: { replicas: typeof objectStatus.replicas === 'number' ? objectStatus.replicas : 0, ...(selector ? { selector } : {}) },
  };
}

/** GET <plural>/<name>/scale. */
export function getScale(ctx: Context, target: UpdateTarget): Answer {
  const { type, namespace, name } = target;
  const object = ctx.store.get(type.storageKey, namespace, name);
  if (!object) throw notFound({ group: type.group, plural: `${type.plural}/scale` }, name);
  return { code: 200, body: scaleOf(object) };
}

/**
 * PUT <plural>/<name>/scale: the Scale's spec.replicas (absent is 0, as kube-apiserver decodes it) becomes the
 * object's, through an update of the object: its resourceVersion is checked, its generation counts the change.
 */
export function updateScale(ctx: Context, target: UpdateTarget, body: unknown, options: WriteOptions): Answer {
  const { type, namespace, name } = target;
  const existing = ctx.store.get(type.storageKey, namespace, name);
  if (!existing) throw notFound(type, name);
  const scale = incoming(body, 'Scale', 'autoscaling/v1', namespace);
  if (scale.metadata.name !== name) throw badRequest(`the name of the object (${String(scale.metadata.name ?? '')}) does not match the name on the URL (${name})`);
  const replicas = isObject(scale.spec) && scale.spec.replicas !== undefined ? scale.spec.replicas : 0;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas)) {
    throw badRequest(`Scale in version "v1" cannot be handled as a Scale: spec.replicas: ${JSON.stringify(replicas)} is not an integer`);
  }
  if (replicas < 0) throw invalid({ group: 'autoscaling', kind: 'Scale' }, name, [fieldError('FieldValueInvalid', 'spec.replicas', 'must be greater than or equal to 0', replicas)]);
  const { uid, resourceVersion } = scale.metadata;
  if (uid && uid !== existing.metadata.uid) {
    throw conflict({ group: type.group, plural: `${type.plural}/scale` }, name, `Precondition failed: UID in precondition: ${String(uid)}, UID in object meta: ${existing.metadata.uid}`);
  }
  const next = served(existing, type);
  next.spec = { ...(isObject(next.spec) ? next.spec : {}), replicas };
  if (resourceVersion) next.metadata.resourceVersion = String(resourceVersion);
  else delete next.metadata.resourceVersion;
  const answer = updateObject(ctx, { type, namespace, name }, next, options);
  return { ...answer, body: scaleOf(answer.body as KubeObject) };
}

/** PATCH <plural>/<name>/scale: the patch applies to the Scale (what `kubectl scale` sends: a merge patch of spec.replicas). */
export function patchScale(ctx: Context, target: UpdateTarget, contentType: string, patch: unknown, options: WriteOptions): Answer {
  const { type, namespace, name } = target;
  const patchType = patchTypeFor(type, contentType);
  const existing = ctx.store.get(type.storageKey, namespace, name);
  if (!existing) throw notFound(type, name);
  return updateScale(ctx, target, applyPatch(patchType, scaleOf(existing), patch), options);
}
