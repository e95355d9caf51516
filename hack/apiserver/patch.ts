// The three patch formats of the Kubernetes API, applied to plain JSON values:
// - JSON merge patch (RFC 7386, application/merge-patch+json);
// - JSON patch (RFC 6902, application/json-patch+json);
// - strategic merge patch (application/strategic-merge-patch+json), as a merge patch that also obeys the
//   directives kubectl puts in its patches. The real one merges lists by a key that the Go types declare
//   (containers by name, ...); this server has no Go types, so it takes the key from the patch's
//   `$setElementOrder/<list>` directive, which kubectl apply sends beside every list it merges. A list without
//   that directive is replaced, as in a merge patch. Also understood: `$patch: replace|delete`, `$retainKeys`,
//   `$deleteFromPrimitiveList/<list>`.
import { ApiError, badRequest } from './errors.ts';

export const PATCH_TYPES = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
} as const;
export type PatchType = (typeof PATCH_TYPES)[keyof typeof PATCH_TYPES];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function applyPatch(type: PatchType, original: unknown, patch: unknown): unknown {
  switch (type) {
    case 'merge':
      return mergePatch(original, patch);
    case 'json':
      return jsonPatch(original, patch);
    case 'strategic':
      return strategicMergePatch(original, patch);
  }
}

export function mergePatch(target: unknown, patch: unknown): unknown {
  return merge(target as Json, patch as Json);
}

function merge(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = merge(result[key], value);
  }
  return result;
}

// --- JSON patch ---------------------------------------------------------------------------------------------

interface Operation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: Json;
}

export function jsonPatch(document: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw badRequest('json patch must be an array of operations');
  // A holder object lets the root ("" path) be replaced like any other member.
  const root: JsonObject = { doc: structuredClone(document as Json) };
  patch.forEach((raw: unknown, index) => {
    const op = checkOperation(raw, index);
    const where = `json patch operation ${index} (${op.op} ${op.path})`;
    switch (op.op) {
      case 'add':
        put(root, op.path, structuredClone(op.value!), where);
        break;
      case 'remove':
        take(root, op.path, where);
        break;
      case 'replace':
        // Replace is remove then add at the same place; the remove checks that the target exists.
        take(root, op.path, where);
        put(root, op.path, structuredClone(op.value!), where);
        break;
      case 'move': {
        if (op.path.startsWith(`${op.from!}/`)) throw unprocessable(`${where}: cannot move a value into itself`);
        put(root, op.path, take(root, op.from!, where), where);
        break;
      }
      case 'copy':
        put(root, op.path, structuredClone(get(root, op.from!, where)), where);
        break;
      case 'test':
        if (!deepEqual(get(root, op.path, where), op.value!)) throw unprocessable(`${where}: testing value ${JSON.stringify(op.value)} failed`);
        break;
    }
  });
  return root.doc!;
}

function checkOperation(raw: unknown, index: number): Operation {
  if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
    throw badRequest(`json patch operation ${index} needs "op" and "path" strings`);
  }
  if (!['add', 'remove', 'replace', 'move', 'copy', 'test'].includes(raw.op)) throw badRequest(`json patch operation ${index}: unknown op "${raw.op}"`);
  if ((raw.op === 'move' || raw.op === 'copy') && typeof raw.from !== 'string') throw badRequest(`json patch operation ${index} (${raw.op}) needs "from"`);
  if ((raw.op === 'add' || raw.op === 'replace' || raw.op === 'test') && !('value' in raw)) throw badRequest(`json patch operation ${index} (${raw.op}) needs "value"`);
  return raw as unknown as Operation;
}

function unprocessable(message: string): ApiError {
  return new ApiError('Invalid', message);
}

/** The parent container of `pointer` inside the holder, and the last token. */
function locate(root: JsonObject, pointer: string, where: string): { parent: Json; token: string } {
  if (pointer !== '' && !pointer.startsWith('/')) throw badRequest(`${where}: "${pointer}" is not a JSON pointer`);
  const tokens = ['doc', ...(pointer === '' ? [] : pointer.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~')))];
  let parent: Json = root;
  for (const token of tokens.slice(0, -1)) {
    const next = child(parent, token);
    if (next === undefined) throw unprocessable(`${where}: path "${pointer}" does not exist`);
    parent = next;
  }
  return { parent, token: tokens[tokens.length - 1]! };
}

function child(container: Json, token: string): Json | undefined {
  if (Array.isArray(container)) return /^(0|[1-9]\d*)$/.test(token) ? container[Number(token)] : undefined;
  if (isObject(container)) return Object.hasOwn(container, token) ? container[token] : undefined;
  return undefined;
}

function get(root: JsonObject, pointer: string, where: string): Json {
  const { parent, token } = locate(root, pointer, where);
  const value = child(parent, token);
  if (value === undefined) throw unprocessable(`${where}: path "${pointer}" does not exist`);
  return value;
}

function take(root: JsonObject, pointer: string, where: string): Json {
  const value = get(root, pointer, where);
  const { parent, token } = locate(root, pointer, where);
  if (Array.isArray(parent)) parent.splice(Number(token), 1);
  else delete (parent as JsonObject)[token];
  return value;
}

function put(root: JsonObject, pointer: string, value: Json, where: string): void {
  const { parent, token } = locate(root, pointer, where);
  if (Array.isArray(parent)) {
    const index = token === '-' ? parent.length : /^(0|[1-9]\d*)$/.test(token) ? Number(token) : NaN;
    if (!(index >= 0 && index <= parent.length)) throw unprocessable(`${where}: index "${token}" is out of range`);
    parent.splice(index, 0, value);
  } else if (isObject(parent)) {
    parent[token] = value;
  } else {
    throw unprocessable(`${where}: the parent of "${pointer}" is not an object or array`);
  }
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

// --- strategic merge patch ----------------------------------------------------------------------------------

const ORDER = '$setElementOrder/';
const DELETE_FROM = '$deleteFromPrimitiveList/';

/** Returns undefined when the patch says `$patch: delete` for the whole value. */
export function strategicMergePatch(original: unknown, patch: unknown): unknown {
  return strategic(original as Json, patch as Json);
}

function strategic(original: Json | undefined, patch: Json): Json | undefined {
  if (!isObject(patch)) return patch;
  if (patch.$patch === 'delete') return undefined;
  if (patch.$patch === 'replace') return withoutDirectives(patch);
  const result: JsonObject = isObject(original) ? { ...original } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) continue;
    if (value === null) {
      delete result[key];
      continue;
    }
    const order = patch[ORDER + key];
    const merged = Array.isArray(value) && Array.isArray(order) ? mergeList(result[key], value, order) : strategic(result[key], value);
    if (merged === undefined) delete result[key];
    else result[key] = merged;
  }
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith(DELETE_FROM) && Array.isArray(value)) {
      const list = result[key.slice(DELETE_FROM.length)];
      if (Array.isArray(list)) result[key.slice(DELETE_FROM.length)] = list.filter((v) => !value.some((d) => deepEqual(d, v)));
    }
    // An order for a list the patch does not change still reorders it (kubectl sends this after a removal).
    if (key.startsWith(ORDER) && Array.isArray(value) && !(key.slice(ORDER.length) in patch)) {
      const list = result[key.slice(ORDER.length)];
      if (Array.isArray(list)) result[key.slice(ORDER.length)] = mergeList(list, [], value);
    }
  }
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys.map(String));
    for (const key of Object.keys(result)) if (!keep.has(key)) delete result[key];
  }
  return result;
}

function withoutDirectives(value: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(value).filter(([k]) => !k.startsWith('$')));
}

/**
 * Merges a list by the key named in its `$setElementOrder` entries (`[{name: "a"}, {name: "b"}]`), or as a set
 * of primitives (`["a", "b"]`). The result follows the order; elements the order does not name keep their place
 * after it.
 */
function mergeList(original: Json | undefined, patch: Json[], order: Json[]): Json[] {
  const current = Array.isArray(original) ? original : [];
  if (patch.some((item) => isObject(item) && item.$patch === 'replace')) {
    return patch.filter((item) => !(isObject(item) && item.$patch === 'replace'));
  }
  const mergeKey = isObject(order[0]) ? Object.keys(order[0])[0] : undefined;
  const identity = (item: Json): string => JSON.stringify(mergeKey !== undefined && isObject(item) ? item[mergeKey] : item);
  const byId = new Map<string, Json>(current.map((item) => [identity(item), item]));
  for (const item of patch) {
    const id = identity(item);
    if (isObject(item) && item.$patch === 'delete') byId.delete(id);
    else if (mergeKey !== undefined && isObject(item)) byId.set(id, strategic(byId.get(id), item) ?? item);
    else byId.set(id, item);
  }
  const ordered: Json[] = [];
  for (const entry of order) {
    const id = identity(entry);
    const item = byId.get(id);
    if (item !== undefined) {
      ordered.push(item);
      byId.delete(id);
    }
  }
  return [...ordered, ...byId.values()];
}
