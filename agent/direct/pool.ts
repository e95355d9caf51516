// The node's whole ENIs (tke-direct-eni): each given to one pod, whose interface it becomes. ipamd attaches
// them (the agent asks on its NEC, ../k8s/nec.ts: demand.directENIs); the agent keeps spare ones between
// pods + min and pods + max, as the shared pool does with addresses, and offers what is above back through
// the release handshake (by ENI id): quickly, all at once, or one per release period. An ENI offered is never
// given to a pod again. Which pod holds which ENI is an allocation of the store (its `direct` part), so the
// checkpoint, DEL, GC and the periodic check treat whole-ENI pods as any other.
import { directEnisOf, type NecIpamdEni } from '../k8s/nec.ts';
import type { NecPort } from '../supply/nec-supply.ts';
import type { FixedPlaces } from '../fixed-ips.ts';
import type { Allocation, PoolStore } from '../pool/store.ts';
import { NETWORK_MODES } from '../../shared/tke.ts';
import { nthAddress, parseCidr } from '../../shared/ip.ts';
import { applyDirectOverrides, type DirectLimits } from './limits.ts';

export interface DirectPoolOptions {
  nec: NecPort;
  store: PoolStore;
  /** the flags' warm targets (ipamd's, from the NEC's spec, replace them) */
  warm: { min: number; max: number };
  quickRelease: boolean;
  releasePeriodMs: number;
  /** whether the link of an ENI (by MAC) is in the agent's namespace, ready to be given */
  hasLink: (mac: string) => Promise<boolean>;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  clock?: { now(): number };
}

/**
 * How long an ENI's link may be missing from the node before the ENI is given back as lost: short for one
 * this agent has seen on the node or taken back from a pod (its link went with a namespace), long for one
 * it never has (a link late to come, or one in a running pod's namespace the checkpoint does not know).
 */
const LINK_GRACE_MS = 10_000;
const UNKNOWN_LINK_GRACE_MS = 300_000;

export class DirectPool {
  private limits: DirectLimits;
  private defaults: { min: number; max: number };
  private annotations: Record<string, string> = {};
  /** ENIs offered back by this agent, not given to pods from then on */
  private readonly offering = new Set<string>();
  /** ENIs a pod let go that no other pod may have yet (see holdUntil) */
  private readonly held = new Set<string>();
  /** ADDs waiting for a spare ENI */
  private waiting = 0;
  private readonly waiters = new Set<() => void>();
  private lastRelease = 0;
  /** since when each spare ENI's link has been missing */
  private readonly missingSince = new Map<string, number>();
  /** ENIs whose link this agent has seen on the node, or taken back from a pod */
  private readonly known = new Set<string>();
  private writing: Promise<void> = Promise.resolve();
  private readonly clock: { now(): number };

  constructor(private readonly o: DirectPoolOptions) {
    this.clock = o.clock ?? Date;
    this.defaults = { ...o.warm };
    this.limits = { warm: { ...o.warm }, maxAttach: Infinity };
  }

  /** The whole ENIs the node has for pods, as ipamd last said, less those offered back. */
  enis(): NecIpamdEni[] {
    const nec = this.o.nec.current();
    // Once the NEC carries an offer, the handshake speaks for it: if ipamd keeps the ENI (a claim holds it)
    // and drops the entry, the ENI is the pool's again.
    for (const id of this.offering) if (nec?.status?.release?.[id]) this.offering.delete(id);
    return directEnisOf(nec).filter((e) => !this.offering.has(e.eniId));
  }

  /** ENI ids pods hold. */
  bound(): Set<string> {
    return new Set(this.o.store.allocations().filter((a) => a.direct).map((a) => a.eniId));
  }

  spare(): NecIpamdEni[] {
    const bound = this.bound();
    return this.enis().filter((e) => !bound.has(e.eniId) && !this.held.has(e.eniId) && !this.o.store.holderOf(e.primaryIP));
  }

  /** Keeps an ENI its pod let go from every other pod until `done` settles (its EIP being unbound). */
  holdUntil(eniId: string, done: Promise<unknown>): void {
    this.held.add(eniId);
    const release = () => {
      this.held.delete(eniId);
      this.changed();
    };
    done.then(release, release);
  }

  /** The pod ENIs the instance may hold, of both kinds: its quota less the primary. */
  quota(): number {
    return Math.max(0, (this.o.nec.current()?.spec?.quota?.enis ?? 0) - 1);
  }

  /** The whole ENIs the node can attach for pods: its quota less the primary and the shared ENIs, or the override. */
  capacity(): number {
    const nec = this.o.nec.current();
    const quota = Math.max(0, (nec?.spec?.quota?.enis ?? 0) - 1);
    const shared = nec?.status?.ipamd?.enis?.length ?? 0;
    return Math.max(0, Math.min(this.limits.maxAttach, quota - shared));
  }

  /** The limits in force; maxAttach is the quota's unless direct-eni-max-attach says less (0 included). */
  currentLimits(): DirectLimits {
    return { warm: { ...this.limits.warm }, maxAttach: Math.min(this.limits.maxAttach, this.quota()) };
  }

  /** A pod let its ENI go: its link is known to have been here, so a missing one is lost, not late. */
  returned(eniId: string): void {
    this.known.add(eniId);
  }

  /** The NEC's annotations and ipamd's defaults; answers the refusals. */
  setOverrides(annotations: Record<string, string>, warmDefaults?: { min: number; max: number }): string[] {
    if (warmDefaults) this.defaults = warmDefaults;
    this.annotations = annotations;
    const quota = Math.max(0, (this.o.nec.current()?.spec?.quota?.enis ?? 0) - 1);
    const result = applyDirectOverrides(annotations, {
      // No direct-eni-max-attach: no limit but the quota's (capacity() applies it as the quota changes).
      defaults: { warm: this.defaults, maxAttach: Infinity },
      current: this.limits,
      quota,
      inUse: this.bound().size,
    });
    this.limits = result.limits;
    this.changed();
    return result.refusals;
  }

  /**
   * Gives a spare ENI to a pod, waiting until `deadline` for one to come; the allocation is recorded in
   * the store at once, so no other ADD takes the same ENI. Undefined when none came.
   */
  async take(details: Omit<Allocation, 'address' | 'eniId' | 'table' | 'direct'>, deadline: number): Promise<Allocation | undefined> {
    this.waiting++;
    try {
      for (;;) {
        const eni = this.spare().find((e) => !this.missingSince.has(e.eniId));
        if (eni) {
          const allocation: Allocation = { ...details, address: eni.primaryIP, eniId: eni.eniId, table: 0, direct: partOf(eni) };
          this.o.store.record(allocation);
          return allocation;
        }
        await this.reconcile();
        const left = deadline - this.clock.now();
        if (left <= 0) return undefined;
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            this.waiters.delete(wake);
            resolve();
          };
          // Woken by the NEC; and looked again now and then, for a link that has come back.
          const timer = setTimeout(wake, Math.min(left, 500));
          this.waiters.add(wake);
        });
      }
    } finally {
      this.waiting--;
      this.changed();
    }
  }

  /** The NEC changed, or a pod let its ENI go: wake waiting ADDs and bring the pool to its targets. */
  changed(): void {
    for (const wake of [...this.waiters]) wake();
    void this.reconcile().catch((err: Error) => this.o.log('warn', `direct ENIs: ${err.message}`));
  }

  /** Why no ENI came, when ipamd says (quota, subnet). */
  problem(): string | undefined {
    const p = this.o.nec.current()?.status?.ipamd?.problem;
    return p ? `${p.reason}: ${p.message}` : undefined;
  }

  /**
   * The pool's law, in ENIs: demand pods + waiting + min at least, keep up to pods + max, within the
   * capacity; spare ENIs above that are offered back. A spare ENI whose link has been missing from the
   * node for a while (left in a pod's namespace that went away) is offered back too: ipamd deletes it and
   * opens a new one, so none stays stranded.
   */
  async reconcile(): Promise<void> {
    if (!this.o.nec.current()?.spec?.quota) return;
    await this.checkLinks();
    const bound = this.bound().size;
    const spare = this.spare();
    const { min, max } = this.limits.warm;
    const most = this.capacity();
    const lost = spare.filter((e) => (this.missingSince.get(e.eniId) ?? Infinity) <= this.clock.now() - (this.known.has(e.eniId) ? LINK_GRACE_MS : UNKNOWN_LINK_GRACE_MS));
    const surplus = spare.length - lost.length - max;
    const release = [...lost];
    // Those whose link is missing go first: the others are ready for the next pod.
    const healthy = () => spare.filter((e) => !release.includes(e)).sort((a, b) => Number(this.missingSince.has(b.eniId)) - Number(this.missingSince.has(a.eniId)));
    // Above the most the node may attach (direct-eni-max-attach lowered): the idle excess goes at once.
    const over = bound + spare.length - lost.length - most;
    if (over > 0) release.push(...healthy().slice(0, over));
    else if (surplus > 0 && (this.o.quickRelease || this.clock.now() - this.lastRelease >= this.o.releasePeriodMs)) {
      // Above pods + max: slowly, one per release period, or quickly, all of the excess.
      release.push(...healthy().slice(0, this.o.quickRelease ? surplus : 1));
      this.lastRelease = this.clock.now();
    }
    for (const eni of release) {
      this.offering.add(eni.eniId);
      const why = lost.includes(eni) ? `its link has been missing from the node for ${(this.known.has(eni.eniId) ? LINK_GRACE_MS : UNKNOWN_LINK_GRACE_MS) / 1000} s` : over > 0 ? `above the ${most} whole ENIs the node may attach` : `above the ${max} spare whole ENIs to keep`;
      this.o.log('info', `direct ENIs: offering ${eni.eniId} (${eni.primaryIP}) back: ${why}`);
    }
    // Waiting ADDs each take one; what is left of the spare ones is kept between min and max.
    const kept = spare.length - release.length;
    const want = Math.min(most, bound + this.waiting + Math.min(max, Math.max(min, kept - this.waiting)));
    try {
      await this.writeDemand(want, release.map((e) => e.eniId));
    } catch (err) {
      // Not offered after all: they may be offered, or given to pods, again.
      for (const eni of release) this.offering.delete(eni.eniId);
      throw err;
    }
  }

  /** Writes the demand (and offers) when they change; writes are one at a time. */
  private writeDemand(target: number, offers: string[]): Promise<void> {
    const write = async () => {
      const nec = this.o.nec.current();
      const urgent = this.waiting > 0;
      const demand = nec?.status?.demand;
      const offered = offers.filter((id) => !nec?.status?.release?.[id]);
      if (demand?.directENIs === target && Boolean(demand?.directUrgent) === urgent && offered.length === 0) return;
      await this.o.nec.patchStatus({ demand: { directENIs: target, directUrgent: urgent }, ...(offered.length ? { release: Object.fromEntries(offered.map((id) => [id, 'offered'])) } : {}) });
    };
    this.writing = this.writing.then(write, write);
    return this.writing;
  }

  private async checkLinks(): Promise<void> {
    const now = this.clock.now();
    const spare = this.spare();
    for (const id of this.missingSince.keys()) if (!spare.some((e) => e.eniId === id)) this.missingSince.delete(id);
    for (const eni of spare) {
      if (await this.o.hasLink(eni.mac)) {
        this.missingSince.delete(eni.eniId);
        this.known.add(eni.eniId);
      }
      else if (!this.missingSince.has(eni.eniId)) this.missingSince.set(eni.eniId, now);
    }
  }
}

/** The node's whole ENIs as places of fixed addresses (../fixed-ips.ts): a whole-ENI pod's address is its ENI's primary one. */
export function directPlaces(pool: DirectPool, store: PoolStore): FixedPlaces {
  const byAddress = (address: string) => pool.enis().find((e) => e.primaryIP === address);
  return {
    networkMode: NETWORK_MODES.directEni,
    eniOf: (address) => {
      const eni = byAddress(address);
      return eni ? { id: eni.eniId, subnetId: eni.subnetId } : undefined;
    },
    subnetOf: (eniId) => pool.enis().find((e) => e.eniId === eniId)?.subnetId,
    allocation: (details, address, eniId) => ({ ...details, address, eniId, table: 0, direct: partOf(pool.enis().find((e) => e.eniId === eniId)!) }),
    reserve: (claim, address, now) => {
      // Whole-ENI kind from the start, the ENI named once it is here: no spare-ENI count ever takes it.
      const eni = byAddress(address);
      const reservation: Allocation = { ...store.reserve(claim, address, now), table: 0, eniId: eni?.eniId ?? '', direct: eni ? partOf(eni) : { mac: '', prefix: 32, gateway: '', hostName: '' } };
      store.record(reservation);
      return reservation;
    },
    owns: (a) => Boolean(a.direct),
  };
}

function partOf(eni: NecIpamdEni): NonNullable<Allocation['direct']> {
  const cidr = parseCidr(eni.subnetCIDR);
  return { mac: eni.mac, prefix: cidr.prefix, gateway: nthAddress(cidr, 1), hostName: '' };
}
