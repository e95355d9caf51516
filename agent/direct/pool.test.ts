// The whole-ENI pool's law on a NEC kept in memory (the lab suite runs it against ipamd): the demand it
// writes (pods + waiting + min, within the capacity), what it offers back (slowly, quickly, at once above
// max-attach, first the ENIs whose link is gone), and a waiting ADD served by the ENI that comes.
import { describe, expect, it } from 'vitest';
import type { Nec, NecIpamdEni } from '../k8s/nec.ts';
import type { NecPort } from '../supply/nec-supply.ts';
import { PoolStore } from '../pool/store.ts';
import { DirectPool } from './pool.ts';

const eni = (n: number): NecIpamdEni => ({ eniId: `eni-d${n}`, mac: `20:90:6f:00:00:0${n}`, primaryIP: `10.0.16.${10 + n}`, subnetId: 'subnet-pod3a', subnetCIDR: '10.0.16.0/24', ips: [] });

function setup(o: { enis: number; shared?: number; quickRelease?: boolean; links?: Set<string> } ) {
  let nec: Nec = {
    metadata: { name: 'node-1', resourceVersion: '1' },
    spec: { instanceId: 'ins-1', quota: { enis: 6, ipsPerEni: 10 } },
    status: { ipamd: { enis: Array.from({ length: o.shared ?? 1 }, (_, i) => ({ ...eni(9 - i), eniId: `eni-s${i}` })), directEnis: Array.from({ length: o.enis }, (_, i) => eni(i + 1)) } },
  };
  const writes: Array<Record<string, unknown>> = [];
  let failing = false;
  const port: NecPort = {
    current: () => nec,
    until: async () => nec,
    patchStatus: async (status) => {
      if (failing) throw new Error('API server away');
      writes.push(status);
      const s = status as { demand?: object; release?: Record<string, "offered" | "releasing"> };
      nec = { ...nec, status: { ...nec.status, demand: { ...nec.status!.demand!, ...s.demand }, release: { ...nec.status!.release, ...s.release } } };
    },
  };
  const store = new PoolStore();
  const links = o.links ?? new Set(Array.from({ length: o.enis }, (_, i) => eni(i + 1).mac));
  let offset = 0;
  const pool = new DirectPool({ nec: port, store, warm: { min: 1, max: 1 }, quickRelease: o.quickRelease ?? false, releasePeriodMs: 60_000, hasLink: async (mac) => links.has(mac), log: () => undefined, clock: { now: () => Date.now() + offset } });
  return {
    pool,
    store,
    writes,
    nec: () => nec,
    /** ipamd: attach one more whole ENI */
    attach: (n: number) => {
      nec = { ...nec, status: { ...nec.status, ipamd: { ...nec.status!.ipamd!, directEnis: [...nec.status!.ipamd!.directEnis!, eni(n)] } } };
      links.add(eni(n).mac);
      pool.changed();
    },
    advance: (ms: number) => (offset += ms),
    failWrites: (on: boolean) => (failing = on),
  };
}

const details = (id: string) => ({ containerId: id, ifName: 'eth0', netns: `/var/run/netns/${id}`, hostIf: '', pod: { namespace: 'default', name: id }, allocatedAt: 0 });
const offered = (nec: Nec) => Object.keys(nec.status?.release ?? {}).sort();

describe('the whole-ENI pool', () => {
  it('asks for pods + min, gives a pod its own ENI as its primary address in its subnet, and refills', async () => {
    const t = setup({ enis: 1 });
    const a = await t.pool.take(details('a'), Date.now() + 1000);
    expect(a).toMatchObject({ address: '10.0.16.11', eniId: 'eni-d1', direct: { mac: '20:90:6f:00:00:01', prefix: 24, gateway: '10.0.16.1' } });
    await t.pool.reconcile();
    expect(t.nec().status?.demand).toMatchObject({ directENIs: 2, directUrgent: false });
  });

  it('has a waiting ADD ask urgently, and serves it with the ENI that comes', async () => {
    const t = setup({ enis: 0 });
    const taking = t.pool.take(details('a'), Date.now() + 3000);
    await new Promise((r) => setTimeout(r, 50));
    // One for the pod, and the spare kept after it.
    expect(t.nec().status?.demand).toMatchObject({ directENIs: 2, directUrgent: true });
    t.attach(1);
    expect((await taking)?.eniId).toBe('eni-d1');
  });

  it('answers none once the deadline passes, holding nothing', async () => {
    const t = setup({ enis: 0 });
    expect(await t.pool.take(details('a'), Date.now() + 100)).toBeUndefined();
    expect(t.store.allocations()).toEqual([]);
  });

  it('offers the spare ENIs above max back one per release period, or all at once with quick release', async () => {
    const slow = setup({ enis: 4 });
    await slow.pool.reconcile();
    expect(offered(slow.nec())).toHaveLength(1);
    await slow.pool.reconcile();
    expect(offered(slow.nec())).toHaveLength(1);
    slow.advance(60_000);
    await slow.pool.reconcile();
    expect(offered(slow.nec())).toHaveLength(2);
    const quick = setup({ enis: 4, quickRelease: true });
    await quick.pool.reconcile();
    expect(offered(quick.nec())).toHaveLength(3);
    expect(quick.nec().status?.demand?.directENIs).toBe(1);
  });

  it('never offers an ENI a pod holds, and gives no pod an ENI it offered', async () => {
    const t = setup({ enis: 2, quickRelease: true });
    const a = await t.pool.take(details('a'), Date.now() + 1000);
    await t.pool.reconcile();
    expect(offered(t.nec())).toEqual([]);
    // direct-eni-max-attach=1: the spare goes at once, the pod's stays.
    expect(t.pool.setOverrides({ 'tke.cloud.tencent.com/direct-eni-max-attach': '1' })).toEqual([]);
    await t.pool.reconcile();
    const gone = offered(t.nec());
    expect(gone).toHaveLength(1);
    expect(gone).not.toContain(a!.eniId);
    expect(await t.pool.take(details('b'), Date.now() + 100)).toBeUndefined();
  });

  it("refuses a max-attach below the whole ENIs pods hold, keeping what was in force", async () => {
    const t = setup({ enis: 2 });
    await t.pool.take(details('a'), Date.now() + 1000);
    await t.pool.take(details('b'), Date.now() + 1000);
    expect(t.pool.setOverrides({ 'tke.cloud.tencent.com/direct-eni-max-attach': '1' })[0]).toContain('below the 2 whole ENIs pods hold');
    expect(t.pool.capacity()).toBe(4);
  });

  it('counts the shared ENIs against the quota it advertises', () => {
    // Quota 6: the primary, the shared ENIs, and the rest for whole ENIs.
    expect(setup({ enis: 0, shared: 1 }).pool.capacity()).toBe(4);
    expect(setup({ enis: 0, shared: 3 }).pool.capacity()).toBe(2);
  });

  it('gives back a spare ENI whose link is missing from the node first, and never hands it to a pod', async () => {
    const t = setup({ enis: 2, links: new Set([eni(2).mac]) });
    await t.pool.reconcile();
    // eni-d1's link is gone (left in a namespace that went): it is the one offered, above max.
    expect(offered(t.nec())).toEqual(['eni-d1']);
    expect((await t.pool.take(details('a'), Date.now() + 100))?.eniId).toBe('eni-d2');
  });

  it('takes direct-eni-max-attach=0 as none: every spare ENI goes at once', async () => {
    const t = setup({ enis: 2 });
    expect(t.pool.setOverrides({ 'tke.cloud.tencent.com/direct-eni-max-attach': '0' })).toEqual([]);
    expect(t.pool.capacity()).toBe(0);
    await t.pool.reconcile();
    expect(offered(t.nec())).toEqual(['eni-d1', 'eni-d2']);
    expect(t.nec().status?.demand?.directENIs).toBe(0);
  });

  it('offers again what it could not write as offered', async () => {
    const t = setup({ enis: 3, quickRelease: true });
    t.failWrites(true);
    await expect(t.pool.reconcile()).rejects.toThrow(/API server away/);
    expect(t.pool.enis()).toHaveLength(3);
    t.failWrites(false);
    await t.pool.reconcile();
    expect(offered(t.nec())).toHaveLength(2);
  });

  it('never gives an ENI held for a moment (its claim being read, its EIP coming off) to a pod, nor offers it', async () => {
    const t = setup({ enis: 2, quickRelease: true });
    let done = () => {};
    t.pool.holdUntil('eni-d1', new Promise<void>((r) => (done = r)));
    await t.pool.reconcile();
    expect(offered(t.nec())).toEqual([]);
    expect((await t.pool.take(details('a'), Date.now() + 100))?.eniId).toBe('eni-d2');
    expect(await t.pool.take(details('b'), Date.now() + 100)).toBeUndefined();
    done();
    await new Promise((r) => setTimeout(r, 10));
    expect((await t.pool.take(details('b'), Date.now() + 100))?.eniId).toBe('eni-d1');
  });

  it('gives an ENI whose link it never saw a long time before taking it for lost, and one back from a pod a short one', async () => {
    const t = setup({ enis: 1, links: new Set() });
    await t.pool.reconcile();
    t.advance(11_000);
    await t.pool.reconcile();
    expect(offered(t.nec())).toEqual([]);
    t.pool.returned('eni-d1');
    await t.pool.reconcile();
    expect(offered(t.nec())).toEqual(['eni-d1']);
  });
});
