// EIPs through the SDK: allocation checks, binding states, quota, release.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from './emulator.ts';
import { codeOf, startTestEmulator, testWorld, vpcClient, waitEipTask, type VpcClient } from './testing.ts';

let emulator: Emulator;
let vpc: VpcClient;
beforeEach(async () => {
  // Tasks long enough that a state in flight (CREATING, BINDING) is seen on a loaded machine.
  emulator = await startTestEmulator({ world: testWorld({ eipQuota: 3, latencies: { taskMs: 400, apiMs: 0 } }) });
  vpc = vpcClient(emulator);
});
afterEach(async () => emulator.close());


async function status(id: string) {
  return (await vpc.DescribeAddresses({ AddressIds: [id] })).AddressSet![0]!;
}

describe('EIPs', () => {
  it('allocates with ISP and bandwidth, binds to an ENI address, unbinds and releases', async () => {
    const { AddressSet, TaskId } = await vpc.AllocateAddresses({ InternetServiceProvider: 'BGP', InternetMaxBandwidthOut: 100 });
    const id = AddressSet![0]!;
    expect((await status(id)).AddressStatus).toBe('CREATING');
    expect(await waitEipTask(vpc, TaskId)).toBe('SUCCESS');
    expect(await status(id)).toMatchObject({ AddressStatus: 'UNBIND', Bandwidth: 100, InternetServiceProvider: 'BGP' });

    const primary = (await vpc.DescribeNetworkInterfaces({ Filters: [{ Name: 'attachment.instance-id', Values: ['ins-node0001'] }] })).NetworkInterfaceSet![0]!;
    const bind = await vpc.AssociateAddress({ AddressId: id, NetworkInterfaceId: primary.NetworkInterfaceId!, PrivateIpAddress: '10.0.0.11' });
    expect((await status(id)).AddressStatus).toBe('BINDING');
    expect(await codeOf(vpc.ReleaseAddresses({ AddressIds: [id] }))).toBe('OperationDenied.MutexTaskRunning');
    await waitEipTask(vpc, bind.TaskId);
    expect(await status(id)).toMatchObject({ AddressStatus: 'BIND', NetworkInterfaceId: primary.NetworkInterfaceId, PrivateAddressIp: '10.0.0.11' });
    const eni = (await vpc.DescribeNetworkInterfaces({ NetworkInterfaceIds: [primary.NetworkInterfaceId!] })).NetworkInterfaceSet![0]!;
    expect(eni.PrivateIpAddressSet![0]).toMatchObject({ PublicIpAddress: (await status(id)).AddressIp, AddressId: id });
    expect(await codeOf(vpc.ReleaseAddresses({ AddressIds: [id] }))).toBe('UnsupportedOperation.AddressStatusNotPermit');

    const unbind = await vpc.DisassociateAddress({ AddressId: id });
    await waitEipTask(vpc, unbind.TaskId);
    expect((await status(id)).AddressStatus).toBe('UNBIND');
    const release = await vpc.ReleaseAddresses({ AddressIds: [id] });
    await waitEipTask(vpc, release.TaskId);
    expect((await vpc.DescribeAddresses({ AddressIds: [id] })).TotalCount).toBe(0);
  });

  it('validates ISP and bandwidth', async () => {
    expect(await codeOf(vpc.AllocateAddresses({ InternetServiceProvider: 'ACME' }))).toBe('InvalidParameterValue');
    expect(await codeOf(vpc.AllocateAddresses({ InternetMaxBandwidthOut: 101 }))).toBe('InvalidParameterValue.BandwidthOutOfRange');
    expect(await codeOf(vpc.AllocateAddresses({ InternetMaxBandwidthOut: 0 }))).toBe('InvalidParameterValue.BandwidthOutOfRange');
    await expect(vpc.AllocateAddresses({ InternetServiceProvider: 'CMCC', InternetMaxBandwidthOut: 1 })).resolves.toBeDefined();
  });

  it('keeps the account quota and reports it', async () => {
    await vpc.AllocateAddresses({ AddressCount: 2 });
    expect(await codeOf(vpc.AllocateAddresses({ AddressCount: 2 }))).toBe('AddressQuotaLimitExceeded');
    const { QuotaSet } = await vpc.DescribeAddressQuota();
    expect(QuotaSet!.find((q) => q.QuotaId === 'TOTAL_EIP_QUOTA')).toMatchObject({ QuotaCurrent: 2, QuotaLimit: 3 });
  });

  it('refuses to bind an address that already has an EIP', async () => {
    const a = await vpc.AllocateAddresses({ AddressCount: 2 });
    await waitEipTask(vpc, a.TaskId);
    const [first, second] = a.AddressSet!;
    const bound = await vpc.AssociateAddress({ AddressId: first!, InstanceId: 'ins-node0002' });
    await waitEipTask(vpc, bound.TaskId);
    expect(await codeOf(vpc.AssociateAddress({ AddressId: second!, InstanceId: 'ins-node0002' }))).toBe('InvalidPrivateIpAddress.AlreadyBindEip');
    expect(await codeOf(vpc.AssociateAddress({ AddressId: second! }))).toBe('InvalidParameterValue.MissingAssociateEntity');
  });
});
