// The metadata service over plain HTTP, its temporary keys through the SDK, and the inspection endpoints.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from './emulator.ts';
import type { CloudEvent } from './model.ts';
import { codeOf, startTestEmulator, testWorld, vpcClient, waitTask } from './testing.ts';

let emulator: Emulator;
afterEach(async () => emulator.close());

async function meta(path: string, instance = 'ins-node0001'): Promise<{ status: number; text: string }> {
  const res = await fetch(`${emulator.metadataUrl}/instances/${instance}/latest/meta-data/${path}`);
  return { status: res.status, text: await res.text() };
}

describe('metadata service', () => {
  beforeEach(async () => {
    emulator = await startTestEmulator();
  });

  it('tells an instance who and where it is', async () => {
    expect((await meta('instance-id')).text).toBe('ins-node0001');
    expect((await meta('placement/region')).text).toBe('ap-guangzhou');
    expect((await meta('placement/zone', 'ins-node0003')).text).toBe('ap-guangzhou-4');
    expect((await meta('local-ipv4')).text).toBe('10.0.0.11');
    const mac = (await meta('mac')).text;
    expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect((await meta(`network/interfaces/macs/${mac}/subnet-cidr-block`)).text).toBe('10.0.0.0/24');
    expect((await meta(`network/interfaces/macs/${mac}/vpc-cidr-block`)).text).toBe('10.0.0.0/16');
    expect((await meta(`network/interfaces/macs/${mac}/local-ipv4s/10.0.0.11/gateway`)).text).toBe('10.0.0.1');
    expect((await meta('no/such/thing')).status).toBe(404);
    expect((await fetch(`${emulator.metadataUrl}/instances/ins-nobody/latest/meta-data/instance-id`)).status).toBe(404);
  });

  it('lists an attached ENI under its MAC once the attach has finished', async () => {
    const vpc = vpcClient(emulator);
    const created = await vpc.CreateNetworkInterface({
      VpcId: 'vpc-lab00001',
      SubnetId: 'subnet-pod3a',
      NetworkInterfaceName: 'pods',
      SecurityGroupIds: ['sg-lab00001'],
      SecondaryPrivateIpAddressCount: 2,
    });
    await waitTask(vpc, created.RequestId);
    const eni = created.NetworkInterface!;
    const attached = await vpc.AttachNetworkInterface({ NetworkInterfaceId: eni.NetworkInterfaceId!, InstanceId: 'ins-node0001' });
    expect((await meta('network/interfaces/macs')).text.split('\n')).toHaveLength(1);
    await waitTask(vpc, attached.RequestId);
    expect((await meta('network/interfaces/macs')).text.split('\n')).toContain(`${eni.MacAddress}/`);
    const ips = (await meta(`network/interfaces/macs/${eni.MacAddress}/local-ipv4s`)).text.split('\n');
    expect(ips.sort()).toEqual(eni.PrivateIpAddressSet!.map((ip) => ip.PrivateIpAddress).sort());
    expect((await meta(`network/interfaces/macs/${eni.MacAddress}/eni-id`)).text).toBe(eni.NetworkInterfaceId);
  });

  it("hands out the role's temporary keys, which the API accepts with their token only", async () => {
    const role = (await meta('cam/security-credentials')).text;
    expect(role).toBe('TKE_QCSLinkedRoleInEKSLog');
    const keys = JSON.parse((await meta(`cam/security-credentials/${role}`)).text) as Record<string, string | number>;
    expect(keys).toMatchObject({ Code: 'Success' });
    const credential = { secretId: String(keys.TmpSecretId), secretKey: String(keys.TmpSecretKey), token: String(keys.Token) };
    expect((await vpcClient(emulator, credential).DescribeVpcs({})).TotalCount).toBe(1);
    expect(await codeOf(vpcClient(emulator, { ...credential, token: 'forged' }).DescribeVpcs({}))).toBe('AuthFailure.TokenFailure');
  });

  it('refuses temporary keys once they expire', async () => {
    await emulator.close();
    emulator = await startTestEmulator({ world: testWorld({ tempCredentialTtlSec: 1 }) });
    const keys = JSON.parse((await meta('cam/security-credentials/TKE_QCSLinkedRoleInEKSLog')).text) as Record<string, string>;
    const vpc = vpcClient(emulator, { secretId: keys.TmpSecretId!, secretKey: keys.TmpSecretKey!, token: keys.Token! });
    await expect(vpc.DescribeVpcs({})).resolves.toBeDefined();
    await new Promise((r) => setTimeout(r, 1100));
    expect(await codeOf(vpc.DescribeVpcs({}))).toBe('AuthFailure.TokenFailure');
  });
});

describe('inspection', () => {
  beforeEach(async () => {
    emulator = await startTestEmulator();
  });

  it('shows the whole state and streams events to a subscriber', async () => {
    const state = (await (await fetch(`${emulator.apiUrl}/emulator/state`)).json()) as { instances: unknown[]; networkInterfaces: unknown[]; subnets: Array<{ id: string; available: number }> };
    expect(state.instances).toHaveLength(3);
    expect(state.networkInterfaces).toHaveLength(3);
    expect(state.subnets.find((s) => s.id === 'subnet-node3a')?.available).toBe(251);

    const controller = new AbortController();
    const res = await fetch(`${emulator.apiUrl}/emulator/events`, { signal: controller.signal });
    const reader = res.body!.getReader();
    const vpc = vpcClient(emulator);
    const created = await vpc.CreateNetworkInterface({ VpcId: 'vpc-lab00001', SubnetId: 'subnet-pod3a', NetworkInterfaceName: 'x', SecurityGroupIds: ['sg-lab00001'] });
    await waitTask(vpc, created.RequestId);
    await vpc.AttachNetworkInterface({ NetworkInterfaceId: created.NetworkInterface!.NetworkInterfaceId!, InstanceId: 'ins-node0002' });
    const { value } = await reader.read();
    const event = JSON.parse(new TextDecoder().decode(value).trim()) as CloudEvent;
    expect(event).toMatchObject({ type: 'eni-attached', instanceId: 'ins-node0002', eniId: created.NetworkInterface!.NetworkInterfaceId });
    controller.abort();
  });

  it('adds instances for the lab, validated', async () => {
    const add = (body: unknown) => fetch(`${emulator.apiUrl}/emulator/instances`, { method: 'POST', body: JSON.stringify(body) });
    const spec = { id: 'ins-node0009', type: 'S5.MEDIUM4', cpu: 2, memoryGb: 4, zone: 'ap-guangzhou-3', subnetId: 'subnet-node3a', privateIp: '10.0.0.19' };
    expect((await add(spec)).status).toBe(201);
    expect((await vpcClient(emulator).DescribeNetworkInterfaceLimit({ InstanceId: 'ins-node0009' })).EniQuantity).toBe(4);
    const dup = await add(spec);
    expect(dup.status).toBe(400);
    expect(await dup.text()).toContain('ins-node0009');
    expect((await add({ ...spec, id: 'ins-node0010', privateIp: '10.0.0.19' })).status).toBe(400);
  });
});
