import { describe, expect, it } from 'vitest';
import { RateLimiter } from './ratelimit.ts';

describe('client-side rate limit', () => {
  it('lets a second of calls through at once, then paces the rest at the rate', async () => {
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
    // 10 more at 5 a second: 2 seconds, never more than 5 in any second after the first burst.
    expect(sent.at(-1)).toBe(2000);
    for (let t = 0; t <= 2000; t += 1000) expect(sent.filter((s) => s > t && s <= t + 1000).length).toBeLessThanOrEqual(5);
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
    expect(now).toBe(1000);
  });
});
