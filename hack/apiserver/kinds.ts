// What a few built-in kinds get from kube-apiserver beyond the generic rules, by storage key: the status a new
// object starts with, the defaults, and the checks the project's code could trip on. Everything else about
// these kinds (the many defaults of a pod spec, immutable fields, QoS class) is not modelled.
import { prepareCrd } from './crd.ts';
import { fieldError, type StatusCause } from './errors.ts';
import { isObject } from './patch.ts';
import { CRD_STORAGE_KEY } from './resources.ts';
import type { KubeObject } from './store.ts';
import { isDnsLabel } from './validate.ts';

export interface KindRules {
  /** a create keeps the status it was given (otherwise a resource with a status subresource starts without) */
  keepsStatusOnCreate?: boolean;
  /** on create: set what the server sets */
  created?(object: KubeObject): void;
  /** on create and on a write to the main resource: defaults and checks; returns the problems */
  written?(object: KubeObject, previous: KubeObject | undefined, now: string): StatusCause[];
}

export const KIND_RULES: Record<string, KindRules> = {
  pods: {
    created(pod) {
      pod.status = { phase: 'Pending' };
    },
    written(pod) {
      const containers = isObject(pod.spec) ? pod.spec.containers : undefined;
      if (!Array.isArray(containers) || containers.length === 0) return [fieldError('FieldValueRequired', 'spec.containers', '')];
      return containers.flatMap((c: unknown, i) => {
        const causes: StatusCause[] = [];
        const container = isObject(c) ? c : {};
        if (typeof container.name !== 'string' || !isDnsLabel(container.name)) {
          causes.push(fieldError(container.name ? 'FieldValueInvalid' : 'FieldValueRequired', `spec.containers[${i}].name`, container.name ? 'a lowercase RFC 1123 label' : '', container.name ?? undefined));
        }
        if (typeof container.image !== 'string' || container.image === '') causes.push(fieldError('FieldValueRequired', `spec.containers[${i}].image`, ''));
        return causes;
      });
    },
  },
  namespaces: {
    created(namespace) {
      namespace.status = { phase: 'Active' };
    },
    written(namespace) {
      const spec = isObject(namespace.spec) ? namespace.spec : {};
      namespace.spec = { ...spec, finalizers: spec.finalizers ?? ['kubernetes'] };
      return [];
    },
  },
  // The kubelet registers its node with a status.
  nodes: { keepsStatusOnCreate: true },
  // apps/v1 defaults spec.replicas to 1, which a Scale reports (kubectl scale and controllers read it).
  'apps/deployments': { written: defaultReplicas },
  'apps/statefulsets': { written: defaultReplicas },
  'apps/replicasets': { written: defaultReplicas },
  [CRD_STORAGE_KEY]: {
    written: prepareCrd,
  },
};

function defaultReplicas(object: KubeObject): StatusCause[] {
  const spec = object.spec === undefined ? {} : object.spec;
  if (isObject(spec) && spec.replicas === undefined) object.spec = { ...spec, replicas: 1 };
  return [];
}
