// The long-lived ip session against the real `ip` (read-only and failing commands only: nothing changes).
import { afterAll, describe, expect, it } from 'vitest';
import { IpSession } from './ip-session.ts';

const session = new IpSession();
afterAll(() => session.close());

describe('ip session', () => {
  it('runs a batch and says nothing went wrong', async () => {
    expect(await session.run(['link show dev lo', 'route show table main'])).toBe('');
  });

  it('reports what failed in a batch, and only in that batch', async () => {
    const [bad, good] = await Promise.all([session.run(['link show dev lo', 'link show dev nosuchlink0']), session.run(['link show dev lo'])]);
    expect(bad).toContain('nosuchlink0');
    expect(good).toBe('');
  });

  it('keeps going after many batches, in order', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => session.run([i % 2 ? `link show dev missing${i}` : 'link show dev lo'])));
    results.forEach((r, i) => (i % 2 ? expect(r).toContain(`missing${i}`) : expect(r).toBe('')));
  });

  it('starts again after its process is gone', async () => {
    session.close();
    expect(await session.run(['link show dev lo'])).toBe('');
  });
});
