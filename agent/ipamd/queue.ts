// A work queue of node names, as client-go's: a name queued many times is worked on once, never by two
// workers at once, and again if it was queued while being worked on. A worker's answer may ask for the
// name again after a delay; a failure asks again with a growing delay (up to a minute).
export type Work = (key: string) => Promise<number | undefined>;

export class WorkQueue {
  private readonly queued = new Set<string>();
  private readonly active = new Set<string>();
  /** queued again while being worked on */
  private readonly again = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private running = 0;
  private stopped = false;
  private idle: Array<() => void> = [];

  constructor(
    private readonly work: Work,
    private readonly workers: number,
    private readonly log: (level: 'warn' | 'error', message: string) => void,
  ) {}

  add(key: string, afterMs = 0): void {
    if (this.stopped) return;
    if (afterMs > 0) {
      if (this.timers.has(key)) return;
      this.timers.set(key, setTimeout(() => (this.timers.delete(key), this.add(key)), afterMs).unref());
      return;
    }
    if (this.active.has(key)) this.again.add(key);
    else this.queued.add(key);
    this.pump();
  }

  /** Stops taking work and waits for what is under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queued.clear();
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    if (this.running > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  get length(): number {
    return this.queued.size + this.active.size;
  }

  private pump(): void {
    while (!this.stopped && this.running < this.workers) {
      const key = this.queued.values().next().value;
      if (key === undefined) return;
      this.queued.delete(key);
      this.active.add(key);
      this.running++;
      void this.run(key);
    }
  }

  private async run(key: string): Promise<void> {
    let after: number | undefined;
    try {
      after = await this.work(key);
      this.failures.delete(key);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      after = Math.min(60_000, 500 * 2 ** (n - 1));
      this.log('warn', `ipamd: node ${key}: ${(err as Error).message}; trying again in ${after / 1000} s`);
    } finally {
      this.active.delete(key);
      this.running--;
    }
    if (this.again.delete(key)) this.add(key);
    else if (after !== undefined) this.add(key, after);
    if (this.running === 0 && this.stopped) for (const resolve of this.idle.splice(0)) resolve();
    this.pump();
  }
}
