// Client-side rate limits per API action: the agent never sends calls faster than Tencent allows, so
// throttling answers are the exception (another client sharing the account), not the rule.
// A token bucket per action, refilled continuously, as deep as one second of calls (or `depth`).

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
  AllocateAddresses: 10,
  AssociateAddress: 10,
  DisassociateAddress: 10,
  ReleaseAddresses: 10,
};

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

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
    const depth = this.depth ?? rate;
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
