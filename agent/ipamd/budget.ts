// ipamd's one budget of cloud calls for the whole cluster. A call goes when, in the last second, fewer calls
// of its action went than the action's documented limit (and never more than the cluster's cap), and fewer
// calls of any action than the cluster's cap (--cloud-qps, TKE's 50 a second by default). A sliding window,
// not a bucket: no second, however it is cut, sees more than the limit. Callers that must wait queue by
// priority — a pod waiting for an address first, then warm refills, then releases and clean-up — and, within a priority, take turns
// by node, so that a node with much to do cannot starve the others. Which node and priority a call is for
// travels with the async context (`Budget.as`), so the cloud adapter underneath needs to know nothing of it.
import { AsyncLocalStorage } from 'node:async_hooks';
import { SlidingWindow } from '../cloud/ratelimit.ts';

export type Priority = 'pod' | 'warm' | 'release';
const ORDER: Priority[] = ['pod', 'warm', 'release'];

export interface BudgetOptions {
  /** calls a second for the whole cluster, all actions together */
  clusterQps: number;
  /** calls a second by action (Tencent's documented limits); `default` for the others */
  actionQps: Readonly<Record<string, number>>;
  clock?: { now(): number };
}


interface Waiter {
  action: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Turn {
  byNode: Map<string, Waiter[]>;
  node: string;
  queue: Waiter[];
  waiter: Waiter;
}

export class Budget {
  private readonly context = new AsyncLocalStorage<{ node: string; priority: Priority }>();
  private readonly clock: { now(): number };
  private readonly cluster: SlidingWindow;
  private readonly actions = new Map<string, SlidingWindow>();
  /** waiters by priority, then by node in turn order (a Map keeps insertion order: the next node is first) */
  private readonly queues = new Map<Priority, Map<string, Waiter[]>>(ORDER.map((p) => [p, new Map()]));
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  /** set once this replica stops acting: no call goes any more */
  private stopped: Error | undefined;
  /** calls let through, by action, for metrics and the benchmark */
  readonly granted = new Map<string, number>();
  /** the most calls let through in any one second, all actions together, as measured here */
  peakPerSecond = 0;
  private readonly recent: number[] = [];

  constructor(private readonly o: BudgetOptions) {
    this.clock = o.clock ?? Date;
    this.cluster = new SlidingWindow(o.clusterQps);
  }

  /** Runs `fn` with its cloud calls counted for `node` at `priority`. */
  as<T>(node: string, priority: Priority, fn: () => Promise<T>): Promise<T> {
    return this.context.run({ node, priority }, fn);
  }

  /** The rate an action is held to. */
  rateOf(action: string): number {
    return Math.min(this.o.clusterQps, this.o.actionQps[action] ?? this.o.actionQps.default ?? this.o.clusterQps);
  }

  /** Waits for the turn of one call of `action` (the RateLimiter shape the cloud adapter takes). */
  acquire(action: string): Promise<void> {
    if (this.stopped) return Promise.reject(this.stopped);
    const { node, priority } = this.context.getStore() ?? { node: '', priority: 'release' as Priority };
    if (this.waiting() === 0 && this.take(action)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const byNode = this.queues.get(priority)!;
      const queue = byNode.get(node) ?? [];
      queue.push({ action, resolve, reject });
      byNode.set(node, queue);
      this.schedule(0);
    });
  }

  /**
   * This replica stops acting (it lost the lease, or is shutting down): every waiting call and every later
   * one fails, so work under way stops at its next call instead of running on beside a new leader.
   */
  stop(why: string): void {
    this.stopped = new Error(`no cloud call: ${why}`);
    clearTimeout(this.timer);
    for (const byNode of this.queues.values()) {
      for (const queue of byNode.values()) for (const waiter of queue) waiter.reject(this.stopped);
      byNode.clear();
    }
  }

  /** Calls waiting for their turn. */
  waiting(): number {
    let n = 0;
    for (const byNode of this.queues.values()) for (const queue of byNode.values()) n += queue.length;
    return n;
  }

  /** Lets through every waiter whose turn has come; schedules the next look. */
  private drain(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    for (;;) {
      const next = this.nextWaiter();
      if (!next) return;
      if (!this.take(next.waiter.action)) {
        this.schedule(this.waitFor(next.waiter.action));
        return;
      }
      next.queue.shift();
      // The node goes to the back of its priority's line.
      next.byNode.delete(next.node);
      if (next.queue.length > 0) next.byNode.set(next.node, next.queue);
      next.waiter.resolve();
    }
  }

  /**
   * The first waiter of the most urgent priority, the node whose turn it is. A call whose action's window
   * is full does not hold up calls of other actions behind it.
   */
  private nextWaiter(): Turn | undefined {
    let blocked: Turn | undefined;
    for (const priority of ORDER) {
      const byNode = this.queues.get(priority)!;
      for (const [node, queue] of byNode) {
        const waiter = queue[0]!;
        const candidate = { byNode, node, queue, waiter };
        if (this.actionWindow(waiter.action).room(this.clock.now()) >= 1) return candidate;
        blocked ??= candidate;
      }
    }
    return blocked;
  }

  private take(action: string): boolean {
    const window = this.actionWindow(action);
    const now = this.clock.now();
    if (this.cluster.room(now) < 1 || window.room(now) < 1) return false;
    this.cluster.record(now);
    window.record(now);
    this.granted.set(action, (this.granted.get(action) ?? 0) + 1);
    this.recent.push(now);
    while (this.recent[0]! <= now - 1000) this.recent.shift();
    this.peakPerSecond = Math.max(this.peakPerSecond, this.recent.length);
    return true;
  }

  /** Milliseconds until both windows a call of `action` needs have room. */
  private waitFor(action: string): number {
    const now = this.clock.now();
    return Math.max(1, Math.ceil(Math.max(this.cluster.waitMs(now), this.actionWindow(action).waitMs(now))));
  }

  /** Looks again in `ms`, or sooner if a look is already due sooner (a call that may go now never waits out another's window). */
  private schedule(ms: number): void {
    const at = this.clock.now() + ms;
    if (this.timer && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.drain(), ms);
  }

  private actionWindow(action: string): SlidingWindow {
    let window = this.actions.get(action);
    if (!window) this.actions.set(action, (window = new SlidingWindow(this.rateOf(action))));
    return window;
  }
}
