// What the server serves: the built-in resources in a table, and the resources that CustomResourceDefinitions
// in the store define. One `ResourceType` is one group/version/plural endpoint; the versions of one resource
// share a storage key, so an object written through one version is read through any other (the CRD conversion
// strategy "None": only apiVersion changes).
import type { KubeObject, Store } from './store.ts';

export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  listKind: string;
  shortNames: string[];
  categories: string[];
  namespaced: boolean;
  storageKey: string;
  /** the version stored objects carry (a CRD's storage version) */
  storageVersion: string;
  /** has the status subresource: writes to the object keep its status, writes to /status keep all else */
  hasStatus: boolean;
  /** has the scale subresource (autoscaling/v1 Scale of spec.replicas; apps kinds but daemonsets) */
  hasScale: boolean;
  /** has the binding subresource (pods: a scheduler's way to set spec.nodeName) */
  hasBinding: boolean;
  /** defined by a CRD: names are path segments, strategic merge patch is refused (both as kube-apiserver) */
  custom: boolean;
  /** metadata.generation counts changes outside metadata (and outside status when hasStatus) */
  tracksGeneration: boolean;
  /** a PUT without metadata.resourceVersion is allowed (false for CRDs and custom resources) */
  unconditionalUpdate: boolean;
  /** DELETE answers with the object rather than a Status (pods, namespaces) */
  returnsDeletedObject: boolean;
  names: 'dns-subdomain' | 'dns-label' | 'path-segment';
  /** field selector labels beyond metadata.name and metadata.namespace: label → dotted path in the object */
  fields: Record<string, FieldPath>;
  /** the version's openAPIV3Schema (custom resources only) */
  schema?: Record<string, unknown>;
  /** the version's additionalPrinterColumns (custom resources only): the columns of `kubectl get` */
  printerColumns?: PrinterColumn[];
}

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  format?: string;
  description?: string;
  priority?: number;
}

export interface FieldPath {
  path: string;
  /** the value of an absent field: kube-apiserver prints a missing boolean as "false" */
  absent: string;
}

export const CRD_STORAGE_KEY = 'apiextensions.k8s.io/customresourcedefinitions';

export function apiVersionOf(type: { group: string; version: string }): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

/** A stored object as this version serves it: a copy, with this version's apiVersion and kind. */
export function served(object: KubeObject, type: ResourceType): KubeObject {
  const { apiVersion: _, kind: __, ...rest } = structuredClone(object);
  return { apiVersion: apiVersionOf(type), kind: type.kind, ...rest };
}

/** An object written through this version, as it is stored (under the storage version). */
export function toStorage(object: KubeObject, type: ResourceType): KubeObject {
  const { apiVersion: _, kind: __, ...rest } = object;
  return { apiVersion: apiVersionOf({ group: type.group, version: type.storageVersion }), kind: type.kind, ...rest };
}

type BuiltinSpec = Pick<ResourceType, 'group' | 'version' | 'plural' | 'kind' | 'namespaced'> & Partial<ResourceType>;

function builtin(spec: BuiltinSpec): ResourceType {
  return {
    singular: spec.kind.toLowerCase(),
    listKind: `${spec.kind}List`,
    shortNames: [],
    categories: [],
    storageKey: spec.group ? `${spec.group}/${spec.plural}` : spec.plural,
    storageVersion: spec.version,
    hasStatus: false,
    hasScale: false,
    hasBinding: false,
    custom: false,
    tracksGeneration: false,
    unconditionalUpdate: true,
    returnsDeletedObject: false,
    names: 'dns-subdomain',
    fields: {},
    ...spec,
  };
}

function fields(...labels: string[]): Record<string, FieldPath> {
  return Object.fromEntries(
    labels.map((label) => {
      const [name, path = name, absent = ''] = label.split(':');
      return [name!, { path: path || name!, absent }];
    }),
  );
}

/** The built-in resources: what the project uses, and what its tests need beside it. Field labels as in 1.32. */
export const BUILTIN_TYPES: readonly ResourceType[] = [
  builtin({ group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false, shortNames: ['ns'], hasStatus: true, names: 'dns-label', returnsDeletedObject: true, fields: fields('status.phase') }),
  builtin({ group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false, shortNames: ['no'], hasStatus: true, fields: fields('spec.unschedulable::false') }),
  builtin({
    group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true, shortNames: ['po'], categories: ['all'], hasStatus: true, hasBinding: true, returnsDeletedObject: true,
    fields: fields('spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork::false', 'status.phase', 'status.podIP', 'status.nominatedNodeName'),
  }),
  builtin({
    group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true, shortNames: ['ev'],
    fields: fields('involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source:source.component', 'type'),
  }),
  builtin({ group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true, shortNames: ['cm'] }),
  builtin({ group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true, fields: fields('type') }),
  builtin({ group: '', version: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true, shortNames: ['sa'] }),
  builtin({ group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true }),
  // RBAC objects are stored so that the project's manifests apply; nothing is authorized by them.
  builtin({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', kind: 'Role', namespaced: true, names: 'path-segment' }),
  builtin({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', kind: 'RoleBinding', namespaced: true, names: 'path-segment' }),
  builtin({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', kind: 'ClusterRole', namespaced: false, names: 'path-segment' }),
  builtin({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterrolebindings', kind: 'ClusterRoleBinding', namespaced: false, names: 'path-segment' }),
  ...(['Deployment:deploy', 'StatefulSet:sts', 'ReplicaSet:rs', 'DaemonSet:ds'] as const).map((entry) => {
    const [kind, short] = entry.split(':') as [string, string];
    const hasScale = kind !== 'DaemonSet';
    return builtin({ group: 'apps', version: 'v1', plural: `${kind.toLowerCase()}s`, kind, namespaced: true, shortNames: [short], categories: ['all'], hasStatus: true, hasScale, tracksGeneration: true });
  }),
  builtin({
    group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false,
    shortNames: ['crd', 'crds'], categories: ['api-extensions'], hasStatus: true, tracksGeneration: true, unconditionalUpdate: false,
  }),
];

/** The parts of a CRD this server reads; crd.ts checks a CRD has this shape before it is stored. */
export interface CrdSpec {
  group: string;
  scope: 'Namespaced' | 'Cluster';
  names: { plural: string; singular: string; kind: string; listKind: string; shortNames?: string[]; categories?: string[] };
  versions: {
    name: string;
    served: boolean;
    storage: boolean;
    subresources?: { status?: object };
    schema?: { openAPIV3Schema?: Record<string, unknown> };
    selectableFields?: { jsonPath: string }[];
    additionalPrinterColumns?: PrinterColumn[];
  }[];
}

export function customResourceTypes(crd: KubeObject): ResourceType[] {
  const spec = crd.spec as CrdSpec;
  const storageVersion = spec.versions.find((v) => v.storage)!.name;
  return spec.versions
    .filter((v) => v.served)
    .map((v) => ({
      group: spec.group,
      version: v.name,
      plural: spec.names.plural,
      singular: spec.names.singular,
      kind: spec.names.kind,
      listKind: spec.names.listKind,
      shortNames: spec.names.shortNames ?? [],
      categories: spec.names.categories ?? [],
      namespaced: spec.scope === 'Namespaced',
      storageKey: `${spec.group}/${spec.names.plural}`,
      storageVersion,
      hasStatus: v.subresources?.status !== undefined,
      hasScale: false,
      hasBinding: false,
      custom: true,
      tracksGeneration: true,
      unconditionalUpdate: false,
      returnsDeletedObject: false,
      names: 'path-segment',
      fields: fields(...(v.selectableFields ?? []).map((f) => f.jsonPath.replace(/^\./, ''))),
      ...(v.schema?.openAPIV3Schema ? { schema: v.schema.openAPIV3Schema } : {}),
      ...(v.additionalPrinterColumns ? { printerColumns: v.additionalPrinterColumns } : {}),
    }));
}

/** All served resources, recomputed when the CRDs in the store change. */
export class Registry {
  private cache: { stamp: string; types: ResourceType[] } | undefined;

  constructor(private readonly store: Store) {}

  all(): ResourceType[] {
    const crds = this.store.list(CRD_STORAGE_KEY);
    const stamp = crds.map((c) => c.metadata.resourceVersion).join(',');
    if (this.cache?.stamp !== stamp) {
      // A CRD being deleted is no longer served (kube-apiserver stops serving it while it cleans up).
      const live = crds.filter((c) => !c.metadata.deletionTimestamp);
      this.cache = { stamp, types: [...BUILTIN_TYPES, ...live.flatMap(customResourceTypes)] };
    }
    return this.cache.types;
  }

  find(group: string, version: string, plural: string): ResourceType | undefined {
    return this.all().find((t) => t.group === group && t.version === version && t.plural === plural);
  }

  /** The type of a storage key, at its storage version when that is served: how the server reads stored objects. */
  stored(storageKey: string): ResourceType | undefined {
    const types = this.all().filter((t) => t.storageKey === storageKey);
    return types.find((t) => t.version === t.storageVersion) ?? types[0];
  }

  /** The storage key of objects of this apiVersion and kind (for owner references), if served. */
  storageKeyOf(apiVersion: string, kind: string): string | undefined {
    return this.all().find((t) => apiVersionOf(t) === apiVersion && t.kind === kind)?.storageKey;
  }
}
