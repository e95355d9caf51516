// The pool manager: carries out the warm pool's law (policy.ts) through its supply, one change at a time.
// `kick()` schedules a pass; a pass asks the policy what to do, does it, and asks again until the answer
// is "nothing". A timer kicks it every check interval, so slow release keeps its pace. The supply has the
// last word: a pass first re-syncs with it when one is due (periodically, after any change that failed or
// went unanswered, and when the supply says it changed something), so that what a lost answer or a killed
// agent left behind is found and mended.
import { EventEmitter } from 'node:events';
import { CloudError } from '../cloud/cloud.ts';
import { PoolSync } from './sync.ts';
import type { Datapath } from '../datapath/linux.ts';
import { nthAddress, parseCidr } from '../../shared/ip.ts';
import type { SuppliedEni, Supply } from '../supply/supply.ts';
import { applyOverrides, type PoolLimits } from './overrides.ts';
import { decide, maxBindable, type PolicyAction } from './policy.ts';
import type { PoolEni, PoolStore } from './store.ts';

/** Something a user should see (as a Kubernetes Event once the agent has an API server). */
export interface PoolEvent {
  reason: 'ENILimit' | 'SubnetExhausted' | 'CloudError' | 'OverrideRefused';
  message: string;
}

export interface PoolOptions {
  supply: Supply;
  store: PoolStore;
  datapath: Datapath;
  /** the node's instance, for messages */
  instanceId: string;
  warm: { min: number; max: number };
  quickRelease: boolean;
  /** slow release frees one address per period; quick release all the excess (TKE: about 2 minutes) */
  releasePeriodMs: number;
  /** how often the pool is looked at without being asked */
  checkIntervalMs: number;
  /** how long a pass waits for more ADDs to arrive before growing for those waiting (default 10 ms) */
  batchWindowMs?: number;
  /** how often the pool compares itself with the cloud unasked (default 60 s); it also does after any failed change */
  resyncIntervalMs?: number;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  event?: (event: PoolEvent) => void;
  /** told after every change the pool makes */
  onChange?: () => void;
  clock?: { now(): number };
}


/**
 * Errors that mean "the node cannot grow now": growth pauses instead of hammering the API. A bare
 * LimitExceeded is the node's ENI quota when creating an ENI; on an assign it means that ENI is full, which
 * `assign` handles itself.
 */
const QUOTA_CODES: Record<string, PoolEvent['reason']> = {
  LimitExceeded: 'ENILimit',
  'ResourceInsufficient.Subnet': 'SubnetExhausted',
  ResourceInsufficient: 'SubnetExhausted',
  NoSubnetRoom: 'SubnetExhausted',
};


export class Pool {
  private readonly changed = new EventEmitter();
  private readonly clock: { now(): number };
  private running: Promise<void> | undefined;
  private again = false;
  private timer?: NodeJS.Timeout;
  private quota = { maxEnis: 0, maxIpsPerEni: 0 };
  private limits: PoolLimits;
  /** the warm targets where no annotation says otherwise (the flags, or the NEC's spec from ipamd) */
  private warmDefaults: { min: number; max: number };
  /** the annotations last given, applied once the quota is known */
  private annotations: Record<string, string> = {};
  private started = false;
  /** ADDs waiting for an address: the pool grows by at least this many, in one batch */
  private waiters = 0;
  private stopped = false;
  private lastReleaseAt = 0;
  /** addresses just bound are not given back before a release period has passed (no flapping) */
  private lastGrowAt = 0;
  private pausedUntil = 0;
  private pauseMs = 0;
  private readonly sync: PoolSync;
  /** the last error that stopped the pool from growing */
  private error: string | undefined;

  constructor(private readonly o: PoolOptions) {
    this.changed.setMaxListeners(0);
    this.clock = o.clock ?? Date;
    this.warmDefaults = o.warm;
    this.limits = { warm: o.warm, maxEnis: 0, maxIpsPerEni: 0 };
    this.sync = new PoolSync({
      supply: o.supply,
      store: o.store,
      instanceId: o.instanceId,
      adopt: (eni) => this.adopt(eni),
      intervalMs: o.resyncIntervalMs ?? 60_000,
      log: o.log,
      ...(o.event ? { event: o.event } : {}),
      clock: this.clock,
    });
  }

  /** Learns the node's quota, takes over the ENIs already attached to it, and starts the check timer. */
  async start(): Promise<void> {
    const { supply, instanceId } = this.o;
    const limits = await supply.limits();
    // The quota counts the primary ENI and each ENI's primary address; pods get neither.
    this.quota = { maxEnis: Math.max(0, limits.enis - 1), maxIpsPerEni: Math.max(0, limits.ipsPerEni - 1) };
    this.limits = { warm: this.warmDefaults, ...this.quota };
    this.started = true;
    this.applyAnnotations();
    await this.sync.look();
    this.lastReleaseAt = this.clock.now();
    this.timer = setInterval(() => void this.kick(), this.o.checkIntervalMs);
    this.timer.unref();
    this.o.log('info', `pool: ${instanceId} may hold ${this.quota.maxEnis} pod ENIs of ${this.quota.maxIpsPerEni} addresses; took over ${this.o.store.enis.size}`);
  }

  /** Stops the timer and waits for a pass in flight; no pass starts after this. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
    await this.o.supply.drain();
  }

  /** The supply changed the node's ENIs or addresses: look at them and carry on (waiting ADDs wake). */
  supplyChanged(): void {
    this.sync.supplyChanged();
    if (this.started) void this.kick();
  }

  /**
   * Applies the node's override annotations, and new warm defaults where given (ipamd's, from the NEC's
   * spec: they replace the flags'); returns the refusals (nothing changes for those).
   */
  setOverrides(annotations: Record<string, string>, warmDefaults?: { min: number; max: number }): string[] {
    if (warmDefaults) this.warmDefaults = warmDefaults;
    this.annotations = annotations;
    // Before the quota is known nothing can be checked against it: start() applies them.
    if (!this.started) return [];
    const refusals = this.applyAnnotations();
    void this.kick();
    return refusals;
  }

  private applyAnnotations(): string[] {
    const { store } = this.o;
    const busy = [...store.enis.values()].map((e) => [...e.addresses].filter((a) => store.holderOf(a)).length);
    const result = applyOverrides(this.annotations, {
      defaults: { warm: this.warmDefaults, ...this.quota },
      current: this.limits,
      quota: this.quota,
      inUse: { enis: busy.filter((n) => n > 0).length, ipsOnBusiestEni: Math.max(0, ...busy) },
    });
    this.limits = result.limits;
    for (const refusal of result.refusals) this.o.event?.({ reason: 'OverrideRefused', message: refusal });
    return result.refusals;
  }

  /**
   * Gives one idle address back to the cloud out of turn (a fixed address whose claim has ended: it was
   * never part of the warm pool). Nothing happens when a pod holds it or no ENI of the pool has it.
   */
  async giveBack(address: string): Promise<void> {
    const { store } = this.o;
    const eni = [...store.enis.values()].find((e) => e.addresses.has(address));
    if (!eni || store.holderOf(address)) return;
    eni.addresses.delete(address);
    try {
      await this.o.supply.release(eni.id, [address]);
    } catch (err) {
      // It may have gone anyway (its answer lost): the re-sync that follows says where it is.
      this.sync.changeFailed();
      throw err;
    }
    this.o.log('info', `pool: gave back ${address} from ${eni.id} (its fixed-IP claim has ended)`);
    this.changed.emit('changed');
  }

  /** Why the pool cannot grow now, shown in status and in an ADD's refusal: its own last error, or the supply's. */
  get lastError(): string | undefined {
    return this.error ?? this.o.supply.problem?.();
  }

  currentLimits(): PoolLimits {
    return this.limits;
  }

  /** Secondary addresses the node can hold at most. */
  capacity(): number {
    return maxBindable(this.limits);
  }

  /** Schedules a pass over the pool; returns when that pass has run. */
  kick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
      this.changed.emit('changed');
      this.o.onChange?.();
    });
    return this.running;
  }

  /** Resolves true once a free address exists, false after `timeoutMs`. */
  async waitForFree(timeoutMs: number): Promise<boolean> {
    const deadline = this.clock.now() + timeoutMs;
    this.waiters++;
    try {
      for (let round = 0; this.o.store.counts().free === 0; round++) {
        const left = deadline - this.clock.now();
        if (left <= 0) return false;
        // A pass that could not grow the pool ends at once: pause before asking again rather than spin.
        if (round > 0) await new Promise((r) => setTimeout(r, Math.min(200, left)));
        const pass = this.kick();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(0, deadline - this.clock.now()));
          const done = () => {
            clearTimeout(timer);
            resolve();
          };
          void pass.finally(done);
          this.changed.once('changed', done);
        });
      }
      return true;
    } finally {
      this.waiters--;
    }
  }

  private async pass(): Promise<void> {
    // ADDs of a burst arrive over a few milliseconds: wait for them, so one batch serves them all.
    if (this.waiters > 0) await new Promise((r) => setTimeout(r, this.o.batchWindowMs ?? 10));
    // After a change whose outcome is unknown, nothing more is done blind: the cloud is looked at first.
    const first = this.sync.next();
    if (first === 'wait') return;
    if (first === 'look') {
      try {
        await this.sync.look();
      } catch (err) {
        this.error = (err as Error).message;
        this.o.log('error', `pool: cannot compare with the cloud: ${(err as Error).message}`);
        return;
      }
    }
    // Slow release gives back one address per period; quick release all the excess, in this same pass.
    // Neither gives back within a period of the pool last growing.
    const now = this.clock.now();
    const releaseDue = now - Math.max(this.lastReleaseAt, this.lastGrowAt) >= this.o.releasePeriodMs;
    let released = false;
    for (let step = 0; step < 100 && !this.stopped; step++) {
      const action = decide(this.policyInput(releaseDue && (this.o.quickRelease || !released)));
      if (action.kind === 'none') return this.trim();
      if (action.kind === 'release') released = true;
      if (action.kind === 'assign' || action.kind === 'create-eni') this.lastGrowAt = this.clock.now();
      try {
        await this.carryOut(action);
        this.error = undefined;
        this.pauseMs = 0;
      } catch (err) {
        this.failed(action, err as Error & { code?: string });
        return;
      }
      this.changed.emit('changed');
    }
  }

  /** Asks the supply for no more than the pool would keep: a burst that went away leaves no demand behind. */
  private async trim(): Promise<void> {
    if (!this.o.supply.trim || this.o.supply.pending() === 0) return;
    const assigned = this.o.store.counts().assigned;
    await this.o.supply.trim(Math.min(maxBindable(this.limits), assigned + this.waiters + this.limits.warm.max)).catch((err: Error) => {
      this.o.log('warn', `pool: cannot lower what it asked for: ${err.message}`);
    });
  }

  private policyInput(releaseDue: boolean) {
    const { store } = this.o;
    const counts = store.counts();
    const now = this.clock.now();
    return {
      enis: [...store.enis.values()].map((e) => ({
        id: e.id,
        bound: e.addresses.size,
        assigned: [...e.addresses].filter((a) => store.holderOf(a)).length,
        capacity: e.capacity,
      })),
      available: counts.free,
      cooling: counts.cooling,
      pending: this.o.supply.pending(),
      waiting: this.waiters,
      warm: this.limits.warm,
      maxEnis: this.limits.maxEnis,
      maxIpsPerEni: this.limits.maxIpsPerEni,
      quickRelease: this.o.quickRelease,
      releaseDue,
      growthPaused: now < this.pausedUntil,
    };
  }

  private async carryOut(action: Exclude<PolicyAction, { kind: 'none' }>): Promise<void> {
    const { supply, store } = this.o;
    switch (action.kind) {
      case 'assign':
        return this.assign(store.enis.get(action.eniId)!, action.count);
      case 'create-eni':
        return this.createEni(action.count);
      case 'release':
        return this.release(store.enis.get(action.eniId)!, action.count);
      case 'delete-eni': {
        const eni = store.enis.get(action.eniId)!;
        store.removeEni(action.eniId);
        try {
          await supply.deleteEni(action.eniId);
        } catch (err) {
          // Still attached (or still there): keep knowing it, so that the next pass tries again.
          store.addEni(eni);
          throw err;
        }
        this.o.log('info', `pool: gave back ${action.eniId}, which held no addresses`);
        return;
      }
    }
  }

  private async assign(eni: PoolEni, count: number): Promise<void> {
    let added: string[];
    try {
      added = await this.o.supply.assign(eni.id, count, this.waiters > 0);
    } catch (err) {
      if (!(err instanceof CloudError) || err.code !== 'LimitExceeded') throw err;
      // The cloud says this ENI is full. Either it holds addresses the pool never recorded (the re-sync
      // finds them), or its limit is below what the quota said (learnt here): either way, not a quota of
      // the node, and the next step fills another ENI or opens one.
      await this.sync.look();
      const now = this.o.store.enis.get(eni.id);
      if (now && now.addresses.size < now.capacity) {
        this.o.log('warn', `pool: ${eni.id} refuses more than ${now.addresses.size} addresses (${err.message}); taking that as its limit`);
        now.capacity = now.addresses.size;
      }
      return;
    }
    for (const address of added) eni.addresses.add(address);
    if (added.length > 0) this.o.log('info', `pool: assigned ${added.join(', ')} to ${eni.id}`);
    else this.o.log('info', `pool: asked for ${count} addresses on ${eni.id}`);
  }

  /** Gives back `count` idle addresses of an ENI, those cooling down first. */
  private async release(eni: PoolEni, count: number): Promise<void> {
    const { supply, store } = this.o;
    const idle = [...eni.addresses].filter((a) => !store.holderOf(a));
    idle.sort((a, b) => Number(store.isCooling(b)) - Number(store.isCooling(a)));
    const leaving = idle.slice(0, count);
    // Out of the pool before the call, so that no pod is given an address on its way out. If the call
    // fails they stay out: it may have happened anyway (its answer lost), and the re-sync that follows
    // a failure brings back whatever the cloud still has.
    for (const address of leaving) eni.addresses.delete(address);
    await supply.release(eni.id, leaving);
    this.lastReleaseAt = this.clock.now();
    this.o.log('info', `pool: gave back ${leaving.join(', ')} from ${eni.id}`);
  }

  private async createEni(count: number): Promise<void> {
    const created = await this.o.supply.createEni(count, this.waiters > 0);
    if (!created) {
      this.o.log('info', `pool: asked for a new ENI with ${count} addresses`);
      return;
    }
    try {
      await this.adopt(created);
    } catch (err) {
      // An ENI whose link never shows up is given back rather than left behind.
      await this.o.supply.deleteEni(created.id).catch(() => undefined);
      throw err;
    }
  }

  /** Quota errors pause growth (doubling, up to 5 minutes) and tell the user; others are just reported. */
  private failed(action: PolicyAction, err: Error & { code?: string }): void {
    this.error = err.message;
    // A change that failed may have happened anyway (its answer lost): look before the next step.
    this.sync.changeFailed();
    const reason = QUOTA_CODES[err.code ?? ''];
    if (reason && (action.kind === 'assign' || action.kind === 'create-eni')) {
      this.pauseMs = Math.min(300_000, Math.max(10_000, this.pauseMs * 2));
      this.pausedUntil = this.clock.now() + this.pauseMs;
      this.o.log('warn', `pool: ${err.message}; growth paused for ${this.pauseMs / 1000} s`);
      this.o.event?.({ reason, message: `${this.o.instanceId}: ${err.message}` });
      return;
    }
    this.o.log('error', `pool: ${action.kind} failed: ${err.message}`);
    this.o.event?.({ reason: 'CloudError', message: `${this.o.instanceId}: ${action.kind} failed: ${err.message}` });
  }

  private async adopt(eni: SuppliedEni): Promise<void> {
    const gateway = nthAddress(parseCidr(eni.subnetCidr), 1);
    const link = await this.o.datapath.setupEni({ id: eni.id, mac: eni.mac, primaryIp: eni.primaryIp, gateway });
    this.o.store.addEni({
      id: eni.id,
      mac: eni.mac,
      subnetId: eni.subnetId,
      primaryIp: eni.primaryIp,
      gateway,
      subnetCidr: eni.subnetCidr,
      capacity: this.quota.maxIpsPerEni,
      ifName: link.ifName,
      table: link.table,
      addresses: new Set(eni.secondaryIps),
    });
    this.o.log('info', `pool: ${eni.id} is ${link.ifName} (table ${link.table}) with ${eni.secondaryIps.length} addresses`);
  }
}
