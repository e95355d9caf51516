// EIPs on the node's side (seeds 001–003; the contract is in k8s/eip-claims.ts). At ADD of a pod whose
// annotations ask for an EIP, once its address is plumbed, the pod's EIPClaim says where the EIP is wanted
// (this address, this ENI, this pod); ipamd allocates or picks it and binds it; the ADD answers once it is
// bound, with the pod's address exempted from masquerade (its traffic to the internet leaves with the EIP,
// with no one editing NonMasqueradeSrcCIDRs) and eip-public-ip written on the pod. At DEL the exemption
// goes and the claim no longer wants the EIP at that address, so ipamd unbinds it.
import type { Logger } from 'pino';
import { refuse, type Response } from '../shared/protocol.ts';
import { EIP_CLAIM_FINALIZER, eipClaimSpec, type EipClaim, type EipRequest } from './k8s/eip-claims.ts';
import type { EipClaimsApi } from './k8s/eip-claims-api.ts';
import { ConflictError } from './k8s/nec.ts';

export interface EipsOptions {
  api: Pick<EipClaimsApi, 'get' | 'create' | 'patchStatus' | 'annotatePod'>;
  masq: { setExempt(address: string, exempt: boolean): Promise<void> };
  nodeName: string;
  log: Logger;
  clock?: { now(): number };
  /** the longest a waiting ADD or DEL goes between reads of its claim (default 500 ms; it starts at 50) */
  pollMs?: number;
  /** the longest a freed address is kept from other pods while its EIP is being unbound (default 5 min) */
  unbindWaitMs?: number;
}

export interface EipPod {
  namespace: string;
  name: string;
  uid?: string | undefined;
}

export class Eips {
  private readonly clock: { now(): number };

  constructor(private readonly o: EipsOptions) {
    this.clock = o.clock ?? Date;
  }

  /** Binds the pod's EIP to `address` on `eniId`; undefined once it is bound there, else a refusal saying why. */
  async bind(pod: EipPod, request: EipRequest, address: string, eniId: string, deadline: number): Promise<Response | undefined> {
    const who = `pod ${pod.namespace}/${pod.name}`;
    const want = { phase: 'Pending', privateIP: address, eniId, nodeName: this.o.nodeName, podUID: pod.uid ?? '', releasedAt: null, message: `wanted on ${address} (${eniId}, ${this.o.nodeName})` };
    let claim: EipClaim | undefined;
    try {
      claim = await this.ask(pod, request, want);
    } catch (err) {
      return refuse('eip-pending', `${who}: cannot write its EIPClaim: ${(err as Error).message}`);
    }
    if (claim.metadata.deletionTimestamp) return refuse('eip-failed', `${who}: its EIPClaim is being deleted; its EIP ${claim.status?.eipId ?? ''} is being let go`);
    for (let wait = 50; ; wait = Math.min(wait * 1.5, this.o.pollMs ?? 500)) {
      const s = claim.status ?? {};
      const ours = s.privateIP === address && s.podUID === want.podUID;
      if (ours && s.phase === 'Bound' && s.boundIP === address && s.publicIP) break;
      if (ours && s.phase === 'Failed') return refuse('eip-failed', `${who}: its EIP cannot be bound to ${address}: ${s.message ?? 'ipamd gave no reason'}`);
      if (!ours) return refuse('eip-pending', `${who}: its EIPClaim now wants the EIP for ${s.podUID === want.podUID ? s.privateIP ?? 'no address' : `another pod (uid ${s.podUID ?? 'none'})`}`);
      if (this.clock.now() >= deadline) return refuse('eip-pending', `${who}: its EIP is not bound to ${address} yet (EIPClaim ${s.phase ?? 'without phase'}${s.message ? `: ${s.message}` : ''})`);
      await new Promise((r) => setTimeout(r, wait));
      claim = (await this.o.api.get(pod.namespace, pod.name).catch(() => claim)) ?? claim;
      if (claim.metadata.deletionTimestamp) return refuse('eip-failed', `${who}: its EIPClaim is being deleted`);
    }
    const { eipId, publicIP } = claim.status!;
    await this.o.masq.setExempt(address, true);
    await this.o.api.annotatePod(pod.namespace, pod.name, publicIP!).catch((err: Error) => this.o.log.warn({ pod, eip: eipId, err: err.message }, 'could not write eip-public-ip on the pod'));
    this.o.log.info({ pod, address, eip: eipId, publicIp: publicIP }, 'EIP bound; the pod leaves with it');
    return undefined;
  }

  /**
   * The pod's address is going: no longer exempt, and its claim no longer wants the EIP there. Answers
   * `off`, which settles once ipamd has unbound the EIP from the address (or the claim is gone): until
   * then the address must go to no other pod, or that pod would get the EIP's traffic from the internet.
   */
  async unbind(pod: EipPod, address: string): Promise<{ off: Promise<void> }> {
    await this.o.masq.setExempt(address, false);
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const claim = await this.o.api.get(pod.namespace, pod.name);
        if (!claim || (claim.status?.privateIP !== address && claim.status?.boundIP !== address)) return { off: Promise.resolve() };
        if (claim.status?.privateIP === address) {
          await this.o.api.patchStatus(claim, { privateIP: null, eniId: null, phase: claim.status.phase === 'Bound' ? 'Unbinding' : claim.status.phase, message: `${address} left ${this.o.nodeName}` });
        }
        return { off: this.unboundFrom(pod, address) };
      } catch (err) {
        if (err instanceof ConflictError) continue;
        // ipamd unbinds it anyway once the Pod object is gone, or at the pod's next ADD.
        this.o.log.warn({ pod, address, err: (err as Error).message }, 'could not tell the EIPClaim that the pod let its address go');
        return { off: this.unboundFrom(pod, address) };
      }
    }
    this.o.log.warn({ pod, address }, 'the EIPClaim kept changing; ipamd unbinds the EIP once the pod is gone');
    return { off: this.unboundFrom(pod, address) };
  }

  /** Settles once the claim says its EIP is bound to `address` no more (or is gone), or after unbindWaitMs. */
  private async unboundFrom(pod: EipPod, address: string): Promise<void> {
    const deadline = this.clock.now() + (this.o.unbindWaitMs ?? 300_000);
    for (let wait = 50; this.clock.now() < deadline; wait = Math.min(wait * 1.5, 1000)) {
      const claim = await this.o.api.get(pod.namespace, pod.name).catch(() => 'unknown' as const);
      if (claim === undefined || (claim !== 'unknown' && claim.status?.boundIP !== address)) return;
      await new Promise((r) => setTimeout(r, wait));
    }
    this.o.log.warn({ pod, address }, `the EIP of pod ${pod.namespace}/${pod.name} is still bound to ${address}; the address goes back to the pool anyway`);
  }

  /** Exempts again, after a restart, the addresses of pods that have their EIP. */
  async restore(addresses: string[]): Promise<void> {
    for (const address of addresses) await this.o.masq.setExempt(address, true);
  }

  /** The claim, made or changed so that it wants the EIP where `want` says. */
  private async ask(pod: EipPod, request: EipRequest, want: Record<string, unknown>): Promise<EipClaim> {
    for (let attempt = 0; ; attempt++) {
      try {
        const claim = await this.o.api.get(pod.namespace, pod.name);
        if (!claim) {
          return await this.o.api.create({ metadata: { name: pod.name, namespace: pod.namespace, finalizers: [EIP_CLAIM_FINALIZER] }, spec: eipClaimSpec(request), status: want });
        }
        if (claim.metadata.deletionTimestamp) return claim;
        const s = claim.status ?? {};
        if (s.privateIP === want.privateIP && s.podUID === want.podUID && s.eniId === want.eniId && s.phase !== 'Failed' && !s.releasedAt) return claim;
        return await this.o.api.patchStatus(claim, want);
      } catch (err) {
        if (err instanceof ConflictError && attempt < 3) continue;
        throw err;
      }
    }
  }
}
