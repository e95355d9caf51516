// Fault injection and ClientToken idempotency: the failures a CNI's cloud adapter must survive.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from './emulator.ts';
import { codeOf, startTestEmulator, vpcClient, waitTask, type VpcClient } from './testing.ts';

let emulator: Emulator;
let vpc: VpcClient;
beforeEach(async () => {
  emulator = await startTestEmulator();
  vpc = vpcClient(emulator);
});
afterEach(async () => emulator.close());

const ENI_REQUEST = { VpcId: 'vpc-lab00001', SubnetId: 'subnet-pod3a', NetworkInterfaceName: 'pods', SecurityGroupIds: ['sg-lab00001'] };

describe('faults', () => {
  it('fails exactly the Nth call of an action with the given code', async () => {
    emulator.addFault({ action: 'DescribeSubnets', nth: 2, effect: { kind: 'error', code: 'InternalError', message: 'boom' } });
    await expect(vpc.DescribeSubnets({})).resolves.toBeDefined();
    expect(await codeOf(vpc.DescribeSubnets({}))).toBe('InternalError');
    await expect(vpc.DescribeSubnets({})).resolves.toBeDefined();
    // Other actions are untouched.
    await expect(vpc.DescribeVpcs({})).resolves.toBeDefined();
  });

  it('adds latency', async () => {
    emulator.addFault({ action: '*', times: 0, effect: { kind: 'latency', ms: 150 } });
    const started = performance.now();
    await vpc.DescribeVpcs({});
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('carries out a dropped call: the client sees a failure, the cloud has the ENI', async () => {
    emulator.addFault({ action: 'CreateNetworkInterface', effect: { kind: 'drop' } });
    const err = await vpc.CreateNetworkInterface(ENI_REQUEST).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((await vpc.DescribeNetworkInterfaces({ Filters: [{ Name: 'subnet-id', Values: ['subnet-pod3a'] }] })).TotalCount).toBe(1);
  });

  it('takes faults over HTTP too', async () => {
    const res = await fetch(`${emulator.apiUrl}/emulator/faults`, {
      method: 'POST',
      body: JSON.stringify({ action: 'DescribeVpcs', effect: { kind: 'error', code: 'RequestLimitExceeded' } }),
    });
    expect(res.status).toBe(201);
    expect(await codeOf(vpc.DescribeVpcs({}))).toBe('RequestLimitExceeded');
    const bad = await fetch(`${emulator.apiUrl}/emulator/faults`, { method: 'POST', body: JSON.stringify({ action: 'DescribeVpcs', effect: { kind: 'melt' } }) });
    expect(bad.status).toBe(400);
  });
});

describe('ClientToken', () => {
  it('makes the retry of a dropped call return the first answer instead of acting twice', async () => {
    const created = await vpc.CreateNetworkInterface(ENI_REQUEST);
    await waitTask(vpc, created.RequestId);
    const eni = created.NetworkInterface!;
    emulator.addFault({ action: 'AssignPrivateIpAddresses', effect: { kind: 'drop' } });
    const request = { NetworkInterfaceId: eni.NetworkInterfaceId!, SecondaryPrivateIpAddressCount: 3, ClientToken: 'add-pods-1' };
    await expect(vpc.AssignPrivateIpAddresses(request)).rejects.toThrow();
    const retry = await vpc.AssignPrivateIpAddresses(request);
    expect(retry.PrivateIpAddressSet).toHaveLength(3);
    // The retry names the first call's task, which is what the client waits on.
    expect(await waitTask(vpc, retry.RequestId)).toBe('SUCCESS');
    const held = (await vpc.DescribeNetworkInterfaces({ NetworkInterfaceIds: [eni.NetworkInterfaceId!] })).NetworkInterfaceSet![0]!.PrivateIpAddressSet!;
    expect(held).toHaveLength(4);
    expect(held.slice(1).map((ip) => ip.PrivateIpAddress)).toEqual(retry.PrivateIpAddressSet!.map((ip) => ip.PrivateIpAddress));
  });

  it('refuses the same token with other parameters', async () => {
    await vpc.CreateNetworkInterface({ ...ENI_REQUEST, ClientToken: 'tok-1' });
    expect(await codeOf(vpc.CreateNetworkInterface({ ...ENI_REQUEST, NetworkInterfaceName: 'other', ClientToken: 'tok-1' }))).toBe(
      'UnsupportedOperation.IdempotentParameterMismatch',
    );
  });
});
