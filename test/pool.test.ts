// The warm pool against the emulated cloud through the real Tencent adapter, with short periods:
// convergence to the targets, slow and quick release, overrides, throttling, and a burst on an empty pool.
import { afterEach, describe, expect, it } from 'vitest';
import { TencentCloud, type TencentOptions } from '../agent/cloud/tencent.ts';
import type { Datapath } from '../agent/datapath/linux.ts';
import { OWNER_TAG } from '../agent/cloud/cloud.ts';
import { Pool, type PoolEvent, type PoolOptions } from '../agent/pool/pool.ts';
import { PoolStore } from '../agent/pool/store.ts';
import { CloudSupply } from '../agent/supply/cloud-supply.ts';
import { NAMING_DATAPATH } from '../hack/sim/nodes.ts';
import type { Emulator } from '../hack/emulator/emulator.ts';
import { startTestEmulator, testWorld } from '../hack/emulator/testing.ts';
import type { WorldInput } from '../hack/emulator/world.ts';

let emulator: Emulator | undefined;
let pool: Pool | undefined;
afterEach(async () => {
  await pool?.stop();
  await emulator?.close();
  emulator = pool = undefined;
});

/** The standalone supply: the pool calls the cloud itself. */
function supplyOf(cloud: TencentCloud, subnetIds: string[]) {
  return new CloudSupply({ cloud, instanceId: 'ins-node0001', zone: 'ap-guangzhou-3', subnetIds, securityGroupIds: ['sg-lab00001'], log: () => {} });
}

/** The pool's links are not real here: the datapath only names them. */
const datapath = NAMING_DATAPATH;

async function setup(options: Partial<PoolOptions> = {}, world: Partial<WorldInput> = {}, cloudOptions: Partial<TencentOptions> = {}) {
  emulator = await startTestEmulator({ world: testWorld({ latencies: { taskMs: 20, apiMs: 0 }, ...world }) });
  const cloud = new TencentCloud({
    region: emulator.world.region,
    endpoint: { url: `http://tencentcloudapi.com:${emulator.apiAddress.port}`, resolve: emulator.apiAddress.address },
    credential: emulator.world.credentials[0]!,
    ...cloudOptions,
  });
  const store = new PoolStore();
  const events: PoolEvent[] = [];
  pool = new Pool({
    supply: supplyOf(cloud, ['subnet-pod3a', 'subnet-pod3b']),
    store,
    datapath,
    instanceId: 'ins-node0001',
    warm: { min: 5, max: 5 },
    quickRelease: false,
    releasePeriodMs: 300,
    checkIntervalMs: 50,
    log: () => {},
    event: (e) => events.push(e),
    ...options,
  });
  await pool.start();
  return { store, events, pool };
}

/** Secondary addresses the cloud holds on the node's pod ENIs. */
function bound(): number {
  return cloudAddresses().length;
}

function cloudAddresses(): string[] {
  return emulator!
    .state()
    .networkInterfaces.filter((e) => e.Attachment?.InstanceId === 'ins-node0001' && !e.Primary)
    .flatMap((e) => e.PrivateIpAddressSet.filter((ip) => !ip.Primary).map((ip) => ip.PrivateIpAddress))
    .sort();
}

/** The secondary addresses the pool believes its ENIs hold. */
function poolAddresses(store: PoolStore): string[] {
  return [...store.enis.values()].flatMap((e) => [...e.addresses]).sort();
}

function mutatingCalls(): number {
  const calls = emulator!.state().calls;
  return ['CreateNetworkInterface', 'AttachNetworkInterface', 'AssignPrivateIpAddresses', 'UnassignPrivateIpAddresses', 'DetachNetworkInterface', 'DeleteNetworkInterface']
    .map((a) => (calls[a]?.ok ?? 0) + (calls[a]?.failed ?? 0))
    .reduce((x, y) => x + y, 0);
}

async function until(what: string, condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const pod = (i: number) => ({ containerId: `c${i}`, ifName: 'eth0', netns: `/n/${i}`, hostIf: `h${i}`, allocatedAt: 0 });

/**
 * Binds `total` addresses with `pods` of them held, then puts the pool's own targets back in force: a
 * start that needs no growth while it is measured. (Overrides are the knob that changes targets live.)
 */
async function bindWithPods(store: PoolStore, total: number, pods: number): Promise<void> {
  pool!.setOverrides({ 'tke.cloud.tencent.com/route-eni-ip-min-warm-target': String(total), 'tke.cloud.tencent.com/route-eni-ip-max-warm-target': String(total) });
  await pool!.kick();
  expect(bound()).toBe(total);
  for (let i = 0; i < pods; i++) expect(store.take(pod(i))).toBeDefined();
  pool!.setOverrides({});
  await pool!.kick();
  expect(bound()).toBe(total);
}

describe('warm pool on the emulated cloud', () => {
  it('converges to pods + min in one batch, and follows pods', async () => {
    const { store } = await setup();
    await pool!.kick();
    expect(bound()).toBe(5);
    expect(mutatingCalls()).toBe(2); // one ENI created with 5 addresses, attached
    for (let i = 0; i < 3; i++) store.take(pod(i));
    await pool!.kick();
    expect(bound()).toBe(8);
    expect(store.counts()).toMatchObject({ assigned: 3, free: 5 });
  });

  it('releases slowly, one address a period, down to pods + max', async () => {
    const { store } = await setup({ warm: { min: 2, max: 4 } });
    await bindWithPods(store, 10, 8);
    for (let i = 0; i < 8; i++) store.release(`c${i}`, 'eth0', Date.now());
    // 10 bound, 0 pods: pods + max = 4, so 6 to go, one per 300 ms period.
    const seen: number[] = [];
    const started = Date.now();
    while (bound() > 4 && Date.now() - started < 5000) {
      seen.push(bound());
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(bound()).toBe(4);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(5 * 300);
    // It came down one at a time: every value from 10 to 5 was seen.
    for (let n = 10; n > 4; n--) expect(seen).toContain(n);
  });

  it('releases all the excess at once with quick release', async () => {
    const { store } = await setup({ warm: { min: 2, max: 4 }, quickRelease: true });
    await bindWithPods(store, 10, 8);
    for (let i = 0; i < 8; i++) store.release(`c${i}`, 'eth0', Date.now());
    await until('quick release down to pods + max', () => bound() === 4, 3000);
    // All 6 at once, one call per ENI (the 10 sit on an ENI of 9 and one of 1): slow release would have
    // taken 6 periods and 6 calls.
    expect(emulator!.state().calls.UnassignPrivateIpAddresses?.ok ?? 0).toBe(2);
  });

  it('applies overrides at once and refuses bad ones without changing anything', async () => {
    const { store, events } = await setup();
    await pool!.kick();
    expect(pool!.setOverrides({ 'tke.cloud.tencent.com/route-eni-ip-min-warm-target': '2', 'tke.cloud.tencent.com/route-eni-ip-max-warm-target': '8' })).toEqual([]);
    expect(pool!.currentLimits().warm).toEqual({ min: 2, max: 8 });
    for (let i = 0; i < 5; i++) store.take(pod(i));
    await pool!.kick();
    expect(bound()).toBe(7);
    const refused = pool!.setOverrides({ 'tke.cloud.tencent.com/route-eni-ip-min-warm-target': '9', 'tke.cloud.tencent.com/route-eni-ip-max-warm-target': '3' });
    expect(refused[0]).toContain('is above');
    expect(events.at(-1)).toMatchObject({ reason: 'OverrideRefused' });
    // Refused: the last valid values stay in force (seed 004: a failed change changes nothing).
    expect(pool!.currentLimits().warm).toEqual({ min: 2, max: 8 });
    // Lowering the addresses per ENI below what is bound releases down to it at once.
    expect(pool!.setOverrides({ 'tke.cloud.tencent.com/max-ip-per-route-eni': '6' })).toEqual([]);
    await until('release down to 6 on the ENI', () => bound() <= 6 + 9);
    await pool!.kick();
    const perEni = emulator!.state().networkInterfaces.filter((e) => e.Attachment?.InstanceId === 'ins-node0001' && !e.Primary).map((e) => e.PrivateIpAddressSet.length - 1);
    for (const n of perEni) expect(n).toBeLessThanOrEqual(6);
  });

  it('serves a full node burst on an empty pool with batched calls, throttling delaying but never failing it', async () => {
    const { store } = await setup({ warm: { min: 0, max: 0 }, releasePeriodMs: 60_000 }, { rateLimits: { CreateNetworkInterface: 1, AttachNetworkInterface: 1, DescribeVpcTaskResult: 5 } });
    // The adapter's own limits are Tencent's: the emulator's tighter ones make it meet RequestLimitExceeded
    // (how often depends on the machine's pace), and the first create is throttled whatever the pace.
    emulator!.addFault({ action: 'CreateNetworkInterface', nth: 1, effect: { kind: 'error', code: 'RequestLimitExceeded', message: 'throttled on purpose' } });
    const served = await Promise.all(
      Array.from({ length: 27 }, async (_, i) => {
        while (!store.take(pod(i))) if (!(await pool!.waitForFree(20_000))) return false;
        return true;
      }),
    );
    expect(served.every(Boolean)).toBe(true);
    expect(store.counts().assigned).toBe(27);
    const calls = emulator!.state().calls;
    // Throttled, then tried again by the adapter: three ENIs made, none failed, no error left on the pool.
    expect(calls.CreateNetworkInterface).toMatchObject({ ok: 3, failed: 0 });
    expect(calls.CreateNetworkInterface!.throttled).toBeGreaterThan(0);
    expect(pool!.lastError).toBeUndefined();
    // Three ENIs of 9: a create and an attach each, nowhere near one call per address.
    expect(mutatingCalls(), JSON.stringify(calls)).toBe(6);
  });

  it("leaves alone an ENI on the node that it did not make", async () => {
    emulator = await startTestEmulator({ world: testWorld({ latencies: { taskMs: 20, apiMs: 0 } }) });
    const { vpcClient, waitTask } = await import('../hack/emulator/testing.ts');
    const vpc = vpcClient(emulator);
    const theirs = await vpc.CreateNetworkInterface({ VpcId: 'vpc-lab00001', SubnetId: 'subnet-pod3a', NetworkInterfaceName: 'a-users-eni', SecurityGroupIds: ['sg-lab00001'], SecondaryPrivateIpAddressCount: 2 });
    await waitTask(vpc, theirs.RequestId);
    await waitTask(vpc, (await vpc.AttachNetworkInterface({ NetworkInterfaceId: theirs.NetworkInterface!.NetworkInterfaceId!, InstanceId: 'ins-node0001' })).RequestId);
    const users = emulator;
    const cloud = new TencentCloud({
      region: users.world.region,
      endpoint: { url: `http://tencentcloudapi.com:${users.apiAddress.port}`, resolve: users.apiAddress.address },
      credential: users.world.credentials[0]!,
    });
    const store = new PoolStore();
    pool = new Pool({ supply: supplyOf(cloud, ['subnet-pod3a']), store, datapath, instanceId: 'ins-node0001', warm: { min: 0, max: 0 }, quickRelease: true, releasePeriodMs: 10, checkIntervalMs: 50, log: () => {} });
    await pool.start();
    await pool.kick();
    expect(store.enis.size).toBe(0);
    const still = users.state().networkInterfaces.find((e) => e.NetworkInterfaceId === theirs.NetworkInterface!.NetworkInterfaceId);
    expect(still?.Attachment?.InstanceId).toBe('ins-node0001');
    expect(still?.PrivateIpAddressSet).toHaveLength(3);
  });

  it('pauses growth on an ENI quota error and says so once', async () => {
    const { store, events } = await setup({ warm: { min: 1, max: 1 } });
    emulator!.addFault({ action: 'AttachNetworkInterface', times: 0, effect: { kind: 'error', code: 'LimitExceeded', message: 'instance ins-node0001 already has 4 of its 4 ENIs' } });
    await pool!.kick();
    expect(events).toEqual([{ reason: 'ENILimit', message: expect.stringContaining('4 of its 4 ENIs') }]);
    const before = mutatingCalls();
    for (let i = 0; i < 5; i++) await pool!.kick();
    expect(mutatingCalls()).toBe(before);
    expect(store.counts().free).toBe(0);
  });

  it('finds addresses the cloud put on an ENI behind its back, and opens another ENI rather than pausing', async () => {
    const { store, events } = await setup({ warm: { min: 5, max: 5 }, resyncIntervalMs: 3_600_000 });
    await pool!.kick();
    const eniId = [...store.enis.keys()][0]!;
    // An assign carried out whose answer never came: the ENI is full in the cloud, not in the pool.
    const { vpcClient, waitTask } = await import('../hack/emulator/testing.ts');
    const vpc = vpcClient(emulator!);
    await waitTask(vpc, (await vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: eniId, SecondaryPrivateIpAddressCount: 4 })).RequestId);
    for (let i = 0; i < 5; i++) store.take(pod(i));
    await pool!.kick();
    expect(events.filter((e) => e.reason === 'ENILimit')).toEqual([]);
    // The 4 found are free; the fifth comes on a new ENI, since the first is full.
    expect(store.enis.size).toBe(2);
    expect(poolAddresses(store)).toEqual(cloudAddresses());
    expect(store.counts()).toMatchObject({ assigned: 5, free: 5 });
  });

  it('re-syncs after a change whose answer was lost every time it was tried', async () => {
    const { store } = await setup({ warm: { min: 3, max: 3 }, resyncIntervalMs: 3_600_000 }, {}, { attempts: 2, sleep: async () => {} });
    await pool!.kick();
    emulator!.addFault({ action: 'AssignPrivateIpAddresses', times: 2, effect: { kind: 'drop' } });
    for (let i = 0; i < 3; i++) store.take(pod(i));
    await pool!.kick();
    expect(pool!.lastError).toContain('AssignPrivateIpAddresses');
    // The cloud carried it out once (the retry had the same ClientToken); the pool has not seen it yet.
    expect(bound()).toBe(6);
    // Passes come (the check timer kicks every 50 ms); the first after the cloud settles sees it.
    await until('a pass that re-syncs', () => poolAddresses(store).length === 6);
    expect(poolAddresses(store)).toEqual(cloudAddresses());
    expect(bound()).toBe(6);
    expect(store.counts()).toMatchObject({ assigned: 3, free: 3 });
  });

  it('deletes the ENIs it made that are attached nowhere, and only those', async () => {
    emulator = await startTestEmulator({ world: testWorld({ latencies: { taskMs: 20, apiMs: 0 } }) });
    const { vpcClient, waitTask } = await import('../hack/emulator/testing.ts');
    const vpc = vpcClient(emulator);
    const make = async (name: string, tags: Record<string, string>) => {
      const r = await vpc.CreateNetworkInterface({
        VpcId: 'vpc-lab00001', SubnetId: 'subnet-pod3a', NetworkInterfaceName: name, SecurityGroupIds: ['sg-lab00001'], SecondaryPrivateIpAddressCount: 3,
        Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
      });
      await waitTask(vpc, r.RequestId);
      return r.NetworkInterface!.NetworkInterfaceId!;
    };
    // An agent killed between create and attach left one; a user's, and another node's, are not ours.
    const orphan = await make('ins-node0001-pods', { [OWNER_TAG]: 'ins-node0001' });
    const users = await make('a-users-eni', {});
    const othersNode = await make('ins-node0002-pods', { [OWNER_TAG]: 'ins-node0002' });
    const cloud = new TencentCloud({
      region: emulator.world.region,
      endpoint: { url: `http://tencentcloudapi.com:${emulator.apiAddress.port}`, resolve: emulator.apiAddress.address },
      credential: emulator.world.credentials[0]!,
    });
    pool = new Pool({ supply: supplyOf(cloud, ['subnet-pod3a']), store: new PoolStore(), datapath, instanceId: 'ins-node0001', warm: { min: 0, max: 0 }, quickRelease: true, releasePeriodMs: 10, checkIntervalMs: 50, log: () => {} });
    await pool.start();
    await until('the orphan deleted', () => !emulator!.state().networkInterfaces.some((e) => e.NetworkInterfaceId === orphan));
    const left = emulator.state().networkInterfaces.map((e) => e.NetworkInterfaceId);
    expect(left).toContain(users);
    expect(left).toContain(othersNode);
  });

  it('lets ADDs that arrive while the last DELs cool down wait for those, instead of growing', async () => {
    const { store } = await setup({ warm: { min: 2, max: 4 }, releasePeriodMs: 60_000 });
    for (let i = 0; i < 8; i++) while (!store.take(pod(i))) await pool!.waitForFree(5000);
    await pool!.kick();
    const before = bound();
    // A rollout: 8 pods deleted (their addresses cool for 1 s), 8 new ones asking at once.
    for (let i = 0; i < 8; i++) {
      const gone = store.release(`c${i}`, 'eth0', Date.now())!;
      store.cool(gone.address, Date.now() + 1000);
    }
    const served = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        while (!store.take(pod(100 + i))) if (!(await pool!.waitForFree(10_000))) return false;
        return true;
      }),
    );
    expect(served.every(Boolean)).toBe(true);
    expect(bound()).toBe(before);
  });

  it('never frees an address a restored pod holds, even when its ENI is taken over late', async () => {
    const first = await setup({ warm: { min: 5, max: 5 } });
    await pool!.kick();
    const held = first.store.take(pod(1))!;
    await pool!.stop();
    // The agent restarts: the checkpoint's allocations first, then the pool, whose first take-over of the
    // ENI fails (its link is late); a later re-sync takes it over.
    const store = new PoolStore();
    store.record(held);
    let failures = 1;
    const lateLink = {
      setupEni: async (eni: { id: string; primaryIp: string; gateway: string }) => {
        if (failures-- > 0) throw new Error(`no link for ${eni.id} yet`);
        return { ifName: 'eth9', table: 2009, primaryIp: eni.primaryIp, gateway: eni.gateway };
      },
    } as unknown as Datapath;
    const cloud = new TencentCloud({
      region: emulator!.world.region,
      endpoint: { url: `http://tencentcloudapi.com:${emulator!.apiAddress.port}`, resolve: emulator!.apiAddress.address },
      credential: emulator!.world.credentials[0]!,
    });
    pool = new Pool({ supply: supplyOf(cloud, ['subnet-pod3a', 'subnet-pod3b']), store, datapath: lateLink, instanceId: 'ins-node0001', warm: { min: 5, max: 5 }, quickRelease: false, releasePeriodMs: 60_000, checkIntervalMs: 50, resyncIntervalMs: 100, log: () => {} });
    await pool.start();
    expect(store.enis.size).toBe(0);
    await until('the ENI taken over', () => store.enis.has(held.eniId));
    const given = Array.from({ length: 8 }, (_, i) => store.take(pod(100 + i))?.address);
    expect(given).not.toContain(held.address);
    expect(store.holderOf(held.address)?.containerId).toBe('c1');
  });

  it('hands out no address whose release went unanswered until the cloud says where it is', async () => {
    const { store } = await setup({ warm: { min: 2, max: 2 }, quickRelease: true, releasePeriodMs: 200, resyncIntervalMs: 3_600_000 }, {}, { attempts: 2, sleep: async () => {} });
    await bindWithPods(store, 8, 6);
    emulator!.addFault({ action: 'UnassignPrivateIpAddresses', times: 2, effect: { kind: 'drop' } });
    for (let i = 0; i < 6; i++) store.release(`c${i}`, 'eth0', Date.now());
    await until('a release tried', () => (emulator!.state().calls.UnassignPrivateIpAddresses?.ok ?? 0) > 0, 3000);
    // Whatever the pool offers from now on, the cloud has.
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline) {
      const inCloud = new Set(cloudAddresses());
      for (const address of store.freeAddresses().map((f) => f.address)) expect(inCloud.has(address), `${address} is offered but not in the cloud`).toBe(true);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(bound()).toBe(2);
  });

  it('takes an ENI detached behind its back out of the pool: nothing more is given from it or put on it', async () => {
    const { store } = await setup({ warm: { min: 3, max: 3 }, resyncIntervalMs: 200, releasePeriodMs: 60_000 });
    await pool!.kick();
    const held = store.take(pod(1))!;
    await pool!.kick();
    const { vpcClient, waitTask } = await import('../hack/emulator/testing.ts');
    const vpc = vpcClient(emulator!);
    await waitTask(vpc, (await vpc.DetachNetworkInterface({ NetworkInterfaceId: held.eniId, InstanceId: 'ins-node0001' })).RequestId);
    await until('the detached ENI out of the pool', () => !store.enis.has(held.eniId));
    await until('a new ENI for the warm target', () => store.counts().free >= 3);
    const onDetached = () => emulator!.state().networkInterfaces.find((e) => e.NetworkInterfaceId === held.eniId)!.PrivateIpAddressSet.length;
    const before = onDetached();
    const given = Array.from({ length: 3 }, (_, i) => store.take(pod(10 + i))!);
    expect(given.every((a) => a.eniId !== held.eniId)).toBe(true);
    await new Promise((r) => setTimeout(r, 600)); // a few re-syncs
    expect(onDetached()).toBe(before);
    // Its pod goes: the address is not free anywhere, and the ENI, now nobody's, is deleted as an orphan.
    store.release('c1', 'eth0', Date.now());
    expect(store.freeAddresses().map((f) => f.address)).not.toContain(held.address);
    await until('the orphan deleted', () => !emulator!.state().networkInterfaces.some((e) => e.NetworkInterfaceId === held.eniId), 5000);
  });

  it('re-syncs after a failure even when the clock steps back', async () => {
    let skew = 0;
    const { store } = await setup({ warm: { min: 2, max: 2 }, resyncIntervalMs: 3_600_000, clock: { now: () => Date.now() + skew } }, {}, { attempts: 1 });
    await pool!.kick();
    emulator!.addFault({ action: 'AssignPrivateIpAddresses', effect: { kind: 'error', code: 'InternalError', message: 'injected' } });
    for (let i = 0; i < 2; i++) store.take(pod(i));
    await pool!.kick();
    expect(pool!.lastError).toContain('InternalError');
    skew = -3_600_000;
    await until('the pool grows again', () => store.counts().free >= 2, 3000);
  });
});
