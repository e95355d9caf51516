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
