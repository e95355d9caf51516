// ipamd's work for one node: bring the cloud to what the node's agent asks on its NEC (../k8s/nec.ts).
//   - release: the offers are taken with a write conditional on the NEC's version (the agent may be taking
//     them back), then unassigned (an offered ENI is detached and deleted), then the entries go together
//     with the addresses in status.ipamd;
//   - growth: while the node holds fewer addresses than its demand, fill the fullest ENI with room, or open
//     one in the roomiest subnet of its zone under the soft limit, within the limits the agent says are in
//     force; after each change status.ipamd says what the node has, so a waiting pod is served at once;
//   - whole ENIs (tke-direct-eni): while the node has fewer than demand.directENIs, one more is opened with
//     no secondary address, tagged as direct, and listed in status.ipamd.directEnis; the node's ENI quota
//     is shared by both kinds, its route ENIs alone within demand.maxENI;
//   - a fixed IP coming to the node from a subnet it has no ENI in: an ENI is opened in that subnet (needEni);
//   - what the node cannot have (ENI quota, subnet, zone) is said in status.ipamd.problem and as an event.
// The cloud is read before the first change, after any failure and every resync interval; between, ipamd
// trusts what it read and did since, and a reconcile with nothing to do costs no call. Leftovers (ENIs made for the node and attached nowhere: an ipamd killed between create and
// attach) are deleted when the cloud is read.
import { CloudError, DIRECT_MODE, isDirectEni, MAX_IPS_PER_CALL, MODE_TAG, OWNER_TAG, type Cloud, type Eni } from '../cloud/cloud.ts';
import { ConflictError, releaseEntries, type Nec, type NecIpamd, type NecIpamdEni } from '../k8s/nec.ts';
import type { Budget, Priority } from './budget.ts';
import type { SubnetBook, SubnetProblem } from './subnet-book.ts';

export interface NecAccess {
  nec(name: string): Nec | undefined;
  patchNecStatus(name: string, status: Record<string, unknown>, resourceVersion?: string): Promise<Nec>;
}

export interface NodeIpamOptions {
  cloud: Cloud;
  budget: Budget;
  necs: NecAccess;
  subnets: SubnetBook;
  /** a Warning event on the node's NEC and its Node */
  event(node: string, reason: string, message: string): void;
  /** how often a node's ENIs are read from the cloud when nothing asks */
  resyncMs: number;
  /**
   * whether a live fixed-IP claim holds the address on that node (its pod there, or on its way there): an
   * offer of it is a stale one (the agent gave back what it no longer had, and the address came back since)
   * and is never unassigned
   */
  heldForClaim?: (node: string, address: string) => boolean;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  clock?: { now(): number };
}

/** What the cloud's error codes mean for a node that wants an ENI. */
const QUOTA_REASONS: Record<string, string> = {
  LimitExceeded: 'ENILimit',
  ResourceInsufficient: 'SubnetExhausted',
  'ResourceInsufficient.Subnet': 'SubnetExhausted',
};

type Problem = { reason: string; message: string };

/** How long an ENI opened for a fixed IP is kept from release while the address makes its way to it. */
const KEEP_FOR_FIXED_IP_MS = 60_000;

export class NodeIpam {
  /** each node's pod ENIs as last read from the cloud (and changed by ipamd since), with when they were read */
  private readonly seen = new Map<string, { enis: Eni[]; at: number }>();
  /** nodes whose last work failed: what ipamd knows of them may be wrong (an answer lost), read the cloud again */
  private readonly suspect = new Set<string>();
  /** ENIs the cloud said are full (LimitExceeded on an assign), below what the quota said: filled no more */
  private readonly full = new Set<string>();
  /** what ipamd last wrote of each node's status.ipamd (the informer's copy may lag behind its own write) */
  private readonly published = new Map<string, { content: string; uid: string | undefined }>();
  /** subnets a node must have an ENI with room in, for fixed IPs on their way to it */
  private readonly needed = new Map<string, Set<string>>();
  /**
   * ENIs opened for a fixed IP, until when they are kept: empty until the address is moved onto them, the
   * node's agent would offer them back before it arrives
   */
  private readonly keptFor = new Map<string, number>();
  private readonly clock: { now(): number };

  constructor(private readonly o: NodeIpamOptions) {
    this.clock = o.clock ?? Date;
  }

  /** Brings one node to its demand. Answers when to look again (ms), if before the next resync. */
  async reconcile(node: string): Promise<number | undefined> {
    const nec = this.o.necs.nec(node);
    const instanceId = nec?.spec?.instanceId;
    if (!nec || !instanceId || !nec.spec?.quota) return undefined;
    const seen = this.seen.get(node);
    const offers = Object.keys(nec.status?.release ?? {});
    // Until its agent asks, a node costs no call (a node that joined, its agent not started yet).
    if (!seen && !nec.status?.demand && offers.length === 0) return undefined;
    const short = seen ? this.held(seen.enis, nec) < (nec.status?.demand?.addresses ?? 0) || this.direct(seen.enis, nec).length < (nec.status?.demand?.directENIs ?? 0) : true;
    const due = !seen || this.clock.now() - seen.at >= this.o.resyncMs;
    if (!due && !short && offers.length === 0 && !this.suspect.has(node) && !this.needed.has(node)) {
      await this.publish(node, seen.enis, null);
      return undefined;
    }
    const priority: Priority = short && (nec.status?.demand?.urgent || nec.status?.demand?.directUrgent) ? 'pod' : offers.length > 0 && !short ? 'release' : 'warm';
    return this.o.budget.as(node, priority, async () => {
      try {
        return await this.work(node, instanceId);
      } catch (err) {
        this.suspect.add(node);
        throw err;
      }
    });
  }

  /** Something changed a node's ENIs outside this class (a fixed IP moved): read the cloud at the next reconcile. */
  doubt(node: string): void {
    this.suspect.add(node);
  }

  /** A fixed IP of `subnetId` is coming to the node: it needs an ENI with room in that subnet. */
  needEni(node: string, subnetId: string): void {
    const subnets = this.needed.get(node) ?? new Set<string>();
    subnets.add(subnetId);
    this.needed.set(node, subnets);
  }

  /** Forgets a node (it left the cluster). */
  forget(node: string): void {
    this.needed.delete(node);
    this.seen.delete(node);
    this.suspect.delete(node);
    this.published.delete(node);
  }

  /** Detaches and deletes every ENI made for an instance whose node has left. */
  async cleanUp(node: string, instanceId: string): Promise<void> {
    await this.o.budget.as(node, 'release', async () => {
      const made = await this.o.cloud.enisTagged(OWNER_TAG, instanceId);
      // Whole ENIs made here that went with their pod to another node are that node's now; and those that
      // came here with theirs go with this node.
      const came = (await this.o.cloud.enisOf(instanceId)).filter((e) => isDirectEni(e) && e.tags[OWNER_TAG] && e.tags[OWNER_TAG] !== instanceId);
      for (const eni of [...made.filter((e) => !e.attachedTo || e.attachedTo === instanceId), ...came]) {
        if (eni.attachedTo) await this.o.cloud.detachEni(eni.id, eni.attachedTo);
        await this.o.cloud.deleteEni(eni.id);
        this.o.log('info', `ipamd: node ${node} left; deleted ${eni.id} (${eni.primaryIp}) of ${instanceId}`);
      }
    });
    this.forget(node);
  }

  private async work(node: string, instanceId: string): Promise<number | undefined> {
    // What ipamd read and has done since holds until the resync, unless something failed on the way.
    const seen = this.seen.get(node);
    const trusted = seen && !this.suspect.has(node) && this.clock.now() - seen.at < this.o.resyncMs;
    const enis = trusted ? seen.enis : await this.read(node, instanceId);
    // Offers first: a conditional write, so that an offer the agent takes back at this moment stays its own.
    let nec = this.o.necs.nec(node)!;
    const offered = releaseEntries(nec, 'offered');
    if (offered.length > 0) {
      try {
        nec = await this.o.necs.patchNecStatus(node, { release: Object.fromEntries(offered.map((k) => [k, 'releasing'])) }, nec.metadata?.resourceVersion);
      } catch (err) {
        if (err instanceof ConflictError) return 100; // the agent wrote meanwhile: read again, decide again
        throw err;
      }
    }
    await this.release(node, instanceId, enis, releaseEntries(nec, 'releasing'));
    const grown = await this.grow(node, nec, enis);
    // After the addresses: a problem with whole ENIs is the last one written, not cleared by the other.
    const direct = await this.growDirect(node, nec, enis);
    return grown === undefined ? direct : direct === undefined ? grown : Math.min(grown, direct);
  }

  /** Whole ENIs up to the demand, within the node's ENI quota; answers when to look again if it cannot. */
  private async growDirect(node: string, nec: Nec, enis: Eni[]): Promise<number | undefined> {
    const quota = nec.spec!.quota!;
    for (let step = 0; step < 10; step++) {
      const current = this.o.necs.nec(node) ?? nec;
      const want = current.status?.demand?.directENIs ?? 0;
      const have = this.direct(enis, current).length;
      if (have >= want) return undefined;
      if (enis.length >= quota.enis - 1) {
        return this.failed(node, enis, { reason: 'ENILimit', message: `node ${node} holds ${enis.length} pod ENIs, its quota's most; it asks for ${want} whole ENIs and has ${have}` });
      }
      try {
        const problem = await this.open(node, current, enis, 0, { ipsPerEni: quota.ipsPerEni }, true);
        if (problem) return this.failed(node, enis, problem);
      } catch (err) {
        const e = err as CloudError;
        const reason = e instanceof CloudError ? QUOTA_REASONS[e.code] : undefined;
        if (reason) return this.failed(node, enis, { reason, message: `node ${node}: a whole ENI: ${e.message}` });
        await this.publish(node, enis, undefined);
        throw err;
      }
      await this.publish(node, enis, null);
    }
    return undefined;
  }

  /** The node's whole ENIs, less those offered back. */
  private direct(enis: Eni[], nec: Nec): Eni[] {
    const release = nec.status?.release ?? {};
    return enis.filter((e) => isDirectEni(e) && !release[e.id]);
  }

  private async release(node: string, instanceId: string, enis: Eni[], taken: string[]): Promise<void> {
    if (taken.length === 0) return;
    const keys = new Set(taken);
    for (const eni of [...enis]) {
      const held = eni.secondaryIps.filter((ip) => keys.has(ip) && this.o.heldForClaim?.(node, ip));
      if (held.length > 0) this.o.log('warn', `ipamd: node ${node} offered ${held.join(', ')} of ${eni.id}, which a fixed-IP claim holds there; keeping it`);
      const leaving = eni.secondaryIps.filter((ip) => keys.has(ip) && !held.includes(ip));
      for (let i = 0; i < leaving.length; i += MAX_IPS_PER_CALL) await this.o.cloud.unassignIps(eni.id, leaving.slice(i, i + MAX_IPS_PER_CALL));
      if (leaving.length > 0) {
        eni.secondaryIps = eni.secondaryIps.filter((ip) => !keys.has(ip));
        this.o.log('info', `ipamd: unassigned ${leaving.join(', ')} from ${eni.id} of node ${node}, as its agent offered`);
      }
      if (!keys.has(eni.id)) continue;
      if (isDirectEni(eni) && this.o.heldForClaim?.(node, eni.primaryIp)) {
        this.o.log('warn', `ipamd: node ${node} offered the whole ENI ${eni.id}, whose address ${eni.primaryIp} a fixed-IP claim holds there; keeping it`);
        continue;
      }
      if ((this.keptFor.get(eni.id) ?? 0) > this.clock.now()) {
        this.o.log('info', `ipamd: keeping ${eni.id} of node ${node}, offered while a fixed IP is on its way to it`);
        continue;
      }
      this.keptFor.delete(eni.id);
      // An ENI is given back only empty: an address on it not offered may still be a pod's.
      if (eni.secondaryIps.length > 0) {
        this.o.log('warn', `ipamd: node ${node} offered ${eni.id}, which still holds ${eni.secondaryIps.join(', ')}; keeping it`);
        continue;
      }
      await this.o.cloud.detachEni(eni.id, instanceId);
      await this.o.cloud.deleteEni(eni.id);
      enis.splice(enis.indexOf(eni), 1);
      this.o.log('info', `ipamd: detached and deleted ${eni.id} of node ${node}, as its agent offered`);
    }
    await this.publish(node, enis, undefined, Object.fromEntries(taken.map((k) => [k, null])));
  }

  private async grow(node: string, nec: Nec, enis: Eni[]): Promise<number | undefined> {
    const route = () => enis.filter((e) => !isDirectEni(e));
    const demand = nec.status?.demand;
    const quota = nec.spec!.quota!;
    const maxEnis = Math.min(demand?.maxENI ?? Infinity, quota.enis - 1);
    const maxIps = Math.min(demand?.maxIPPerENI ?? Infinity, quota.ipsPerEni - 1);
    const blocked = await this.openNeeded(node, nec, enis, maxEnis, maxIps);
    if (blocked) return blocked;
    for (let step = 0; step < 50; step++) {
      const current = this.o.necs.nec(node) ?? nec;
      const want = current.status?.demand?.addresses ?? 0;
      const deficit = want - this.held(enis, current);
      if (deficit <= 0) break;
      // The fullest ENI with room, never one offered for release nor one the cloud said is full.
      const release = current.status?.release ?? {};
      const roomy = route()
        .filter((e) => e.secondaryIps.length < maxIps && !release[e.id] && !this.full.has(e.id))
        .sort((a, b) => b.secondaryIps.length - a.secondaryIps.length)[0];
      try {
        if (roomy) {
          let added: string[];
          try {
            added = await this.o.cloud.assignIps(roomy.id, Math.min(deficit, maxIps - roomy.secondaryIps.length, MAX_IPS_PER_CALL));
          } catch (err) {
            // On an assign, LimitExceeded is that ENI being full, not the node's quota: fill another, or open one.
            if (!(err instanceof CloudError) || err.code !== 'LimitExceeded') throw err;
            this.full.add(roomy.id);
            this.suspect.add(node);
            this.o.log('warn', `ipamd: ${roomy.id} of node ${node} takes no more than ${roomy.secondaryIps.length} addresses (${err.message}); filling another`);
            continue;
          }
          roomy.secondaryIps.push(...added);
          this.o.log('info', `ipamd: assigned ${added.join(', ')} to ${roomy.id} of node ${node}`);
        } else if (route().length < maxEnis && enis.length < quota.enis - 1) {
          const problem = await this.open(node, current, enis, Math.min(deficit, maxIps, MAX_IPS_PER_CALL), { ipsPerEni: quota.ipsPerEni });
          if (problem) return this.failed(node, enis, problem);
        } else {
          return this.failed(node, enis, { reason: 'ENILimit', message: `node ${node} holds ${route().length} pod ENIs of ${maxIps} addresses (and ${enis.length - route().length} whole ENIs), its most; it asks for ${want}` });
        }
      } catch (err) {
        const e = err as CloudError;
        const reason = e instanceof CloudError ? QUOTA_REASONS[e.code] : undefined;
        if (reason) return this.failed(node, enis, { reason, message: `node ${node}: ${e.message}` });
        await this.publish(node, enis, undefined);
        throw err;
      }
      await this.publish(node, enis, null);
    }
    await this.publish(node, enis, null);
    return undefined;
  }

  /** ENIs in the subnets fixed IPs on their way need (empty: the address comes by itself); answers when to look again if one cannot be had. */
  private async openNeeded(node: string, nec: Nec, enis: Eni[], maxEnis: number, maxIps: number): Promise<number | undefined> {
    const release = nec.status?.release ?? {};
    for (const [eniId, until] of this.keptFor) if (until <= this.clock.now()) this.keptFor.delete(eniId);
    for (const subnetId of this.needed.get(node) ?? []) {
      if (enis.some((e) => !isDirectEni(e) && e.subnetId === subnetId && !release[e.id] && !this.full.has(e.id) && e.secondaryIps.length < maxIps)) {
        this.needed.get(node)!.delete(subnetId);
        continue;
      }
      if (enis.filter((e) => !isDirectEni(e)).length >= maxEnis || enis.length >= (nec.spec?.quota?.enis ?? 0) - 1) {
        this.needed.get(node)!.delete(subnetId);
        return this.failed(node, enis, { reason: 'ENILimit', message: `node ${node} holds ${enis.length} pod ENIs, its most; a fixed IP of subnet ${subnetId} needs one there` });
      }
      try {
        await this.open(node, nec, enis, 0, { id: subnetId });
        this.keptFor.set(enis[enis.length - 1]!.id, this.clock.now() + KEEP_FOR_FIXED_IP_MS);
      } catch (err) {
        const e = err as CloudError;
        const reason = e instanceof CloudError ? QUOTA_REASONS[e.code] : undefined;
        if (!reason) throw err;
        return this.failed(node, enis, { reason, message: `node ${node}: an ENI in subnet ${subnetId} for a fixed IP: ${e.message}` });
      }
      this.needed.get(node)!.delete(subnetId);
      await this.publish(node, enis, null);
    }
    if (this.needed.get(node)?.size === 0) this.needed.delete(node);
    return undefined;
  }

  /** Opens an ENI for the node, in `where` or the subnet the book chooses; answers why it cannot, if it cannot. */
  private async open(node: string, nec: Nec, enis: Eni[], count: number, where: { id: string } | { ipsPerEni: number }, direct = false): Promise<SubnetProblem | undefined> {
    const subnet = 'id' in where ? where : await this.o.subnets.choose(nec, where.ipsPerEni);
    if ('reason' in subnet) return subnet;
    const instanceId = nec.spec!.instanceId;
    const created = await this.o.subnets.creatingIn(subnet.id, async () => {
      const eni = await this.o.cloud.createEni({
        subnetId: subnet.id,
        name: `${instanceId}-${direct ? 'direct' : 'pods'}`,
        securityGroupIds: nec.spec?.securityGroupIds ?? [],
        tags: { [OWNER_TAG]: instanceId, ...(direct ? { [MODE_TAG]: DIRECT_MODE } : {}) },
        secondaryIps: count,
      });
      try {
        await this.o.cloud.attachEni(eni.id, instanceId);
      } catch (err) {
        await this.o.cloud.deleteEni(eni.id).catch(() => undefined);
        throw err;
      }
      return eni;
    });
    enis.push({ ...created, attachedTo: instanceId });
    const holding = direct ? `as a whole ENI (${created.primaryIp})` : `with ${created.secondaryIps.join(', ')}`;
    this.o.log('info', `ipamd: created ${created.id} in ${subnet.id} ${holding} and attached it to node ${node} (${instanceId})`);
    return undefined;
  }

  private async failed(node: string, enis: Eni[], problem: Problem): Promise<number> {
    this.o.log('warn', `ipamd: ${problem.reason}: ${problem.message}`);
    this.o.event(node, problem.reason, problem.message);
    await this.publish(node, enis, problem);
    return 30_000;
  }

  /**
   * The node's pod ENIs, read from the cloud in one call: every ENI tagged for its instance, attached or
   * not. Leftovers made for it and attached nowhere are deleted.
   */
  private async read(node: string, instanceId: string): Promise<Eni[]> {
    const { cloud } = this.o;
    const tagged = await cloud.enisTagged(OWNER_TAG, instanceId);
    const enis = tagged.filter((e) => e.attachedTo === instanceId && !e.primary);
    // A whole ENI that came here with its pod (a fixed IP) keeps the tag of the node that made it: where it
    // is attached says whose it is. Looked for only on nodes that serve whole-ENI pods.
    if (this.o.necs.nec(node)?.status?.demand?.directENIs !== undefined) {
      for (const e of await cloud.enisOf(instanceId)) {
        if (isDirectEni(e) && e.tags[OWNER_TAG] && e.tags[OWNER_TAG] !== instanceId && !enis.some((x) => x.id === e.id)) enis.push(e);
      }
    }
    for (const left of tagged.filter((e) => !e.attachedTo && e.state === 'AVAILABLE')) {
      try {
        await cloud.deleteEni(left.id);
        this.o.log('warn', `ipamd: deleted ${left.id}, made for node ${node} (${instanceId}) and attached nowhere`);
      } catch (err) {
        this.o.log('warn', `ipamd: cannot delete ${left.id}, made for node ${node} and attached nowhere: ${(err as Error).message}`);
      }
    }
    this.seen.set(node, { enis, at: this.clock.now() });
    this.suspect.delete(node);
    return enis;
  }

  /** Addresses the node may use: on its ENIs, not offered or being released. */
  private held(enis: Eni[], nec: Nec): number {
    const release = nec.status?.release ?? {};
    return enis.filter((e) => !release[e.id]).reduce((n, e) => n + e.secondaryIps.filter((ip) => !release[ip]).length, 0);
  }

  /**
   * Writes status.ipamd when it changed (and `release` entries to remove, with it). `problem`: null clears
   * the last one, undefined keeps it.
   */
  private async publish(node: string, enis: Eni[], problem: Problem | null | undefined, release?: Record<string, null>): Promise<void> {
    const nec = this.o.necs.nec(node);
    if (!nec) return;
    const view: NecIpamdEni[] = [];
    const direct: NecIpamdEni[] = [];
    for (const e of enis) {
      (isDirectEni(e) ? direct : view).push({ eniId: e.id, mac: e.mac, primaryIP: e.primaryIp, subnetId: e.subnetId, subnetCIDR: await this.o.subnets.cidrOf(e.subnetId), ips: [...e.secondaryIps].sort() });
    }
    view.sort((a, b) => a.eniId.localeCompare(b.eniId));
    direct.sort((a, b) => a.eniId.localeCompare(b.eniId));
    const before = nec.status?.ipamd;
    const nextProblem = problem === undefined ? (before?.problem ?? null) : problem;
    const content = JSON.stringify({ enis: view, directEnis: direct, problem: nextProblem });
    const inCache = JSON.stringify({ enis: before?.enis ?? [], directEnis: before?.directEnis ?? [], problem: before?.problem ?? null });
    const last = this.published.get(node);
    const written = last?.content === content && last.uid === nec.metadata?.uid;
    if (!release && (written || content === inCache)) return;
    // A merge patch replaces the list whole: what ipamd writes is all of its part. A null problem removes it.
    const ipamd: NecIpamd = { enis: view, directEnis: direct, problem: nextProblem, updated: new Date(this.clock.now()).toISOString() };
    await this.o.necs.patchNecStatus(node, { ipamd, ...(release ? { release } : {}) });
    this.published.set(node, { content, uid: nec.metadata?.uid });
  }
}
