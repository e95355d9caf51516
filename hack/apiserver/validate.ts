// Checks every object's metadata gets, as kube-apiserver's ValidateObjectMeta: the name by the resource's rule,
// label and annotation keys and values, finalizers, owner references. Kind-specific checks are in kinds.ts,
// custom resources' schemas in schema.ts.
import { fieldError, type StatusCause } from './errors.ts';
import type { ResourceType } from './resources.ts';
import { isLabelValue, isQualifiedName } from './selectors.ts';
import type { KubeObject } from './store.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isDnsLabel(value: string): boolean {
  return value.length <= 63 && DNS_LABEL.test(value);
}

export function isDnsSubdomain(value: string): boolean {
  return value.length <= 253 && DNS_SUBDOMAIN.test(value);
}

/** Why `name` is not a valid name under `rule`, or undefined when it is. */
export function nameProblem(name: string, rule: ResourceType['names']): string | undefined {
  switch (rule) {
    case 'dns-label':
      return isDnsLabel(name)
        ? undefined
        : "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    case 'dns-subdomain':
      return isDnsSubdomain(name)
        ? undefined
        : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    case 'path-segment':
      if (name === '.' || name === '..') return `may not be '${name}'`;
      if (name.includes('/') || name.includes('%')) return `may not contain '/' or '%'`;
      return undefined;
  }
}

export function validateMetadata(type: ResourceType, object: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  const meta = object.metadata;
  if (!meta.name) {
    causes.push(fieldError('FieldValueRequired', 'metadata.name', 'name or generateName is required'));
  } else {
    const problem = nameProblem(meta.name, type.names);
    if (problem) causes.push(fieldError('FieldValueInvalid', 'metadata.name', problem, meta.name));
  }
  causes.push(...validateStringMap(meta.labels, 'metadata.labels', true));
  causes.push(...validateStringMap(meta.annotations, 'metadata.annotations', false));
  if (meta.annotations && JSON.stringify(meta.annotations).length > 256 * 1024) {
    causes.push(fieldError('FieldValueTooLong', 'metadata.annotations', 'must have at most 262144 bytes'));
  }
  if (meta.finalizers !== undefined) {
    if (!Array.isArray(meta.finalizers)) causes.push(fieldError('FieldValueTypeInvalid', 'metadata.finalizers', 'must be a list of strings'));
    else {
      meta.finalizers.forEach((f, i) => {
        if (typeof f !== 'string' || !isQualifiedName(f)) causes.push(fieldError('FieldValueInvalid', `metadata.finalizers[${i}]`, 'must be a qualified name', f));
      });
    }
  }
  (meta.ownerReferences ?? []).forEach((ref, i) => {
    for (const field of ['apiVersion', 'kind', 'name', 'uid'] as const) {
      if (typeof ref[field] !== 'string' || ref[field] === '') causes.push(fieldError('FieldValueRequired', `metadata.ownerReferences[${i}].${field}`, ''));
    }
  });
  return causes;
}

function validateStringMap(map: unknown, field: string, labelValues: boolean): StatusCause[] {
  if (map === undefined || map === null) return [];
  if (typeof map !== 'object' || Array.isArray(map)) return [fieldError('FieldValueTypeInvalid', field, 'must be a map of strings')];
  const causes: StatusCause[] = [];
  for (const [key, value] of Object.entries(map)) {
    if (!isQualifiedName(key)) {
      causes.push(fieldError('FieldValueInvalid', field, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, with an optional DNS subdomain prefix and '/'", key));
    }
    if (typeof value !== 'string') causes.push(fieldError('FieldValueTypeInvalid', `${field}.${key}`, 'must be a string', value));
    else if (labelValues && !isLabelValue(value)) {
      causes.push(fieldError('FieldValueInvalid', field, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, at most 63 characters", value));
    }
  }
  return causes;
}
