// The supply of an agent in a cluster: tke-eni-ipamd changes the cloud, the agent holds no credentials. The
// agent says what its node needs on the node's NodeENIConfig and takes what ipamd has put there (the
// contract is in ../k8s/nec.ts). Growing raises the demand and returns at once: the addresses come with a
// later look, and until then they count as pending, so the pool does not ask twice. Releasing offers
// addresses; ipamd unassigns only what was offered and not taken back.
import type { InstanceLimits } from '../cloud/cloud.ts';
import { ConflictError, heldAddresses, isEniKey, releaseEntries, suppliedEnis, type Nec, type NecDemand } from '../k8s/nec.ts';
import type { CloudEniFact, Supply, SupplyView } from './supply.ts';

/** The node's NEC, as the agent sees and writes it. */
export interface NecPort {
  /** the newest version seen, undefined until one has been */
  current(): Nec | undefined;
  /** waits until a version satisfies `ok` */
  until(ok: (nec: Nec | undefined) => boolean): Promise<Nec>;
  /**
   * Merge-patches the status. With `resourceVersion`, only if the NEC is still at that version: otherwise
   * it fails with a ConflictError and nothing is written.
   */
  patchStatus(status: Record<string, unknown>, resourceVersion?: string): Promise<void>;
}

export interface NecSupplyOptions {
  nec: NecPort;
  nodeName: string;
  /** the limits in force (the quota lowered by overrides): ipamd grows within them */
  inForce: () => { maxEnis: number; maxIpsPerEni: number };
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  clock?: { now(): number };
}

/** How long a demand may go unanswered before an ADD's refusal says that ipamd is silent. */
const SILENT_MS = 10_000;

export class NecSupply implements Supply {
  /** when the demand was last raised */
  private askedAt = 0;
  /** the secondary addresses asked for, undefined until the first ask (then the NEC's demand holds it) */
  private want: number | undefined;
  /**
   * The NEC as the pool last looked at it. What is pending is counted against it, not against a newer
   * version the pool has not taken in yet: otherwise addresses ipamd just gave would be neither pending
   * nor in the pool, and the pool would ask for them again. The demand itself is counted from the newest
   * version (what the node holds now, offers left out), so a release the pool has not looked at since is
   * not asked for again.
   */
  private viewed: Nec | undefined;

  constructor(private readonly o: NecSupplyOptions) {}

  async limits(): Promise<InstanceLimits> {
    const { nodeName, log } = this.o;
    if (!this.o.nec.current()?.spec?.quota) log('info', `nec: waiting for tke-eni-ipamd to write the quota of ${nodeName} into its NodeENIConfig`);
    const nec = await this.o.nec.until((n) => n?.spec?.quota !== undefined);
    this.want = nec.status?.demand?.addresses;
    // A demand left by the agent before it restarted: ipamd's silence is counted from now, not from the epoch.
    this.askedAt = (this.o.clock ?? Date).now();
    return nec.spec!.quota!;
  }

  look(): Promise<SupplyView> {
    const nec = this.o.nec.current();
    this.viewed = nec;
    // Until ipamd has answered the demand and every offer, a change is under way: look again soon.
    const settling = this.pending() > 0 || Object.keys(nec?.status?.release ?? {}).length > 0;
    return Promise.resolve({ enis: suppliedEnis(nec), settling });
  }

  async assign(_eniId: string, count: number, urgent: boolean): Promise<string[]> {
    await this.grow(count, urgent);
    return [];
  }

  async createEni(count: number, urgent: boolean): Promise<undefined> {
    await this.grow(count, urgent);
    return undefined;
  }

  async release(eniId: string, addresses: string[]): Promise<void> {
    const held = heldAddresses(this.o.nec.current());
    const want = Math.max(0, Math.max(this.want ?? held, held) - addresses.length);
    await this.o.nec.patchStatus({ demand: this.demand(want, false), release: Object.fromEntries(addresses.map((a) => [a, 'offered'])) });
    this.want = want;
    this.o.log('info', `nec: offered ${addresses.join(', ')} of ${eniId} on ${this.o.nodeName} for release`);
  }

  async trim(most: number): Promise<void> {
    const held = heldAddresses(this.o.nec.current());
    const want = Math.max(held, most);
    if (this.want === undefined || want >= this.want) return;
    await this.o.nec.patchStatus({ demand: this.demand(want, false) });
    this.o.log('info', `nec: ${this.o.nodeName} asks for ${want} addresses, no longer ${this.want}`);
    this.want = want;
  }

  async deleteEni(eniId: string): Promise<void> {
    await this.o.nec.patchStatus({ release: { [eniId]: 'offered' } });
    this.o.log('info', `nec: offered ${eniId} of ${this.o.nodeName}, which holds no address, for release`);
  }

  pending(): number {
    if (this.want === undefined) return 0;
    return Math.max(0, this.want - heldAddresses(this.viewed));
  }

  /** Why the demand is not met: ipamd's reason when it gives one, or its silence. */
  problem(): string | undefined {
    const pending = this.pending();
    if (pending === 0) return undefined;
    const problem = this.o.nec.current()?.status?.ipamd?.problem;
    if (problem) return `${problem.reason}: ${problem.message}`;
    const silent = (this.o.clock ?? Date).now() - this.askedAt;
    if (silent < SILENT_MS) return undefined;
    return `tke-eni-ipamd has not answered the demand of ${this.o.nodeName} for ${pending} more addresses in ${Math.round(silent / 1000)} s (kubectl -n kube-system get deploy tke-eni-ipamd)`;
  }

  /** In a cluster the agent has no credentials: the cloud as tke-eni-ipamd last described it in the NEC. */
  cloudEni(eniId: string): Promise<CloudEniFact | undefined> {
    const ipamd = this.o.nec.current()?.status?.ipamd;
    const eni = ipamd?.enis.find((e) => e.eniId === eniId);
    const source = `the cloud as tke-eni-ipamd last wrote it${ipamd?.updated ? ` (at ${ipamd.updated})` : ''}`;
    const command = `kubectl get nec ${this.o.nodeName} -o jsonpath='{.status.ipamd.enis}'`;
    return Promise.resolve(eni ? { attachedHere: true, secondaryIps: eni.ips, source, command } : undefined);
  }

  async drain(): Promise<void> {}

  /** Asks for `count` more addresses; a waiting pod first takes back addresses offered and not yet taken. */
  private async grow(count: number, urgent: boolean): Promise<void> {
    let needed = count;
    if (urgent) needed -= await this.takeBack(count);
    if (needed <= 0) return;
    const held = heldAddresses(this.o.nec.current());
    const want = Math.max(this.want ?? held, held) + needed;
    await this.o.nec.patchStatus({ demand: this.demand(want, urgent) });
    if (this.pending() === 0) this.askedAt = (this.o.clock ?? Date).now();
    this.want = want;
  }

  /** Takes back up to `count` offered addresses, if ipamd has not taken them; answers how many. */
  private async takeBack(count: number): Promise<number> {
    const nec = this.o.nec.current();
    const offered = releaseEntries(nec, 'offered').filter((k) => !isEniKey(k)).slice(0, count);
    if (offered.length === 0 || !nec?.metadata?.resourceVersion) return 0;
    // An address comes back with its ENI, if that was offered too (it was about to be emptied and go).
    const back = new Set(offered);
    const enis = (nec.status?.ipamd?.enis ?? []).filter((e) => nec.status?.release?.[e.eniId] === 'offered' && e.ips.some((ip) => back.has(ip))).map((e) => e.eniId);
    const held = heldAddresses(nec) + offered.length;
    const want = Math.max(this.want ?? 0, held);
    try {
      await this.o.nec.patchStatus({ demand: this.demand(want, true), release: Object.fromEntries([...offered, ...enis].map((k) => [k, null])) }, nec.metadata.resourceVersion);
    } catch (err) {
      if (err instanceof ConflictError) return 0;
      throw err;
    }
    this.want = want;
    this.o.log('info', `nec: took back ${offered.join(', ')} on ${this.o.nodeName} for a waiting pod`);
    return offered.length;
  }

  private demand(addresses: number, urgent: boolean): NecDemand {
    const limits = this.o.inForce();
    return { addresses, urgent, maxENI: limits.maxEnis, maxIPPerENI: limits.maxIpsPerEni };
  }
}
