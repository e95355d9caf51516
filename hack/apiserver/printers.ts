// The columns `kubectl get` shows for built-in kinds, as kube-apiserver 1.32 prints them
// (k8s.io/kubernetes pkg/printers/internalversion/printers.go): one function per kind that turns an object into
// its cells. kube-apiserver always prints the wide cells too (priority 1 columns), which kubectl shows only with
// `-o wide`. Only the kinds a demo looks at have their own printer; the others get Name and Age (table.ts).
import { isObject } from './patch.ts';
import { labelSelectorString } from './selectors.ts';
import type { KubeObject } from './store.ts';

export interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface RowCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

export interface Printer {
  columns: ColumnDefinition[];
  cells(object: KubeObject, now: Date): unknown[];
  /** the row's conditions: kube-apiserver marks a finished pod's row Completed */
  conditions?(object: KubeObject): RowCondition[] | undefined;
}

function column(name: string, description: string, options: { type?: string; format?: string; priority?: number } = {}): ColumnDefinition {
  return { name, type: options.type ?? 'string', format: options.format ?? '', description, priority: options.priority ?? 0 };
}

const wide = { priority: 1 };
export const NAME_COLUMN = column('Name', 'Name must be unique within a namespace.', { format: 'name' });
const AGE_COLUMN = column('Age', 'CreationTimestamp is when the object was created.');
const CONTAINER_COLUMNS = [column('Containers', 'Names of each container in the template.', wide), column('Images', 'Images referenced by each container in the template.', wide)];

/** The loose shape of what printers read: any field may be missing. */
type Loose = Record<string, unknown>;
const obj = (value: unknown): Loose => (isObject(value) ? value : {});
const list = (value: unknown): Loose[] => (Array.isArray(value) ? value.map(obj) : []);
const num = (value: unknown): number => (typeof value === 'number' ? value : 0);
const str = (value: unknown): string => (typeof value === 'string' ? value : '');

/** translateTimestampSince: an age as kubectl shows it, `<unknown>` without a time. */
export function since(time: unknown, now: Date): string {
  const at = typeof time === 'string' ? Date.parse(time) : NaN;
  return Number.isNaN(at) ? '<unknown>' : humanDuration(now.getTime() - at);
}

/** An age as kubectl shows it (k8s.io/apimachinery/pkg/util/duration.HumanDuration). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${hours / 24}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${days / 365}y` : `${Math.floor(days / 365)}y${days % 365}d`;
  return `${Math.floor(days / 365)}y`;
}

/** layoutContainerCells: the template's container names and images, comma-separated. */
function containerCells(workload: KubeObject): [string, string] {
  const containers = list(obj(obj(obj(workload.spec).template).spec).containers);
  return [containers.map((c) => str(c.name)).join(','), containers.map((c) => str(c.image)).join(',')];
}

/** metav1.FormatLabelSelector: the selector string, `<none>` when empty, `<error>` when invalid. */
function formatSelector(selector: unknown, invalid = '<error>'): string {
  try {
    return labelSelectorString(selector) || '<none>';
  } catch {
    return invalid;
  }
}

const conditionTrue = (conditions: unknown, type: string) => list(conditions).some((c) => c.type === type && c.status === 'True');

const POD_COLUMNS = [
  NAME_COLUMN,
  column('Ready', 'The aggregate readiness state of this pod for accepting traffic.'),
  column('Status', 'The aggregate status of the containers in this pod.'),
  column('Restarts', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
  AGE_COLUMN,
  column('IP', 'podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.', wide),
  column('Node', 'NodeName indicates in which node this pod is scheduled.', wide),
  column('Nominated Node', 'nominatedNodeName is set only when this pod preempts other pods on the node.', wide),
  column('Readiness Gates', 'If specified, all readiness gates will be evaluated for pod readiness.', wide),
];

/**
 * printPod: READY counts ready running containers (and started restartable init containers) of all; STATUS is
 * the phase, or the pod's reason, or the reason an init container or a container waits or terminated with
 * (`Init:0/1`, `ContainerCreating`, `CrashLoopBackOff`, `Completed`, `ExitCode:1`), `Terminating` once it is
 * being deleted; RESTARTS sums the restart counts, with how long ago the last container ended.
 */
function podCells(pod: KubeObject, now: Date): unknown[] {
  const spec = obj(pod.spec);
  const status = obj(pod.status);
  const initContainers = list(spec.initContainers);
  const sidecars = new Set(initContainers.filter((c) => c.restartPolicy === 'Always').map((c) => c.name));
  const total = list(spec.containers).length + sidecars.size;
  const phase = str(status.phase);
  let reason = str(status.reason) || phase;
  if (list(status.conditions).some((c) => c.type === 'PodScheduled' && c.reason === 'SchedulingGated')) reason = 'SchedulingGated';
  const lastEnded = (c: Loose) => Date.parse(str(obj(obj(c.lastState).terminated).finishedAt)) || 0;

  let ready = 0;
  let restarts = 0;
  let lastRestart = 0;
  let sidecarRestarts = 0;
  let sidecarLastRestart = 0;
  let initializing = false;
  for (const [i, c] of list(status.initContainerStatuses).entries()) {
    restarts += num(c.restartCount);
    lastRestart = Math.max(lastRestart, lastEnded(c));
    const sidecar = sidecars.has(c.name);
    if (sidecar) {
      sidecarRestarts += num(c.restartCount);
      sidecarLastRestart = Math.max(sidecarLastRestart, lastEnded(c));
    }
    const state = obj(c.state);
    const terminated = isObject(state.terminated) ? state.terminated : undefined;
    const waiting = obj(state.waiting);
    if (terminated && num(terminated.exitCode) === 0) continue;
    if (sidecar && c.started === true) {
      if (c.ready === true) ready++;
      continue;
    }
    if (terminated) reason = `Init:${str(terminated.reason) || (num(terminated.signal) ? `Signal:${num(terminated.signal)}` : `ExitCode:${num(terminated.exitCode)}`)}`;
    else if (str(waiting.reason) && waiting.reason !== 'PodInitializing') reason = `Init:${str(waiting.reason)}`;
    else reason = `Init:${i}/${initContainers.length}`;
    initializing = true;
    break;
  }

  if (!initializing || conditionTrue(status.conditions, 'Initialized')) {
    restarts = sidecarRestarts;
    lastRestart = sidecarLastRestart;
    let running = false;
    for (const c of list(status.containerStatuses).reverse()) {
      restarts += num(c.restartCount);
      lastRestart = Math.max(lastRestart, lastEnded(c));
      const state = obj(c.state);
      const terminated = isObject(state.terminated) ? state.terminated : undefined;
      if (str(obj(state.waiting).reason)) reason = str(obj(state.waiting).reason);
      else if (terminated && str(terminated.reason)) reason = str(terminated.reason);
      else if (terminated) reason = num(terminated.signal) ? `Signal:${num(terminated.signal)}` : `ExitCode:${num(terminated.exitCode)}`;
      else if (c.ready === true && isObject(state.running)) {
        running = true;
        ready++;
      }
    }
    // A pod whose last container completed while another still runs is Running (or NotReady), not Completed.
    if (reason === 'Completed' && running) reason = conditionTrue(status.conditions, 'Ready') ? 'Running' : 'NotReady';
  }
  const finished = phase === 'Succeeded' || phase === 'Failed';
  if (pod.metadata.deletionTimestamp && status.reason === 'NodeLost') reason = 'Unknown';
  else if (pod.metadata.deletionTimestamp && !finished) reason = 'Terminating';

  const gates = list(spec.readinessGates);
  const gatesTrue = gates.filter((g) => conditionTrue(status.conditions, str(g.conditionType))).length;
  return [
    pod.metadata.name,
    `${ready}/${total}`,
    reason,
    restarts !== 0 && lastRestart !== 0 ? `${restarts} (${humanDuration(now.getTime() - lastRestart)} ago)` : String(restarts),
    since(pod.metadata.creationTimestamp, now),
    str(list(status.podIPs)[0]?.ip) || str(status.podIP) || '<none>',
    str(spec.nodeName) || '<none>',
    str(status.nominatedNodeName) || '<none>',
    gates.length > 0 ? `${gatesTrue}/${gates.length}` : '<none>',
  ];
}

function podConditions(pod: KubeObject): RowCondition[] | undefined {
  const phase = obj(pod.status).phase;
  if (phase === 'Succeeded') return [{ type: 'Completed', status: 'True', reason: 'Succeeded', message: 'The pod has completed successfully.' }];
  if (phase === 'Failed') return [{ type: 'Completed', status: 'True', reason: 'Failed', message: 'The pod failed.' }];
  return undefined;
}

const NODE_COLUMNS = [
  NAME_COLUMN,
  column('Status', 'The status of the node'),
  column('Roles', 'The roles of the node'),
  AGE_COLUMN,
  column('Version', 'Kubelet Version reported by the node.'),
  column('Internal-IP', 'List of addresses reachable to the node.', wide),
  column('External-IP', 'List of addresses reachable to the node.', wide),
  column('OS-Image', 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).', wide),
  column('Kernel-Version', "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", wide),
  column('Container-Runtime', 'ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).', wide),
];

/**
 * printNode: STATUS from the Ready condition (`Ready`, `NotReady`, `Unknown` without one), `,SchedulingDisabled`
 * when cordoned; ROLES from node-role.kubernetes.io/<role> labels (and kubernetes.io/role).
 */
function nodeCells(node: KubeObject, now: Date): unknown[] {
  const status = obj(node.status);
  const info = obj(status.nodeInfo);
  const ready = list(status.conditions).find((c) => c.type === 'Ready');
  const states = [ready ? (ready.status === 'True' ? 'Ready' : 'NotReady') : 'Unknown', ...(obj(node.spec).unschedulable === true ? ['SchedulingDisabled'] : [])];
  const roles = new Set<string>();
  for (const [key, value] of Object.entries(node.metadata.labels ?? {})) {
    if (key.startsWith('node-role.kubernetes.io/') && key.length > 'node-role.kubernetes.io/'.length) roles.add(key.slice('node-role.kubernetes.io/'.length));
    else if (key === 'kubernetes.io/role' && value !== '') roles.add(value);
  }
  const address = (type: string) => str(list(status.addresses).find((a) => a.type === type)?.address) || '<none>';
  return [
    node.metadata.name,
    states.join(','),
    [...roles].sort().join(',') || '<none>',
    since(node.metadata.creationTimestamp, now),
    str(info.kubeletVersion),
    address('InternalIP'),
    address('ExternalIP'),
    str(info.osImage) || '<unknown>',
    str(info.kernelVersion) || '<unknown>',
    str(info.containerRuntimeVersion) || '<unknown>',
  ];
}

const STATEFULSET_COLUMNS = [NAME_COLUMN, column('Ready', 'Number of the pod with ready state'), AGE_COLUMN, ...CONTAINER_COLUMNS];

/** printStatefulSet: READY is status.readyReplicas/spec.replicas. */
function statefulSetCells(set: KubeObject, now: Date): unknown[] {
  return [set.metadata.name, `${num(obj(set.status).readyReplicas)}/${num(obj(set.spec).replicas)}`, since(set.metadata.creationTimestamp, now), ...containerCells(set)];
}

const DEPLOYMENT_COLUMNS = [
  NAME_COLUMN,
  column('Ready', 'Number of the pod with ready state'),
  column('Up-to-date', 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.'),
  column('Available', 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.'),
  AGE_COLUMN,
  ...CONTAINER_COLUMNS,
  column('Selector', 'Label selector for pods.', wide),
];

/** printDeployment: READY is status.readyReplicas/spec.replicas, then updatedReplicas and availableReplicas. */
function deploymentCells(deployment: KubeObject, now: Date): unknown[] {
  const status = obj(deployment.status);
  const spec = obj(deployment.spec);
  let selector: string;
  try {
    selector = labelSelectorString(spec.selector);
  } catch {
    selector = '<invalid>';
  }
  return [
    deployment.metadata.name,
    `${num(status.readyReplicas)}/${num(spec.replicas)}`,
    num(status.updatedReplicas),
    num(status.availableReplicas),
    since(deployment.metadata.creationTimestamp, now),
    ...containerCells(deployment),
    selector,
  ];
}

const REPLICASET_COLUMNS = [
  NAME_COLUMN,
  column('Desired', 'Replicas is the number of desired replicas.', { type: 'integer' }),
  column('Current', 'Replicas is the most recently observed number of replicas.', { type: 'integer' }),
  column('Ready', 'The number of ready replicas for this replica set.', { type: 'integer' }),
  AGE_COLUMN,
  ...CONTAINER_COLUMNS,
  column('Selector', 'Selector is a label query over pods that should match the replica count.', wide),
];

/** printReplicaSet: DESIRED spec.replicas, CURRENT status.replicas, READY status.readyReplicas. */
function replicaSetCells(set: KubeObject, now: Date): unknown[] {
  const status = obj(set.status);
  return [set.metadata.name, num(obj(set.spec).replicas), num(status.replicas), num(status.readyReplicas), since(set.metadata.creationTimestamp, now), ...containerCells(set), formatSelector(obj(set.spec).selector)];
}

const DAEMONSET_COLUMNS = [
  NAME_COLUMN,
  column('Desired', 'The total number of nodes that should be running the daemon pod.', { type: 'integer' }),
  column('Current', 'The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.', { type: 'integer' }),
  column('Ready', 'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.', { type: 'integer' }),
  column('Up-to-date', 'The total number of nodes that are running updated daemon pod', { type: 'integer' }),
  column('Available', 'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.', { type: 'integer' }),
  column('Node Selector', 'NodeSelector is a selector which must be true for the pod to fit on a node.'),
  AGE_COLUMN,
  ...CONTAINER_COLUMNS,
  column('Selector', 'A label query over pods that are managed by the daemon set.', wide),
];

/** printDaemonSet: the status counts, and the template's node selector (labels.FormatLabels). */
function daemonSetCells(set: KubeObject, now: Date): unknown[] {
  const status = obj(set.status);
  const nodeSelector = Object.entries(obj(obj(obj(obj(set.spec).template).spec).nodeSelector))
    .map(([k, v]) => `${k}=${str(v)}`)
    .sort();
  return [
    set.metadata.name,
    num(status.desiredNumberScheduled),
    num(status.currentNumberScheduled),
    num(status.numberReady),
    num(status.updatedNumberScheduled),
    num(status.numberAvailable),
    nodeSelector.join(',') || '<none>',
    since(set.metadata.creationTimestamp, now),
    ...containerCells(set),
    formatSelector(obj(set.spec).selector),
  ];
}

const EVENT_COLUMNS = [
  column('Last Seen', 'The time at which the most recent occurrence of this event was recorded.'),
  column('Type', 'Type of this event (Normal, Warning), new types could be added in the future'),
  column('Reason', 'This should be a short, machine understandable string that gives the reason for the transition into the object\'s current status.'),
  column('Object', 'The object that this event is about.'),
  column('Subobject', 'If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.', wide),
  column('Source', 'The component reporting this event. Should be a short machine understandable string.', wide),
  column('Message', 'A human-readable description of the status of this operation.'),
  column('First Seen', 'The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)', wide),
  column('Count', 'The number of times this event has occurred.', wide),
  { ...NAME_COLUMN, priority: 1 },
];

/** printEvent: LAST SEEN from lastTimestamp (or the first time, or the series'), OBJECT as kind/name in lower case. */
function eventCells(event: KubeObject, now: Date): unknown[] {
  const involved = obj(event.involvedObject);
  const series = isObject(event.series) ? event.series : undefined;
  const first = event.firstTimestamp ? since(event.firstTimestamp, now) : since(event.eventTime, now);
  const last = series ? since(series.lastObservedTime, now) : event.lastTimestamp ? since(event.lastTimestamp, now) : first;
  const count = series ? num(series.count) : num(event.count) || 1;
  const kind = str(involved.kind).toLowerCase();
  const source = obj(event.source);
  const component = str(source.component) || str(event.reportingComponent);
  const host = str(source.host) || str(event.reportingInstance);
  return [
    last,
    str(event.type),
    str(event.reason),
    involved.name ? `${kind}/${str(involved.name)}` : kind,
    str(involved.fieldPath),
    host ? `${component}, ${host}` : component,
    str(event.message).trim(),
    first,
    count,
    event.metadata.name,
  ];
}

const NAMESPACE_COLUMNS = [NAME_COLUMN, column('Status', 'The status of the namespace'), AGE_COLUMN];

/** printNamespace: the phase. */
function namespaceCells(namespace: KubeObject, now: Date): unknown[] {
  return [namespace.metadata.name, str(obj(namespace.status).phase), since(namespace.metadata.creationTimestamp, now)];
}

/** The printers of built-in kinds, by storage key. */
export const PRINTERS: Record<string, Printer> = {
  pods: { columns: POD_COLUMNS, cells: podCells, conditions: podConditions },
  nodes: { columns: NODE_COLUMNS, cells: nodeCells },
  namespaces: { columns: NAMESPACE_COLUMNS, cells: namespaceCells },
  events: { columns: EVENT_COLUMNS, cells: eventCells },
  'apps/statefulsets': { columns: STATEFULSET_COLUMNS, cells: statefulSetCells },
  'apps/deployments': { columns: DEPLOYMENT_COLUMNS, cells: deploymentCells },
  'apps/replicasets': { columns: REPLICASET_COLUMNS, cells: replicaSetCells },
  'apps/daemonsets': { columns: DAEMONSET_COLUMNS, cells: daemonSetCells },
};
