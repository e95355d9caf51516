// The adapter's EIP operations, through the SDK, against the emulator: lost answers retried without a
// second EIP or a second bind, quota errors given up with Tencent's code.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../hack/emulator/emulator.ts';
import { startTestEmulator, testWorld } from '../../hack/emulator/testing.ts';
import { CloudError } from './cloud.ts';
import { TencentCloud } from './tencent.ts';

let emulator: Emulator;
let cloud: TencentCloud;
beforeEach(async () => {
  emulator = await startTestEmulator({ world: testWorld({ eipQuota: 2, latencies: { taskMs: 30, apiMs: 0 } }) });
  cloud = new TencentCloud({
    region: emulator.world.region,
    endpoint: { url: `http://tencentcloudapi.com:${emulator.apiAddress.port}`, resolve: emulator.apiAddress.address },
    credential: emulator.world.credentials[0]!,
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))),
  });
});
afterEach(async () => emulator.close());

const primaryEni = () => emulator.state().networkInterfaces.find((e) => e.Attachment?.InstanceId === 'ins-node0001' && e.Primary)!;

describe('EIPs through the adapter', () => {
  it('allocates, binds, unbinds and releases, each done when it returns', async () => {
    const eip = await cloud.allocateEip({ bandwidth: 20, isp: 'BGP', name: 'default/web-0', tags: { 'eni-cni.eip-claim': 'uid-1' }, clientToken: 'uid-1' });
    expect(eip).toMatchObject({ status: 'UNBIND', tags: { 'eni-cni.eip-claim': 'uid-1' } });
    expect(emulator.state().addresses.find((e) => e.AddressId === eip.id)).toMatchObject({ Bandwidth: 20, InternetServiceProvider: 'BGP', InternetChargeType: 'TRAFFIC_POSTPAID_BY_HOUR' });
    expect((await cloud.eipsTagged('eni-cni.eip-claim', 'uid-1')).map((e) => e.id)).toEqual([eip.id]);
    const eni = primaryEni();
    await cloud.associateEip(eip.id, eni.NetworkInterfaceId, eni.PrivateIpAddressSet[0]!.PrivateIpAddress);
    expect(await cloud.eip(eip.id)).toMatchObject({ status: 'BIND', eniId: eni.NetworkInterfaceId, privateIp: eni.PrivateIpAddressSet[0]!.PrivateIpAddress });
    await cloud.disassociateEip(eip.id);
    expect((await cloud.eip(eip.id))?.status).toBe('UNBIND');
    await cloud.releaseEip(eip.id);
    expect(await cloud.eip(eip.id)).toBeUndefined();
    await cloud.releaseEip(eip.id);
  });

  it('makes one EIP and one bind when the answers are lost', async () => {
    emulator.addFault({ action: 'AllocateAddresses', times: 1, effect: { kind: 'drop' } });
    const eip = await cloud.allocateEip({ bandwidth: 100, isp: 'BGP', name: 'default/web-0', tags: {}, clientToken: 'uid-2' });
    expect(emulator.state().addresses.map((e) => e.AddressId)).toEqual([eip.id]);
    const eni = primaryEni();
    emulator.addFault({ action: 'AssociateAddress', times: 1, effect: { kind: 'drop' } });
    await cloud.associateEip(eip.id, eni.NetworkInterfaceId, eni.PrivateIpAddressSet[0]!.PrivateIpAddress);
    expect((await cloud.eip(eip.id))?.status).toBe('BIND');
    emulator.addFault({ action: 'DisassociateAddress', times: 1, effect: { kind: 'drop' } });
    await cloud.disassociateEip(eip.id);
    emulator.addFault({ action: 'ReleaseAddresses', times: 1, effect: { kind: 'drop' } });
    await cloud.releaseEip(eip.id);
    expect(emulator.state().addresses).toEqual([]);
  });

  it("gives up the account's quota with Tencent's code, and a bind to an address that has an EIP", async () => {
    const a = await cloud.allocateEip({ bandwidth: 1, isp: 'BGP', name: 'a', tags: {}, clientToken: 'a' });
    const b = await cloud.allocateEip({ bandwidth: 1, isp: 'BGP', name: 'b', tags: {}, clientToken: 'b' });
    const third = await cloud.allocateEip({ bandwidth: 1, isp: 'BGP', name: 'c', tags: {}, clientToken: 'c' }).catch((e: unknown) => e);
    expect(third).toBeInstanceOf(CloudError);
    expect((third as CloudError).code).toBe('AddressQuotaLimitExceeded');
    const eni = primaryEni();
    const ip = eni.PrivateIpAddressSet[0]!.PrivateIpAddress;
    await cloud.associateEip(a.id, eni.NetworkInterfaceId, ip);
    const second = await cloud.associateEip(b.id, eni.NetworkInterfaceId, ip).catch((e: unknown) => e);
    expect((second as CloudError).code).toBe('InvalidPrivateIpAddress.AlreadyBindEip');
  });
});
