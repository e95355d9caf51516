// The pool's re-sync with its supply (the cloud, or ipamd through the NEC), which has the last word. The
// pool looks every interval, after any change that failed or went unanswered (and then does nothing more
// blind until it has looked), soon again while something is still changing, and at once when the supply
// says it changed something. What it mends:
//   - ENIs attached here for this node but not in the pool: taken over;
//   - an ENI of the pool no longer attached: out of the pool at once (nothing given from it, put on it or
//     released from it); its pods keep their allocations;
//   - addresses on an ENI that the pool never recorded (an assign or an unassign whose answer was lost):
//     free (what pods hold is known before the pool starts: the checkpoint is restored first);
//   - addresses the pool has and the supply does not: dropped, unless a pod holds one, which is reported.
import type { PoolEvent } from './pool.ts';
import type { PoolEni, PoolStore } from './store.ts';
import type { SuppliedEni, Supply } from '../supply/supply.ts';

/** However often a pass is asked for, the pool looks at the cloud at most this often after a failure. */
const MIN_GAP_MS = 2000;

export interface PoolSyncOptions {
  supply: Supply;
  store: PoolStore;
  instanceId: string;
  /** takes over an ENI attached here that the pool does not hold (sets up its link) */
  adopt(eni: SuppliedEni): Promise<void>;
  /** how often to look unasked */
  intervalMs: number;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  event?: (event: PoolEvent) => void;
  clock: { now(): number };
}

export class PoolSync {
  /** a change failed or went unanswered: look before doing anything more */
  private mustLook = true;
  /** the supply changed something: look at once */
  private told = false;
  /** the last look saw something still changing */
  private settling = false;
  private lastAt = -Infinity;

  constructor(private readonly o: PoolSyncOptions) {}

  /** Says that a change may have happened without the pool knowing (it failed, or its answer was lost). */
  changeFailed(): void {
    this.mustLook = true;
  }

  /** The supply says the node's ENIs or addresses changed: the next pass looks first. */
  supplyChanged(): void {
    this.told = true;
  }

  /**
   * What a pass should do first: `wait` (a change failed and the last look was a moment ago: do nothing
   * blind), `look` (re-sync now), or `go` (carry on). A clock stepped back (NTP at boot, a restored VM)
   * makes the gap negative: then a look is due.
   */
  next(): 'wait' | 'look' | 'go' {
    const since = this.o.clock.now() - this.lastAt;
    const stepped = since < 0;
    if (this.told) return 'look';
    if (this.mustLook) return stepped || since >= MIN_GAP_MS ? 'look' : 'wait';
    if (stepped || since >= this.o.intervalMs || (this.settling && since >= MIN_GAP_MS)) return 'look';
    return 'go';
  }

  /** Compares the pool with the supply and mends the pool (see the top of this file). */
  async look(): Promise<void> {
    const { supply, store, instanceId, log } = this.o;
    this.lastAt = this.o.clock.now();
    this.told = false;
    const view = await supply.look(new Set(store.allocations().map((a) => a.eniId)));
    const here = new Map(view.enis.map((e) => [e.id, e]));
    this.settling = view.settling;
    // The supply has been read: what follows mends the pool from it, whatever else fails below.
    this.mustLook = false;
    for (const known of [...store.enis.values()]) {
      if (here.has(known.id)) continue;
      store.removeEni(known.id);
      const held = [...known.addresses].filter((a) => store.holderOf(a));
      log('warn', `pool: ${known.id} is no longer attached to ${instanceId}; out of the pool`);
      if (held.length > 0) {
        this.o.event?.({ reason: 'CloudError', message: `${instanceId}: ${known.id} is no longer attached, yet ${held.map((a) => `${a} (${this.holderName(a)})`).join(', ')} use it` });
      }
    }
    for (const eni of here.values()) {
      const known = store.enis.get(eni.id);
      if (known) {
        this.syncAddresses(known, eni.secondaryIps);
        continue;
      }
      await this.o.adopt(eni).catch((err: Error) => {
        // Looked at again soon (its link may just be late), without holding up the pool.
        this.settling = true;
        log('error', `pool: cannot take over ${eni.id}: ${err.message}; trying again shortly`);
      });
    }
  }

  private syncAddresses(eni: PoolEni, inCloud: string[]): void {
    const { store, log } = this.o;
    const found = inCloud.filter((a) => !eni.addresses.has(a));
    for (const address of found) eni.addresses.add(address);
    if (found.length > 0) log('info', `pool: ${eni.id} holds ${found.join(', ')}, which the pool had not recorded; taking them as free`);
    const cloud = new Set(inCloud);
    for (const address of [...eni.addresses].filter((a) => !cloud.has(a))) {
      const holder = store.holderOf(address);
      if (holder?.reserved) {
        // A fixed address held for a claim whose pod went: ipamd moved it to another node (or gave it back).
        store.release(holder.containerId, holder.ifName, this.o.clock.now());
        eni.addresses.delete(address);
        log('info', `pool: ${address}, reserved for claim ${holder.claim?.namespace}/${holder.claim?.name}, has left ${eni.id}; no longer held here`);
        continue;
      }
      if (holder) {
        this.o.event?.({ reason: 'CloudError', message: `${address} of ${this.holderName(address)} is no longer on ${eni.id} in the cloud` });
        continue;
      }
      eni.addresses.delete(address);
      store.cool(address, 0);
      log('warn', `pool: ${address} is no longer on ${eni.id}; dropped from the pool`);
    }
  }

  /** The pod (or, without one, the container) holding an address, for messages. */
  private holderName(address: string): string {
    const holder = this.o.store.holderOf(address);
    if (!holder) return 'nobody';
    return holder.pod ? `pod ${holder.pod.namespace}/${holder.pod.name}` : `container ${holder.containerId}`;
  }
}
