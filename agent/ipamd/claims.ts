// ipamd's part of fixed pod IPs (the contract is in ../k8s/claims.ts), one claim at a time:
//   - the ledger: a VpcIP per claimed address, pointing at its claim, saying where the address is and
//     whether it is on its way (Attaching, with the cloud's error); VpcIPs of claims gone are deleted;
//   - a claim's pod gone (the Pod object, not one CNI DEL): a ledger claim (Immediate) is deleted, a Never
//     claim records when (status.releasedAt) and is deleted once --claim-expired-duration has passed;
//   - --enable-ownerref: a claim ipamd sees for the first time is given its pod's workload as owner, so that
//     deleting the workload deletes the claim (claims seen before are left alone, as the seed says);
//   - a pod of a Never claim waiting on a node where its address is not (status.targetNode): once no pod
//     holds the address (Released), it is moved with MigratePrivateIpAddress to an ENI of that node in the
//     claim's subnet, or assigned there by address when it is on no ENI; a node without an ENI in that
//     subnet gets one first; a node in another zone, or an address now held outside the cluster's ENIs,
//     gets a clear message on the claim and an event on the pod instead;
//   - a whole-ENI pod's claim (networkMode tke-direct-eni): its address is its ENI's primary one, so the
//     whole ENI follows the pod, moved with MigrateNetworkInterface to the target node;
//   - a claim being deleted whose node is gone: its finalizer goes (the holder's agent removes it otherwise).
import * as k8s from '@kubernetes/client-node';
import { CRD_GROUP, CRD_VERSION, NETWORK_MODES } from '../../shared/tke.ts';
import { isDirectEni, OWNER_TAG, type Cloud } from '../cloud/cloud.ts';
import { CLAIM_FINALIZER, CLAIM_NODE_LABEL, CLAIM_PLURAL, CLAIM_SEEN_ANNOTATION, VPCIP_PLURAL, type VpcIp, type VpcIpClaim } from '../k8s/claims.ts';
import type { Nec } from '../k8s/nec.ts';
import type { Budget } from './budget.ts';
import { ClaimObjects } from './claim-objects.ts';
import type { PodWatch } from './pod-watch.ts';
import { WorkQueue } from './queue.ts';

export interface ClaimsOptions {
  kc: k8s.KubeConfig;
  pods: PodWatch;
  cloud: Pick<Cloud, 'migrateIp' | 'migrateEni' | 'findAddress' | 'assignAddress'>;
  budget: Budget;
  nec: (node: string) => Nec | undefined;
  /** the zone of each subnet ipamd knows */
  subnetZone: (subnetId: string) => Promise<string | undefined>;
  nodeExists: (node: string) => boolean;
  /** asks for a node's ENIs to be read again (after an address moved on or off them) */
  nodeChanged: (node: string) => void;
  /** asks for an ENI in a subnet on a node (a fixed IP of that subnet is coming to it) */
  needEni: (node: string, subnetId: string) => void;
  expiryMs: number;
  enableOwnerref: boolean;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  clock?: { now(): number };
}

type ClaimObj = VpcIpClaim & k8s.KubernetesObject;
type VpcIpObj = VpcIp & k8s.KubernetesObject;
const API = { group: CRD_GROUP, version: CRD_VERSION };
const MERGE = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

export class ClaimsController {
  private readonly custom: k8s.CustomObjectsApi;
  private readonly objects: ClaimObjects<ClaimObj>;
  private readonly queue: WorkQueue;
  private readonly informers: Array<k8s.Informer<k8s.KubernetesObject>> = [];
  private claims?: k8s.ObjectCache<ClaimObj>;
  private vpcips?: k8s.ObjectCache<VpcIpObj>;
  private readonly clock: { now(): number };
  private stopped = false;

  constructor(private readonly o: ClaimsOptions) {
    this.custom = o.kc.makeApiClient(k8s.CustomObjectsApi);
    this.objects = new ClaimObjects<ClaimObj>(this.custom, CLAIM_PLURAL, 'VpcIPClaim', o.log);
    this.clock = o.clock ?? Date;
    this.queue = new WorkQueue((key) => this.sync(key), 4, (level, message) => o.log(level, message));
  }

  async start(): Promise<void> {
    const claims = k8s.makeInformer<ClaimObj>(this.o.kc, `/apis/${CRD_GROUP}/${CRD_VERSION}/${CLAIM_PLURAL}`, () => this.custom.listCustomObjectForAllNamespaces({ ...API, plural: CLAIM_PLURAL }) as Promise<k8s.KubernetesListObject<ClaimObj>>);
    const vpcips = k8s.makeInformer<VpcIpObj>(this.o.kc, `/apis/${CRD_GROUP}/${CRD_VERSION}/${VPCIP_PLURAL}`, () => this.custom.listClusterCustomObject({ ...API, plural: VPCIP_PLURAL }) as Promise<k8s.KubernetesListObject<VpcIpObj>>);
    const key = (o: { metadata?: { namespace?: string; name?: string } }) => `${o.metadata?.namespace}/${o.metadata?.name}`;
    // A pod's coming and going decides its claim's fate: the claim of its name is looked at again.
    this.o.pods.on((p) => this.claims?.get(p.metadata!.name!, p.metadata!.namespace) && this.queue.add(key(p)));
    for (const verb of ['add', 'update', 'delete'] as const) {
      claims.on(verb, (c) => this.queue.add(key(c)));
      vpcips.on(verb, (v) => {
        const ref = v.spec?.claimRef;
        if (ref) this.queue.add(`${ref.namespace}/${ref.name}`);
      });
    }
    for (const [name, informer] of [['claims', claims], ['vpcips', vpcips]] as const) {
      informer.on('error', (err: unknown) => {
        if (this.stopped) return;
        this.o.log('warn', `kubernetes: the ${name} informer failed (${(err as Error)?.message ?? err}); restarting in 2 s`);
        setTimeout(() => void informer.start().catch(() => undefined), 2000);
      });
      this.informers.push(informer as unknown as k8s.Informer<k8s.KubernetesObject>);
    }
    this.claims = claims;
    this.vpcips = vpcips;
    // The pods first: a claim looked at before its pod is known would be taken for one whose pod is gone.
    await this.o.pods.start();
    await Promise.all([claims.start(), vpcips.start()]);
    for (const c of claims.list()) this.queue.add(key(c));
    for (const v of vpcips.list()) if (v.spec?.claimRef) this.queue.add(`${v.spec.claimRef.namespace}/${v.spec.claimRef.name}`);
  }

  /** Whether a live Never claim holds `address` on `node`: its pod there, or the address on its way there. */
  holds(node: string, address: string): boolean {
    return (this.claims?.list() ?? []).some((c) => c.spec.deletePolicy === 'Never' && !c.metadata.deletionTimestamp && (c.spec.ip ?? c.status?.ip) === address && (c.status?.nodeName === node || c.status?.targetNode === node));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.queue.stop();
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  /** One claim (by namespace/name): returns when to look again, if it must be. */
  private async sync(key: string): Promise<number | undefined> {
    try {
      return await this.syncClaim(key);
    } catch (err) {
      // Written meanwhile (its agent, the user): the informer brings the new version; look again soon.
      if ((err as { code?: number }).code === 409) return 300;
      throw err;
    }
  }

  private async syncClaim(key: string): Promise<number | undefined> {
    const [namespace, name] = key.split('/') as [string, string];
    const claim = this.claims?.get(name, namespace);
    await this.ledger(namespace, name, claim);
    if (!claim) return undefined;
    if (claim.metadata.deletionTimestamp) {
      const node = claim.metadata.labels?.[CLAIM_NODE_LABEL];
      // No node to hand the address back: nothing holds it here any more.
      if (!node || !this.o.nodeExists(node)) await this.objects.removeFinalizer(claim, CLAIM_FINALIZER);
      return undefined;
    }
    if (!claim.metadata.annotations?.[CLAIM_SEEN_ANNOTATION]) {
      const owner = this.o.pods.get(namespace, name)?.metadata?.ownerReferences?.find((r) => r.controller);
      await this.objects.firstSight(claim, this.o.enableOwnerref ? owner : undefined);
      return undefined;
    }
    const pod = this.o.pods.get(namespace, name);
    // The Pod object gone (not one CNI DEL, not a new pod of the name waiting to be bound).
    if (claim.status?.podUID && !pod && !(await this.o.pods.exists(namespace, name))) {
      if (claim.spec.deletePolicy !== 'Never') return this.deleteClaim(claim, 'its pod is gone');
      if (!claim.status?.releasedAt) {
        await this.patchStatus(claim, { releasedAt: new Date(this.clock.now()).toISOString() });
        return undefined;
      }
    }
    if (claim.spec.deletePolicy === 'Never' && !pod && claim.status?.releasedAt && this.o.expiryMs > 0) {
      const left = Date.parse(claim.status.releasedAt) + this.o.expiryMs - this.clock.now();
      if (left <= 0) {
        if (!(await this.o.pods.exists(namespace, name))) return this.deleteClaim(claim, `its pod has been gone for ${this.o.expiryMs / 1000} s (--claim-expired-duration)`);
        return 1000; // a pod of the name is back, and the cache is behind the API server: look again soon
      }
      if (!claim.status.targetNode) return left + 100;
    }
    const target = claim.status?.targetNode;
    if (target) return this.move(claim, target);
    return undefined;
  }

  /** The VpcIP of a claim's address, as the claim says; the VpcIPs of a claim that is gone are deleted. */
  private async ledger(namespace: string, name: string, claim: ClaimObj | undefined): Promise<void> {
    const ip = claim ? (claim.spec.ip ?? claim.status?.ip) : undefined;
    const mine = (this.vpcips?.list() ?? []).filter((v) => v.spec?.claimRef?.namespace === namespace && v.spec.claimRef.name === name);
    for (const v of mine) {
      if (v.metadata?.name === ip && v.spec.claimRef?.uid === claim?.metadata.uid) continue;
      await this.custom.deleteClusterCustomObject({ ...API, plural: VPCIP_PLURAL, name: v.metadata!.name! }).catch((err: { code?: number }) => {
        if (err.code !== 404) throw err;
      });
    }
    if (!claim || !ip || claim.metadata.deletionTimestamp) return;
    const s = claim.status ?? {};
    const phase = s.targetNode ? 'Attaching' : s.phase === 'Bound' || s.phase === 'Released' ? 'Attached' : 'Attaching';
    const want: VpcIp = {
      apiVersion: `${CRD_GROUP}/${CRD_VERSION}`,
      kind: 'VpcIP',
      metadata: { name: ip },
      spec: { ip, subnetId: claim.spec.subnetId ?? s.subnetId ?? '', claimRef: { namespace, name, uid: claim.metadata.uid! } },
      // Fields not known are left out (null, in a merge patch): an empty ENI id is not an ENI id.
      status: { phase, nodeName: s.nodeName || null, eniId: s.eniId || null, instanceId: this.o.nec(s.nodeName ?? '')?.spec?.instanceId || null, message: s.message ?? '' } as unknown as VpcIp['status'],
    };
    const have = this.vpcips?.get(ip);
    if (!have) {
      const made = (await this.custom.createClusterCustomObject({ ...API, plural: VPCIP_PLURAL, body: want }).catch((err: { code?: number }) => {
        if (err.code === 409) return undefined;
        throw err;
      })) as VpcIpObj | undefined;
      if (made) await this.custom.patchClusterCustomObjectStatus({ ...API, plural: VPCIP_PLURAL, name: ip, body: { status: want.status } }, MERGE);
      return;
    }
    const known = (o: object) => JSON.stringify(Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined).sort(([a], [b]) => a.localeCompare(b))));
    if (known(have.status ?? {}) !== known(want.status ?? {})) {
      await this.custom.patchClusterCustomObjectStatus({ ...API, plural: VPCIP_PLURAL, name: ip, body: { status: want.status } }, MERGE);
    }
  }

  /**
   * Brings a Never claim's address to the node where its pod waits: only once no pod holds it (Released),
   * onto an ENI of that node in the claim's subnet, by MigratePrivateIpAddress from the ENI of the cluster
   * holding it, or by address when no ENI holds it. Crash-safe: the cloud says where the address is, so a
   * move cut short is finished, not made twice, and an address some other ENI holds is never taken.
   */
  private async move(claim: ClaimObj, target: string): Promise<number | undefined> {
    const ip = (claim.spec.ip ?? claim.status?.ip)!;
    const subnetId = claim.spec.subnetId ?? claim.status?.subnetId ?? '';
    const from = claim.status?.nodeName ?? '';
    const who = `VpcIPClaim ${claim.metadata.namespace}/${claim.metadata.name}`;
    const targetNec = this.o.nec(target);
    if (!targetNec?.spec?.instanceId) return this.refuseMove(claim, target, `node ${target} has no NodeENIConfig yet`);
    const zone = await this.o.subnetZone(subnetId);
    if (zone && targetNec.spec.zone && zone !== targetNec.spec.zone) {
      return this.refuseMove(claim, target, `address ${ip} is in subnet ${subnetId} of zone ${zone}; node ${target} is in zone ${targetNec.spec.zone}, and a fixed IP never changes subnet`);
    }
    if (claim.status?.phase === 'Bound') {
      // A pod still holds it: never moved from under a pod. Its DEL marks the claim Released.
      await this.patchStatus(claim, { message: `waiting for pod ${claim.metadata.namespace}/${claim.metadata.name} on ${from} to let ${ip} go` });
      return 2000;
    }
    if (claim.spec.networkMode === NETWORK_MODES.directEni) return this.moveWholeEni(claim, target, targetNec.spec.instanceId);
    const destination = (targetNec.status?.ipamd?.enis ?? []).find((e) => e.subnetId === subnetId && e.ips.length < Math.max(0, (targetNec.spec?.quota?.ipsPerEni ?? 0) - 1));
    const found = await this.o.budget.as(target, 'pod', () => this.o.cloud.findAddress(subnetId, ip));
    if (!destination) {
      if (found?.eni.attachedTo === targetNec.spec.instanceId) return this.arrived(claim, target, found.eni.id, from);
      this.o.needEni(target, subnetId);
      this.o.nodeChanged(target);
      await this.patchStatus(claim, { message: `opening an ENI in subnet ${subnetId} on node ${target} for ${ip}` });
      return 2000;
    }
    if (found && !found.ready) {
      await this.patchStatus(claim, { message: `${ip} is still changing on ${found.eni.id}` });
      return 1000;
    }
    if (found?.eni.attachedTo === targetNec.spec.instanceId) return this.arrived(claim, target, found.eni.id, from);
    const fromInstance = from ? this.o.nec(from)?.spec?.instanceId : undefined;
    const ours = found && found.eni.attachedTo && found.eni.attachedTo === fromInstance && found.eni.tags[OWNER_TAG] === fromInstance;
    if (found && !ours) {
      // Not on an ENI the cluster made for the claim's node: someone else's now, never taken from them.
      return this.refuseMove(claim, target, `address ${ip} is held by ${found.eni.id}${found.eni.attachedTo ? ` of ${found.eni.attachedTo}` : ''}, not by an ENI of node ${from || target}: it was taken while its pod was away`);
    }
    const [how, done] = found
      ? [`moving ${ip} from ${found.eni.id} (${from}) to ${destination.eniId} (${target})`, 'moved']
      : [`assigning ${ip} to ${destination.eniId} (${target}), as no ENI holds it`, 'assigned'];
    claim = await this.patchStatus(claim, { phase: 'Pending', message: how });
    try {
      await this.o.budget.as(target, 'pod', () => (found ? this.o.cloud.migrateIp(found.eni.id, destination.eniId, ip) : this.o.cloud.assignAddress(destination.eniId, ip)));
    } catch (err) {
      await this.patchStatus(claim, { message: `${how} failed: ${(err as Error).message}` });
      await this.podEvent(claim, 'FixedIPMoveFailed', `${how} failed: ${(err as Error).message}`);
      // Whatever happened, the cloud is asked again where the address is before anything more is done.
      return 5000;
    }
    // The call's end is not the cloud's word: a retry that found the address gone from the source, or an
    // answer for a move that was undone, must not tell the pod its address is here. Ask where it is.
    const landed = await this.o.budget.as(target, 'pod', () => this.o.cloud.findAddress(subnetId, ip));
    if (landed?.eni.id !== destination.eniId || !landed.ready) {
      await this.patchStatus(claim, { message: `${how}: the cloud shows it ${landed ? `on ${landed.eni.id}${landed.ready ? '' : ', still changing'}` : 'on no ENI'}; looking again` });
      return 1000;
    }
    this.o.log('info', `${who}: ${done} ${ip} to ${destination.eniId} (${target})`);
    return this.arrived(claim, target, destination.eniId, from);
  }

  /** A whole-ENI pod's address: its ENI, wherever in the cluster it is, moved whole to the target node. */
  private async moveWholeEni(claim: ClaimObj, target: string, targetInstance: string): Promise<number | undefined> {
    const ip = (claim.spec.ip ?? claim.status?.ip)!;
    const subnetId = claim.spec.subnetId ?? claim.status?.subnetId ?? '';
    const from = claim.status?.nodeName ?? '';
    const found = await this.o.budget.as(target, 'pod', () => this.o.cloud.findAddress(subnetId, ip));
    if (!found) return this.refuseMove(claim, target, `no ENI holds ${ip} any more: the whole ENI of the claim is gone`);
    const eni = found.eni;
    if (eni.attachedTo === targetInstance && eni.state === 'AVAILABLE') return this.arrived(claim, target, eni.id, from);
    if (!found.ready || eni.state !== 'AVAILABLE') {
      await this.patchStatus(claim, { message: `${eni.id} of ${ip} is still changing (${eni.state})` });
      return 1000;
    }
    // Only a whole ENI the cluster made, attached to one of its nodes: never someone else's.
    if (!isDirectEni(eni) || eni.primaryIp !== ip || !eni.tags[OWNER_TAG] || !eni.attachedTo) {
      return this.refuseMove(claim, target, `address ${ip} is held by ${eni.id}${eni.attachedTo ? ` of ${eni.attachedTo}` : ''}, not by a whole ENI of the cluster: it was taken while its pod was away`);
    }
    const how = `moving the whole ENI ${eni.id} (${ip}) from ${eni.attachedTo} to ${target} (${targetInstance})`;
    claim = await this.patchStatus(claim, { phase: 'Pending', message: how });
    try {
      await this.o.budget.as(target, 'pod', () => this.o.cloud.migrateEni(eni.id, eni.attachedTo!, targetInstance));
    } catch (err) {
      await this.patchStatus(claim, { message: `${how} failed: ${(err as Error).message}` });
      await this.podEvent(claim, 'FixedIPMoveFailed', `${how} failed: ${(err as Error).message}`);
      return 5000;
    }
    if (from) this.o.nodeChanged(from);
    const landed = await this.o.budget.as(target, 'pod', () => this.o.cloud.findAddress(subnetId, ip));
    if (landed?.eni.attachedTo !== targetInstance || landed.eni.state !== 'AVAILABLE') return 1000;
    this.o.log('info', `VpcIPClaim ${claim.metadata.namespace}/${claim.metadata.name}: moved the whole ENI ${eni.id} (${ip}) to ${target}`);
    return this.arrived(claim, target, eni.id, from);
  }

  /**
   * The address is on `eniId` of the target node: the claim says so, and both nodes read their ENIs again.
   * Written however the claim changed during the move — an agent may have asked for the address elsewhere
   * meanwhile, and that ask is kept for the next round — since a claim naming the node the address left
   * would have it taken for someone else's; unless no move is asked any more (recorded already).
   */
  private async arrived(claim: ClaimObj, target: string, eniId: string, from: string): Promise<undefined> {
    for (let attempt = 1; ; attempt++) {
      const wanted = claim.status?.targetNode;
      const elsewhere = Boolean(wanted) && wanted !== target;
      try {
        const labelled = await this.objects.patch(claim, { metadata: { labels: { [CLAIM_NODE_LABEL]: target } } });
        await this.patchStatus(labelled, {
          phase: 'Released',
          nodeName: target,
          eniId,
          ...(elsewhere ? { message: `on ${target}, wanted on ${wanted}` } : { targetNode: null, targetPodUID: null, message: `on ${target}, waiting for its pod` }),
        });
        break;
      } catch (err) {
        const latest = (err as { code?: number }).code === 409 && attempt < 5 ? await this.objects.get(claim) : undefined;
        if (!latest) throw err;
        // No move asked any more: the arrival is recorded already (its pod may hold the address by now,
        // Bound), or the ask was withdrawn; this look was at a claim gone stale, and writes nothing.
        if (!latest.status?.targetNode) return undefined;
        claim = latest;
      }
    }
    if (from && from !== target) this.o.nodeChanged(from);
    this.o.nodeChanged(target);
    return undefined;
  }

  private async refuseMove(claim: ClaimObj, target: string, why: string): Promise<undefined> {
    await this.patchStatus(claim, { targetNode: null, targetPodUID: null, refusedPodUID: claim.status?.targetPodUID ?? '', message: why });
    await this.podEvent(claim, 'FixedIPUnavailable', `${why} (node ${target})`);
    this.o.log('warn', `VpcIPClaim ${claim.metadata.namespace}/${claim.metadata.name}: ${why}`);
    return undefined;
  }

  private async deleteClaim(claim: ClaimObj, why: string): Promise<undefined> {
    await this.objects.delete(claim, `${why} (${claim.spec.ip ?? claim.status?.ip ?? 'no address'})`);
    return undefined;
  }

  private patchStatus(claim: ClaimObj, status: Record<string, unknown>): Promise<ClaimObj> {
    return this.objects.patchStatus(claim, status);
  }

  private podEvent(claim: ClaimObj, reason: string, message: string): Promise<void> {
    return this.o.pods.event(claim.metadata.namespace, claim.metadata.name, reason, message);
  }
}
