// The agent's answers to the plugin: ADD, DEL, CHECK, GC and STATUS, over the pool, the checkpoint and
// the datapath. Requests for one container and interface run one at a time, so an ADD and a DEL racing
// for the same container end consistent, and the same ADD twice gets the same answer.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { Logger } from 'pino';
import { ok, refuse, type Response } from '../shared/protocol.ts';
import type { AddRequest, CheckRequest, DelRequest, GcRequest } from '../shared/requests.ts';
import type { DirectDatapath } from './datapath/direct-link.ts';
import { hostDrift } from './datapath/drift.ts';
import type { Datapath } from './datapath/linux.ts';
import type { DirectPool } from './direct/pool.ts';
import { POD_GATEWAY, podMac } from './datapath/plan.ts';
import { hostIfName } from '../shared/names.ts';
import { NETWORK_MODES, POD_ANNOTATIONS } from '../shared/tke.ts';
import type { Eips } from './eips.ts';
import type { FixedIps } from './fixed-ips.ts';
import { deletePolicyOf, type DeletePolicy } from './k8s/claims.ts';
import { eipRequestOf, type EipRequest } from './k8s/eip-claims.ts';
import type { Checkpoint } from './pool/checkpoint.ts';
import type { Pool } from './pool/pool.ts';
import { allocationKey, type Allocation, type PoolStore } from './pool/store.ts';

export interface AgentOptions {
  store: PoolStore;
  pool: Pool;
  checkpoint: Checkpoint;
  datapath: Datapath;
  log: Logger;
  /** where the plugin leaves DELs it could not deliver */
  pendingDelDir: string;
  /** how long an ADD waits for a free address before answering "try again later" */
  addWaitMs: number;
  /** an allocation younger than this is never cleaned up, whatever its namespace looks like */
  gcGraceMs: number;
  /** how long an address freed by DEL rests before it is given out again */
  cooldownMs: number;
  /** whether the periodic check mends pods' host sides that drifted (--mend-datapath) */
  mendDatapath?: boolean;
  /** told of each pod whose host side was mended */
  onMend?: () => void;
  /** the pod's annotations, when the agent has an API server (undefined: not known there) */
  podAnnotations?: (namespace: string, name: string) => Promise<Record<string, string> | undefined>;
  /** the pods the API server says run on this node (namespace/name), when known */
  podsOnNode?: () => Set<string> | undefined;
  /** fixed pod IPs (VpcIPClaim), when the agent has an API server */
  fixedIps?: FixedIps;
  /** EIPs per pod (EIPClaim), when the agent has an API server */
  eips?: Eips;
  /** whole-ENI pods (tke-direct-eni): the node's whole ENIs and how one becomes a pod's interface (with ipamd only) */
  direct?: { pool: DirectPool; links: DirectDatapath; fixedIps?: FixedIps };
  /** told after every change of an allocation */
  onChange?: () => void;
  /** How long the two halves of a successful ADD took: taking an address (checkpoint included), then plumbing it. */
  addPhases?: (allocateSeconds: number, plumbSeconds: number) => void;
  clock?: { now(): number };
}

export class Agent {
  private readonly locks = new Map<string, Promise<unknown>>();
  /** veths being deleted in the background, by host-side name: a new ADD of the same container waits for its own */
  private readonly linkDeletes = new Map<string, Promise<void>>();
  private readonly clock: { now(): number };
  ready = false;

  constructor(private readonly o: AgentOptions) {
    this.clock = o.clock ?? Date;
    mkdirSync(o.pendingDelDir, { recursive: true });
  }

  /**
   * Puts back the allocations of the checkpoint, before the pool learns its ENIs: an address a pod holds
   * is held from the first moment, so no take-over, re-sync or release can see it as free, whatever the
   * cloud shows at start (an ENI whose link is late, an address still settling). An allocation whose pod is
   * gone is freed by the periodic check, as any other.
   */
  restore(): void {
    const { store, log } = this.o;
    const saved = this.o.checkpoint.load();
    for (const [address, until] of Object.entries(saved.cooling)) store.cool(address, until);
    for (const allocation of saved.allocations) store.record(allocation);
    log.info({ allocations: store.allocations().length }, 'restored allocations from the checkpoint');
  }

  /** Once the pool holds its ENIs: names the restored pods whose address is on none of them (kept, not freed). */
  reportUnpooled(): void {
    const { store, log } = this.o;
    const pooled = new Set([...store.enis.values()].flatMap((e) => [...e.addresses]));
    for (const a of store.allocations()) {
      // A whole-ENI pod's address is its own ENI's, never on the shared pool's.
      if (pooled.has(a.address) || a.direct) continue;
      log.warn({ address: a.address, eni: a.eniId, container: a.containerId, pod: a.pod }, `${a.address} of ${a.pod ? `pod ${a.pod.namespace}/${a.pod.name}` : `container ${a.containerId}`} is on no ENI of the pool (${a.eniId} is not attached here or not taken over yet)`);
    }
  }

  async add(req: AddRequest): Promise<Response> {
    if (!this.ready) return refuse('not-ready', 'the agent is still starting');
    const started = performance.now();
    return this.locked(req.containerId, req.ifName, async () => {
      const { store, datapath, log } = this.o;
      const existing = store.get(req.containerId, req.ifName);
      if (existing?.direct && !this.o.direct) return refuse('unsupported-mode', `${podName(req)} holds a whole ENI (${existing.eniId}), which this agent no longer serves (--enable-direct-eni is off)`);
      if (existing?.direct && existing.netns === req.netns) return this.plumbDirect(existing, true);
      if (existing && existing.netns === req.netns) {
        const problem = await datapath.checkPod({ ...existing, netns: req.netns });
        if (!problem) return ok({ attachment: attachmentOf(existing) });
        log.warn({ container: req.containerId, address: existing.address, problem }, 'repeated ADD finds the pod broken; plumbing it again');
        await (await datapath.removePod(existing)).linkGone;
        return this.plumb(existing);
      }
      // Before anything is taken or undone: a namespace that cannot be plumbed must not cost an address,
      // nor the pod already running under this container and interface.
      const netnsProblem = datapath.netnsProblem(req.netns);
      if (netnsProblem) return refuse('bad-netns', `${podName(req)}: CNI_NETNS ${netnsProblem.why}`);
      if (existing) await this.free(existing, 'ADD again in another namespace');
      const annotations = await this.annotationsOf(req);
      const mode = this.modeOf(req, annotations);
      if (typeof mode !== 'string') return mode;
      const policy = deletePolicyOf(annotations?.[POD_ANNOTATIONS.vpcIpClaimDeletePolicy]);
      if (policy instanceof Error) return refuse('bad-annotation', `${podName(req)}: ${POD_ANNOTATIONS.vpcIpClaimDeletePolicy}: ${policy.message}`);
      const eip = req.pod && this.o.eips ? eipRequestOf(req.pod.name, annotations) : undefined;
      if (eip instanceof Error) return refuse('bad-annotation', `${podName(req)}: ${eip.message}`);
      const details = {
        containerId: req.containerId,
        ifName: req.ifName,
        netns: req.netns,
        hostIf: hostIfName(req.containerId, req.ifName),
        pod: req.pod,
        allocatedAt: this.clock.now(),
      };
      // Other ADDs may wait too: whoever wakes to find the freed address taken waits again, until the deadline.
      const deadline = this.clock.now() + this.o.addWaitMs;
      if (mode === 'direct') return this.addDirect(details, deadline, eip, policy);
      const takeWarm = async () => {
        let taken = store.take(details);
        while (!taken && (await this.o.pool.waitForFree(deadline - this.clock.now()))) taken = store.take(details);
        void this.o.pool.kick();
        return taken;
      };
      const fixed = policy === 'Never' && req.pod && this.o.fixedIps;
      const got = fixed ? await this.o.fixedIps!.take(req.pod!, details, deadline, takeWarm) : await takeWarm();
      if (got && 'ok' in got) return got;
      const allocation = got;
      if (!allocation) {
        const why = this.o.pool.lastError ? `: ${this.o.pool.lastError}` : '';
        return refuse('no-address', `no free address for ${podName(req)} within ${this.o.addWaitMs} ms${why}`);
      }
      if (eip) allocation.eip = true;
      // Written down while the pod is plumbed; answered once both are done.
      const saving = this.save();
      const saved = performance.now();
      const answer = await this.plumb(allocation, { unrecorded: !existing });
      if (answer.ok) await saving;
      const plumbed = performance.now();
      this.o.log.debug({ container: req.containerId, address: allocation.address, allocateMs: saved - started, plumbMs: plumbed - saved }, 'ADD timing');
      if (answer.ok) this.o.addPhases?.((saved - started) / 1000, (plumbed - saved) / 1000);
      if (answer.ok && eip) {
        // The pod starts once its EIP is bound, so that its first packet to the internet leaves with it.
        const refusal = await this.o.eips!.bind(req.pod!, eip, allocation.address, allocation.eniId, deadline);
        if (refusal) {
          await this.free(allocation, 'its EIP could not be bound');
          return refusal;
        }
      }
      if (answer.ok && !fixed) this.recordClaim(req, allocation, policy);
      return answer;
    });
  }

  async del(req: DelRequest): Promise<Response> {
    return this.locked(req.containerId, req.ifName, async () => {
      const allocation = this.o.store.get(req.containerId, req.ifName);
      if (allocation) await this.free(allocation, 'DEL');
      else this.removeUnrecorded(req.containerId, req.ifName);
      return ok();
    });
  }

  async check(req: CheckRequest): Promise<Response> {
    return this.locked(req.containerId, req.ifName, async () => {
      const allocation = this.o.store.get(req.containerId, req.ifName);
      if (!allocation) return refuse('unknown-container', `container ${req.containerId} (${req.ifName}) has no address on this node`);
      if (req.address && req.address !== allocation.address) {
        return refuse('datapath', `container ${req.containerId} has ${allocation.address}, not ${req.address}`);
      }
      const problem = allocation.direct && this.o.direct
        ? await this.o.direct.links.check({ ...allocation, netns: req.netns, direct: allocation.direct })
        : await this.o.datapath.checkPod({ ...allocation, netns: req.netns });
      return problem ? refuse('datapath', `container ${req.containerId}: ${problem}`) : ok();
    });
  }

  /** The pod's annotations from the API server; undefined without one, or when it cannot be read. */
  private async annotationsOf(req: AddRequest): Promise<Record<string, string> | undefined> {
    if (!req.pod || !this.o.podAnnotations) return undefined;
    try {
      return await this.o.podAnnotations(req.pod.namespace, req.pod.name);
    } catch (err) {
      // The API server being away must not stop pods from starting: they get the node's default mode.
      this.o.log.warn({ pod: req.pod, err: (err as Error).message }, 'cannot read the pod from the API server; serving it in shared-ENI mode');
      return undefined;
    }
  }

  /** The ledger claim of a pod without Never, written after its ADD has answered. */
  private recordClaim(req: AddRequest, allocation: Allocation, policy: DeletePolicy): void {
    if (!req.pod || !this.o.fixedIps) return;
    void this.o.fixedIps.record(req.pod, allocation, policy).catch((err: Error) => this.o.log.warn({ pod: req.pod, address: allocation.address, err: err.message }, 'could not write the pod\'s VpcIPClaim'));
  }

  /** The network mode a pod asks for (shared-ENI by default), or the refusal of one this node cannot serve. */
  private modeOf(req: AddRequest, annotations: Record<string, string> | undefined): 'shared' | 'direct' | Response {
    if (!req.pod) return 'shared';
    const wanted = annotations?.[POD_ANNOTATIONS.networks]?.trim();
    if (wanted === undefined || wanted === '' || wanted === NETWORK_MODES.sharedEni) return 'shared';
    if (wanted === NETWORK_MODES.directEni && this.o.direct) return 'direct';
    const why =
      wanted === NETWORK_MODES.directEni
        ? `pod ${req.pod.namespace}/${req.pod.name} asks for ${NETWORK_MODES.directEni} (a whole ENI), which this node does not serve (its agent runs without --enable-direct-eni, or standalone); it serves ${NETWORK_MODES.sharedEni}`
        : `pod ${req.pod.namespace}/${req.pod.name} asks for network "${wanted}" in ${POD_ANNOTATIONS.networks}; this node serves ${NETWORK_MODES.sharedEni}${this.o.direct ? ` and ${NETWORK_MODES.directEni}` : ''}`;
    this.o.log.warn({ pod: req.pod, networks: wanted }, why);
    return refuse('unsupported-mode', why);
  }

  /**
   * A whole-ENI pod's ADD: a spare ENI of the node (waiting for one until the deadline), made its
   * interface; with an EIP asked for, the pod starts once the EIP is bound to the ENI's address.
   */
  private async addDirect(details: Omit<Allocation, 'address' | 'eniId' | 'table'>, deadline: number, eip: EipRequest | undefined, policy: DeletePolicy): Promise<Response> {
    const { pool, fixedIps } = this.o.direct!;
    const spare = () => pool.take(details, deadline);
    // A fixed IP (Never): the claim's whole ENI, here already or brought here by ipamd; or a spare one and a claim for it.
    const fixed = policy === 'Never' && details.pod && fixedIps;
    const got = fixed ? await fixedIps.take(details.pod!, details, deadline, spare) : await spare();
    if (got && 'ok' in got) return got;
    const allocation = got;
    if (!allocation) {
      const why = pool.problem() ? `: ${pool.problem()}` : '';
      return refuse('no-address', `no whole ENI for ${podName(details)} within ${this.o.addWaitMs} ms${why}`);
    }
    if (eip) allocation.eip = true;
    await this.save();
    const answer = await this.plumbDirect(allocation, false);
    if (answer.ok && !fixed && details.pod && fixedIps) {
      void fixedIps.record(details.pod, allocation, policy).catch((err: Error) => this.o.log.warn({ pod: details.pod, address: allocation.address, err: err.message }, "could not write the pod's VpcIPClaim"));
    }
    if (answer.ok && eip) {
      const refusal = await this.o.eips!.bind(details.pod!, eip, allocation.address, allocation.eniId, deadline);
      if (refusal) {
        await this.free(allocation, 'its EIP could not be bound');
        return refusal;
      }
    }
    return answer;
  }

  /** Makes the allocation's ENI the pod's interface; `repeated`: an ADD again, which finds it done or mends it. */
  private async plumbDirect(allocation: Allocation, repeated: boolean): Promise<Response> {
    const { pool, links } = this.o.direct!;
    const target = { ...allocation, direct: allocation.direct! };
    try {
      if (repeated && (await links.check(target)) === undefined) return ok({ attachment: attachmentOf(allocation) });
      allocation.direct!.hostName = await links.attach(target);
    } catch (err) {
      this.o.store.release(allocation.containerId, allocation.ifName, this.clock.now());
      // A fixed IP's ENI stays its claim's, for the next try.
      if (allocation.claim) await this.o.direct!.fixedIps?.released(allocation).catch(() => undefined);
      void this.save();
      pool.changed();
      this.o.log.error({ container: allocation.containerId, pod: allocation.pod, eni: allocation.eniId, err: (err as Error).message }, allocation.claim ? "making the ENI the pod's interface failed; the ENI stays reserved for its claim" : "making the ENI the pod's interface failed; the ENI is back in the pool");
      return refuse('datapath', (err as Error).message);
    }
    await this.save();
    this.o.log.info({ container: allocation.containerId, pod: allocation.pod, address: allocation.address, eni: allocation.eniId, hostName: allocation.direct!.hostName }, 'whole-ENI pod added');
    return ok({ attachment: attachmentOf(allocation) });
  }

  /** Frees every allocation the runtime no longer knows (CNI GC). */
  async gc(req: GcRequest): Promise<Response> {
    const valid = new Set(req.valid.map((v) => allocationKey(v.containerId, v.ifName)));
    let released = 0;
    for (const allocation of this.o.store.allocations()) {
      if (allocation.reserved || valid.has(allocationKey(allocation.containerId, allocation.ifName))) continue;
      released += await this.freeIfStale(allocation, 'GC: the runtime no longer knows it', () => true);
    }
    return ok({ released });
  }

  status(): Response {
    const { free } = this.o.store.counts();
    const shared = this.o.store.allocations().filter((a) => !a.direct).length;
    return ok({ ready: this.ready && (free > 0 || shared < this.o.pool.capacity()) });
  }

  /**
   * The periodic check: DELs the plugin left as notes, and allocations whose network namespace is gone
   * (a DEL that never came). Never touches an allocation whose ADD or DEL is in flight, or a young one.
   */
  async reconcile(): Promise<number> {
    let released = 0;
    for (const note of readdirSync(this.o.pendingDelDir).filter((n) => !n.endsWith('.tmp'))) {
      const path = `${this.o.pendingDelDir}/${note}`;
      let del: { containerId: string; ifName: string; at: number };
      try {
        del = JSON.parse(readFileSync(path, 'utf8')) as typeof del;
      } catch (err) {
        this.o.log.warn({ note: path, err: (err as Error).message }, 'unreadable pending DEL note; removing it');
        rmSync(path, { force: true });
        continue;
      }
      const allocation = this.o.store.get(del.containerId, del.ifName);
      // Only what was allocated before that DEL: a later ADD of the same container is a new pod.
      if (allocation && allocation.allocatedAt <= del.at) {
        const freed = await this.freeIfStale(allocation, 'a DEL made while the agent was away', () => true, { graceMs: 0 });
        if (freed === 0) continue; // busy now; the next pass takes it
        released += freed;
      }
      rmSync(path, { force: true });
    }
    // A claim's reservation has no pod and no namespace: it is checked against its claim instead.
    for (const allocation of this.o.store.allocations().filter((a) => !a.reserved)) {
      released += await this.freeIfStale(allocation, 'its network namespace is gone (or is no namespace)', (a) => this.o.datapath.netnsProblem(a.netns)?.gone === true);
    }
    // With an API server: a pod it no longer places on this node holds nothing here.
    const pods = this.o.podsOnNode?.();
    if (pods) {
      for (const allocation of this.o.store.allocations()) {
        if (!allocation.pod || allocation.reserved) continue;
        const key = `${allocation.pod.namespace}/${allocation.pod.name}`;
        released += await this.freeIfStale(allocation, `pod ${key} is no longer on this node`, () => !pods.has(key));
      }
    }
    await this.mendHostSides().catch((err: Error) => this.o.log.warn({ err: err.message }, "checking the pods' host side failed"));
    await this.o.fixedIps?.check().catch((err: Error) => this.o.log.warn({ err: err.message }, 'checking the reserved fixed addresses failed'));
    await this.o.direct?.fixedIps?.check().catch((err: Error) => this.o.log.warn({ err: err.message }, 'checking the reserved whole ENIs failed'));
    return released;
  }

  /**
   * The host side of the pods as planned, mended where it drifted (a rule or route someone deleted or
   * changed): the rules and routes read once, compared as facts (drift.ts), each pod mended under its own
   * lock and only while it still holds the same address, so that no DEL in between gets its rules back.
   */
  private async mendHostSides(): Promise<void> {
    const { datapath, store, log } = this.o;
    if (!this.o.mendDatapath || !datapath.hostFacts || !datapath.mendHost) return;
    const settled = (a: Allocation) => !a.reserved && !a.direct && a.hostIf && !this.locks.has(allocationKey(a.containerId, a.ifName)) && this.clock.now() - a.allocatedAt >= this.o.gcGraceMs;
    const pods = store.allocations().filter(settled);
    if (pods.length === 0) return;
    for (const drift of hostDrift(pods, await datapath.hostFacts())) {
      const a = pods.find((p) => p.containerId === drift.pod.containerId && p.address === drift.pod.address)!;
      await this.locked(a.containerId, a.ifName, async () => {
        if (store.get(a.containerId, a.ifName)?.address !== a.address) return;
        await datapath.mendHost!(drift.mend, `mending the host side of ${a.address}`);
        this.o.onMend?.();
        log.warn({ container: a.containerId, pod: a.pod, address: a.address, found: drift.found }, "mended the host side of a pod: it had drifted from the plan");
      });
    }
  }

  private async freeIfStale(allocation: Allocation, why: string, stale: (a: Allocation) => boolean, options: { graceMs?: number } = {}): Promise<number> {
    const key = allocationKey(allocation.containerId, allocation.ifName);
    if (this.locks.has(key) || this.clock.now() - allocation.allocatedAt < (options.graceMs ?? this.o.gcGraceMs)) return 0;
    return this.locked(allocation.containerId, allocation.ifName, async () => {
      const current = this.o.store.get(allocation.containerId, allocation.ifName);
      if (!current || current.address !== allocation.address || !stale(current)) return 0;
      await this.free(current, why);
      return 1;
    });
  }

  /**
   * `unrecorded`: nothing was written down for this container before this ADD, so a veth of its name is
   * what an earlier ADD of it left when the agent died between making the veth and writing the allocation
   * down (the runtime tried again without a DEL between): it goes, and the pod is plumbed anew.
   */
  private async plumb(allocation: Allocation, { unrecorded = false } = {}): Promise<Response> {
    const { datapath, log } = this.o;
    try {
      // The same container's old veth (a DEL just before) must be gone before its name is used again.
      await this.linkDeletes.get(allocation.hostIf);
      await datapath.addPod(allocation).catch(async (err: Error) => {
        const about = `container ${allocation.containerId} (${allocation.ifName}), which had no address here`;
        if (!unrecorded || !/\bEEXIST\b/.test(err.message) || !(await datapath.removeVeth(allocation.hostIf, about))) throw err;
        log.warn({ container: allocation.containerId, hostIf: allocation.hostIf, address: allocation.address }, `removed the veth ${allocation.hostIf} of ${about}: an ADD cut short before it was written down`);
        await datapath.addPod(allocation);
      });
    } catch (err) {
      this.o.store.release(allocation.containerId, allocation.ifName, this.clock.now());
      void this.save();
      log.error({ container: allocation.containerId, address: allocation.address, err: (err as Error).message }, 'plumbing failed; address returned to the pool');
      return refuse('datapath', (err as Error).message);
    }
    log.info({ container: allocation.containerId, pod: allocation.pod, address: allocation.address, eni: allocation.eniId, hostIf: allocation.hostIf }, 'pod added');
    return ok({ attachment: attachmentOf(allocation) });
  }

  private async free(allocation: Allocation, why: string): Promise<void> {
    const { store } = this.o;
    if (allocation.direct && this.o.direct) return this.freeDirect(allocation, why);
    if (allocation.direct) {
      store.release(allocation.containerId, allocation.ifName, this.clock.now());
      await this.save();
      this.o.log.warn({ container: allocation.containerId, pod: allocation.pod, eni: allocation.eniId, why }, 'a whole-ENI pod let go while --enable-direct-eni is off: its ENI is not moved back nor given back by this agent');
      return;
    }
    // An EIP's address goes to no other pod before the EIP is off it.
    const eipOff = allocation.eip && allocation.pod && this.o.eips ? (await this.o.eips.unbind(allocation.pod, allocation.address)).off : Promise.resolve();
    const { linkGone } = await this.o.datapath.removePod(allocation);
    const deleting = this.deleting(allocation.hostIf, linkGone.catch((err: Error) => this.o.log.warn({ hostIf: allocation.hostIf, address: allocation.address, err: err.message }, 'deleting the old veth failed')));
    store.release(allocation.containerId, allocation.ifName, this.clock.now());
    if (allocation.claim && this.o.fixedIps) {
      // A fixed address: reserved for its claim, or, the claim gone, back to the cloud. Kept from every
      // other pod meanwhile.
      store.cool(allocation.address, Infinity);
      const outcome = await this.o.fixedIps.released(allocation);
      void Promise.allSettled([deleting, eipOff]).finally(() => store.cool(allocation.address, this.clock.now() + this.o.cooldownMs));
      await this.save();
      this.o.log.info({ container: allocation.containerId, pod: allocation.pod, address: allocation.address, why, outcome }, 'fixed address off its pod');
      return;
    }
    // The address rests until its old veth is gone and then for the cool-down, so that nothing still
    // addressed to the old pod reaches a new one.
    store.cool(allocation.address, Infinity);
    void Promise.allSettled([deleting, eipOff]).finally(() => store.cool(allocation.address, this.clock.now() + this.o.cooldownMs));
    await this.save();
    void this.o.pool.kick();
    this.o.log.info({ container: allocation.containerId, pod: allocation.pod, address: allocation.address, eni: allocation.eniId, why }, 'address freed');
  }

  /** A veth's deletion in flight, kept until it is done so that an ADD of the same container waits for its name. */
  private deleting(hostIf: string, gone: Promise<void>): Promise<void> {
    const deleting = gone.finally(() => {
      if (this.linkDeletes.get(hostIf) === deleting) this.linkDeletes.delete(hostIf);
    });
    this.linkDeletes.set(hostIf, deleting);
    return deleting;
  }

  /**
   * A DEL with nothing written down for its container may still have a veth to remove: an ADD whose
   * veth was made before its allocation was written (the two overlap) and then cut short by the agent's
   * death. The name is made only for this container and interface.
   */
  private removeUnrecorded(containerId: string, ifName: string): void {
    const hostIf = hostIfName(containerId, ifName);
    if (this.linkDeletes.has(hostIf)) return;
    const about = `container ${containerId} (${ifName}), which has no address here`;
    void this.deleting(hostIf, this.o.datapath.removeVeth(hostIf, about).then(
      (removed) => {
        if (removed) this.o.log.warn({ container: containerId, hostIf }, `removed the veth ${hostIf} of ${about}: an ADD cut short before it was written down`);
      },
      (err: Error) => this.o.log.warn({ container: containerId, hostIf, err: err.message }, `deleting the veth ${hostIf} of ${about} failed`),
    ));
  }

  /** A whole ENI back from its pod to the node, and to the pool. */
  private async freeDirect(allocation: Allocation, why: string): Promise<void> {
    const { pool, links } = this.o.direct!;
    // The ENI goes to no other pod before the EIP is off its address.
    const eipOff = allocation.eip && allocation.pod && this.o.eips ? (await this.o.eips.unbind(allocation.pod, allocation.address)).off : undefined;
    if (eipOff) pool.holdUntil(allocation.eniId, eipOff);
    await links.detach({ ...allocation, direct: allocation.direct! }).catch((err: Error) => {
      // Left in the pod's namespace: the pool sees its link missing and gives the ENI back to ipamd.
      this.o.log.warn({ container: allocation.containerId, eni: allocation.eniId, err: err.message }, 'moving the ENI back to the node failed');
    });
    // A fixed IP's ENI: reserved for its claim on this node, or, the claim gone, a spare one again. Kept
    // from every other pod and from release while its claim is read.
    let settled = () => {};
    if (allocation.claim) pool.holdUntil(allocation.eniId, new Promise<void>((resolve) => (settled = resolve)));
    this.o.store.release(allocation.containerId, allocation.ifName, this.clock.now());
    pool.returned(allocation.eniId);
    let outcome: string | undefined;
    try {
      outcome = allocation.claim && this.o.direct!.fixedIps ? await this.o.direct!.fixedIps.released(allocation) : undefined;
    } finally {
      settled();
    }
    await this.save();
    pool.changed();
    this.o.log.info({ container: allocation.containerId, pod: allocation.pod, address: allocation.address, eni: allocation.eniId, why, ...(outcome ? { outcome } : {}) }, 'whole ENI back from its pod');
  }

  /** Writes the checkpoint (the fixed IPs' reservations change it too). */
  saveCheckpoint(): void {
    void this.save();
  }

  /**
   * Writes the checkpoint; resolves once it is on file. A failed write is logged here, and rejects for the
   * caller that waits for it (an ADD, which then fails rather than answer with its address unrecorded).
   */
  private save(): Promise<void> {
    const saving = this.o.checkpoint.save({ allocations: this.o.store.allocations(), cooling: this.o.store.coolingEntries(this.o.cooldownMs) });
    saving.catch((err: Error) => this.o.log.error({ err: err.message }, 'the checkpoint could not be written'));
    this.o.onChange?.();
    return saving;
  }

  private async locked<T>(containerId: string, ifName: string, fn: () => Promise<T>): Promise<T> {
    const key = allocationKey(containerId, ifName);
    const before = this.locks.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}

function attachmentOf(a: Allocation) {
  if (a.direct) return { address: a.address, gateway: a.direct.gateway, mac: a.direct.mac, hostIf: '', eniId: a.eniId, prefix: a.direct.prefix };
  return { address: a.address, gateway: POD_GATEWAY, mac: podMac(a.address), hostIf: a.hostIf, eniId: a.eniId };
}

function podName(req: { pod?: { namespace: string; name: string } | undefined; containerId: string }): string {
  return req.pod ? `pod ${req.pod.namespace}/${req.pod.name}` : `container ${req.containerId}`;
}
