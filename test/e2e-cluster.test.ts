// The lab as a cluster: a seed's StatefulSet applied with kubectl runs pods on lab nodes, whose sandboxes
// containerd starts through the installed eni-cni plugin; the scheduler counts the agents' eni-ip
// resource, cordon and nodeSelector steer it; scaling, deleting a pod and deleting the set free everything.
import { fileURLToPath } from 'node:url';
import type * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeClients, Lab, pings, WHOAMI_URL } from '../hack/lab/lab.ts';
import { run } from '../hack/lab/sh.ts';
import { until } from './eventually.ts';

const SEED_STATEFULSET = fileURLToPath(new URL('../hack/examples/busybox-statefulset.yaml', import.meta.url));
const GATEWAY = '10.0.16.1';

let lab: Lab;
let clients: ReturnType<typeof kubeClients>;

const kubectl = (...args: string[]) => run('kubectl', ['--kubeconfig', lab.kubeconfigFile('admin'), ...args]);
const podsOf = async (selector: string) => (await clients.core.listNamespacedPod({ namespace: 'default', labelSelector: selector })).items;
const running = (pods: k8s.V1Pod[]) => pods.filter((p) => p.status?.phase === 'Running' && p.status.podIP && !p.metadata?.deletionTimestamp);
const allocated = () => lab.nodes.flatMap((n) => n.agent!.allocations());

/** Waits for exactly `names` to run, and returns them. */
async function runningPods(selector: string, names: string[], ms = 45_000): Promise<k8s.V1Pod[]> {
  return until(`pods ${names.join(', ')} running`, () => podsOf(selector), (pods) => JSON.stringify(running(pods).map((p) => p.metadata!.name).sort()) === JSON.stringify([...names].sort()) && pods.length === names.length, ms).catch(async (err: Error) => {
    err.message += `\n${await kubectl('get', 'pods', '-o', 'wide').catch(() => '')}\n${await kubectl('get', 'events').catch(() => '')}`;
    throw err;
  });
}

/** What pod plumbing a node's namespace holds: veths (but the node's own, to the fabric), and routes and rules that name an address. */
async function plumbing(ns: string, addresses: string[]): Promise<string[]> {
  const links = (await run('ip', ['-n', ns, '-o', 'link', 'show', 'type', 'veth'])).split('\n').filter((l) => l && !l.includes(`link-netns ${lab.fabric.names.vpc}`));
  const routes = (await run('ip', ['-n', ns, '-4', 'route', 'show', 'table', 'all'])).split('\n');
  const rules = (await run('ip', ['-n', ns, '-4', 'rule', 'show'])).split('\n');
  return [...links, ...[...routes, ...rules].filter((line) => addresses.some((a) => new RegExp(`\\b${a.replace(/\./g, '\\.')}\\b`).test(line)))];
}

beforeAll(async () => {
  lab = await Lab.up({ nodes: 2, taskMs: 30, cluster: true, agents: { minWarm: 2, maxWarm: 4 } });
  clients = kubeClients(lab.kubeconfigFile('admin'));
}, 120_000);

afterAll(async () => {
  await lab?.down();
});

describe('the lab as a cluster', () => {
  it('registers each lab node with capacity, zone and instance type, and the eni-ip the agent publishes', async () => {
    const nodes = await until('nodes with eni-ip', async () => (await clients.core.listNode()).items, (items) => items.length === 2 && items.every((n) => Number(n.status?.allocatable?.['tke.cloud.tencent.com/eni-ip']) > 0));
    for (const node of nodes) {
      const lab_ = lab.nodes.find((n) => n.name === node.metadata!.name)!;
      expect(node.metadata!.labels!['topology.kubernetes.io/zone']).toBe(lab_.zone);
      expect(node.metadata!.labels!['node.kubernetes.io/instance-type']).toBeTruthy();
      expect(node.status!.allocatable!.pods).toBe('110');
      expect(node.status!.conditions!.find((c) => c.type === 'Ready')!.status).toBe('True');
      expect(node.status!.addresses).toContainEqual({ type: 'InternalIP', address: lab_.privateIp });
    }
    expect(await kubectl('get', 'nodes')).toMatch(/node-1\s+Ready/);
  });

  it("runs the seed's StatefulSet: pods with VPC addresses from their node's ENIs, reaching each other, the gateway and the internet", async () => {
    await kubectl('apply', '-f', SEED_STATEFULSET);
    const pods = await runningPods('k8s-app=busybox', ['busybox-0', 'busybox-1', 'busybox-2']);
    const state = lab.emulator.state();
    for (const pod of pods) {
      const node = lab.nodes.find((n) => n.name === pod.spec!.nodeName)!;
      // The address is on an ENI attached to the pod's node, and the node's agent holds it for this pod.
      const eni = state.networkInterfaces.find((e) => e.PrivateIpAddressSet.some((ip) => ip.PrivateIpAddress === pod.status!.podIP));
      expect(eni?.Attachment?.InstanceId).toBe(node.instanceId);
      expect(node.agent!.allocations().find((a) => a.address === pod.status!.podIP)?.pod).toMatchObject({ namespace: 'default', name: pod.metadata!.name });
      expect(pod.metadata!.ownerReferences![0]).toMatchObject({ kind: 'StatefulSet', name: 'busybox', controller: true });
      expect(pod.status!.containerStatuses![0]!.containerID).toMatch(/^containerd:\/\//);
    }
    // Spread over both nodes by the scheduler.
    expect(new Set(pods.map((p) => p.spec!.nodeName)).size).toBe(2);

    const [first, ...others] = pods;
    const netns = await lab.podNetns('default', first!.metadata!.name!);
    const name = netns.split('/').pop()!;
    for (const other of others) expect(await pings(name, other.status!.podIP!), `ping ${other.metadata!.name}`).toBe(true);
    expect(await pings(name, GATEWAY)).toBe(true);
    // Inside the pod: its eth0 has the address the API shows; the internet sees the node's public address.
    expect(await run('nsenter', [`--net=${netns}`, 'ip', '-4', '-o', 'address', 'show', 'dev', 'eth0'])).toContain(`${first!.status!.podIP}/32`);
    const node = lab.nodes.find((n) => n.name === first!.spec!.nodeName)!;
    expect((await run('nsenter', [`--net=${netns}`, 'timeout', '5', 'busybox', 'wget', '-qO-', WHOAMI_URL])).trim()).toBe(node.publicIp);
  }, 90_000);

  it('gives a deleted pod back under its name with a new sandbox and container', async () => {
    const [before] = await runningPods('statefulset.kubernetes.io/pod-name=busybox-0', ['busybox-0']);
    await kubectl('delete', 'pod', 'busybox-0', '--wait=false');
    const [after] = await until(
      'a new busybox-0',
      async () => running(await podsOf('statefulset.kubernetes.io/pod-name=busybox-0')),
      (pods) => pods.length === 1 && pods[0]!.metadata!.uid !== before!.metadata!.uid,
      30_000,
    );
    expect(after!.status!.containerStatuses![0]!.containerID).not.toBe(before!.status!.containerStatuses![0]!.containerID);
    // The old pod's address went back to its node's pool: only the three live pods hold one.
    await until('three allocations', allocated, (a) => a.length === 3);
  }, 60_000);

  it('scales down to one, and the two pods’ addresses go back to the pools', async () => {
    const gone = (await podsOf('k8s-app=busybox')).filter((p) => p.metadata!.name !== 'busybox-0').map((p) => p.status!.podIP!);
    await kubectl('scale', 'statefulset', 'busybox', '--replicas=1');
    await runningPods('k8s-app=busybox', ['busybox-0']);
    const held = await until('one allocation', allocated, (a) => a.length === 1);
    expect(gone.some((ip) => held.some((a) => a.address === ip))).toBe(false);
    expect((await clients.apps.readNamespacedStatefulSet({ name: 'busybox', namespace: 'default' })).status).toMatchObject({ replicas: 1, readyReplicas: 1 });
  }, 60_000);

  it('steers pods by cordon and nodeSelector', async () => {
    const [pod] = await runningPods('k8s-app=busybox', ['busybox-0']);
    const from = pod!.spec!.nodeName!;
    const to = lab.nodes.find((n) => n.name !== from)!.name;
    await kubectl('cordon', from);
    try {
      await kubectl('delete', 'pod', 'busybox-0', '--wait=false');
      const [moved] = await until('busybox-0 on the other node', async () => running(await podsOf('k8s-app=busybox')), (p) => p.length === 1 && p[0]!.metadata!.uid !== pod!.metadata!.uid, 30_000);
      expect(moved!.spec!.nodeName).toBe(to);
    } finally {
      await kubectl('uncordon', from);
    }
    // A nodeSelector naming the first node's hostname puts a bare pod there.
    await clients.core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'pinned', labels: { app: 'pinned' }, annotations: { 'tke.cloud.tencent.com/networks': 'tke-route-eni' } },
        spec: { nodeSelector: { 'kubernetes.io/hostname': from }, containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'], resources: { requests: { 'tke.cloud.tencent.com/eni-ip': '1' } } }] },
      },
    });
    const [pinned] = await runningPods('app=pinned', ['pinned']);
    expect(pinned!.spec!.nodeName).toBe(from);
    await kubectl('delete', 'pod', 'pinned');
    await until('pinned gone', () => podsOf('app=pinned'), (p) => p.length === 0);
  }, 90_000);

  it('leaves a pod asking for more eni-ip than any node has Pending, with a FailedScheduling event', async () => {
    await clients.core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'greedy' },
        spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests: { 'tke.cloud.tencent.com/eni-ip': '1000' }, limits: { 'tke.cloud.tencent.com/eni-ip': '1000' } } }] },
      },
    });
    const events = await until(
      'FailedScheduling for greedy',
      async () => (await clients.core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=greedy,reason=FailedScheduling' })).items,
      (items) => items.length > 0,
    );
    expect(events[0]!.message).toBe('0/2 nodes are available: 2 Insufficient tke.cloud.tencent.com/eni-ip.');
    const pod = await clients.core.readNamespacedPod({ name: 'greedy', namespace: 'default' });
    expect(pod.status?.phase).toBe('Pending');
    expect(pod.spec?.nodeName).toBeUndefined();
    expect(pod.status?.conditions?.find((c) => c.type === 'PodScheduled')).toMatchObject({ status: 'False', reason: 'Unschedulable' });
    await kubectl('delete', 'pod', 'greedy');
  });

  it("a pod the plugin refuses stays ContainerCreating with kubelet's FailedCreatePodSandBox event, and deletes cleanly", async () => {
    await clients.core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'refused', annotations: { 'tke.cloud.tencent.com/networks': 'no-such-network' } },
        spec: { containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'], resources: { requests: { 'tke.cloud.tencent.com/eni-ip': '1' } } }] },
      },
    });
    const events = await until(
      'FailedCreatePodSandBox for refused',
      async () => (await clients.core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=refused,reason=FailedCreatePodSandBox' })).items,
      (items) => items.length > 0,
      30_000,
    );
    expect(events[0]!.type).toBe('Warning');
    expect(events[0]!.message).toMatch(/^Failed to create pod sandbox: .*default\/refused.*no-such-network/);
    expect(await kubectl('get', 'pod', 'refused')).toMatch(/refused\s+0\/1\s+ContainerCreating/);
    await kubectl('delete', 'pod', 'refused');
    await until('refused gone', () => clients.core.listNamespacedPod({ namespace: 'default', fieldSelector: 'metadata.name=refused' }), (l) => l.items.length === 0);
  }, 60_000);

  it('deleting the StatefulSet removes its pods, their addresses and every veth, route and rule they had', async () => {
    const addresses = (await podsOf('k8s-app=busybox')).map((p) => p.status!.podIP!).filter(Boolean);
    expect(addresses.length).toBe(1);
    await kubectl('delete', '-f', SEED_STATEFULSET);
    await until('no busybox pods', () => podsOf('k8s-app=busybox'), (p) => p.length === 0, 30_000);
    await until('no allocations', allocated, (a) => a.length === 0);
    for (const node of lab.nodes) expect(await plumbing(node.ns, addresses)).toEqual([]);
  }, 60_000);
});
