// Where a fixed IP can go, on a lab cluster whose two nodes take pod ENIs from different subnets of one
// zone (node-1 from subnet-pod3a, node-2 from subnet-pod3b): a Never pod's address comes back on a node
// with no ENI in its subnet (ipamd opens one there, then moves the address), comes back by address when no
// ENI holds it any more, moves once when the cloud's answer is lost, finishes a move whose pod went on the
// way, and is refused, with an event naming it, when an ENI outside the cluster has taken it meanwhile —
// that ENI keeps it.
import type * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitTask } from '../hack/emulator/testing.ts';
import { Lab, pings } from '../hack/lab/lab.ts';
import { until } from './eventually.ts';
import { fixedIpPod } from './fixed-ip-pod.ts';

let lab: Lab;
let pod: ReturnType<typeof fixedIpPod>;
const NAME = 'mover';

beforeAll(async () => {
  lab = await Lab.up({ nodes: 2, taskMs: 30, cluster: true, agents: { minWarm: 1, maxWarm: 2, gcInterval: '2s' }, nodeSubnets: { 'node-1': ['subnet-pod3a'], 'node-2': ['subnet-pod3b'] } });
  pod = fixedIpPod(lab, NAME);
}, 120_000);
afterAll(async () => lab?.down());

describe('fixed IPs between subnets', () => {
  let address = '';

  it("comes back on a node with no ENI in its subnet: ipamd opens one there and moves the address", async () => {
    address = await pod.on('node-1');
    expect(pod.inCloud(address)).toMatchObject({ SubnetId: 'subnet-pod3a', Attachment: { InstanceId: pod.instanceOf('node-1') } });
    const node2Subnets = () => lab.emulator.state().networkInterfaces.filter((e) => e.Attachment?.InstanceId === pod.instanceOf('node-2') && !e.Primary).map((e) => e.SubnetId);
    expect(node2Subnets()).not.toContain('subnet-pod3a');
    await pod.gone();
    expect(await pod.on('node-2')).toBe(address);
    expect(pod.inCloud(address)).toMatchObject({ SubnetId: 'subnet-pod3a', Attachment: { InstanceId: pod.instanceOf('node-2') } });
    await until('the VpcIP on node-2', () => pod.kubectl('get', 'vip', address), (out) => out.includes('node-2'));
    await lab.settled();
    const netns = (await lab.podNetns('default', NAME)).split('/').pop()!;
    expect(await pings(netns, '10.0.16.1')).toBe(true);
  }, 90_000);

  it('comes back by address when no ENI holds it any more', async () => {
    await pod.gone();
    await pod.unassign(address);
    expect(await pod.on('node-1')).toBe(address);
    expect(pod.inCloud(address)).toMatchObject({ Attachment: { InstanceId: pod.instanceOf('node-1') } });
    // node-2, which held it for the claim, lets its reservation go once it reads its ENIs again.
    const node2 = lab.nodes.find((n) => n.name === 'node-2')!.agent!;
    await until('node-2 holds it no more', async () => node2.allocations(), (a) => !a.some((x) => x.address === address), 30_000);
  }, 90_000);

  it("moves once when the cloud's answer to MigratePrivateIpAddress is lost", async () => {
    await pod.gone();
    lab.emulator.addFault({ action: 'MigratePrivateIpAddress', times: 1, effect: { kind: 'drop' } });
    try {
      expect(await pod.on('node-2')).toBe(address);
    } finally {
      lab.emulator.faults.clear();
    }
    expect(pod.cloudHolders(address)).toEqual([pod.instanceOf('node-2')]);
  }, 90_000);

  it('finishes a move whose pod is deleted on the way, and the next pod of the name gets the address', async () => {
    await pod.gone();
    lab.emulator.addFault({ action: 'MigratePrivateIpAddress', times: 1, effect: { kind: 'latency', ms: 1500 } });
    try {
      await pod.create('node-1');
      await pod.moving();
      // ipamd's look at where the address landed is slow: for a while the cloud has it on node-1 while the
      // claim still names node-2, the node it is leaving — whose view of its ENIs still shows it too.
      lab.emulator.addFault({ action: 'DescribeNetworkInterfaces', times: 0, effect: { kind: 'latency', ms: 1000 } });
      await pod.kubectl('delete', 'pod', NAME, '--wait=true');
      // The move ends on node-1 with no pod there; a new pod of the name on node-2 brings it back.
      await until(`${address} on node-1`, async () => pod.inCloud(address)?.Attachment?.InstanceId, (i) => i === pod.instanceOf('node-1'), 30_000);
      await pod.create('node-2');
    } finally {
      lab.emulator.faults.clear();
    }
    expect(await pod.running('node-2')).toBe(address);
    expect(pod.cloudHolders(address), pod.logsAbout(address)).toEqual([pod.instanceOf('node-2')]);
    expect(pod.agentHolders(address)).toEqual(['node-2']);
  }, 90_000);

  it('refuses the pod, and leaves the address alone, when an ENI outside the cluster took it', async () => {
    await pod.gone();
    await pod.unassign(address);
    const made = await pod.vpc().CreateNetworkInterface({ VpcId: lab.emulator.world.vpc.id, SubnetId: 'subnet-pod3a', NetworkInterfaceName: 'someone-else', PrivateIpAddresses: [{ PrivateIpAddress: address, Primary: true }] });
    const theirs = made.NetworkInterface!.NetworkInterfaceId!;
    try {
      await waitTask(pod.vpc(), made.RequestId);
      await pod.create('node-1');
      const events = await until(
        `a refusal for ${NAME}`,
        async () => (await pod.clients.core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${NAME},reason=FailedCreatePodSandBox` })).items,
        (items: k8s.CoreV1Event[]) => items.some((e) => e.message?.includes(theirs)),
        45_000,
      );
      expect(events.find((e) => e.message?.includes(theirs))!.message).toContain(address);
      expect(pod.inCloud(address)?.NetworkInterfaceId).toBe(theirs);
    } finally {
      await pod.kubectl('delete', 'pod', NAME, '--wait=true').catch(() => undefined);
      await pod.kubectl('delete', 'vipc', NAME).catch(() => undefined);
      const r = await pod.vpc().DeleteNetworkInterface({ NetworkInterfaceId: theirs });
      await waitTask(pod.vpc(), r.RequestId);
    }
    await until('no allocation left', async () => lab.nodes.flatMap((n) => n.agent!.allocations()), (a) => !a.some((x) => x.address === address), 30_000);
  }, 120_000);
});
