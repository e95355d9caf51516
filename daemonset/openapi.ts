// The part of Kubernetes' CRD validation the manifests rely on, small enough to read: whether an
// openAPIV3Schema is structural (so the API server accepts the CRD and can prune), and whether an
// object satisfies it (types, required, enum, pattern, bounds, list keys, no unknown fields, the way
// `kubectl apply` with strict field validation rejects them). Only what the CRDs here use is
// supported; any other keyword is reported, so nothing is silently not checked.

export interface Schema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  default?: unknown;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  [keyword: string]: unknown;
}

const KEYWORDS = new Set([
  'type', 'description', 'properties', 'additionalProperties', 'required', 'items', 'enum', 'pattern', 'format',
  'minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'default',
  'x-kubernetes-list-type', 'x-kubernetes-list-map-keys',
]);
const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);
const FORMATS: Record<string, RegExp> = {
  // RFC 3339, as metav1.Time writes it
  'date-time': /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/,
};
const ROOT_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);

/** What keeps `schema` (a CRD version's openAPIV3Schema) from being structural; empty when it is. */
export function structuralProblems(schema: Schema): string[] {
  const problems: string[] = [];
  if (schema.type !== 'object') problems.push('the root must be of type object');
  for (const name of Object.keys(schema.properties ?? {})) {
    if (!ROOT_FIELDS.has(name)) problems.push(`the root has a property "${name}" besides apiVersion, kind, metadata, spec, status`);
  }
  const metadata = schema.properties?.metadata;
  if (metadata && (metadata.type !== 'object' || Object.keys(metadata).some((k) => k !== 'type' && k !== 'description'))) {
    problems.push('metadata must be just {type: object}: the API server validates it itself');
  }
  walk(schema, '', problems);
  return problems;
}

function walk(node: Schema, path: string, problems: string[]): void {
  const at = path || '<root>';
  for (const key of Object.keys(node)) {
    if (!KEYWORDS.has(key)) problems.push(`${at}: "${key}" is not supported here (forbidden in structural schemas, or a typo)`);
  }
  if (!node.type) problems.push(`${at}: no type`);
  else if (!TYPES.has(node.type)) problems.push(`${at}: unknown type "${node.type}"`);
  if (node.properties && node.additionalProperties !== undefined) problems.push(`${at}: properties and additionalProperties together`);
  if (node.additionalProperties === false || node.additionalProperties === true) {
    problems.push(`${at}: additionalProperties must be a schema (false is forbidden: unknown fields are pruned)`);
  }
  // The root's metadata is the one object left open: the API server validates it itself.
  if (node.type === 'object' && !node.properties && node.additionalProperties === undefined && path !== '.metadata') {
    problems.push(`${at}: an object with neither properties nor additionalProperties keeps no field`);
  }
  if (node.type !== 'object' && (node.properties || node.additionalProperties !== undefined || node.required)) {
    problems.push(`${at}: properties/required on a ${node.type}`);
  }
  if (node.type === 'array' && (!node.items || Array.isArray(node.items))) problems.push(`${at}: an array needs one items schema`);
  if (node.type !== 'array' && node.items) problems.push(`${at}: items on a ${node.type}`);
  for (const name of node.required ?? []) {
    if (!node.properties?.[name]) problems.push(`${at}: required "${name}" is not a property`);
  }
  if (node.pattern !== undefined) {
    try {
      new RegExp(node.pattern, 'u');
    } catch (err) {
      problems.push(`${at}: pattern does not compile: ${(err as Error).message}`);
    }
  }
  if (node.format !== undefined && !FORMATS[node.format]) problems.push(`${at}: format "${node.format}" is not checked here`);
  for (const value of node.enum ?? []) {
    const errors = validate({ ...node, enum: undefined }, value, `${path}(enum)`);
    if (errors.length > 0) problems.push(`${at}: enum value ${JSON.stringify(value)} does not fit: ${errors.join('; ')}`);
  }
  if (node.default !== undefined) {
    const errors = validate(node, node.default, `${path}(default)`);
    if (errors.length > 0) problems.push(`${at}: default does not fit: ${errors.join('; ')}`);
  }
  const listType = node['x-kubernetes-list-type'];
  const keys = node['x-kubernetes-list-map-keys'];
  if (listType && node.type !== 'array') problems.push(`${at}: x-kubernetes-list-type on a ${node.type}`);
  if (keys && listType !== 'map') problems.push(`${at}: x-kubernetes-list-map-keys without x-kubernetes-list-type map`);
  if (listType === 'map') {
    if (!keys?.length) problems.push(`${at}: x-kubernetes-list-type map needs x-kubernetes-list-map-keys`);
    for (const key of keys ?? []) {
      if (!node.items?.required?.includes(key)) problems.push(`${at}: list map key "${key}" must be a required property of the items`);
    }
  }
  if (listType === 'set' && node.items?.type === 'object') problems.push(`${at}: a set must hold scalars`);

  for (const [name, child] of Object.entries(node.properties ?? {})) walk(child, `${path}.${name}`, problems);
  if (typeof node.additionalProperties === 'object') walk(node.additionalProperties, `${path}.*`, problems);
  if (node.items && !Array.isArray(node.items)) walk(node.items, `${path}[]`, problems);
}

/**
 * The errors that make the API server (with strict field validation) refuse `value`, each as
 * "<path>: <what>"; empty when it is accepted. At the root, `metadata` is checked for a name only.
 */
export function validate(schema: Schema, value: unknown, path = ''): string[] {
  const at = path || '<root>';
  if (value === null || value === undefined) return [`${at}: must not be null`];
  switch (schema.type) {
    case 'object':
      return validateObject(schema, value, path);
    case 'array': {
      if (!Array.isArray(value)) return [`${at}: must be an array`];
      const errors: string[] = [];
      if (schema.minItems !== undefined && value.length < schema.minItems) errors.push(`${at}: needs at least ${schema.minItems} items`);
      if (schema.maxItems !== undefined && value.length > schema.maxItems) errors.push(`${at}: takes at most ${schema.maxItems} items`);
      value.forEach((item, i) => errors.push(...validate(schema.items ?? {}, item, `${path}[${i}]`)));
      errors.push(...listUniqueness(schema, value, at));
      return errors;
    }
    case 'string': {
      if (typeof value !== 'string') return [`${at}: must be a string, not ${JSON.stringify(value)}`];
      const errors = checkEnum(schema, value, at);
      if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${at}: shorter than ${schema.minLength}`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push(`${at}: longer than ${schema.maxLength}`);
      if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) errors.push(`${at}: "${value}" does not match ${schema.pattern}`);
      if (schema.format !== undefined) {
        const format = FORMATS[schema.format];
        if (!format) throw new Error(`${at}: format "${schema.format}" is not supported by this validator`);
        if (!format.test(value)) errors.push(`${at}: "${value}" is not a ${schema.format}`);
      }
      return errors;
    }
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return [`${at}: must be a number, not ${JSON.stringify(value)}`];
      if (schema.type === 'integer' && !Number.isInteger(value)) return [`${at}: must be an integer, not ${value}`];
      const errors = checkEnum(schema, value, at);
      if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${at}: ${value} is below ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${at}: ${value} is above ${schema.maximum}`);
      return errors;
    }
    case 'boolean':
      return typeof value === 'boolean' ? checkEnum(schema, value, at) : [`${at}: must be true or false, not ${JSON.stringify(value)}`];
    default:
      throw new Error(`${at}: the schema has no type this validator knows (${String(schema.type)})`);
  }
}

function validateObject(schema: Schema, value: unknown, path: string): string[] {
  const at = path || '<root>';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${at}: must be an object`];
  const object = value as Record<string, unknown>;
  const errors: string[] = [];
  for (const name of schema.required ?? []) {
    if (object[name] === undefined) errors.push(`${path}.${name}: required`);
  }
  for (const [name, field] of Object.entries(object)) {
    if (field === undefined) continue;
    if (path === '' && name === 'metadata') {
      const meta = field as Record<string, unknown>;
      if (typeof meta?.name !== 'string' || meta.name === '') errors.push('.metadata.name: required');
      continue;
    }
    const child = schema.properties?.[name] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
    if (!child) errors.push(`${path}.${name}: unknown field`);
    else errors.push(...validate(child, field, `${path}.${name}`));
  }
  return errors;
}

function checkEnum(schema: Schema, value: unknown, at: string): string[] {
  if (schema.enum && !schema.enum.includes(value)) return [`${at}: ${JSON.stringify(value)} is not one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`];
  return [];
}

function listUniqueness(schema: Schema, list: unknown[], at: string): string[] {
  const type = schema['x-kubernetes-list-type'];
  if (type !== 'set' && type !== 'map') return [];
  const seen = new Set<string>();
  const errors: string[] = [];
  for (const item of list) {
    const key = type === 'set' ? JSON.stringify(item) : JSON.stringify((schema['x-kubernetes-list-map-keys'] ?? []).map((k) => (item as Record<string, unknown>)?.[k]));
    if (seen.has(key)) errors.push(`${at}: duplicate entry ${key}`);
    seen.add(key);
  }
  return errors;
}
