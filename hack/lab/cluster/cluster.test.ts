// The scheduler and the StatefulSet controller against the API server stand-in, with the test playing
// kubelet (marking bound pods Running and Ready, finishing graceful deletions): the orders, counts and
// messages they are meant to give, without containerd or nodes.
import * as k8s from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../apiserver/server.ts';
import { until } from '../../../test/eventually.ts';
import { requestsOf, Scheduler } from './scheduler.ts';
import { ordinalOf, StatefulSetController } from './statefulsets.ts';

const ENI_IP = 'tke.cloud.tencent.com/eni-ip';
let server: ApiServer;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
let apps: k8s.AppsV1Api;
const running: Array<{ stop: () => Promise<void> }> = [];
const log = () => undefined;
const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

beforeAll(async () => {
  server = await startApiServer();
  kc = new k8s.KubeConfig();
  kc.loadFromString(server.kubeconfig());
  core = kc.makeApiClient(k8s.CoreV1Api);
  apps = kc.makeApiClient(k8s.AppsV1Api);
});
afterAll(async () => server?.close());
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
  for (const s of (await apps.listNamespacedStatefulSet({ namespace: 'default' })).items) await apps.deleteNamespacedStatefulSet({ name: s.metadata!.name!, namespace: 'default' });
  for (const p of (await core.listNamespacedPod({ namespace: 'default' })).items) await core.deleteNamespacedPod({ name: p.metadata!.name!, namespace: 'default', body: { gracePeriodSeconds: 0 } }).catch(() => undefined);
  for (const n of (await core.listNode()).items) await core.deleteNode({ name: n.metadata!.name! });
});

async function node(name: string, eniIps: number, extra: { labels?: Record<string, string>; taints?: k8s.V1Taint[]; ready?: boolean } = {}) {
  const resources = { cpu: '2', memory: '4Gi', pods: '110', [ENI_IP]: String(eniIps) };
  await core.createNode({
    body: {
      metadata: { name, labels: { 'kubernetes.io/hostname': name, ...extra.labels } },
      spec: { taints: extra.taints ?? [] },
      status: { capacity: resources, allocatable: resources, conditions: [{ type: 'Ready', status: extra.ready === false ? 'False' : 'True' }] },
    },
  });
}

function podBody(name: string, spec: Partial<k8s.V1PodSpec> = {}, eniIps = 1): k8s.V1Pod {
  return { metadata: { name }, spec: { containers: [{ name: 'c', image: 'busybox', resources: { limits: { [ENI_IP]: String(eniIps) } } }], ...spec } };
}

async function start<T extends { start(): Promise<void>; stop(): Promise<void> }>(c: T): Promise<T> {
  await c.start();
  running.push(c);
  return c;
}

/** The test's kubelet: bound pods become Running and Ready; pods being deleted go. */
async function kubelet(): Promise<void> {
  for (const pod of (await core.listNamespacedPod({ namespace: 'default' })).items) {
    const { name, uid, deletionTimestamp } = pod.metadata!;
    if (deletionTimestamp) {
      await core.deleteNamespacedPod({ name: name!, namespace: 'default', body: { gracePeriodSeconds: 0, preconditions: { uid } } }).catch(() => undefined);
    } else if (pod.spec?.nodeName && pod.status?.phase !== 'Running') {
      const status = { phase: 'Running', podIP: '10.0.0.9', conditions: [{ type: 'Ready', status: 'True' }] };
      await core.patchNamespacedPodStatus({ name: name!, namespace: 'default', body: { status } }, merge);
    }
  }
}

const names = async () => (await core.listNamespacedPod({ namespace: 'default' })).items.map((p) => `${p.metadata!.name}${p.metadata!.deletionTimestamp ? ' (going)' : ''}`).sort();
const failedScheduling = async (pod: string) =>
  (await core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${pod},reason=FailedScheduling` })).items.map((e) => e.message);

describe('the scheduler', () => {
  it('binds pods where their extended resources fit, spreading them, and leaves the rest Pending with the reason', async () => {
    await node('a', 2);
    await node('b', 2);
    await start(new Scheduler(kc, log));
    for (const name of ['p1', 'p2', 'p3', 'p4', 'p5']) await core.createNamespacedPod({ namespace: 'default', body: podBody(name) });
    const pods = await until('four bound', async () => (await core.listNamespacedPod({ namespace: 'default' })).items, (items) => items.filter((p) => p.spec?.nodeName).length === 4);
    const perNode = (n: string) => pods.filter((p) => p.spec?.nodeName === n).length;
    expect([perNode('a'), perNode('b')]).toEqual([2, 2]);
    expect(await until('p5 FailedScheduling', () => failedScheduling('p5'), (m) => m.length > 0)).toEqual(['0/2 nodes are available: 2 Insufficient tke.cloud.tencent.com/eni-ip.']);
    const p5 = await core.readNamespacedPod({ name: 'p5', namespace: 'default' });
    expect(p5.status?.conditions?.find((c) => c.type === 'PodScheduled')).toMatchObject({ status: 'False', reason: 'Unschedulable' });
    // Room made (a pod gone) is taken by the pending pod.
    await core.deleteNamespacedPod({ name: 'p1', namespace: 'default', body: { gracePeriodSeconds: 0 } });
    await until('p5 bound', () => core.readNamespacedPod({ name: 'p5', namespace: 'default' }), (p) => Boolean(p.spec?.nodeName));
  });

  it('honours cordon, readiness, taints and tolerations, nodeSelector and required node affinity', async () => {
    await node('cordoned', 5);
    await core.patchNode({ name: 'cordoned', body: { spec: { unschedulable: true } } }, merge);
    await node('sick', 5, { ready: false });
    await node('tainted', 5, { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] });
    await node('zone-a', 5, { labels: { 'topology.kubernetes.io/zone': 'a' } });
    await start(new Scheduler(kc, log));
    await core.createNamespacedPod({ namespace: 'default', body: podBody('elsewhere', { nodeSelector: { 'topology.kubernetes.io/zone': 'b' } }) });
    expect(await until('elsewhere unschedulable', () => failedScheduling('elsewhere'), (m) => m.length > 0)).toEqual([
      "0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: db}, 1 node(s) were not ready, 1 node(s) were unschedulable.",
    ]);
    const bound = (name: string) => until(`${name} bound`, () => core.readNamespacedPod({ name, namespace: 'default' }), (p) => Boolean(p.spec?.nodeName)).then((p) => p.spec!.nodeName);
    await core.createNamespacedPod({ namespace: 'default', body: podBody('tolerant', { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }], nodeSelector: { 'kubernetes.io/hostname': 'tainted' } }) });
    expect(await bound('tolerant')).toBe('tainted');
    const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a'] }] }] } } };
    await core.createNamespacedPod({ namespace: 'default', body: podBody('affine', { affinity }) });
    expect(await bound('affine')).toBe('zone-a');
  });

  it('counts requests, limits standing for requests, and init containers as kube-scheduler does', () => {
    const pod: k8s.V1Pod = {
      spec: {
        initContainers: [{ name: 'i', resources: { requests: { cpu: '1500m' } } }],
        containers: [
          { name: 'a', resources: { requests: { cpu: '250m', memory: '64Mi' }, limits: { [ENI_IP]: '1' } } },
          { name: 'b', resources: { requests: { cpu: '500m', [ENI_IP]: '1' }, limits: { [ENI_IP]: '2' } } },
        ],
      },
    };
    expect(Object.fromEntries(requestsOf(pod))).toEqual({ pods: 1, cpu: 1.5, memory: 64 * 1024 * 1024, [ENI_IP]: 2 });
  });
});

describe('the StatefulSet controller', () => {
  const set = (replicas: number, policy?: 'Parallel'): k8s.V1StatefulSet => ({
    metadata: { name: 'web' },
    spec: {
      replicas,
      serviceName: '',
      ...(policy ? { podManagementPolicy: policy } : {}),
      selector: { matchLabels: { app: 'web' } },
      template: { metadata: { labels: { app: 'web' }, annotations: { 'tke.cloud.tencent.com/networks': 'tke-route-eni' } }, spec: { nodeName: 'n', containers: [{ name: 'c', image: 'busybox' }] } },
    },
  });

  it('creates ordinals in order, each once the one before is ready, owned by the set', async () => {
    await start(new StatefulSetController(kc, log));
    await apps.createNamespacedStatefulSet({ namespace: 'default', body: set(3) });
    await until('web-0', names, (n) => n.length === 1);
    // Nothing else while web-0 is not ready.
    await new Promise((r) => setTimeout(r, 300));
    expect(await names()).toEqual(['web-0']);
    await kubelet();
    await until('web-1', names, (n) => n.length === 2);
    expect(await names()).toEqual(['web-0', 'web-1']);
    await kubelet();
    await until('web-2', names, (n) => n.length === 3);
    const pod = await core.readNamespacedPod({ name: 'web-2', namespace: 'default' });
    const owner = await apps.readNamespacedStatefulSet({ name: 'web', namespace: 'default' });
    expect(pod.metadata!.ownerReferences).toEqual([{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: owner.metadata!.uid, controller: true, blockOwnerDeletion: true }]);
    expect(pod.metadata!.labels).toMatchObject({ app: 'web', 'statefulset.kubernetes.io/pod-name': 'web-2', 'apps.kubernetes.io/pod-index': '2' });
    expect(pod.metadata!.annotations).toEqual({ 'tke.cloud.tencent.com/networks': 'tke-route-eni' });
    expect(pod.spec!.hostname).toBe('web-2');
    await kubelet();
    await until('status 3 ready', () => apps.readNamespacedStatefulSet({ name: 'web', namespace: 'default' }), (s) => s.status?.readyReplicas === 3);
  });

  it('scales down from the highest ordinal, one at a time, and makes a deleted pod again', async () => {
    await start(new StatefulSetController(kc, log));
    await apps.createNamespacedStatefulSet({ namespace: 'default', body: set(3, 'Parallel') });
    // Parallel: all three at once, before any is ready.
    await until('three pods', names, (n) => n.length === 3);
    await kubelet();
    await apps.patchNamespacedStatefulSetScale({ name: 'web', namespace: 'default', body: { spec: { replicas: 1 } } }, merge);
    await until('web-2 going', names, (n) => n.includes('web-2 (going)'));
    await kubelet();
    await until('down to web-0', names, (n) => n.length === 1);
    expect(await names()).toEqual(['web-0']);

    const before = await core.readNamespacedPod({ name: 'web-0', namespace: 'default' });
    await core.deleteNamespacedPod({ name: 'web-0', namespace: 'default' });
    await kubelet();
    const after = await until('a new web-0', () => core.readNamespacedPod({ name: 'web-0', namespace: 'default' }), (p) => p.metadata!.uid !== before.metadata!.uid);
    expect(after.metadata!.name).toBe('web-0');
  });

  it('with OrderedReady, removes the next pod only once the one before it has gone', async () => {
    await start(new StatefulSetController(kc, log));
    await apps.createNamespacedStatefulSet({ namespace: 'default', body: set(3, 'Parallel') });
    await until('three pods', names, (n) => n.length === 3);
    await kubelet();
    await apps.patchNamespacedStatefulSet({ name: 'web', namespace: 'default', body: { spec: { podManagementPolicy: 'OrderedReady', replicas: 1 } } }, merge);
    await until('web-2 going', names, (n) => n.includes('web-2 (going)'));
    await new Promise((r) => setTimeout(r, 300));
    expect(await names()).toEqual(['web-0', 'web-1', 'web-2 (going)']);
    await kubelet();
    await until('web-1 going', names, (n) => n.includes('web-1 (going)'));
    expect(await names()).toEqual(['web-0', 'web-1 (going)']);
  });

  it('reads ordinals only from names of the set', () => {
    expect(ordinalOf('web', 'web-12')).toBe(12);
    expect(ordinalOf('web', 'web-012')).toBeUndefined();
    expect(ordinalOf('web', 'webx-1')).toBeUndefined();
    expect(ordinalOf('web', 'web-1-x')).toBeUndefined();
  });
});
