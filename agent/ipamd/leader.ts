// One active ipamd at a time, by a coordination.k8s.io Lease, as client-go's leader election does it: a
// candidate takes the Lease when nobody holds it or when its holder has not renewed it for a lease
// duration (measured on the candidate's own clock, from when it last saw the record change, so clocks need
// not agree); the leader renews it every retry period and, if it cannot renew within the renew deadline,
// stops acting at once. Writes are conditional on the version read: of two candidates, one wins.
export interface LeaseRecord {
  holder: string;
  durationMs: number;
  acquiredAt: string;
  renewedAt: string;
  transitions: number;
}

/** Where the Lease lives (the Kubernetes adapter; a fake in tests). */
export interface LeaseStore {
  /** the record and its version, or undefined when there is no Lease */
  get(): Promise<{ record: LeaseRecord; version: string } | undefined>;
  /** creates the Lease; false if it exists already */
  create(record: LeaseRecord): Promise<boolean>;
  /** replaces the Lease if it is still at `version`; false if it changed */
  update(record: LeaseRecord, version: string): Promise<boolean>;
}

export interface ElectionOptions {
  store: LeaseStore;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** leadership won: act until onStopped */
  onStarted(): void;
  /** leadership lost (or given up): everything begun under it must stop */
  onStopped(): void;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  clock?: { now(): number };
  sleep?: (ms: number) => Promise<void>;
}

export class LeaderElection {
  private readonly clock: { now(): number };
  private readonly sleep: (ms: number) => Promise<void>;
  /** the record last seen, and when (on this clock) it last changed */
  private observed: { record: LeaseRecord; at: number } | undefined;
  private stopped = false;
  private leading = false;

  constructor(private readonly o: ElectionOptions) {
    this.clock = o.clock ?? Date;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Campaigns, leads, and campaigns again after losing, until stop(). */
  async run(): Promise<void> {
    while (!this.stopped) {
      if (!(await this.tryAcquireOrRenew())) {
        await this.sleep(this.o.retryPeriodMs);
        continue;
      }
      this.leading = true;
      this.o.log('info', `leader: ${this.o.identity} holds the lease`);
      this.o.onStarted();
      await this.keepRenewing();
      this.leading = false;
      this.o.onStopped();
    }
  }

  /** Stops campaigning; a leader stops acting (and leaves the Lease to expire). */
  stop(): void {
    this.stopped = true;
  }

  private async keepRenewing(): Promise<void> {
    let lastRenew = this.clock.now();
    while (!this.stopped) {
      await this.sleep(this.o.retryPeriodMs);
      if (this.stopped) return;
      // A renewal that hangs counts as failed once the deadline passes: the leader must stop acting before
      // the lease can expire for the others, answer or no answer.
      const left = this.o.renewDeadlineMs - (this.clock.now() - lastRenew);
      const renewed = await Promise.race([this.tryAcquireOrRenew(), this.sleep(Math.max(0, left)).then(() => false)]);
      if (renewed) {
        lastRenew = this.clock.now();
        continue;
      }
      // Another holder: lost for sure. No answer: lost once the deadline passes, before the Lease can expire for others.
      if (this.observed && this.observed.record.holder !== this.o.identity) {
        this.o.log('warn', `leader: ${this.observed.record.holder} holds the lease now; ${this.o.identity} stops acting`);
        return;
      }
      if (this.clock.now() - lastRenew >= this.o.renewDeadlineMs) {
        this.o.log('warn', `leader: ${this.o.identity} could not renew the lease within ${this.o.renewDeadlineMs} ms; stops acting`);
        return;
      }
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.clock.now();
    // MicroTime, as kube-apiserver writes it: six digits of fractions.
    const at = new Date(now).toISOString().replace(/Z$/, '000Z');
    const mine = (prior?: LeaseRecord): LeaseRecord => ({
      holder: this.o.identity,
      durationMs: this.o.leaseDurationMs,
      acquiredAt: prior?.holder === this.o.identity ? prior.acquiredAt : at,
      renewedAt: at,
      transitions: prior ? prior.transitions + (prior.holder === this.o.identity ? 0 : 1) : 0,
    });
    try {
      const current = await this.o.store.get();
      if (!current) {
        const won = await this.o.store.create(mine());
        if (won) this.observed = { record: mine(), at: now };
        return won;
      }
      const { record, version } = current;
      if (!this.observed || JSON.stringify(this.observed.record) !== JSON.stringify(record)) this.observed = { record, at: now };
      const expired = this.observed.at + record.durationMs <= now;
      if (record.holder && record.holder !== this.o.identity && !expired) return false;
      const next = mine(record);
      if (!(await this.o.store.update(next, version))) return false;
      this.observed = { record: next, at: now };
      return true;
    } catch (err) {
      this.o.log('warn', `leader: cannot read or write the lease: ${(err as Error).message}`);
      return false;
    }
  }
}
