// Client-side rate limits per API action: the agent never sends calls faster than Tencent allows, so
// throttling answers are the exception (another client sharing the account), not the rule.
// Tencent counts calls per second; a bucket refilled continuously would let twice the rate into one of its
// seconds (a full bucket, then a second of refill). So cloud limits are sliding windows: a call goes when
// fewer than the rate went in the last second (a little more: calls arrive a few ms after they leave).
// Pacing for the Kubernetes API (`depth` given) is client-go's token bucket: a burst, then the rate.

/** Requests per second by action (Tencent's published limits, the mainland figure where two are given); others get `default`. */
export const TENCENT_RATE_LIMITS: Readonly<Record<string, number>> = {
  default: 20,
  DescribeNetworkInterfaces: 100,
  DescribeNetworkInterfaceLimit: 20,
  DescribeVpcTaskResult: 20,
  CreateNetworkInterface: 100,
  AttachNetworkInterface: 50,
  DetachNetworkInterface: 50,
  DeleteNetworkInterface: 100,
  AssignPrivateIpAddresses: 100,
  UnassignPrivateIpAddresses: 100,
  MigratePrivateIpAddress: 50,
  MigrateNetworkInterface: 100,
  AllocateAddresses: 10,
  AssociateAddress: 10,
  DisassociateAddress: 10,
  ReleaseAddresses: 10,
};

/** A little more than a second: calls reach the cloud a few milliseconds apart from when they left. */
export const WINDOW_MS = 1050;

/** The calls let through in the last window: at most `rate` of them. */
export class SlidingWindow {
  private readonly times: number[] = [];
  readonly rate: number;

  constructor(rate: number) {
    this.rate = Math.max(1, Math.floor(rate));
  }

  /** How many more calls may go at `now`. */
  room(now: number): number {
    let old = 0;
    while (old < this.times.length && this.times[old]! <= now - WINDOW_MS) old++;
    if (old > 0) this.times.splice(0, old);
    return this.rate - this.times.length;
  }

  record(now: number): void {
    this.times.push(now);
  }

  /** Milliseconds until a call may go. */
  waitMs(now: number): number {
    return this.room(now) >= 1 ? 0 : Math.max(1, this.times[0]! + WINDOW_MS - now);
  }
}

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly windows = new Map<string, SlidingWindow>();

  constructor(
    private readonly limits: Readonly<Record<string, number>> = TENCENT_RATE_LIMITS,
    private readonly clock: { now(): number } = Date,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
    /** how many calls may go at once after a quiet spell (default: one second's worth) */
    private readonly depth?: number,
  ) {}

  rateOf(action: string): number {
    return this.limits[action] ?? this.limits.default ?? 20;
  }

  /** Waits until a call of `action` may go. */
  async acquire(action: string): Promise<void> {
    const rate = this.rateOf(action);
    if (this.depth === undefined) {
      let window = this.windows.get(action);
      if (!window) this.windows.set(action, (window = new SlidingWindow(rate)));
      for (let wait = window.waitMs(this.clock.now()); wait > 0; wait = window.waitMs(this.clock.now())) await this.sleep(wait);
      window.record(this.clock.now());
      return;
    }
    const depth = this.depth;
    for (;;) {
      const now = this.clock.now();
      const bucket = this.buckets.get(action) ?? { tokens: depth, at: now };
      bucket.tokens = Math.min(depth, bucket.tokens + ((now - bucket.at) / 1000) * rate);
      bucket.at = now;
      this.buckets.set(action, bucket);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return;
      }
      await this.sleep(Math.ceil(((1 - bucket.tokens) / rate) * 1000));
    }
  }
}
