// Where a fixed IP can go, on a lab cluster whose two nodes take pod ENIs from different subnets of one
// zone (node-1 from subnet-pod3a, node-2 from subnet-pod3b): a Never pod's address comes back on a node
// with no ENI in its subnet (ipamd opens one there, then moves the address), comes back by address when no
// ENI holds it any more, moves once when the cloud's answer is lost, finishes a move whose pod went on the
// way, and is refused, with an event naming it, when an ENI outside the cluster has taken it meanwhile —
// that ENI keeps it.
import type * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vpcClient, waitTask } from '../hack/emulator/testing.ts';
import { kubeClients, Lab, pings } from '../hack/lab/lab.ts';
import { run } from '../hack/lab/sh.ts';
import { until } from './eventually.ts';

let lab: Lab;
let clients: ReturnType<typeof kubeClients>;

const NAME = 'mover';
const kubectl = (...args: string[]) => run('kubectl', ['--kubeconfig', lab.kubeconfigFile('admin'), ...args]);
const inCloud = (address: string) => lab.emulator.state().networkInterfaces.find((e) => e.PrivateIpAddressSet.some((ip) => ip.PrivateIpAddress === address));
const instanceOf = (node: string) => lab.nodes.find((n) => n.name === node)!.instanceId;
const vpc = () => vpcClient(lab.emulator);

/** A Never pod of NAME bound to `node` (no scheduler in the way). */
function createPod(node: string) {
  return clients.core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name: NAME, annotations: { 'tke.cloud.tencent.com/networks': 'tke-route-eni', 'tke.cloud.tencent.com/vpc-ip-claim-delete-policy': 'Never' } },
      spec: { nodeName: node, terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'] }] },
    },
  });
}

/** That pod, created and running; answers its address. */
async function podOn(node: string): Promise<string> {
  await createPod(node);
  const pod = await until(`${NAME} running on ${node}`, () => clients.core.readNamespacedPod({ name: NAME, namespace: 'default' }), (p) => p.status?.phase === 'Running' && Boolean(p.status.podIP), 45_000).catch(async (err: Error) => {
    err.message += `\n${await kubectl('get', 'events').catch(() => '')}\n${lab.ipamds.map((r) => r.log().slice(-3000)).join('\n')}`;
    throw err;
  });
  return pod.status!.podIP!;
}

/** Deletes the pod and waits until its claim is Released (no pod holds the address). */
async function podGone(): Promise<void> {
  await kubectl('delete', 'pod', NAME, '--wait=true');
  await until(`${NAME}'s claim Released`, () => clients.custom.getNamespacedCustomObject({ group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'vpcipclaims', namespace: 'default', name: NAME }) as Promise<{ status?: { phase?: string } }>, (c) => c.status?.phase === 'Released', 30_000);
}

/** Takes an address off whatever ENI holds it, behind the cluster's back. */
async function unassign(address: string): Promise<void> {
  const eni = inCloud(address)!;
  const r = await vpc().UnassignPrivateIpAddresses({ NetworkInterfaceId: eni.NetworkInterfaceId, PrivateIpAddresses: [{ PrivateIpAddress: address }] });
  expect(await waitTask(vpc(), r.RequestId)).toBe('SUCCESS');
}

beforeAll(async () => {
  lab = await Lab.up({ nodes: 2, taskMs: 30, cluster: true, agents: { minWarm: 1, maxWarm: 2, gcInterval: '2s' }, nodeSubnets: { 'node-1': ['subnet-pod3a'], 'node-2': ['subnet-pod3b'] } });
  clients = kubeClients(lab.kubeconfigFile('admin'));
}, 120_000);
afterAll(async () => lab?.down());

describe('fixed IPs between subnets', () => {
  let address = '';

  it("comes back on a node with no ENI in its subnet: ipamd opens one there and moves the address", async () => {
    address = await podOn('node-1');
    expect(inCloud(address)).toMatchObject({ SubnetId: 'subnet-pod3a', Attachment: { InstanceId: instanceOf('node-1') } });
    const node2Subnets = () => lab.emulator.state().networkInterfaces.filter((e) => e.Attachment?.InstanceId === instanceOf('node-2') && !e.Primary).map((e) => e.SubnetId);
    expect(node2Subnets()).not.toContain('subnet-pod3a');
    await podGone();
    expect(await podOn('node-2')).toBe(address);
    expect(inCloud(address)).toMatchObject({ SubnetId: 'subnet-pod3a', Attachment: { InstanceId: instanceOf('node-2') } });
    await until('the VpcIP on node-2', () => kubectl('get', 'vip', address), (out) => out.includes('node-2'));
    await lab.settled();
    const netns = (await lab.podNetns('default', NAME)).split('/').pop()!;
    expect(await pings(netns, '10.0.16.1')).toBe(true);
  }, 90_000);

  it('comes back by address when no ENI holds it any more', async () => {
    await podGone();
    await unassign(address);
    expect(await podOn('node-1')).toBe(address);
    expect(inCloud(address)).toMatchObject({ Attachment: { InstanceId: instanceOf('node-1') } });
    // node-2, which held it for the claim, lets its reservation go once it reads its ENIs again.
    const node2 = lab.nodes.find((n) => n.name === 'node-2')!.agent!;
    await until('node-2 holds it no more', async () => node2.allocations(), (a) => !a.some((x) => x.address === address), 30_000);
  }, 90_000);

  it("moves once when the cloud's answer to MigratePrivateIpAddress is lost", async () => {
    await podGone();
    lab.emulator.addFault({ action: 'MigratePrivateIpAddress', times: 1, effect: { kind: 'drop' } });
    try {
      expect(await podOn('node-2')).toBe(address);
    } finally {
      lab.emulator.faults.clear();
    }
    const holders = lab.emulator.state().networkInterfaces.filter((e) => e.PrivateIpAddressSet.some((ip) => ip.PrivateIpAddress === address));
    expect(holders.map((e) => e.Attachment?.InstanceId)).toEqual([instanceOf('node-2')]);
  }, 90_000);

  it('finishes a move whose pod is deleted on the way, and the next pod of the name gets the address', async () => {
    await podGone();
    lab.emulator.addFault({ action: 'MigratePrivateIpAddress', times: 1, effect: { kind: 'latency', ms: 1500 } });
    try {
      await createPod('node-1');
      await until(`${NAME}'s address on its way`, () => clients.custom.getNamespacedCustomObject({ group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'vpcipclaims', namespace: 'default', name: NAME }) as Promise<{ status?: { message?: string } }>, (c) => Boolean(c.status?.message?.startsWith('moving')), 30_000);
      await kubectl('delete', 'pod', NAME, '--wait=true');
    } finally {
      lab.emulator.faults.clear();
    }
    // The move ends on node-1 with no pod there; a new pod of the name on node-2 brings it back.
    await until(`${address} on node-1`, async () => inCloud(address)?.Attachment?.InstanceId, (i) => i === instanceOf('node-1'), 30_000);
    expect(await podOn('node-2')).toBe(address);
    const holders = lab.emulator.state().networkInterfaces.filter((e) => e.PrivateIpAddressSet.some((ip) => ip.PrivateIpAddress === address));
    expect(holders.map((e) => e.Attachment?.InstanceId)).toEqual([instanceOf('node-2')]);
    const held = lab.nodes.flatMap((n) => n.agent!.allocations().filter((x) => x.address === address).map(() => n.name));
    expect(held).toEqual(['node-2']);
  }, 90_000);

  it('refuses the pod, and leaves the address alone, when an ENI outside the cluster took it', async () => {
    await podGone();
    await unassign(address);
    const made = await vpc().CreateNetworkInterface({ VpcId: lab.emulator.world.vpc.id, SubnetId: 'subnet-pod3a', NetworkInterfaceName: 'someone-else', PrivateIpAddresses: [{ PrivateIpAddress: address, Primary: true }] });
    const theirs = made.NetworkInterface!.NetworkInterfaceId!;
    try {
      await waitTask(vpc(), made.RequestId);
      await createPod('node-1');
      const events = await until(
        `a refusal for ${NAME}`,
        async () => (await clients.core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${NAME},reason=FailedCreatePodSandBox` })).items,
        (items: k8s.CoreV1Event[]) => items.some((e) => e.message?.includes(theirs)),
        45_000,
      );
      expect(events.find((e) => e.message?.includes(theirs))!.message).toContain(address);
      expect(inCloud(address)?.NetworkInterfaceId).toBe(theirs);
    } finally {
      await kubectl('delete', 'pod', NAME, '--wait=true').catch(() => undefined);
      await kubectl('delete', 'vipc', NAME).catch(() => undefined);
      const r = await vpc().DeleteNetworkInterface({ NetworkInterfaceId: theirs });
      await waitTask(vpc(), r.RequestId);
    }
    await until('no allocation left', async () => lab.nodes.flatMap((n) => n.agent!.allocations()), (a) => !a.some((x) => x.address === address), 30_000);
  }, 120_000);
});
