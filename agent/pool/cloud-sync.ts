// The pool's re-sync with the cloud, which has the last word. The pool looks every interval, after any
// change that failed or went unanswered (and then does nothing more blind until it has looked), and soon
// again while something is still changing in the cloud. What it mends:
//   - ENIs made for this node (by their tag) attached here but not in the pool: taken over;
//   - ENIs made for this node attached nowhere (an agent killed between create and attach, an answer lost):
//     orphans, deleted on the side, unless a restored pod still references one;
//   - an ENI of the pool no longer attached: out of the pool at once (nothing given from it, put on it or
//     released from it); its pods keep their allocations, and once none is left it is an orphan;
//   - addresses on an ENI that the pool never recorded (an assign or an unassign whose answer was lost):
//     free (what pods hold is known before the pool starts: the checkpoint is restored first);
//   - addresses the pool has and the cloud does not: dropped, unless a pod holds one, which is reported.
import type { Cloud, Eni } from '../cloud/cloud.ts';
import type { PoolEvent } from './pool.ts';
import type { PoolEni, PoolStore } from './store.ts';

/** The tag on every ENI the agent creates, naming its instance: the ENIs it may fill, empty and delete. */
export const OWNER_TAG = 'eni-cni.node';

/** However often a pass is asked for, the pool looks at the cloud at most this often (two describe calls). */
const MIN_GAP_MS = 2000;

export interface CloudSyncOptions {
  cloud: Cloud;
  store: PoolStore;
  instanceId: string;
  /** takes over an ENI attached here that the pool does not hold (sets up its link) */
  adopt(eni: Eni): Promise<void>;
  /** how often to look unasked */
  intervalMs: number;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  event?: (event: PoolEvent) => void;
  clock: { now(): number };
}

export class CloudSync {
  /** a change failed or went unanswered: look at the cloud before doing anything more */
  private mustLook = true;
  /** the last look saw something still changing in the cloud */
  private settling = false;
  private lastAt = -Infinity;
  /** orphan deletes under way, by ENI */
  private readonly deleting = new Map<string, Promise<void>>();

  constructor(private readonly o: CloudSyncOptions) {}

  /** Says that a change may have happened without the pool knowing (it failed, or its answer was lost). */
  changeFailed(): void {
    this.mustLook = true;
  }

  /**
   * What a pass should do first: `wait` (a change failed and the last look was a moment ago: do nothing
   * blind), `look` (re-sync now), or `go` (carry on). A clock stepped back (NTP at boot, a restored VM)
   * makes the gap negative: then a look is due.
   */
  next(): 'wait' | 'look' | 'go' {
    const since = this.o.clock.now() - this.lastAt;
    const stepped = since < 0;
    if (this.mustLook) return stepped || since >= MIN_GAP_MS ? 'look' : 'wait';
    if (stepped || since >= this.o.intervalMs || (this.settling && since >= MIN_GAP_MS)) return 'look';
    return 'go';
  }

  /** Compares the pool with the cloud and mends the pool (see the top of this file). */
  async look(): Promise<void> {
    const { cloud, store, instanceId, log } = this.o;
    this.lastAt = this.o.clock.now();
    // Attached here: from the instance's own listing (the tag index may lag); ours by the tag on each.
    const here = new Map((await cloud.enisOf(instanceId)).filter((e) => !e.primary && e.tags[OWNER_TAG] === instanceId).map((e) => [e.id, e]));
    const orphans = (await cloud.enisTagged(OWNER_TAG, instanceId)).filter((e) => !e.attachedTo && !here.has(e.id));
    this.settling = [...here.values(), ...orphans].some((e) => e.settling);
    // The cloud has been read: what follows mends the pool from it, whatever else fails below.
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
    const inUse = new Set(store.allocations().map((a) => a.eniId));
    for (const eni of orphans) if (eni.state === 'AVAILABLE' && !inUse.has(eni.id)) this.deleteOrphan(eni);
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

  /** Waits for the orphan deletes under way. */
  async drain(): Promise<void> {
    await Promise.all(this.deleting.values());
  }

  /** On the side: the delete's task must not hold up a pass that grows for waiting ADDs. */
  private deleteOrphan(eni: Eni): void {
    if (this.deleting.has(eni.id)) return;
    const { log, instanceId } = this.o;
    const deleting = this.o.cloud
      .deleteEni(eni.id)
      .then(
        () => log('warn', `pool: deleted ${eni.id} (${eni.primaryIp}, ${eni.secondaryIps.length} addresses), made for ${instanceId} but attached nowhere`),
        (err: Error) => log('error', `pool: cannot delete the orphan ${eni.id}: ${err.message}; trying again at the next re-sync`),
      )
      .finally(() => this.deleting.delete(eni.id));
    this.deleting.set(eni.id, deleting);
  }

  private syncAddresses(eni: PoolEni, inCloud: string[]): void {
    const { store, log } = this.o;
    const found = inCloud.filter((a) => !eni.addresses.has(a));
    for (const address of found) eni.addresses.add(address);
    if (found.length > 0) log('warn', `pool: ${eni.id} holds ${found.join(', ')} in the cloud, which the pool had not recorded; taking them as free`);
    const cloud = new Set(inCloud);
    for (const address of [...eni.addresses].filter((a) => !cloud.has(a))) {
      if (store.holderOf(address)) {
        this.o.event?.({ reason: 'CloudError', message: `${address} of ${this.holderName(address)} is no longer on ${eni.id} in the cloud` });
        continue;
      }
      eni.addresses.delete(address);
      store.cool(address, 0);
      log('warn', `pool: ${address} is no longer on ${eni.id} in the cloud; dropped from the pool`);
    }
  }

  /** The pod (or, without one, the container) holding an address, for messages. */
  private holderName(address: string): string {
    const holder = this.o.store.holderOf(address);
    if (!holder) return 'nobody';
    return holder.pod ? `pod ${holder.pod.namespace}/${holder.pod.name}` : `container ${holder.containerId}`;
  }
}
