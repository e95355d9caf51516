// CustomResourceDefinitions (apiextensions.k8s.io/v1): the checks and defaults kube-apiserver applies, and the
// status its controllers would write a moment later — here at once, so a CRD is Established (and its resources
// served) as soon as it is stored. Not done: names conflicts between CRDs (NamesAccepted is always True),
// conversion webhooks (every version is served from the same stored object, strategy None).
import { fieldError, type StatusCause } from './errors.ts';
import { isObject } from './patch.ts';
import type { CrdSpec } from './resources.ts';
import type { KubeObject } from './store.ts';
import { isDnsLabel, isDnsSubdomain } from './validate.ts';

/** Defaults spec.names and writes the status; returns what is wrong with the CRD (nothing is written then). */
export function prepareCrd(crd: KubeObject, previous: KubeObject | undefined, now: string): StatusCause[] {
  if (!isObject(crd.spec)) return [fieldError('FieldValueRequired', 'spec', '')];
  const spec = crd.spec as Partial<CrdSpec> & Record<string, unknown>;
  const causes = validateSpec(spec, crd.metadata.name);
  if (previous && (previous.spec as CrdSpec).scope !== spec.scope) causes.push(fieldError('FieldValueInvalid', 'spec.scope', 'field is immutable', spec.scope));
  if (causes.length > 0) return causes;

  const names = spec.names!;
  names.singular ||= names.kind.toLowerCase();
  names.listKind ||= `${names.kind}List`;
  spec.conversion ??= { strategy: 'None' };
  const storage = spec.versions!.find((v) => v.storage)!.name;
  const before = (previous?.status ?? {}) as { conditions?: { type: string; lastTransitionTime: string }[]; storedVersions?: string[] };
  const since = (type: string) => before.conditions?.find((c) => c.type === type)?.lastTransitionTime ?? now;
  crd.status = {
    acceptedNames: { ...names },
    conditions: [
      { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: since('NamesAccepted') },
      { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: since('Established') },
    ],
    storedVersions: [...new Set([...(before.storedVersions ?? []), storage])],
  };
  return [];
}

function validateSpec(spec: Partial<CrdSpec>, name: string): StatusCause[] {
  const causes: StatusCause[] = [];
  const { group, names, scope, versions } = spec;
  if (!group) causes.push(fieldError('FieldValueRequired', 'spec.group', ''));
  else if (!isDnsSubdomain(group) || !group.includes('.')) causes.push(fieldError('FieldValueInvalid', 'spec.group', 'should be a domain with at least one dot', group));
  if (!isObject(names)) {
    causes.push(fieldError('FieldValueRequired', 'spec.names', ''));
  } else {
    if (!names.plural) causes.push(fieldError('FieldValueRequired', 'spec.names.plural', ''));
    else if (!isDnsLabel(names.plural)) causes.push(fieldError('FieldValueInvalid', 'spec.names.plural', 'a lowercase RFC 1123 label', names.plural));
    if (!names.kind) causes.push(fieldError('FieldValueRequired', 'spec.names.kind', ''));
    if (names.singular && !isDnsLabel(names.singular)) causes.push(fieldError('FieldValueInvalid', 'spec.names.singular', 'a lowercase RFC 1123 label', names.singular));
    (names.shortNames ?? []).forEach((s, i) => {
      if (!isDnsLabel(s)) causes.push(fieldError('FieldValueInvalid', `spec.names.shortNames[${i}]`, 'a lowercase RFC 1123 label', s));
    });
    if (group && names.plural && name !== `${names.plural}.${group}`) {
      causes.push(fieldError('FieldValueInvalid', 'metadata.name', 'must be spec.names.plural+"."+spec.group', name));
    }
  }
  if (scope !== 'Namespaced' && scope !== 'Cluster') causes.push(fieldError('FieldValueNotSupported', 'spec.scope', 'supported values: "Cluster", "Namespaced"', scope));
  if (!Array.isArray(versions) || versions.length === 0) {
    causes.push(fieldError('FieldValueRequired', 'spec.versions', 'must have exactly one version marked as storage version'));
    return causes;
  }
  const seen = new Set<string>();
  versions.forEach((v, i) => {
    const at = `spec.versions[${i}]`;
    if (!v.name || !isDnsLabel(v.name)) causes.push(fieldError('FieldValueInvalid', `${at}.name`, 'a lowercase RFC 1123 label', v.name));
    else if (seen.has(v.name)) causes.push(fieldError('FieldValueDuplicate', `${at}.name`, '', v.name));
    seen.add(v.name);
    const schema = v.schema?.openAPIV3Schema;
    if (!isObject(schema)) causes.push(fieldError('FieldValueRequired', `${at}.schema.openAPIV3Schema`, 'schemas are required'));
    else if (schema.type !== 'object') causes.push(fieldError('FieldValueInvalid', `${at}.schema.openAPIV3Schema.type`, 'must be object at the root', schema.type));
  });
  if (versions.filter((v) => v.storage === true).length !== 1) causes.push(fieldError('FieldValueInvalid', 'spec.versions', 'must have exactly one version marked as storage version', versions.map((v) => v.name)));
  if (!versions.some((v) => v.served === true)) causes.push(fieldError('FieldValueInvalid', 'spec.versions', 'must have at least one version marked as served', versions.map((v) => v.name)));
  return causes;
}
