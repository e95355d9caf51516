// Fixed pod IPs on the node's side (seed 000; the contract is in k8s/claims.ts). For a pod whose annotation
// says Never, ADD gets the claim's address: from this node's reservation (the pod came back here), from one
// of its ENIs, or — when the claim's address is on another node — by asking ipamd to move it here and waiting
// for it; a pod without a claim gets a warm address and a claim for it before its ADD answers. At DEL the
// address is reserved for the claim, not freed: no other pod gets it, no release touches it. The claim's end
// (expiry, `kubectl delete vipc`, its workload deleted) gives the reservation back to the cloud. For every
// other pod the claim is a ledger, written after its ADD has answered.
import type { Logger } from 'pino';
import { refuse, type Response } from '../shared/protocol.ts';
import { NETWORK_MODES } from '../shared/tke.ts';
import { CLAIM_FINALIZER, CLAIM_NODE_LABEL, type DeletePolicy, type VpcIpClaim } from './k8s/claims.ts';
import type { Kube } from './k8s/kube.ts';
import { ConflictError } from './k8s/nec.ts';
import type { Allocation, PoolStore } from './pool/store.ts';

type ClaimsApi = Pick<Kube, 'getClaim' | 'createClaim' | 'patchClaim' | 'patchClaimStatus' | 'removeClaimFinalizer'>;

export interface FixedIpsOptions {
  kube: ClaimsApi;
  store: PoolStore;
  /** gives an idle address back to the cloud (the pool's release, out of turn) */
  giveBack: (address: string) => Promise<void>;
  nodeName: string;
  /** writes the checkpoint */
  save: () => void;
  log: Logger;
  clock?: { now(): number };
  /** how often a waiting ADD reads its claim again (default 100 ms: a pod coming from another node waits on it) */
  pollMs?: number;
  /** where this kind of pod's fixed addresses live on the node: the shared pool's ENIs by default, or the whole ENIs */
  places?: FixedPlaces;
}

/**
 * Where fixed addresses live on the node, for one network mode: the shared pool's ENIs (an address among
 * an ENI's secondary ones) or the node's whole ENIs (an ENI's primary address, the ENI the pod's interface).
 */
export interface FixedPlaces {
  networkMode: (typeof NETWORK_MODES)[keyof typeof NETWORK_MODES];
  /** the ENI of this node holding `address`, ready for a pod */
  eniOf(address: string): { id: string; subnetId: string } | undefined;
  /** the subnet of an ENI of this node */
  subnetOf(eniId: string): string | undefined;
  /** an allocation of `address` on `eniId` for a pod */
  allocation(details: Omit<Allocation, 'address' | 'eniId' | 'table'>, address: string, eniId: string): Allocation;
  /** holds `address` for the claim alone, recorded in the store */
  reserve(claim: { namespace: string; name: string }, address: string, now: number): Allocation;
  /** whether an allocation or reservation is of this kind */
  owns(allocation: Allocation): boolean;
}

/** The shared pool's ENIs: a fixed address is a secondary address of one of them. */
export function sharedPlaces(store: PoolStore): FixedPlaces {
  return {
    networkMode: NETWORK_MODES.sharedEni,
    eniOf: (address) => store.eniOf(address),
    subnetOf: (eniId) => store.enis.get(eniId)?.subnetId,
    allocation: (details, address, eniId) => ({ ...details, address, eniId, table: store.enis.get(eniId)!.table! }),
    reserve: (claim, address, now) => store.reserve(claim, address, now),
    owns: (a) => !a.direct,
  };
}

export interface PodRef {
  namespace: string;
  name: string;
  uid?: string | undefined;
}

type Details = Omit<Allocation, 'address' | 'eniId' | 'table'>;

export class FixedIps {
  private readonly clock: { now(): number };
  private readonly places: FixedPlaces;

  constructor(private readonly o: FixedIpsOptions) {
    this.clock = o.clock ?? Date;
    this.places = o.places ?? sharedPlaces(o.store);
  }

  /**
   * The address of a Never pod. `takeWarm` gives a warm address (waiting as a normal ADD does) for a pod
   * without a claim. Answers the allocation, recorded in the store, or a refusal.
   */
  async take(pod: PodRef, details: Details, deadline: number, takeWarm: () => Promise<Allocation | undefined>): Promise<Allocation | Response> {
    const who = `pod ${pod.namespace}/${pod.name}`;
    for (let attempt = 0; ; attempt++) {
      let claim: VpcIpClaim | undefined;
      try {
        claim = await this.o.kube.getClaim(pod.namespace, pod.name);
      } catch (err) {
        return refuse('fixed-ip-pending', `${who}: cannot read its VpcIPClaim: ${(err as Error).message}`);
      }
      try {
        if (claim?.spec.deletePolicy === 'Never' && claim.spec.networkMode && claim.spec.networkMode !== this.places.networkMode) {
          return refuse('fixed-ip-unavailable', `${who}: its VpcIPClaim keeps an address for ${claim.spec.networkMode} pods; the pod asks for ${this.places.networkMode} (delete the claim to change the pod's mode)`);
        }
        if (!claim || claim.spec.deletePolicy !== 'Never' || !(claim.spec.ip ?? claim.status?.ip)) return await this.claimNew(pod, claim, takeWarm);
        return await this.claimed(pod, details, claim, deadline);
      } catch (err) {
        // Another writer got there first (another node, ipamd): read the claim again and decide again.
        if (err instanceof ConflictError && attempt < 3) continue;
        return refuse('fixed-ip-pending', `${who}: ${(err as Error).message}`);
      }
    }
  }

  /**
   * DEL of a Never pod's address (already out of the pod): `reserved` for its claim, or, when the claim is
   * gone or going, `given-back` to the cloud, as the claim's end asks.
   */
  async released(allocation: Allocation): Promise<'reserved' | 'given-back'> {
    const ref = allocation.claim!;
    let claim: VpcIpClaim | undefined | 'unknown';
    try {
      claim = await this.o.kube.getClaim(ref.namespace, ref.name);
    } catch (err) {
      // Without the API server the safe side is to keep the address for the claim; the check reads it later.
      this.o.log.warn({ claim: ref, address: allocation.address, err: (err as Error).message }, 'cannot read the VpcIPClaim at DEL; keeping the address reserved');
      claim = 'unknown';
    }
    if (claim === undefined || (claim !== 'unknown' && claim.metadata.deletionTimestamp)) {
      await this.o.giveBack(allocation.address).catch((err: Error) => this.o.log.warn({ address: allocation.address, err: err.message }, 'giving a fixed address back failed; the pool keeps it'));
      return 'given-back';
    }
    this.places.reserve(ref, allocation.address, this.clock.now());
    this.o.save();
    if (claim !== 'unknown' && claim.status?.nodeName === this.o.nodeName) {
      await this.o.kube.patchClaimStatus(claim, { phase: 'Released' }).catch((err: Error) => this.o.log.warn({ claim: ref, err: err.message }, 'could not mark the VpcIPClaim Released'));
    }
    this.o.log.info({ claim: ref, address: allocation.address }, 'address reserved for its VpcIPClaim');
    return 'reserved';
  }

  /** A claim of this node changed: when it is going, its reservation goes back to the cloud and its finalizer goes. */
  async claimChanged(type: 'add' | 'update' | 'delete', claim: VpcIpClaim): Promise<void> {
    if (type !== 'delete' && !claim.metadata.deletionTimestamp) return;
    const ref = { namespace: claim.metadata.namespace, name: claim.metadata.name };
    const reservation = this.o.store.reservation(ref);
    if (reservation && this.places.owns(reservation)) await this.giveBack(reservation, `its VpcIPClaim ${ref.namespace}/${ref.name} was deleted`);
    const held = this.o.store.allocations().find((a) => !a.reserved && this.places.owns(a) && a.claim?.namespace === ref.namespace && a.claim.name === ref.name);
    if (held) {
      // The seed's warning: deleting the claim of a running pod. Its network keeps working; at its DEL the
      // claim is found gone and the address goes back to the cloud.
      this.o.log.warn({ claim: ref, address: held.address, container: held.containerId }, `VpcIPClaim ${ref.namespace}/${ref.name} was deleted while its pod runs; the address stays with the pod until it goes`);
    }
    if (type !== 'delete') await this.o.kube.removeClaimFinalizer(claim, CLAIM_FINALIZER);
  }

  /** The periodic check: reservations whose claim is gone, or has moved elsewhere, are let go. */
  async check(): Promise<void> {
    for (const reservation of this.o.store.allocations().filter((a) => a.reserved && this.places.owns(a))) {
      const ref = reservation.claim!;
      const claim = await this.o.kube.getClaim(ref.namespace, ref.name).catch(() => 'unknown' as const);
      if (claim === 'unknown') continue;
      const ip = claim?.spec.ip ?? claim?.status?.ip;
      const mine = claim && ip === reservation.address && (claim.status?.nodeName === this.o.nodeName || claim.status?.targetNode === this.o.nodeName);
      if (!mine) await this.giveBack(reservation, claim ? `its VpcIPClaim ${ref.namespace}/${ref.name} is held elsewhere now` : `its VpcIPClaim ${ref.namespace}/${ref.name} is gone`);
    }
  }

  /** The ledger of a pod without Never: its claim says which address it holds. Best effort, after its ADD. */
  async record(pod: PodRef, allocation: Allocation, policy: DeletePolicy): Promise<void> {
    const subnetId = this.places.subnetOf(allocation.eniId);
    const spec = { deletePolicy: policy, networkMode: this.places.networkMode, ip: allocation.address, ...(subnetId ? { subnetId } : {}) };
    const status = this.boundStatus(pod, allocation);
    try {
      await this.o.kube.createClaim({ apiVersion: 'networking.tke.cloud.tencent.com/v1', kind: 'VpcIPClaim', metadata: { name: pod.name, namespace: pod.namespace, labels: { [CLAIM_NODE_LABEL]: this.o.nodeName } }, spec, status });
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      // A claim of an earlier pod of this name: this pod's address now.
      const claim = await this.o.kube.getClaim(pod.namespace, pod.name);
      if (claim) await this.o.kube.patchClaimStatus(claim, status);
    }
  }

  private boundStatus(pod: PodRef, allocation: Allocation): Record<string, unknown> {
    const subnetId = this.places.subnetOf(allocation.eniId);
    return {
      phase: 'Bound',
      ip: allocation.address,
      ...(subnetId ? { subnetId } : {}),
      nodeName: this.o.nodeName,
      eniId: allocation.eniId,
      podUID: pod.uid ?? '',
      releasedAt: null,
      targetNode: null,
      targetPodUID: null,
      message: '',
    };
  }

  /** No claim (or none with an address yet): a warm address, then the claim, before the ADD answers. */
  private async claimNew(pod: PodRef, existing: VpcIpClaim | undefined, takeWarm: () => Promise<Allocation | undefined>): Promise<Allocation | Response> {
    const who = `pod ${pod.namespace}/${pod.name}`;
    const allocation = await takeWarm();
    if (!allocation) return refuse('no-address', `no free address for ${who}`);
    const spec = { deletePolicy: 'Never' as const, networkMode: this.places.networkMode, subnetId: this.places.subnetOf(allocation.eniId)!, ip: allocation.address };
    try {
      if (existing) {
        // A ledger claim left by an earlier pod of this name without Never: it becomes this pod's fixed claim.
        const finalizers = [...new Set([...(existing.metadata.finalizers ?? []), CLAIM_FINALIZER])];
        const updated = await this.o.kube.patchClaim(existing, { metadata: { finalizers, labels: { [CLAIM_NODE_LABEL]: this.o.nodeName } }, spec });
        await this.o.kube.patchClaimStatus(updated, this.boundStatus(pod, allocation));
      } else await this.o.kube.createClaim({
        apiVersion: 'networking.tke.cloud.tencent.com/v1',
        kind: 'VpcIPClaim',
        metadata: { name: pod.name, namespace: pod.namespace, labels: { [CLAIM_NODE_LABEL]: this.o.nodeName }, finalizers: [CLAIM_FINALIZER] },
        spec,
        status: this.boundStatus(pod, allocation),
      });
    } catch (err) {
      this.o.store.release(allocation.containerId, allocation.ifName, this.clock.now());
      throw err;
    }
    allocation.claim = { namespace: pod.namespace, name: pod.name };
    this.o.log.info({ claim: allocation.claim, address: allocation.address, eni: allocation.eniId }, 'new VpcIPClaim for a fixed address');
    return allocation;
  }

  /** The claim has an address: here already, or to be brought here by ipamd. */
  private async claimed(pod: PodRef, details: Details, claim: VpcIpClaim, deadline: number): Promise<Allocation | Response> {
    const ref = { namespace: pod.namespace, name: pod.name };
    const who = `pod ${pod.namespace}/${pod.name}`;
    const ip = (claim.spec.ip ?? claim.status?.ip)!;
    if (claim.metadata.deletionTimestamp) return refuse('fixed-ip-unavailable', `${who}: its VpcIPClaim is being deleted; its address ${ip} is being given back`);
    const holder = this.o.store.holderOf(ip);
    if (holder && !(holder.reserved && holder.claim?.namespace === ref.namespace && holder.claim.name === ref.name)) {
      return refuse('fixed-ip-pending', `${who}: its fixed address ${ip} is still held here by ${holder.pod ? `pod ${holder.pod.namespace}/${holder.pod.name}` : `container ${holder.containerId}`}`);
    }
    // On its way to another node (a pod of the claim was waiting there): this node's view of its ENIs may
    // still show it while the cloud has moved it, so only ipamd's word that it is here again counts.
    const leaving = Boolean(claim.status?.targetNode) && claim.status?.targetNode !== this.o.nodeName;
    let asked = false;
    if (claim.status?.nodeName !== this.o.nodeName || !this.places.eniOf(ip) || leaving) {
      // Elsewhere, or on no ENI of this node: ask ipamd to bring it here; hold it from now, so that when it
      // arrives no other pod takes it.
      if (!holder) this.places.reserve(ref, ip, this.clock.now());
      this.o.save();
      if (claim.status?.targetNode !== this.o.nodeName || claim.status.targetPodUID !== (pod.uid ?? '')) {
        claim = await this.o.kube.patchClaimStatus(claim, { targetNode: this.o.nodeName, targetPodUID: pod.uid ?? '', refusedPodUID: null, message: `wanted on ${this.o.nodeName}` });
        asked = true;
        this.o.log.info({ claim: ref, address: ip, from: claim.status?.nodeName }, 'asked ipamd to bring the fixed address here');
      }
    }
    // Wait for the address to be here: on an ENI of this node, the claim saying so. A refusal of this ask
    // counts even when the claim still names this node: that may be a move away not yet recorded.
    for (;;) {
      const eni = this.places.eniOf(ip);
      const refused = claim.status?.refusedPodUID === (pod.uid ?? '') && claim.status?.targetNode !== this.o.nodeName;
      if (!(asked && refused) && claim.status?.nodeName === this.o.nodeName && eni && !claim.status.targetNode) break;
      if (refused || (claim.status?.targetNode !== this.o.nodeName && claim.status?.nodeName !== this.o.nodeName)) {
        const why = claim.status?.message || `it is held on ${claim.status?.nodeName ?? 'no node'}`;
        await this.dropReservation(ref);
        return refuse('fixed-ip-unavailable', `${who}: its fixed address ${ip} cannot come to ${this.o.nodeName}: ${why}`);
      }
      if (this.clock.now() >= deadline) {
        return refuse('fixed-ip-pending', `${who}: its fixed address ${ip} is not on ${this.o.nodeName} yet (claim ${claim.status?.phase ?? 'without phase'} on ${claim.status?.nodeName ?? 'no node'}${claim.status?.message ? `: ${claim.status.message}` : ''})`);
      }
      await new Promise((r) => setTimeout(r, this.o.pollMs ?? 100));
      claim = (await this.o.kube.getClaim(pod.namespace, pod.name)) ?? claim;
      if (claim.metadata.deletionTimestamp) return refuse('fixed-ip-unavailable', `${who}: its VpcIPClaim is being deleted`);
    }
    const eni = this.places.eniOf(ip)!;
    const reservation = this.o.store.reservation(ref);
    if (reservation) this.o.store.release(reservation.containerId, reservation.ifName, this.clock.now());
    const allocation: Allocation = { ...this.places.allocation(details, ip, eni.id), claim: ref };
    this.o.store.record(allocation);
    try {
      await this.o.kube.patchClaimStatus(claim, this.boundStatus(pod, allocation));
    } catch (err) {
      // Not bound: back to the reservation it was, for the next try.
      this.o.store.release(allocation.containerId, allocation.ifName, this.clock.now());
      this.places.reserve(ref, ip, this.clock.now());
      throw err;
    }
    this.o.log.info({ claim: ref, address: ip, eni: eni.id }, 'fixed address back with its pod');
    return allocation;
  }

  private async dropReservation(ref: { namespace: string; name: string }): Promise<void> {
    const reservation = this.o.store.reservation(ref);
    if (!reservation) return;
    this.o.store.release(reservation.containerId, reservation.ifName, this.clock.now());
    this.o.save();
  }

  /** A reservation let go: the address goes back to the cloud when it is on one of this node's ENIs. */
  private async giveBack(reservation: Allocation, why: string): Promise<void> {
    this.o.store.release(reservation.containerId, reservation.ifName, this.clock.now());
    this.o.save();
    this.o.log.info({ claim: reservation.claim, address: reservation.address }, `reserved address let go: ${why}`);
    if (this.places.eniOf(reservation.address)) await this.o.giveBack(reservation.address).catch((err: Error) => this.o.log.warn({ address: reservation.address, err: err.message }, 'giving the address back failed; the pool keeps it'));
  }
}
