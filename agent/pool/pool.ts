// The pool manager: keeps free addresses between the warm targets by asking the cloud for more
// (on the ENIs in hand first, a new ENI only when they are full) and giving back what is not needed.
// One change at a time: `kick()` schedules a pass, and passes never overlap.
import { EventEmitter } from 'node:events';
import type { Cloud, Eni } from '../cloud/cloud.ts';
import { MAX_IPS_PER_CALL } from '../cloud/cloud.ts';
import type { Datapath } from '../datapath/linux.ts';
import { nthAddress, parseCidr } from '../../shared/ip.ts';
import type { PoolEni, PoolStore } from './store.ts';

export interface PoolOptions {
  cloud: Cloud;
  store: PoolStore;
  datapath: Datapath;
  instanceId: string;
  zone: string;
  /** subnets pod addresses may come from; the one with most free addresses in the node's zone is used */
  subnetIds: string[];
  securityGroupIds: string[];
  warm: { min: number; max: number };
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export class Pool {
  private readonly changed = new EventEmitter();
  private running: Promise<void> | undefined;
  private again = false;
  private limits = { enis: 0, ipsPerEni: 0 };
  private subnetCidrs = new Map<string, string>();
  /** ADDs waiting for an address: the pool grows by at least this many, in one batch */
  private waiters = 0;
  /** the last error that stopped the pool from growing, shown in status */
  lastError: string | undefined;

  constructor(private readonly o: PoolOptions) {
    this.changed.setMaxListeners(0);
  }

  /** Learns the node's quota and takes over the ENIs already attached to it. */
  async start(): Promise<void> {
    const { cloud, instanceId } = this.o;
    this.limits = await cloud.limits(instanceId);
    for (const subnet of await cloud.subnets(this.o.subnetIds)) this.subnetCidrs.set(subnet.id, subnet.cidr);
    for (const eni of await cloud.enisOf(instanceId)) {
      if (eni.primary) continue;
      await this.adopt(eni);
    }
    this.o.log('info', `pool: ${instanceId} may hold ${this.limits.enis} ENIs of ${this.limits.ipsPerEni} addresses; took over ${this.o.store.enis.size} ENIs`);
  }

  /** Schedules a pass over the pool; returns when that pass has run. */
  kick(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass().catch((err: Error) => {
          this.lastError = err.message;
          this.o.log('error', `pool: ${err.message}`);
        });
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
      this.changed.emit('changed');
    });
    return this.running;
  }

  /** Resolves true once a free address exists, false after `timeoutMs`. */
  async waitForFree(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    this.waiters++;
    try {
      for (let round = 0; this.o.store.counts().free === 0; round++) {
        const left = deadline - Date.now();
        if (left <= 0) return false;
        // A pass that could not grow the pool ends at once: pause before asking again rather than spin.
        if (round > 0) await new Promise((r) => setTimeout(r, Math.min(200, left)));
        const pass = this.kick();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
          void pass.finally(() => {
            clearTimeout(timer);
            resolve();
          });
          this.changed.once('changed', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return true;
    } finally {
      this.waiters--;
    }
  }

  /** Secondary addresses the node can hold at most. */
  capacity(): number {
    return Math.max(0, this.limits.enis - 1) * Math.max(0, this.limits.ipsPerEni - 1);
  }

  private async pass(): Promise<void> {
    const { store, warm } = this.o;
    for (;;) {
      const { free } = store.counts();
      // Waiting ADDs count as demand: with a min of 0 the pool still grows for them, all in one batch.
      const min = Math.max(warm.min, this.waiters);
      const max = Math.max(warm.max, this.waiters);
      if (free < min) {
        if (!(await this.grow(min - free))) return;
      } else if (free > max) {
        if (!(await this.shrink(free - max))) return;
      } else {
        this.lastError = undefined;
        return;
      }
      this.changed.emit('changed');
    }
  }

  /** Adds up to `wanted` addresses in one cloud call; false when the node cannot grow. */
  private async grow(wanted: number): Promise<boolean> {
    const { cloud, store } = this.o;
    const roomy = [...store.enis.values()].filter((e) => e.table !== undefined && e.addresses.size < e.capacity);
    roomy.sort((a, b) => b.addresses.size - a.addresses.size);
    const eni = roomy[0];
    if (eni) {
      const count = Math.min(wanted, eni.capacity - eni.addresses.size, MAX_IPS_PER_CALL);
      const added = await cloud.assignIps(eni.id, count);
      for (const address of added) eni.addresses.add(address);
      this.o.log('info', `pool: assigned ${added.join(', ')} to ${eni.id}`);
      return true;
    }
    if (store.enis.size >= this.limits.enis - 1) {
      this.lastError = `ENI quota reached: ${this.o.instanceId} holds ${store.enis.size + 1} of ${this.limits.enis} ENIs, all full`;
      this.o.log('warn', `pool: ${this.lastError}`);
      return false;
    }
    const subnet = await this.roomiestSubnet();
    const created = await cloud.createEni({
      subnetId: subnet,
      name: `${this.o.instanceId}-pods`,
      securityGroupIds: this.o.securityGroupIds,
      tags: { 'eni-cni.node': this.o.instanceId },
      secondaryIps: Math.min(wanted, this.limits.ipsPerEni - 1, MAX_IPS_PER_CALL),
    });
    this.o.log('info', `pool: created ${created.id} in ${subnet} with ${created.secondaryIps.length} addresses; attaching`);
    try {
      await cloud.attachEni(created.id, this.o.instanceId);
    } catch (err) {
      // An ENI that cannot be attached is given back rather than left behind.
      await cloud.deleteEni(created.id).catch(() => undefined);
      throw err;
    }
    await this.adopt({ ...created, attachedTo: this.o.instanceId });
    return true;
  }

  /** Gives back up to `excess` free addresses, from the emptiest ENI; an ENI left with none goes too. */
  private async shrink(excess: number): Promise<boolean> {
    const { cloud, store } = this.o;
    const used = (eni: PoolEni) => [...eni.addresses].filter((a) => store.holderOf(a)).length;
    const candidates = [...store.enis.values()].filter((e) => e.addresses.size > used(e)).sort((a, b) => used(a) - used(b));
    const eni = candidates[0];
    if (!eni) return false;
    const leaving = [...eni.addresses].filter((a) => !store.holderOf(a)).slice(0, Math.min(excess, MAX_IPS_PER_CALL));
    // Out of the pool before the call, so no pod is given an address on its way out.
    for (const address of leaving) eni.addresses.delete(address);
    try {
      await cloud.unassignIps(eni.id, leaving);
    } catch (err) {
      for (const address of leaving) eni.addresses.add(address);
      throw err;
    }
    this.o.log('info', `pool: gave back ${leaving.join(', ')} from ${eni.id}`);
    if (eni.addresses.size === 0) {
      store.removeEni(eni.id);
      await cloud.detachEni(eni.id, this.o.instanceId);
      await cloud.deleteEni(eni.id);
      this.o.log('info', `pool: detached and deleted ${eni.id}, which held no addresses`);
    }
    return true;
  }

  private async adopt(eni: Eni): Promise<void> {
    const cidr = this.subnetCidrs.get(eni.subnetId) ?? (await this.o.cloud.subnets([eni.subnetId]))[0]?.cidr;
    if (!cidr) throw new Error(`the subnet ${eni.subnetId} of ${eni.id} is unknown`);
    this.subnetCidrs.set(eni.subnetId, cidr);
    const gateway = nthAddress(parseCidr(cidr), 1);
    const link = await this.o.datapath.setupEni({ id: eni.id, mac: eni.mac, primaryIp: eni.primaryIp, gateway });
    this.o.store.addEni({
      id: eni.id,
      mac: eni.mac,
      subnetId: eni.subnetId,
      primaryIp: eni.primaryIp,
      gateway,
      capacity: Math.max(0, this.limits.ipsPerEni - 1),
      ifName: link.ifName,
      table: link.table,
      addresses: new Set(eni.secondaryIps),
    });
    this.o.log('info', `pool: ${eni.id} is ${link.ifName} (table ${link.table}) with ${eni.secondaryIps.length} addresses`);
  }

  private async roomiestSubnet(): Promise<string> {
    const subnets = (await this.o.cloud.subnets(this.o.subnetIds)).filter((s) => s.zone === this.o.zone && s.availableIps > 0);
    subnets.sort((a, b) => b.availableIps - a.availableIps);
    const best = subnets[0];
    if (!best) throw new Error(`no subnet of ${this.o.subnetIds.join(', ')} in ${this.o.zone} has free addresses`);
    return best.id;
  }
}
