// A custom resource against its version's structural openAPIV3Schema, in kube-apiserver's order: drop nulls of
// fields that are not nullable, prune fields the schema does not know (unless x-kubernetes-preserve-unknown-fields),
// apply defaults, then validate. Validation covers type, required, enum, nullable, x-kubernetes-int-or-string,
// minimum/maximum, minLength/maxLength, pattern, minItems/maxItems; not formats, not CEL rules
// (x-kubernetes-validations), not list-type/map-type uniqueness.
import { fieldError, type StatusCause } from './errors.ts';
import { deepEqual, isObject } from './patch.ts';

export type Schema = Record<string, unknown>;

export interface SchemaResult {
  object: Record<string, unknown>;
  /** paths of the fields pruned, as `unknown field "spec.foo"` warnings and fieldValidation=Strict name them */
  unknownFields: string[];
  causes: StatusCause[];
}

/** The top level is walked except apiVersion, kind and metadata, which every object has and are checked elsewhere. */
export function applySchema(object: Record<string, unknown>, schema: Schema): SchemaResult {
  const unknownFields: string[] = [];
  const causes: StatusCause[] = [];
  const { apiVersion, kind, metadata, ...rest } = object;
  const always = ['apiVersion', 'kind', 'metadata'];
  const rootSchema: Schema = {
    ...schema,
    properties: Object.fromEntries(Object.entries((schema.properties ?? {}) as Schema).filter(([k]) => !always.includes(k))),
    required: ((schema.required ?? []) as string[]).filter((k) => !always.includes(k)),
  };
  const body = walk(rest, rootSchema, '', { unknownFields, causes }) as Record<string, unknown>;
  return { object: { apiVersion, kind, metadata, ...body }, unknownFields, causes };
}

interface Findings {
  unknownFields: string[];
  causes: StatusCause[];
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function walk(value: unknown, schema: Schema, path: string, found: Findings): unknown {
  if (!typeCheck(value, schema, path, found)) return value;
  if (isObject(value)) return walkObject(value, schema, path, found);
  const result = Array.isArray(value) && isObject(schema.items) ? value.map((item, i) => walk(item, schema.items as Schema, `${path}[${i}]`, found)) : value;
  checkConstraints(result, schema, path, found);
  return result;
}

function walkObject(value: Record<string, unknown>, schema: Schema, path: string, found: Findings): Record<string, unknown> {
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const additional = schema.additionalProperties;
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true || additional === true;
  const embedded = schema['x-kubernetes-embedded-resource'] === true;
  const result: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    const fieldSchema = properties[key] ?? (isObject(additional) ? (additional as Schema) : undefined);
    if (field === null && !(fieldSchema?.nullable === true)) continue;
    if (fieldSchema) result[key] = walk(field, fieldSchema, join(path, key), found);
    else if (preserve || (embedded && ['apiVersion', 'kind', 'metadata'].includes(key))) result[key] = field;
    else found.unknownFields.push(join(path, key));
  }
  for (const [key, fieldSchema] of Object.entries(properties)) {
    if (!(key in result) && fieldSchema.default !== undefined) result[key] = walk(structuredClone(fieldSchema.default), fieldSchema, join(path, key), found);
  }
  for (const key of (schema.required ?? []) as string[]) {
    if (!(key in result)) found.causes.push(fieldError('FieldValueRequired', join(path, key), ''));
  }
  checkConstraints(result, schema, path, found);
  return result;
}

function typeCheck(value: unknown, schema: Schema, path: string, found: Findings): boolean {
  if (value === null) return schema.nullable === true;
  if (schema['x-kubernetes-int-or-string'] === true) {
    if (Number.isInteger(value) || typeof value === 'string') return true;
    found.causes.push(fieldError('FieldValueTypeInvalid', path, 'must be an integer or a string', value));
    return false;
  }
  const type = schema.type as string | undefined;
  const ok =
    type === undefined ||
    (type === 'object' && isObject(value)) ||
    (type === 'array' && Array.isArray(value)) ||
    (type === 'string' && typeof value === 'string') ||
    (type === 'integer' && Number.isInteger(value)) ||
    (type === 'number' && typeof value === 'number') ||
    (type === 'boolean' && typeof value === 'boolean');
  if (!ok) found.causes.push(fieldError('FieldValueTypeInvalid', path, `must be of type ${type}`, value));
  return ok;
}

function checkConstraints(value: unknown, schema: Schema, path: string, found: Findings): void {
  const fail = (detail: string) => found.causes.push(fieldError('FieldValueInvalid', path, detail, value));
  if (Array.isArray(schema.enum) && !schema.enum.some((allowed) => deepEqual(allowed, value))) {
    found.causes.push(fieldError('FieldValueNotSupported', path, `supported values: ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`, value));
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) fail(`should be greater than or equal to ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) fail(`should be less than or equal to ${schema.maximum}`);
  }
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) fail(`should be at least ${schema.minLength} chars long`);
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength) fail(`may not be more than ${schema.maxLength} bytes`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) fail(`should match '${schema.pattern}'`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) fail(`should have at least ${schema.minItems} items`);
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) fail(`must have at most ${schema.maxItems} items`);
  }
}
