// The long-lived ip session against the real `ip`: read-only and failing commands, and one veth of
// its own (made, remade and removed in the test's namespace) for the name-to-index cache.
import { execFileSync } from 'node:child_process';
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

describe('ip session and links made anew under the same name', () => {
  // A veth in the test's own namespace, deleted and made again by another process between batches.
  const name = `ecnit${process.pid % 100000}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
  afterAll(() => {
    try {
      ip('link', 'del', name);
    } catch {
      // already gone
    }
  });

  it('addresses the new link, not the old index it had cached', async () => {
    const fresh = new IpSession();
    try {
      ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
      expect(await fresh.run([`link set ${name} up`, `route replace 192.0.2.9/32 dev ${name} scope link table 30000`], [name])).toBe('');
      ip('link', 'del', name);
      ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
      expect(await fresh.run([`link set ${name} up`, `route replace 192.0.2.9/32 dev ${name} scope link table 30000`], [name])).toBe('');
      expect(execFileSync('ip', ['route', 'show', 'table', '30000']).toString()).toContain(`192.0.2.9 dev ${name}`);
    } finally {
      fresh.close();
    }
  });
});
