// ENI and address behaviour through the SDK: async states, locks, quotas, zones, subnets, migrations.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from './emulator.ts';
import type { CloudEvent } from './model.ts';
import { codeOf, startTestEmulator, testWorld, vpcClient, waitTask, type VpcClient } from './testing.ts';

let emulator: Emulator;
let vpc: VpcClient;
let events: CloudEvent[];

beforeEach(async () => {
  emulator = await startTestEmulator();
  vpc = vpcClient(emulator);
  events = [];
  emulator.onEvent((e) => events.push(e));
});
afterEach(async () => emulator.close());

async function createEni(subnetId = 'subnet-pod3a', extra = 0) {
  const { NetworkInterface, RequestId } = await vpc.CreateNetworkInterface({
    VpcId: 'vpc-lab00001',
    SubnetId: subnetId,
    NetworkInterfaceName: 'pods',
    SecurityGroupIds: ['sg-lab00001'],
    SecondaryPrivateIpAddressCount: extra,
  });
  expect(await waitTask(vpc, RequestId)).toBe('SUCCESS');
  return NetworkInterface!;
}

async function attach(eniId: string, instanceId = 'ins-node0001') {
  const { RequestId } = await vpc.AttachNetworkInterface({ NetworkInterfaceId: eniId, InstanceId: instanceId });
  expect(await waitTask(vpc, RequestId)).toBe('SUCCESS');
}

async function describeEni(id: string) {
  const { NetworkInterfaceSet } = await vpc.DescribeNetworkInterfaces({ NetworkInterfaceIds: [id] });
  return NetworkInterfaceSet![0]!;
}

describe('ENI lifecycle', () => {
  it('creates an ENI that is PENDING until its task ends, then AVAILABLE', async () => {
    // Long enough that a loaded machine still looks before the task ends.
    emulator.world.latencies.taskMs = 1000;
    const { NetworkInterface, RequestId } = await vpc.CreateNetworkInterface({
      VpcId: 'vpc-lab00001',
      SubnetId: 'subnet-pod3a',
      NetworkInterfaceName: 'pods',
      SecurityGroupIds: ['sg-lab00001'],
      SecondaryPrivateIpAddressCount: 2,
    });
    expect(NetworkInterface).toMatchObject({ State: 'PENDING', SubnetId: 'subnet-pod3a', Zone: 'ap-guangzhou-3', Primary: false });
    expect(NetworkInterface!.MacAddress).toMatch(/^20:90:6f(:[0-9a-f]{2}){3}$/);
    expect(NetworkInterface!.PrivateIpAddressSet).toHaveLength(3);
    expect(NetworkInterface!.PrivateIpAddressSet!.filter((ip) => ip.Primary)).toHaveLength(1);
    expect((await vpc.DescribeVpcTaskResult({ TaskId: RequestId! })).Status).toBe('RUNNING');
    expect(await waitTask(vpc, RequestId)).toBe('SUCCESS');
    expect((await describeEni(NetworkInterface!.NetworkInterfaceId!)).State).toBe('AVAILABLE');
    const { SubnetSet } = await vpc.DescribeSubnets({ SubnetIds: ['subnet-pod3a'] });
    expect(SubnetSet![0]).toMatchObject({ TotalIpAddressCount: 253, AvailableIpAddressCount: 250 });
  });

  it('attaches through ATTACHING, refuses a second change meanwhile, and tells subscribers', async () => {
    const eni = await createEni();
    emulator.world.latencies.taskMs = 1000;
    const { RequestId } = await vpc.AttachNetworkInterface({ NetworkInterfaceId: eni.NetworkInterfaceId!, InstanceId: 'ins-node0001' });
    const during = await describeEni(eni.NetworkInterfaceId!);
    expect(during.State).toBe('ATTACHING');
    expect(await codeOf(vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: eni.NetworkInterfaceId!, SecondaryPrivateIpAddressCount: 1 }))).toBe(
      'UnsupportedOperation.MutexOperationTaskRunning',
    );
    expect(events).toEqual([]);
    expect(await waitTask(vpc, RequestId)).toBe('SUCCESS');
    const after = await describeEni(eni.NetworkInterfaceId!);
    expect(after).toMatchObject({ State: 'AVAILABLE', NetworkInterfaceState: 'INUSE', Attachment: { InstanceId: 'ins-node0001', DeviceIndex: 1 } });
    expect(events).toEqual([
      { type: 'eni-attached', eniId: eni.NetworkInterfaceId, instanceId: 'ins-node0001', mac: eni.MacAddress, deviceIndex: 1, subnetId: 'subnet-pod3a' },
    ]);
    const { NetworkInterfaceSet } = await vpc.DescribeNetworkInterfaces({ Filters: [{ Name: 'attachment.instance-id', Values: ['ins-node0001'] }] });
    expect(NetworkInterfaceSet!.map((e) => e.Primary)).toEqual([true, false]);
  });

  it('refuses to attach across zones', async () => {
    const eni = await createEni('subnet-pod4a');
    expect(await codeOf(vpc.AttachNetworkInterface({ NetworkInterfaceId: eni.NetworkInterfaceId!, InstanceId: 'ins-node0001' }))).toBe(
      'UnsupportedOperation.ZoneMismatch',
    );
  });

  it('keeps the ENI quota of the instance type (4 cores: 4 ENIs of 10 addresses)', async () => {
    const limit = await vpc.DescribeNetworkInterfaceLimit({ InstanceId: 'ins-node0001' });
    expect(limit).toMatchObject({ EniQuantity: 4, EniPrivateIpAddressQuantity: 10 });
    expect(await vpc.DescribeNetworkInterfaceLimit({ InstanceId: 'ins-node0003' })).toMatchObject({ EniQuantity: 6, EniPrivateIpAddressQuantity: 20 });
    for (let i = 0; i < 3; i++) await attach((await createEni()).NetworkInterfaceId!);
    const fifth = await createEni();
    const err = await vpc.AttachNetworkInterface({ NetworkInterfaceId: fifth.NetworkInterfaceId!, InstanceId: 'ins-node0001' }).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'LimitExceeded' });
    expect((err as Error).message).toContain('4 of its 4 ENIs');
  });

  it('detaches, refuses to delete while attached, deletes and returns the addresses', async () => {
    const eni = await createEni('subnet-pod3a', 4);
    await attach(eni.NetworkInterfaceId!);
    expect(await codeOf(vpc.DeleteNetworkInterface({ NetworkInterfaceId: eni.NetworkInterfaceId! }))).toBe('ResourceInUse');
    const primaryEni = (await vpc.DescribeNetworkInterfaces({ Filters: [{ Name: 'is-primary', Values: ['true'] }, { Name: 'attachment.instance-id', Values: ['ins-node0001'] }] }))
      .NetworkInterfaceSet![0]!;
    expect(await codeOf(vpc.DetachNetworkInterface({ NetworkInterfaceId: primaryEni.NetworkInterfaceId!, InstanceId: 'ins-node0001' }))).toBe('UnsupportedOperation');
    emulator.world.latencies.taskMs = 1000;
    const detach = await vpc.DetachNetworkInterface({ NetworkInterfaceId: eni.NetworkInterfaceId!, InstanceId: 'ins-node0001' });
    expect((await describeEni(eni.NetworkInterfaceId!)).State).toBe('DETACHING');
    expect(await waitTask(vpc, detach.RequestId)).toBe('SUCCESS');
    expect(events.at(-1)).toEqual({ type: 'eni-detached', eniId: eni.NetworkInterfaceId, instanceId: 'ins-node0001', mac: eni.MacAddress });
    const del = await vpc.DeleteNetworkInterface({ NetworkInterfaceId: eni.NetworkInterfaceId! });
    expect(await waitTask(vpc, del.RequestId)).toBe('SUCCESS');
    expect((await vpc.DescribeNetworkInterfaces({ NetworkInterfaceIds: [eni.NetworkInterfaceId!] })).TotalCount).toBe(0);
    expect((await vpc.DescribeSubnets({ SubnetIds: ['subnet-pod3a'] })).SubnetSet![0]!.AvailableIpAddressCount).toBe(253);
  });

  it('moves a whole ENI to another instance', async () => {
    const eni = await createEni();
    await attach(eni.NetworkInterfaceId!);
    const { RequestId } = await vpc.MigrateNetworkInterface({
      NetworkInterfaceId: eni.NetworkInterfaceId!,
      SourceInstanceId: 'ins-node0001',
      DestinationInstanceId: 'ins-node0002',
    });
    expect(await waitTask(vpc, RequestId)).toBe('SUCCESS');
    expect((await describeEni(eni.NetworkInterfaceId!)).Attachment?.InstanceId).toBe('ins-node0002');
    expect(events.slice(-2).map((e) => e.type)).toEqual(['eni-detached', 'eni-attached']);
  });

  it('pages DescribeNetworkInterfaces with Offset and Limit', async () => {
    for (let i = 0; i < 3; i++) await createEni();
    const all = await vpc.DescribeNetworkInterfaces({ Filters: [{ Name: 'subnet-id', Values: ['subnet-pod3a'] }] });
    expect(all.TotalCount).toBe(3);
    const second = await vpc.DescribeNetworkInterfaces({ Filters: [{ Name: 'subnet-id', Values: ['subnet-pod3a'] }], Offset: 1, Limit: 1 });
    expect(second.TotalCount).toBe(3);
    expect(second.NetworkInterfaceSet!.map((e) => e.NetworkInterfaceId)).toEqual([all.NetworkInterfaceSet![1]!.NetworkInterfaceId]);
  });
});

describe('secondary addresses', () => {
  it('assigns at most 10 a call, up to the per-ENI quota', async () => {
    const eni = await createEni();
    await attach(eni.NetworkInterfaceId!);
    const id = eni.NetworkInterfaceId!;
    expect(await codeOf(vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: id, SecondaryPrivateIpAddressCount: 11 }))).toBe('InvalidParameterValue.LimitExceeded');
    emulator.world.latencies.taskMs = 1000;
    const first = await vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: id, SecondaryPrivateIpAddressCount: 6 });
    expect(first.PrivateIpAddressSet).toHaveLength(6);
    expect((await describeEni(id)).PrivateIpAddressSet!.filter((ip) => ip.State === 'PENDING')).toHaveLength(6);
    await waitTask(vpc, first.RequestId);
    expect(events.filter((e) => e.type === 'ip-assigned').map((e) => (e as { address: string }).address)).toEqual(
      first.PrivateIpAddressSet!.map((ip) => ip.PrivateIpAddress),
    );
    // 1 primary + 6 = 7 of 10; 4 more would make 11.
    expect(await codeOf(vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: id, SecondaryPrivateIpAddressCount: 4 }))).toBe('LimitExceeded');
    const named = await vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: id, PrivateIpAddresses: [{ PrivateIpAddress: '10.0.16.200' }] });
    expect(named.PrivateIpAddressSet![0]!.PrivateIpAddress).toBe('10.0.16.200');
    await waitTask(vpc, named.RequestId);
    expect(await codeOf(vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: id, PrivateIpAddresses: [{ PrivateIpAddress: '10.0.16.200' }] }))).toBe('ResourceInUse');
    expect(await codeOf(vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: id, PrivateIpAddresses: [{ PrivateIpAddress: '10.0.16.1' }] }))).toBe(
      'InvalidParameterValue.Reserved',
    );
  });

  it('unassigns secondary addresses but never the primary one', async () => {
    const eni = await createEni('subnet-pod3a', 3);
    const [primary, a, b] = eni.PrivateIpAddressSet!.map((ip) => ip.PrivateIpAddress!);
    const id = eni.NetworkInterfaceId!;
    expect(await codeOf(vpc.UnassignPrivateIpAddresses({ NetworkInterfaceId: id, PrivateIpAddresses: [{ PrivateIpAddress: primary! }] }))).toBe(
      'UnsupportedOperation',
    );
    expect(await codeOf(vpc.UnassignPrivateIpAddresses({ NetworkInterfaceId: id, PrivateIpAddresses: [{ PrivateIpAddress: '10.0.17.9' }] }))).toBe(
      'UnsupportedOperation.AttachmentNotFound',
    );
    const { RequestId } = await vpc.UnassignPrivateIpAddresses({ NetworkInterfaceId: id, PrivateIpAddresses: [{ PrivateIpAddress: a! }, { PrivateIpAddress: b! }] });
    await waitTask(vpc, RequestId);
    expect((await describeEni(id)).PrivateIpAddressSet!.map((ip) => ip.PrivateIpAddress)).toHaveLength(2);
    expect(events.filter((e) => e.type === 'ip-released')).toHaveLength(2);
  });

  it('moves an address between ENIs of one subnet only', async () => {
    const from = await createEni('subnet-pod3a', 1);
    const to = await createEni('subnet-pod3a');
    const other = await createEni('subnet-pod3b');
    const moving = from.PrivateIpAddressSet!.find((ip) => !ip.Primary)!.PrivateIpAddress!;
    expect(
      await codeOf(vpc.MigratePrivateIpAddress({ SourceNetworkInterfaceId: from.NetworkInterfaceId!, DestinationNetworkInterfaceId: other.NetworkInterfaceId!, PrivateIpAddress: moving })),
    ).toBe('UnsupportedOperation');
    const primary = from.PrivateIpAddressSet!.find((ip) => ip.Primary)!.PrivateIpAddress!;
    expect(
      await codeOf(vpc.MigratePrivateIpAddress({ SourceNetworkInterfaceId: from.NetworkInterfaceId!, DestinationNetworkInterfaceId: to.NetworkInterfaceId!, PrivateIpAddress: primary })),
    ).toBe('UnsupportedOperation.PrimaryIp');
    const { RequestId } = await vpc.MigratePrivateIpAddress({
      SourceNetworkInterfaceId: from.NetworkInterfaceId!,
      DestinationNetworkInterfaceId: to.NetworkInterfaceId!,
      PrivateIpAddress: moving,
    });
    await waitTask(vpc, RequestId);
    expect((await describeEni(to.NetworkInterfaceId!)).PrivateIpAddressSet!.map((ip) => ip.PrivateIpAddress)).toContain(moving);
    expect((await describeEni(from.NetworkInterfaceId!)).PrivateIpAddressSet!.map((ip) => ip.PrivateIpAddress)).not.toContain(moving);
    expect(events.at(-1)).toEqual({ type: 'ip-moved', fromEniId: from.NetworkInterfaceId, toEniId: to.NetworkInterfaceId, address: moving });
  });
});

describe('subnet exhaustion', () => {
  it('refuses addresses a full subnet does not have, and takes none of them', async () => {
    await emulator.close();
    const world = testWorld();
    world.subnets.push({ id: 'subnet-tiny', name: 'tiny', zone: 'ap-guangzhou-3', cidr: '10.0.99.0/28' });
    emulator = await startTestEmulator({ world });
    vpc = vpcClient(emulator);
    // A /28 has 16 addresses, 13 usable. The ENI's primary takes one; 10 more leave 2.
    const eni = await createEni('subnet-tiny', 9);
    const one = await vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: eni.NetworkInterfaceId!, SecondaryPrivateIpAddressCount: 1 });
    await waitTask(vpc, one.RequestId);
    expect((await vpc.DescribeSubnets({ SubnetIds: ['subnet-tiny'] })).SubnetSet![0]!.AvailableIpAddressCount).toBe(2);
    expect(await codeOf(vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: eni.NetworkInterfaceId!, SecondaryPrivateIpAddressCount: 3 }))).toBe(
      'ResourceInsufficient.Subnet',
    );
    expect((await vpc.DescribeSubnets({ SubnetIds: ['subnet-tiny'] })).SubnetSet![0]!.AvailableIpAddressCount).toBe(2);
  });
});
