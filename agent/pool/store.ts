// The node's address pool in memory: the ENIs in hand, their secondary addresses, and which pod holds
// which address. No I/O: the pool manager talks to the cloud, the checkpoint keeps allocations on disk.

export interface PoolEni {
  id: string;
  mac: string;
  subnetId: string;
  primaryIp: string;
  gateway: string;
  subnetCidr: string;
  /** secondary addresses this ENI may hold */
  capacity: number;
  /** its link on the node, once set up */
  ifName?: string | undefined;
  table?: number | undefined;
  addresses: Set<string>;
}

export interface Allocation {
  address: string;
  eniId: string;
  containerId: string;
  ifName: string;
  netns: string;
  hostIf: string;
  table: number;
  pod?: { namespace: string; name: string; uid?: string | undefined } | undefined;
  /** ms since the epoch */
  allocatedAt: number;
  /** the pod's fixed-IP claim (delete policy Never): at DEL its address is reserved for the claim, not freed */
  claim?: { namespace: string; name: string } | undefined;
  /**
   * a reservation, not a pod: the address of a Never claim whose pod went (or that is on its way here),
   * held for that claim alone; its containerId is `claim:<namespace>/<name>`, and eniId is empty while the
   * address is not on an ENI of the node yet
   */
  reserved?: boolean | undefined;
  /** the pod has an EIP bound to this address (exempt from masquerade; its claim is told at DEL) */
  eip?: boolean | undefined;
  /**
   * a whole-ENI pod (tke-direct-eni): the ENI `eniId` is its interface, `address` the ENI's primary
   * address; no ENI of the shared pool is involved, and hostIf is empty
   */
  direct?: DirectPart | undefined;
}

/** How a whole ENI is made a pod's interface, and undone. */
export interface DirectPart {
  mac: string;
  /** the subnet's prefix length: the pod's address is in its subnet as the ENI's */
  prefix: number;
  gateway: string;
  /** the ENI link's name on the node, given back at DEL (empty until it has been moved) */
  hostName: string;
}

/** The key of a claim's reservation in the store (containerId; ifName is RESERVED_IF). */
export const reservationId = (claim: { namespace: string; name: string }): string => `claim:${claim.namespace}/${claim.name}`;
export const RESERVED_IF = 'claim';

export function allocationKey(containerId: string, ifName: string): string {
  return `${containerId}/${ifName}`;
}

export class PoolStore {
  readonly enis = new Map<string, PoolEni>();
  private readonly byKey = new Map<string, Allocation>();
  private readonly byAddress = new Map<string, Allocation>();
  /** when each address was last given back, so reuse starts with the one idle longest */
  private readonly freedAt = new Map<string, number>();
  /** addresses freed by a DEL, not to be given out again before this time (ms) */
  private readonly coolingUntil = new Map<string, number>();

  constructor(private readonly clock: { now(): number } = Date) {}

  addEni(eni: PoolEni): void {
    this.enis.set(eni.id, eni);
  }

  removeEni(eniId: string): void {
    this.enis.delete(eniId);
  }

  allocations(): Allocation[] {
    return [...this.byKey.values()];
  }

  get(containerId: string, ifName: string): Allocation | undefined {
    return this.byKey.get(allocationKey(containerId, ifName));
  }

  holderOf(address: string): Allocation | undefined {
    return this.byAddress.get(address);
  }

  /** Addresses on ENIs with a link, held by nobody and not cooling down. */
  freeAddresses(): Array<{ eni: PoolEni; address: string }> {
    const now = this.clock.now();
    const free: Array<{ eni: PoolEni; address: string }> = [];
    for (const eni of this.enis.values()) {
      if (eni.table === undefined) continue;
      for (const address of eni.addresses) {
        if (!this.byAddress.has(address) && !((this.coolingUntil.get(address) ?? 0) > now)) free.push({ eni, address });
      }
    }
    return free;
  }

  /** Keeps an address from being given out until `until` (ms since the epoch; Infinity: until told). */
  cool(address: string, until: number): void {
    if (until <= this.clock.now()) this.coolingUntil.delete(address);
    else this.coolingUntil.set(address, until);
  }

  /** Cooling addresses and until when, for the checkpoint; "until told" is saved as `open` (ms from now). */
  coolingEntries(open: number): Record<string, number> {
    const now = this.clock.now();
    const entries: Record<string, number> = {};
    for (const [address, until] of this.coolingUntil) if (until > now) entries[address] = until === Infinity ? now + open : until;
    return entries;
  }

  isCooling(address: string): boolean {
    return (this.coolingUntil.get(address) ?? 0) > this.clock.now();
  }

  counts(): { total: number; assigned: number; free: number; cooling: number } {
    const total = [...this.enis.values()].reduce((n, e) => n + e.addresses.size, 0);
    const cooling = [...this.enis.values()].reduce((n, e) => n + [...e.addresses].filter((a) => !this.byAddress.has(a) && this.isCooling(a)).length, 0);
    const direct = [...this.byKey.values()].filter((a) => a.direct).length;
    return { total, assigned: this.byAddress.size - direct, free: this.freeAddresses().length, cooling };
  }

  /**
   * Gives a free address to a pod: from the ENI already holding the most pods (so that others can empty
   * and be given back), and on it the address idle longest. Undefined when none is free.
   */
  take(details: Omit<Allocation, 'address' | 'eniId' | 'table'>): Allocation | undefined {
    const free = this.freeAddresses();
    if (free.length === 0) return undefined;
    const load = (eni: PoolEni) => [...eni.addresses].filter((a) => this.byAddress.has(a)).length;
    free.sort((a, b) => load(b.eni) - load(a.eni) || (this.freedAt.get(a.address) ?? 0) - (this.freedAt.get(b.address) ?? 0));
    const { eni, address } = free[0]!;
    const allocation: Allocation = { ...details, address, eniId: eni.id, table: eni.table! };
    this.record(allocation);
    return allocation;
  }

  /** Holds `address` for a claim: no pod but that claim's gets it, and no release touches it. */
  reserve(claim: { namespace: string; name: string }, address: string, now: number): Allocation {
    const eni = [...this.enis.values()].find((e) => e.addresses.has(address));
    const reservation: Allocation = {
      address,
      eniId: eni?.id ?? '',
      table: eni?.table ?? -1,
      containerId: reservationId(claim),
      ifName: RESERVED_IF,
      netns: '',
      hostIf: '',
      allocatedAt: now,
      claim,
      reserved: true,
    };
    this.record(reservation);
    return reservation;
  }

  reservation(claim: { namespace: string; name: string }): Allocation | undefined {
    return this.get(reservationId(claim), RESERVED_IF);
  }

  /** The ENI (with a link) holding `address`, if any. */
  eniOf(address: string): PoolEni | undefined {
    return [...this.enis.values()].find((e) => e.table !== undefined && e.addresses.has(address));
  }

  /** Puts back an allocation read from the checkpoint. */
  record(allocation: Allocation): void {
    this.byKey.set(allocationKey(allocation.containerId, allocation.ifName), allocation);
    this.byAddress.set(allocation.address, allocation);
  }

  release(containerId: string, ifName: string, now: number): Allocation | undefined {
    const key = allocationKey(containerId, ifName);
    const allocation = this.byKey.get(key);
    if (!allocation) return undefined;
    this.byKey.delete(key);
    this.byAddress.delete(allocation.address);
    this.freedAt.set(allocation.address, now);
    return allocation;
  }
}
