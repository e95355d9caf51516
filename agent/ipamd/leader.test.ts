// Leader election over an in-memory Lease with conditional writes, on short real periods.
import { afterEach, describe, expect, it } from 'vitest';
import { LeaderElection, type LeaseRecord, type LeaseStore } from './leader.ts';

class MemoryLease implements LeaseStore {
  record: LeaseRecord | undefined;
  version = 0;
  down = false;
  /** calls that never come back, as from an API server that hangs */
  hang = false;

  async get() {
    if (this.hang) return new Promise<never>(() => {});
    if (this.down) throw new Error('the API server does not answer');
    return this.record ? { record: structuredClone(this.record), version: String(this.version) } : undefined;
  }

  async create(record: LeaseRecord) {
    if (this.down) throw new Error('the API server does not answer');
    if (this.record) return false;
    this.record = structuredClone(record);
    this.version++;
    return true;
  }

  async update(record: LeaseRecord, version: string) {
    if (this.down) throw new Error('the API server does not answer');
    if (String(this.version) !== version) return false;
    this.record = structuredClone(record);
    this.version++;
    return true;
  }
}

const elections: LeaderElection[] = [];
afterEach(() => {
  for (const e of elections.splice(0)) e.stop();
});

function candidate(store: LeaseStore, identity: string, log: string[]) {
  const election = new LeaderElection({
    store,
    identity,
    leaseDurationMs: 300,
    renewDeadlineMs: 200,
    retryPeriodMs: 40,
    onStarted: () => log.push(`${identity} leads`),
    onStopped: () => log.push(`${identity} stops`),
    log: () => {},
  });
  elections.push(election);
  void election.run();
  return election;
}

const until = async (condition: () => boolean, ms = 3000) => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('leader election', () => {
  it('lets one of two candidates lead, and the other take over once the leader is gone for a lease duration', async () => {
    const store = new MemoryLease();
    const log: string[] = [];
    const a = candidate(store, 'a', log);
    await until(() => log.includes('a leads'));
    const b = candidate(store, 'b', log);
    await new Promise((r) => setTimeout(r, 500));
    expect(b.isLeader).toBe(false);
    expect(log).toEqual(['a leads']);
    // a is killed: it renews no more. b waits out the lease (300 ms), then leads.
    a.stop();
    const killedAt = Date.now();
    await until(() => log.includes('b leads'));
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(250);
    expect(store.record).toMatchObject({ holder: 'b', transitions: 1 });
  });

  it('stops a leader that cannot renew within the renew deadline, before the lease could expire for others', async () => {
    const store = new MemoryLease();
    const log: string[] = [];
    candidate(store, 'a', log);
    await until(() => log.includes('a leads'));
    store.down = true;
    const downAt = Date.now();
    await until(() => log.includes('a stops'));
    expect(Date.now() - downAt).toBeLessThan(300);
  });

  it('stops a leader whose renewal hangs, once the renew deadline passes, answer or no answer', async () => {
    const store = new MemoryLease();
    const log: string[] = [];
    candidate(store, 'a', log);
    await until(() => log.includes('a leads'));
    store.hang = true;
    const hungAt = Date.now();
    await until(() => log.includes('a stops'));
    expect(Date.now() - hungAt).toBeLessThan(300);
  });

  it('stops a leader at once when the lease is seen held by another', async () => {
    const store = new MemoryLease();
    const log: string[] = [];
    candidate(store, 'a', log);
    await until(() => log.includes('a leads'));
    store.record = { ...store.record!, holder: 'intruder' };
    store.version++;
    await until(() => log.includes('a stops'));
  });
});
