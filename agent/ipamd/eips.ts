// ipamd's part of EIPs per pod (the contract is in ../k8s/eip-claims.ts), one EIPClaim at a time, making
// the cloud match what the claim wants:
//   - wanted at an address (status.privateIP/eniId, written by the pod's agent at ADD): the claim's EIP —
//     the user's from eip-id-list (spec.eipId), or one ipamd allocates with the pod's attributes, tagged
//     with the claim's uid and found by that tag before any new one is made — is bound there. An EIP the
//     claim did not bind (status.boundIP) that is bound elsewhere belongs to another pod: the claim fails
//     with a message and a pod event, and that EIP stays where it is;
//   - wanted nowhere (the pod's DEL), or the Pod object gone: the EIP is unbound from where this claim bound
//     it; a pod gone with Immediate has its claim deleted, one with Never keeps its EIP (Released) until
//     --claim-expired-duration has passed;
//   - a claim being deleted (its pod gone, `kubectl delete eipc`, its workload with --enable-ownerref): its
//     EIP is unbound, released when ipamd made it (never a user's), and the finalizer goes.
// Every intent is written to the claim before the cloud is asked, so a crash or a lost answer at any point
// is finished, not repeated, by the next look.
import * as k8s from '@kubernetes/client-node';
import { CRD_GROUP, CRD_VERSION } from '../../shared/tke.ts';
import { EIP_BOUND, EIP_CHANGING, type EipCloud, type PublicIp } from '../cloud/cloud.ts';
import { CLAIM_SEEN_ANNOTATION } from '../k8s/claims.ts';
import { EIP_CLAIM_FINALIZER, EIP_CLAIM_PLURAL, EIP_CLAIM_TAG, EIP_CLUSTER_TAG, type EipClaim } from '../k8s/eip-claims.ts';
import type { Budget } from './budget.ts';
import { ClaimObjects } from './claim-objects.ts';
import type { PodWatch } from './pod-watch.ts';
import { WorkQueue } from './queue.ts';

export interface EipsOptions {
  kc: k8s.KubeConfig;
  pods: PodWatch;
  cloud: EipCloud;
  budget: Budget;
  /** the cluster, as the tag on every EIP made names it */
  clusterId: () => Promise<string>;
  expiryMs: number;
  enableOwnerref: boolean;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  clock?: { now(): number };
}

type ClaimObj = EipClaim & k8s.KubernetesObject;

/** How long before a failed claim is looked at again (the pod's next ADD looks sooner). */
const RETRY_MS = 5000;
/** Cloud errors no retry mends: the claim fails (its pod's ADD is refused, with the reason). Others are retried. */
const FINAL = /^(AddressQuotaLimitExceeded|InvalidAddressId|InvalidParameter|InvalidPrivateIpAddress|LimitExceeded|OperationDenied\.AddressInArrears|UnsupportedOperation\.(AddressStatusNotPermit|IncorrectAddressResourceType))/;

/** The EIP is on its way somewhere (being made, bound, unbound): look again in a moment. */
class Later extends Error {
  constructor(readonly ms: number, message: string) {
    super(message);
  }
}

export class EipController {
  private readonly custom: k8s.CustomObjectsApi;
  private readonly objects: ClaimObjects<ClaimObj>;
  private readonly queue: WorkQueue;
  private informer?: k8s.Informer<ClaimObj> & k8s.ObjectCache<ClaimObj>;
  private readonly clock: { now(): number };
  private stopped = false;

  constructor(private readonly o: EipsOptions) {
    this.custom = o.kc.makeApiClient(k8s.CustomObjectsApi);
    this.objects = new ClaimObjects<ClaimObj>(this.custom, EIP_CLAIM_PLURAL, 'EIPClaim', o.log);
    this.clock = o.clock ?? Date;
    this.queue = new WorkQueue((key) => this.sync(key), 4, (level, message) => o.log(level, message));
  }

  async start(): Promise<void> {
    this.stopped = false;
    const informer = k8s.makeInformer<ClaimObj>(this.o.kc, `/apis/${CRD_GROUP}/${CRD_VERSION}/${EIP_CLAIM_PLURAL}`, () => this.custom.listCustomObjectForAllNamespaces({ group: CRD_GROUP, version: CRD_VERSION, plural: EIP_CLAIM_PLURAL }) as Promise<k8s.KubernetesListObject<ClaimObj>>);
    const key = (o: { metadata?: { namespace?: string; name?: string } }) => `${o.metadata?.namespace}/${o.metadata?.name}`;
    for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, (c) => this.queue.add(key(c)));
    this.o.pods.on((p) => this.informer?.get(p.metadata!.name!, p.metadata!.namespace) && this.queue.add(key(p)));
    informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.o.log('warn', `kubernetes: the EIPClaim informer failed (${(err as Error)?.message ?? err}); restarting in 2 s`);
      setTimeout(() => void informer.start().catch(() => undefined), 2000);
    });
    this.informer = informer;
    // The pods first: a claim looked at before its pod is known would be taken for one whose pod is gone.
    await this.o.pods.start();
    await informer.start();
    for (const c of informer.list()) this.queue.add(key(c));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.queue.stop();
    await this.informer?.stop();
  }

  private async sync(key: string): Promise<number | undefined> {
    const [namespace, name] = key.split('/') as [string, string];
    const claim = this.informer?.get(name, namespace);
    if (!claim) return undefined;
    try {
      return await this.syncClaim(claim);
    } catch (err) {
      // Written meanwhile (its agent, the user): the informer brings the new version; look again soon.
      if ((err as { code?: number }).code === 409) return 300;
      // Gone meanwhile (its finalizer removed): nothing left to do.
      if ((err as { code?: number }).code === 404) return undefined;
      if (err instanceof Later) return err.ms;
      const code = (err as { code?: unknown }).code;
      const message = (err as Error).message;
      if (typeof code === 'string' && FINAL.test(code)) await this.fail(claim, message).catch(() => undefined);
      else await this.note(claim, `${message} (trying again)`).catch(() => undefined);
      return RETRY_MS;
    }
  }

  private async syncClaim(claim: ClaimObj): Promise<number | undefined> {
    const { namespace, name } = claim.metadata;
    if (claim.metadata.deletionTimestamp) return this.end(claim);
    if (!claim.metadata.annotations?.[CLAIM_SEEN_ANNOTATION]) {
      const owner = this.o.pods.get(namespace, name)?.metadata?.ownerReferences?.find((r) => r.controller);
      await this.objects.firstSight(claim, this.o.enableOwnerref ? owner : undefined);
      return undefined;
    }
    const s = claim.status ?? {};
    if (!(await this.o.pods.exists(namespace, name))) {
      if (claim.spec.deletePolicy !== 'Never') {
        await this.objects.delete(claim, `its pod is gone (EIP ${s.eipId ?? 'none'})`);
        return undefined;
      }
      if (s.boundIP || s.privateIP || !s.releasedAt) {
        claim = await this.unbound(claim, { phase: 'Released', privateIP: null, eniId: null, releasedAt: s.releasedAt ?? new Date(this.clock.now()).toISOString(), message: `pod gone; EIP ${s.eipId ?? ''} kept for the next pod of this name` });
      }
      if (this.o.expiryMs <= 0) return undefined;
      const left = Date.parse(claim.status!.releasedAt!) + this.o.expiryMs - this.clock.now();
      if (left > 0) return left + 100;
      await this.objects.delete(claim, `its pod has been gone for ${this.o.expiryMs / 1000} s (--claim-expired-duration)`);
      return undefined;
    }
    // Failed for what its pod asked: tried again when the pod asks again (its next ADD writes Pending), not
    // on every change of the claim — each try may be a cloud call the cluster's budget pays for.
    if (s.phase === 'Failed') return undefined;
    if (!s.privateIP || !s.eniId) {
      if (s.boundIP) await this.unbound(claim, { phase: 'Pending', message: 'waiting for the pod to have an address' });
      return undefined;
    }
    return this.bind(claim, s.privateIP, s.eniId);
  }

  /** The claim's EIP bound to `privateIp` on `eniId`: found or made, unbound from an older address of this claim first. */
  private async bind(claim: ClaimObj, privateIp: string, eniId: string): Promise<number | undefined> {
    const who = `pod ${claim.metadata.namespace}/${claim.metadata.name}`;
    let eip = await this.eipOf(claim);
    if (!eip) {
      if (claim.spec.eipId) return this.fail(claim, `EIP ${claim.spec.eipId} (eip-id-list) does not exist`, 'EIPUnavailable');
      claim = await this.objects.patchStatus(claim, { phase: 'Allocating', message: `allocating an EIP of ${claim.spec.bandwidth ?? 100} Mbps on ${claim.spec.isp ?? 'BGP'}` });
      const tags = { [EIP_CLAIM_TAG]: claim.metadata.uid!, [EIP_CLUSTER_TAG]: await this.o.clusterId() };
      const made = await this.o.budget.as(claim.status?.nodeName ?? '', 'pod', () =>
        this.o.cloud.allocateEip({ bandwidth: claim.spec.bandwidth ?? 100, isp: claim.spec.isp ?? 'BGP', name: `${claim.metadata.namespace}/${claim.metadata.name}`, tags, clientToken: claim.metadata.uid! }),
      );
      this.o.log('info', `EIPClaim ${claim.metadata.namespace}/${claim.metadata.name}: allocated ${made.id} (${made.address})`);
      claim = await this.objects.patchStatus(claim, { eipId: made.id, publicIP: made.address, message: `allocated ${made.id}` });
      eip = made;
    }
    const s = claim.status ?? {};
    if (EIP_BOUND.includes(eip.status) && eip.eniId === eniId && eip.privateIp === privateIp) {
      if (s.phase !== 'Bound' || s.boundIP !== privateIp || s.publicIP !== eip.address || s.eipId !== eip.id || s.releasedAt) {
        await this.objects.patchStatus(claim, { phase: 'Bound', eipId: eip.id, publicIP: eip.address, boundIP: privateIp, releasedAt: null, message: `bound to ${privateIp} (${eniId})` });
      }
      return undefined;
    }
    if (EIP_CHANGING.includes(eip.status)) return 1000;
    if (EIP_BOUND.includes(eip.status)) {
      // Bound where this claim did not bind it: another pod's (eip-id-list shared), or the user's own use.
      if (!s.boundIP || eip.privateIp !== s.boundIP) return this.fail(claim, `EIP ${eip.id} is bound to ${eip.privateIp ?? 'something else'}${eip.eniId ? ` on ${eip.eniId}` : ''}, by another pod or outside the cluster; ${who} cannot have it`, 'EIPUnavailable');
      // This claim's, at the pod's older address: unbound from there first, the claim saying so throughout.
      claim = await this.unbound(claim, { phase: 'Pending', message: `moving ${eip.id} to ${privateIp}` });
      return 0;
    }
    // Intent first: if the pod's address changes meanwhile, the write fails and nothing is bound; once
    // written, a crash leaves boundIP saying where the EIP may be, to be unbound from there.
    claim = await this.objects.patchStatus(claim, { phase: 'Binding', eipId: eip.id, publicIP: eip.address, boundIP: privateIp, message: `binding ${eip.id} to ${privateIp} (${eniId})` });
    await this.o.budget.as(claim.status?.nodeName ?? '', 'pod', () => this.o.cloud.associateEip(eip.id, eniId, privateIp));
    await this.objects.patchStatus(claim, { phase: 'Bound', releasedAt: null, message: `bound to ${privateIp} (${eniId})` });
    this.o.log('info', `EIPClaim ${claim.metadata.namespace}/${claim.metadata.name}: ${eip.id} (${eip.address}) bound to ${privateIp} on ${eniId}`);
    return undefined;
  }

  /** The EIP unbound from where this claim bound it; the claim's status patched with `status`. */
  private async unbound(claim: ClaimObj, status: Record<string, unknown>): Promise<ClaimObj> {
    const s = claim.status ?? {};
    const eip = s.eipId ? await this.o.cloud.eip(s.eipId) : undefined;
    if (eip && s.boundIP && eip.privateIp === s.boundIP) {
      if (EIP_CHANGING.includes(eip.status)) throw new Later(1000, `${eip.id} is ${eip.status}`);
      claim = await this.objects.patchStatus(claim, { phase: 'Unbinding', message: `unbinding ${eip.id} from ${eip.privateIp}` });
      await this.o.budget.as(s.nodeName ?? '', 'release', () => this.o.cloud.disassociateEip(eip.id));
      this.o.log('info', `EIPClaim ${claim.metadata.namespace}/${claim.metadata.name}: ${eip.id} unbound from ${eip.privateIp}`);
    }
    return this.objects.patchStatus(claim, { boundIP: null, ...status });
  }

  /** A claim being deleted: its EIP unbound, released when the cluster made it, then its finalizer goes. */
  private async end(claim: ClaimObj): Promise<undefined> {
    const s = claim.status ?? {};
    if (!claim.metadata.finalizers?.includes(EIP_CLAIM_FINALIZER)) return undefined;
    const listed = claim.spec.eipId ? await this.o.cloud.eip(claim.spec.eipId) : undefined;
    // Every EIP made for this claim (one, unless a tag lagged behind a retried allocation), and the user's.
    const made = claim.spec.eipId ? [] : await this.o.cloud.eipsTagged(EIP_CLAIM_TAG, claim.metadata.uid!);
    for (const eip of [...(listed ? [listed] : []), ...made]) {
      const ours = made.includes(eip);
      if (EIP_CHANGING.includes(eip.status)) throw new Later(1000, `${eip.id} is ${eip.status}`);
      await this.o.budget.as(s.nodeName ?? '', 'release', async () => {
        if (EIP_BOUND.includes(eip.status) && (ours || eip.privateIp === s.boundIP)) await this.o.cloud.disassociateEip(eip.id);
        if (ours) await this.o.cloud.releaseEip(eip.id);
      });
      this.o.log('info', `EIPClaim ${claim.metadata.namespace}/${claim.metadata.name} is going: ${eip.id} ${ours ? 'released' : 'unbound and left to its owner'}`);
    }
    await this.objects.removeFinalizer(claim, EIP_CLAIM_FINALIZER);
    return undefined;
  }

  /** The claim's EIP as the cloud has it: the one it names, else the user's from the list, else the one tagged for it. */
  private async eipOf(claim: ClaimObj): Promise<PublicIp | undefined> {
    const id = claim.status?.eipId ?? claim.spec.eipId;
    if (id) {
      const eip = await this.o.cloud.eip(id);
      if (eip || claim.spec.eipId) return eip;
    }
    const tagged = await this.o.cloud.eipsTagged(EIP_CLAIM_TAG, claim.metadata.uid!);
    return tagged[0];
  }

  /**
   * Writes what went wrong on the claim as it is now — unless the pod has since asked for something else
   * (another address, another pod of the name): that is looked at anew, not failed for the old.
   */
  private async latest(claim: ClaimObj): Promise<ClaimObj | undefined> {
    const current = this.informer?.get(claim.metadata.name, claim.metadata.namespace) ?? claim;
    const want = (c: ClaimObj) => `${c.status?.privateIP ?? ''}/${c.status?.podUID ?? ''}`;
    return want(current) === want(claim) ? current : undefined;
  }

  /** A cloud error a retry may mend: said on the claim, phase unchanged. */
  private async note(claim: ClaimObj, message: string): Promise<void> {
    this.o.log('warn', `EIPClaim ${claim.metadata.namespace}/${claim.metadata.name}: ${message}`);
    const current = await this.latest(claim);
    if (current && current.status?.message !== message) await this.objects.patchStatus(current, { message });
  }

  private async fail(claim: ClaimObj, message: string, reason = 'EIPFailed'): Promise<number> {
    this.o.log('warn', `EIPClaim ${claim.metadata.namespace}/${claim.metadata.name}: ${message}`);
    const current = await this.latest(claim);
    if (current && (current.status?.phase !== 'Failed' || current.status.message !== message)) {
      await this.objects.patchStatus(current, { phase: 'Failed', message });
      await this.o.pods.event(claim.metadata.namespace, claim.metadata.name, reason, message);
    }
    return RETRY_MS;
  }
}
