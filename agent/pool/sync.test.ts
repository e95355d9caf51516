// When the pool looks at its supply: a table of moments, with a fake clock and a supply that holds nothing.
import { describe, expect, it } from 'vitest';
import type { Supply } from '../supply/supply.ts';
import { PoolSync } from './sync.ts';
import { PoolStore } from './store.ts';

function setup() {
  let now = 1_000_000;
  const empty = { look: async () => ({ enis: [], settling: false }) } as unknown as Supply;
  const sync = new PoolSync({ supply: empty, store: new PoolStore(), instanceId: 'ins-1', adopt: async () => {}, intervalMs: 60_000, log: () => {}, clock: { now: () => now } });
  return { sync, at: (ms: number) => (now = 1_000_000 + ms) };
}

describe('cloud re-sync timing', () => {
  it('looks first, then carries on until the interval', async () => {
    const { sync, at } = setup();
    expect(sync.next()).toBe('look');
    await sync.look();
    at(59_999);
    expect(sync.next()).toBe('go');
    at(60_000);
    expect(sync.next()).toBe('look');
  });

  it('after a failed change does nothing blind: waits out the gap, then looks', async () => {
    const { sync, at } = setup();
    await sync.look();
    at(500);
    sync.changeFailed();
    expect(sync.next()).toBe('wait');
    at(2000);
    expect(sync.next()).toBe('look');
    await sync.look();
    expect(sync.next()).toBe('go');
  });

  it('looks when the clock has stepped back, failed change or not', async () => {
    const { sync, at } = setup();
    await sync.look();
    at(-3_600_000);
    expect(sync.next()).toBe('look');
    sync.changeFailed();
    expect(sync.next()).toBe('look');
  });

  it('looks at once when the supply says it changed something, however recent the last look', async () => {
    const { sync, at } = setup();
    await sync.look();
    at(10);
    sync.supplyChanged();
    expect(sync.next()).toBe('look');
    await sync.look();
    expect(sync.next()).toBe('go');
  });
});

describe('fixed-IP reservations', () => {
  const eni = (ips: string[]) => ({ id: 'eni-1', mac: '20:90:6f:00:00:01', subnetId: 'subnet-1', subnetCidr: '10.0.16.0/24', primaryIp: '10.0.16.2', secondaryIps: ips, primary: false, state: 'AVAILABLE', settling: false, attachedTo: 'ins-1', securityGroupIds: [], tags: {} });
  function withEni(store: PoolStore) {
    store.addEni({ id: 'eni-1', mac: '20:90:6f:00:00:01', subnetId: 'subnet-1', primaryIp: '10.0.16.2', gateway: '10.0.16.1', subnetCidr: '10.0.16.0/24', capacity: 9, ifName: 'eth1', table: 101, addresses: new Set(['10.0.16.3', '10.0.16.4']) });
  }
  const claim = { namespace: 'default', name: 'busybox-0' };

  it('keeps a reserved address from every pod, and counts it as in use', () => {
    const store = new PoolStore();
    withEni(store);
    store.reserve(claim, '10.0.16.3', 0);
    expect(store.freeAddresses().map((f) => f.address)).toEqual(['10.0.16.4']);
    const details = { containerId: 'c1', ifName: 'eth0', netns: '/var/run/netns/x', hostIf: 'enic1', allocatedAt: 0 };
    expect(store.take(details)?.address).toBe('10.0.16.4');
    expect(store.take({ ...details, containerId: 'c2' })).toBeUndefined();
    expect(store.reservation(claim)).toMatchObject({ address: '10.0.16.3', eniId: 'eni-1', reserved: true });
  });

  it('lets a reservation go once its address has left the node (moved by ipamd), but not a pod’s', async () => {
    const store = new PoolStore();
    withEni(store);
    store.reserve(claim, '10.0.16.3', 0);
    store.record({ address: '10.0.16.4', eniId: 'eni-1', table: 101, containerId: 'c1', ifName: 'eth0', netns: '/n', hostIf: 'h', allocatedAt: 0 });
    const supply = { look: async () => ({ enis: [eni([])], settling: false }) } as unknown as Supply;
    const sync = new PoolSync({ supply, store, instanceId: 'ins-1', adopt: async () => {}, intervalMs: 60_000, log: () => {}, clock: { now: () => 0 } });
    await sync.look();
    expect(store.reservation(claim)).toBeUndefined();
    expect(store.enis.get('eni-1')!.addresses.has('10.0.16.3')).toBe(false);
    // A pod's address that vanished is kept (and reported): its pod still uses it.
    expect(store.holderOf('10.0.16.4')?.containerId).toBe('c1');
  });
});
