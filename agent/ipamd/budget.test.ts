// The cluster's budget of cloud calls, on fake timers: no second sees more than a limit, a waiting pod goes
// first, nodes take turns.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Budget, type Priority } from './budget.ts';

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Queues `count` calls of `action` for `node`; the order they are let through is pushed to `order`. */
function queue(budget: Budget, node: string, priority: Priority, action: string, count: number, order: string[], times: number[] = []) {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      budget.as(node, priority, async () => {
        await budget.acquire(action);
        order.push(`${node}:${priority}:${i}`);
        times.push(Date.now());
      }),
    ),
  );
}

function busiestSecond(times: number[]): number {
  let most = 0;
  for (const t of times) most = Math.max(most, times.filter((u) => u >= t && u < t + 1000).length);
  return most;
}

describe('the cluster budget', () => {
  it('never lets more than the cluster cap, nor an action its own limit, through in any second', async () => {
    const budget = new Budget({ clusterQps: 50, actionQps: { default: 100, DescribeVpcTaskResult: 20 } });
    const order: string[] = [];
    const assigns: number[] = [];
    const polls: number[] = [];
    const done = Promise.all([queue(budget, 'a', 'warm', 'AssignPrivateIpAddresses', 120, order, assigns), queue(budget, 'b', 'warm', 'DescribeVpcTaskResult', 60, order, polls)]);
    await vi.advanceTimersByTimeAsync(10_000);
    await done;
    expect(order).toHaveLength(180);
    expect(busiestSecond([...assigns, ...polls].sort((x, y) => x - y))).toBeLessThanOrEqual(50);
    expect(busiestSecond(polls)).toBeLessThanOrEqual(20);
    // Not slower than the limits either: 180 calls at 50 a second take under 4 s.
    expect(Math.max(...assigns, ...polls) - 1_000_000).toBeLessThan(4000);
  });

  it('serves a waiting pod before warm refills and releases queued earlier', async () => {
    const budget = new Budget({ clusterQps: 2, actionQps: { default: 100 } });
    const order: string[] = [];
    const first = queue(budget, 'busy', 'warm', 'AssignPrivateIpAddresses', 2, order);
    const later = Promise.all([queue(budget, 'a', 'release', 'UnassignPrivateIpAddresses', 2, order), queue(budget, 'b', 'warm', 'AssignPrivateIpAddresses', 2, order), queue(budget, 'c', 'pod', 'AssignPrivateIpAddresses', 2, order)]);
    await vi.advanceTimersByTimeAsync(5000);
    await Promise.all([first, later]);
    expect(order.slice(2)).toEqual(['c:pod:0', 'c:pod:1', 'b:warm:0', 'b:warm:1', 'a:release:0', 'a:release:1']);
  });

  it('lets nodes of one priority take turns: a node with much to do does not starve the others', async () => {
    const budget = new Budget({ clusterQps: 1, actionQps: { default: 100 } });
    const order: string[] = [];
    const many = queue(budget, 'big', 'warm', 'AssignPrivateIpAddresses', 10, order);
    const few = queue(budget, 'small', 'warm', 'AssignPrivateIpAddresses', 2, order);
    await vi.advanceTimersByTimeAsync(15_000);
    await Promise.all([many, few]);
    // The first goes at once; then turns alternate while both wait.
    expect(order.slice(0, 5)).toEqual(['big:warm:0', 'big:warm:1', 'small:warm:0', 'big:warm:2', 'small:warm:1']);
  });

  it('lets a call with room go at once even while the next look is set for another action a second away', async () => {
    const budget = new Budget({ clusterQps: 50, actionQps: { default: 50, DescribeVpcTaskResult: 1 } });
    const order: string[] = [];
    const polls = queue(budget, 'a', 'warm', 'DescribeVpcTaskResult', 2, order);
    await vi.advanceTimersByTimeAsync(10);
    // The second poll waits out its window; an assign that comes now must not wait with it.
    const assign = queue(budget, 'b', 'pod', 'AssignPrivateIpAddresses', 1, order);
    await vi.advanceTimersByTimeAsync(20);
    expect(order).toEqual(['a:warm:0', 'b:pod:0']);
    await vi.advanceTimersByTimeAsync(2000);
    await Promise.all([polls, assign]);
  });

  it('once stopped, lets no call go: those waiting and those to come fail', async () => {
    const budget = new Budget({ clusterQps: 1, actionQps: { default: 100 } });
    await budget.acquire('AssignPrivateIpAddresses');
    const waiting = budget.acquire('AssignPrivateIpAddresses');
    budget.stop('ipamd-0 no longer holds the lease');
    await expect(waiting).rejects.toThrow('no cloud call: ipamd-0 no longer holds the lease');
    await expect(budget.acquire('DescribeNetworkInterfaces')).rejects.toThrow('no longer holds the lease');
  });

  it('does not hold calls of an action with room behind one whose limit is spent', async () => {
    const budget = new Budget({ clusterQps: 50, actionQps: { default: 50, DescribeVpcTaskResult: 1 } });
    const order: string[] = [];
    const polls = queue(budget, 'a', 'warm', 'DescribeVpcTaskResult', 3, order);
    const assigns = queue(budget, 'b', 'warm', 'AssignPrivateIpAddresses', 3, order);
    await vi.advanceTimersByTimeAsync(100);
    expect(order.filter((o) => o.startsWith('b:'))).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(5000);
    await Promise.all([polls, assigns]);
  });
});
