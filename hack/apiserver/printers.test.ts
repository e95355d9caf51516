// The built-in printers: the cells kube-apiserver's printers.go gives the objects a demo shows.
import { describe, expect, it } from 'vitest';
import { PRINTERS } from './printers.ts';
import type { KubeObject } from './store.ts';

const now = new Date('2025-06-01T12:00:00Z');
const ago = (seconds: number) => new Date(now.getTime() - seconds * 1000).toISOString();
const cells = (storageKey: string, object: Partial<KubeObject> & Record<string, unknown>) =>
  PRINTERS[storageKey]!.cells({ metadata: { name: 'x', creationTimestamp: ago(90), ...object.metadata }, ...object } as KubeObject, now);

describe('pod printer', () => {
  const containers = (...names: string[]) => names.map((name) => ({ name, image: 'busybox' }));
  const podRow = (status: Record<string, unknown>, spec: Record<string, unknown> = { containers: containers('app') }, metadata = {}) =>
    cells('pods', { metadata: { name: 'x', creationTimestamp: ago(90), ...metadata }, spec, status });
  const waiting = (reason: string) => ({ state: { waiting: { reason } } });
  const terminated = (fields: Record<string, unknown>) => ({ state: { terminated: fields } });
  const running = (ready = true) => ({ ready, state: { running: { startedAt: ago(30) } } });

  it.each([
    ['a new pod', { phase: 'Pending' }, '0/1', 'Pending'],
    ['a container being created', { phase: 'Pending', containerStatuses: [waiting('ContainerCreating')] }, '0/1', 'ContainerCreating'],
    ['a container in back-off', { phase: 'Running', containerStatuses: [{ ...waiting('CrashLoopBackOff'), restartCount: 3 }] }, '0/1', 'CrashLoopBackOff'],
    ['a running, ready container', { phase: 'Running', containerStatuses: [running()] }, '1/1', 'Running'],
    ['a running container that is not ready', { phase: 'Running', containerStatuses: [running(false)] }, '0/1', 'Running'],
    ['a completed pod', { phase: 'Succeeded', containerStatuses: [terminated({ exitCode: 0, reason: 'Completed' })] }, '0/1', 'Completed'],
    ['a container that exited without a reason', { phase: 'Failed', containerStatuses: [terminated({ exitCode: 2 })] }, '0/1', 'ExitCode:2'],
    ['a container killed by a signal', { phase: 'Failed', containerStatuses: [terminated({ exitCode: 137, signal: 9 })] }, '0/1', 'Signal:9'],
    ['an evicted pod', { phase: 'Failed', reason: 'Evicted' }, '0/1', 'Evicted'],
    ['a scheduling-gated pod', { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'SchedulingGated' }] }, '0/1', 'SchedulingGated'],
  ])('shows %s', (_, status, ready, shown) => {
    expect(podRow(status).slice(1, 3)).toEqual([ready, shown]);
  });

  it('counts a pod whose last container completed while another runs as NotReady, or Running when the pod is Ready', () => {
    const spec = { containers: containers('app', 'job') };
    const statuses = [running(), terminated({ exitCode: 0, reason: 'Completed' })];
    expect(podRow({ phase: 'Running', containerStatuses: statuses }, spec).slice(1, 3)).toEqual(['1/2', 'NotReady']);
    expect(podRow({ phase: 'Running', containerStatuses: statuses, conditions: [{ type: 'Ready', status: 'True' }] }, spec).slice(1, 3)).toEqual(['1/2', 'Running']);
  });

  it('shows init containers: Init:i/n while one runs, its waiting or terminated reason, and counts started sidecars as ready', () => {
    const spec = { initContainers: containers('setup', 'migrate'), containers: containers('app') };
    expect(podRow({ phase: 'Pending', initContainerStatuses: [terminated({ exitCode: 0 }), running(false)] }, spec)[2]).toBe('Init:1/2');
    expect(podRow({ phase: 'Pending', initContainerStatuses: [waiting('CrashLoopBackOff')] }, spec)[2]).toBe('Init:CrashLoopBackOff');
    expect(podRow({ phase: 'Pending', initContainerStatuses: [waiting('PodInitializing')] }, spec)[2]).toBe('Init:0/2');
    expect(podRow({ phase: 'Failed', initContainerStatuses: [terminated({ exitCode: 3 })] }, spec)[2]).toBe('Init:ExitCode:3');
    expect(podRow({ phase: 'Failed', initContainerStatuses: [terminated({ exitCode: 1, reason: 'Error' })] }, spec)[2]).toBe('Init:Error');
    const sidecar = { initContainers: [{ name: 'proxy', image: 'envoy', restartPolicy: 'Always' }], containers: containers('app') };
    const started = { name: 'proxy', started: true, ...running() };
    expect(podRow({ phase: 'Running', initContainerStatuses: [started], containerStatuses: [running()] }, sidecar).slice(1, 3)).toEqual(['2/2', 'Running']);
  });

  it('shows Terminating for a pod being deleted that has not finished, Unknown for one on a lost node', () => {
    const deleting = { deletionTimestamp: ago(0) };
    expect(podRow({ phase: 'Running', containerStatuses: [running()] }, undefined, deleting)[2]).toBe('Terminating');
    expect(podRow({ phase: 'Succeeded' }, undefined, deleting)[2]).toBe('Succeeded');
    expect(podRow({ phase: 'Running', reason: 'NodeLost' }, undefined, deleting)[2]).toBe('Unknown');
  });

  it('sums restarts with how long ago the last container ended, and shows the wide cells', () => {
    const restarted = (count: number, endedSecondsAgo: number) => ({ ...running(), restartCount: count, lastState: { terminated: { exitCode: 1, finishedAt: ago(endedSecondsAgo) } } });
    const spec = { containers: containers('app', 'sidecar'), nodeName: 'node-1', readinessGates: [{ conditionType: 'example.com/ready' }, { conditionType: 'example.com/synced' }] };
    const status = { phase: 'Running', podIPs: [{ ip: '10.0.0.7' }], containerStatuses: [restarted(2, 600), restarted(1, 300)], conditions: [{ type: 'example.com/ready', status: 'True' }] };
    expect(podRow(status, spec)).toEqual(['x', '2/2', 'Running', '3 (5m ago)', '90s', '10.0.0.7', 'node-1', '<none>', '1/2']);
    expect(podRow({ phase: 'Pending' })).toEqual(['x', '0/1', 'Pending', '0', '90s', '<none>', '<none>', '<none>', '<none>']);
    // Once the pod is initialized, restarts of (non-sidecar) init containers no longer count.
    const init = { initContainers: containers('setup'), containers: containers('app') };
    expect(podRow({ phase: 'Running', initContainerStatuses: [{ ...terminated({ exitCode: 0 }), restartCount: 2 }], containerStatuses: [{ ...running(), restartCount: 1 }] }, init)[3]).toBe('1');
  });

  it('marks the rows of finished pods Completed', () => {
    const conditions = (phase: string) => PRINTERS.pods!.conditions!({ metadata: { name: 'x' }, status: { phase } });
    expect(conditions('Succeeded')).toEqual([expect.objectContaining({ type: 'Completed', status: 'True', reason: 'Succeeded' })]);
    expect(conditions('Failed')).toEqual([expect.objectContaining({ type: 'Completed', reason: 'Failed' })]);
    expect(conditions('Running')).toBeUndefined();
  });
});

describe('node printer', () => {
  const ready = (status: string) => ({ conditions: [{ type: 'MemoryPressure', status: 'False' }, { type: 'Ready', status }] });

  it.each([
    ['True', false, 'Ready'],
    ['False', false, 'NotReady'],
    ['Unknown', true, 'NotReady,SchedulingDisabled'],
    [undefined, false, 'Unknown'],
  ])('shows a Ready condition %s (cordoned: %s) as %s', (condition, unschedulable, shown) => {
    expect(cells('nodes', { spec: { unschedulable }, status: condition ? ready(condition) : {} })[1]).toBe(shown);
  });

  it('shows roles from node-role labels, sorted, and <unknown> for what the kubelet did not report', () => {
    const labels = { 'node-role.kubernetes.io/worker': '', 'node-role.kubernetes.io/control-plane': '', 'node-role.kubernetes.io/': '', 'kubernetes.io/role': 'infra' };
    expect(cells('nodes', { metadata: { name: 'x', labels, creationTimestamp: ago(90) }, status: { nodeInfo: { kubeletVersion: 'v1.32.0' } } })).toEqual([
      'x', 'Unknown', 'control-plane,infra,worker', '90s', 'v1.32.0', '<none>', '<none>', '<unknown>', '<unknown>', '<unknown>',
    ]);
    expect(cells('nodes', {})[2]).toBe('<none>');
  });
});

describe('workload printers', () => {
  const template = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: 'busybox' }, { name: 'proxy', image: 'envoy' }] } };

  it('prints StatefulSets, Deployments, ReplicaSets and DaemonSets with their counts, containers and selectors', () => {
    const spec = { replicas: 3, selector: { matchLabels: { app: 'web' } }, template };
    expect(cells('apps/statefulsets', { spec, status: { readyReplicas: 2 } })).toEqual(['x', '2/3', '90s', 'app,proxy', 'busybox,envoy']);
    expect(cells('apps/deployments', { spec, status: { readyReplicas: 1, updatedReplicas: 3, availableReplicas: 1 } })).toEqual(['x', '1/3', 3, 1, '90s', 'app,proxy', 'busybox,envoy', 'app=web']);
    expect(cells('apps/replicasets', { spec, status: { replicas: 3, readyReplicas: 2 } })).toEqual(['x', 3, 3, 2, '90s', 'app,proxy', 'busybox,envoy', 'app=web']);
    const daemon = { selector: spec.selector, template: { ...template, spec: { ...template.spec, nodeSelector: { 'kubernetes.io/os': 'linux', a: 'b' } } } };
    expect(cells('apps/daemonsets', { spec: daemon, status: { desiredNumberScheduled: 2, currentNumberScheduled: 2, numberReady: 1 } })).toEqual([
      'x', 2, 2, 1, 0, 0, 'a=b,kubernetes.io/os=linux', '90s', 'app,proxy', 'busybox,envoy', 'app=web',
    ]);
  });

  it('prints an empty or invalid selector as kube-apiserver does', () => {
    const bad = { selector: { matchExpressions: [{ key: 'app', operator: 'Near', values: ['web'] }] }, template };
    expect(cells('apps/deployments', { spec: bad }).at(-1)).toBe('<invalid>');
    expect(cells('apps/replicasets', { spec: bad }).at(-1)).toBe('<error>');
    expect(cells('apps/replicasets', { spec: { selector: {}, template } }).at(-1)).toBe('<none>');
  });
});

describe('event printer', () => {
  const event = (fields: Record<string, unknown>) => cells('events', { metadata: { name: 'e.1' }, involvedObject: { kind: 'Pod', name: 'web-0', fieldPath: 'spec.containers{app}' }, type: 'Normal', reason: 'Pulled', message: ' pulled\n', ...fields });

  it('prints when it was last seen, the object as kind/name, the source, and the count', () => {
    expect(event({ firstTimestamp: ago(600), lastTimestamp: ago(60), count: 4, source: { component: 'kubelet', host: 'node-1' } })).toEqual([
      '60s', 'Normal', 'Pulled', 'pod/web-0', 'spec.containers{app}', 'kubelet, node-1', 'pulled', '10m', 4, 'e.1',
    ]);
  });

  it('falls back to the event time, a series, the reporting controller, a count of 1 and <unknown>', () => {
    expect(event({ eventTime: ago(30), reportingComponent: 'eni-agent' }).slice(0, 10)).toEqual(['30s', 'Normal', 'Pulled', 'pod/web-0', 'spec.containers{app}', 'eni-agent', 'pulled', '30s', 1, 'e.1']);
    expect(event({ eventTime: ago(300), series: { count: 7, lastObservedTime: ago(5) } }).filter((_, i) => [0, 7, 8].includes(i))).toEqual(['5s', '5m', 7]);
    expect(event({ involvedObject: { kind: 'Node' } })[0]).toBe('<unknown>');
    expect(event({ involvedObject: { kind: 'Node' } })[3]).toBe('node');
  });
});
