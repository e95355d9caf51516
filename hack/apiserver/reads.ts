// Get and list. A list is always served from the current state: `resourceVersion` (unset, "0" or an older
// version, the default NotOlderThan match) gets the newest; `resourceVersionMatch=Exact` of anything but the
// newest version is 410 Gone, as if etcd had compacted it; pages (limit/continue) continue from the current
// state after the last key, and a continue token older than the kept history is 410 Gone.
import type { Context } from './context.ts';
import { badRequest, expired, notFound } from './errors.ts';
import { apiVersionOf, type ResourceType, served } from './resources.ts';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.ts';
import type { KubeObject } from './store.ts';

export function getObject(ctx: Context, type: ResourceType, namespace: string | undefined, name: string): KubeObject {
  const object = ctx.store.get(type.storageKey, namespace, name);
  if (!object) throw notFound(type, name);
  return served(object, type);
}

/** The label and field selectors of a request as one predicate on stored objects. */
export function selection(type: ResourceType, query: URLSearchParams): (object: KubeObject) => boolean {
  const labels = parseLabelSelector(query.get('labelSelector') ?? '');
  const fields = parseFieldSelector(query.get('fieldSelector') ?? '');
  for (const { field } of fields) {
    if (field !== 'metadata.name' && field !== 'metadata.namespace' && !(field in type.fields)) {
      throw badRequest(`field label not supported: ${field} (${type.kind} can be selected by ${['metadata.name', 'metadata.namespace', ...Object.keys(type.fields)].join(', ')})`);
    }
  }
  return (object) => matchesLabels(labels, object.metadata.labels) && matchesFields(fields, (field) => fieldValue(type, object, field));
}

function fieldValue(type: ResourceType, object: KubeObject, field: string): string {
  if (field === 'metadata.name') return object.metadata.name;
  if (field === 'metadata.namespace') return object.metadata.namespace ?? '';
  const { path, absent } = type.fields[field]!;
  let value: unknown = object;
  for (const part of path.split('.')) value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[part] : undefined;
  return value === undefined || value === null ? absent : String(value);
}

interface Continue {
  /** the version of the first page, which every page reports */
  rv: number;
  /** namespace/name of the last object sent */
  after: string;
}

export function listObjects(ctx: Context, type: ResourceType, namespace: string | undefined, query: URLSearchParams): Record<string, unknown> {
  const matches = selection(type, query);
  const current = ctx.store.resourceVersion;
  const token = query.get('continue');
  let page: Continue | undefined;
  if (token) {
    page = decodeContinue(token);
    if (page.rv < ctx.store.oldestResumable) {
      throw expired(`The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.`);
    }
  } else {
    checkListVersion(query, current);
  }
  let items = ctx.store.list(type.storageKey, namespace).filter(matches);
  if (page) items = items.filter((o) => keyOf(o) > page.after);
  const limit = Number(query.get('limit') ?? 0);
  const metadata: Record<string, unknown> = { resourceVersion: String(page?.rv ?? current) };
  if (limit > 0 && items.length > limit) {
    const rest = items.length - limit;
    items = items.slice(0, limit);
    metadata.continue = encodeContinue({ rv: page?.rv ?? current, after: keyOf(items[items.length - 1]!) });
    metadata.remainingItemCount = rest;
  }
  return { kind: type.listKind, apiVersion: apiVersionOf(type), metadata, items: items.map((o) => served(o, type)) };
}

function checkListVersion(query: URLSearchParams, current: number): void {
  const rv = query.get('resourceVersion') ?? '';
  const match = query.get('resourceVersionMatch') ?? '';
  if (match && match !== 'Exact' && match !== 'NotOlderThan') throw badRequest(`resourceVersionMatch: Unsupported value: "${match}": supported values: "Exact", "NotOlderThan"`);
  if (match && !rv) throw badRequest('resourceVersionMatch is forbidden unless resourceVersion is provided');
  if (rv === '' || rv === '0') return;
  if (!/^\d+$/.test(rv)) throw badRequest(`resourceVersion: Invalid value: "${rv}": must be a non-negative integer`);
  if (Number(rv) > current) throw expired(`resourceVersion ${rv} is newer than this server's ${current}: it was not issued by this server (restarted without its store?)`);
  if (match === 'Exact' && Number(rv) !== current) throw expired(`too old resource version: ${rv} (${current}): this server lists only its newest version`);
}

function keyOf(object: KubeObject): string {
  return `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}

function encodeContinue(page: Continue): string {
  return Buffer.from(JSON.stringify(page)).toString('base64url');
}

function decodeContinue(token: string): Continue {
  try {
    const page = JSON.parse(Buffer.from(token, 'base64url').toString()) as Continue;
    if (typeof page.rv === 'number' && typeof page.after === 'string') return page;
  } catch {
    // fall through to the error below
  }
  throw badRequest(`continue: Invalid value: "${token}": not a continue token of this server`);
}
