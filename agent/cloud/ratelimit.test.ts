import { describe, expect, it } from 'vitest';
import { RateLimiter } from './ratelimit.ts';

describe('client-side rate limit', () => {
  it('lets a second of calls through at once, then no more than the rate in any second, however cut', async () => {
    let now = 0;
    const sent: number[] = [];
    const limiter = new RateLimiter({ AssignPrivateIpAddresses: 5, default: 100 }, { now: () => now }, async (ms) => {
      now += ms;
    });
    for (let i = 0; i < 15; i++) {
      await limiter.acquire('AssignPrivateIpAddresses');
      sent.push(now);
    }
    expect(sent.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    // 10 more at 5 a second: about 2 seconds (the window is a little over one), never more than 5 in any
    // second: Tencent counts by the second, wherever its seconds begin.
    expect(sent.at(-1)).toBeGreaterThanOrEqual(2000);
    expect(sent.at(-1)).toBeLessThan(2200);
    for (const t of sent) expect(sent.filter((s) => s >= t && s < t + 1000).length).toBeLessThanOrEqual(5);
  });

  it('lets a deeper burst through when asked, then the rate', async () => {
    let now = 0;
    const limiter = new RateLimiter({ default: 2 }, { now: () => now }, async (ms) => {
      now += ms;
    }, 6);
    for (let i = 0; i < 6; i++) await limiter.acquire('kubernetes');
    expect(now).toBe(0);
    await limiter.acquire('kubernetes');
    expect(now).toBe(500);
  });

  it('keeps actions apart', async () => {
    let now = 0;
    const limiter = new RateLimiter({ A: 1, B: 1 }, { now: () => now }, async (ms) => {
      now += ms;
    });
    await limiter.acquire('A');
    await limiter.acquire('B');
    expect(now).toBe(0);
    await limiter.acquire('A');
    // A's second call waits out A's window (a second and its margin), whatever B did.
    expect(now).toBe(1050);
  });
});
