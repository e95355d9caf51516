// The agent's side of the NEC contract, against an in-memory NEC with conditional writes: what is asked is
// asked once, what ipamd gave counts once the pool has looked, offers go and come back, silence is named.
import { describe, expect, it } from 'vitest';
import { ConflictError, type Nec } from '../k8s/nec.ts';
import { NecSupply, type NecPort } from './nec-supply.ts';

class MemoryNec implements NecPort {
  nec: Nec;
  writes: Array<Record<string, unknown>> = [];

  constructor(ips: string[] = []) {
    this.nec = {
      metadata: { name: 'node-1', resourceVersion: '1' },
      spec: { instanceId: 'ins-1', quota: { enis: 4, ipsPerEni: 10 } },
      status: { ipamd: { enis: [{ eniId: 'eni-1', mac: '52:54:00:00:00:01', primaryIP: '10.0.16.2', subnetId: 'subnet-1', subnetCIDR: '10.0.16.0/24', ips }] } },
    };
  }

  current() {
    return this.nec;
  }

  until() {
    return Promise.resolve(this.nec);
  }

  async patchStatus(status: Record<string, unknown>, resourceVersion?: string) {
    if (resourceVersion && resourceVersion !== this.nec.metadata!.resourceVersion) throw new ConflictError('changed');
    this.writes.push(status);
    const next = structuredClone(this.nec);
    const release = { ...(next.status!.release ?? {}) } as Record<string, unknown>;
    for (const [k, v] of Object.entries((status.release ?? {}) as Record<string, unknown>)) {
      if (v === null) delete release[k];
      else release[k] = v;
    }
    next.status = { ...next.status, ...(status.demand ? { demand: status.demand as never } : {}), release: release as never };
    next.metadata!.resourceVersion = String(Number(next.metadata!.resourceVersion) + 1);
    this.nec = next;
  }

  /** ipamd gives addresses. */
  give(ips: string[]) {
    const next = structuredClone(this.nec);
    next.status!.ipamd!.enis[0]!.ips.push(...ips);
    next.metadata!.resourceVersion = String(Number(next.metadata!.resourceVersion) + 1);
    this.nec = next;
  }
}

function supply(nec: MemoryNec, clock = { now: () => 0 }) {
  return new NecSupply({ nec, nodeName: 'node-1', inForce: () => ({ maxEnis: 3, maxIpsPerEni: 9 }), log: () => {}, clock });
}

describe('NecSupply', () => {
  it('asks once: what is asked counts as pending until the pool has looked at what ipamd gave', async () => {
    const nec = new MemoryNec();
    const s = supply(nec);
    await s.limits();
    await s.look();
    await s.assign('eni-1', 3, false);
    expect(nec.nec.status?.demand).toMatchObject({ addresses: 3, urgent: false, maxENI: 3, maxIPPerENI: 9 });
    expect(s.pending()).toBe(3);
    // ipamd gives them; until the pool looks, they are still pending (not free in the pool, not asked again).
    nec.give(['10.0.16.3', '10.0.16.4', '10.0.16.5']);
    expect(s.pending()).toBe(3);
    const view = await s.look();
    expect(view.enis[0]!.secondaryIps).toEqual(['10.0.16.3', '10.0.16.4', '10.0.16.5']);
    expect(s.pending()).toBe(0);
    // More: the demand grows from what is held.
    await s.createEni(2, true);
    expect(nec.nec.status?.demand).toMatchObject({ addresses: 5, urgent: true });
  });

  it('offers idle addresses and lowers its demand; they leave its view at once', async () => {
    const nec = new MemoryNec(['10.0.16.3', '10.0.16.4', '10.0.16.5']);
    const s = supply(nec);
    await s.limits();
    await s.look();
    await s.release('eni-1', ['10.0.16.5']);
    expect(nec.nec.status?.release).toEqual({ '10.0.16.5': 'offered' });
    expect(nec.nec.status?.demand?.addresses).toBe(2);
    expect((await s.look()).enis[0]!.secondaryIps).toEqual(['10.0.16.3', '10.0.16.4']);
    // An empty ENI is offered whole; it leaves the view.
    await s.deleteEni('eni-1');
    expect((await s.look()).enis).toEqual([]);
  });

  it('lowers a demand still pending once the pool would keep fewer, and no longer calls it urgent', async () => {
    const nec = new MemoryNec(['10.0.16.3', '10.0.16.4']);
    const s = supply(nec);
    await s.limits();
    await s.look();
    await s.createEni(8, true);
    expect(nec.nec.status?.demand).toMatchObject({ addresses: 10, urgent: true });
    // The burst went away: the pool would keep at most 5 now.
    await s.trim(5);
    expect(nec.nec.status?.demand).toMatchObject({ addresses: 5, urgent: false });
    expect(s.pending()).toBe(3);
    // Never below what the node holds, and never raised by a trim.
    await s.trim(1);
    expect(nec.nec.status?.demand?.addresses).toBe(2);
    const writes = nec.writes.length;
    await s.trim(9);
    expect(nec.writes.length).toBe(writes);
  });

  it('asks for no released address again when it grows before looking', async () => {
    const nec = new MemoryNec(['10.0.16.3', '10.0.16.4', '10.0.16.5']);
    const s = supply(nec);
    await s.limits();
    await s.look();
    await s.release('eni-1', ['10.0.16.5']);
    // No look in between: the pool's last view still has the released address.
    await s.assign('eni-1', 1, false);
    expect(nec.nec.status?.demand?.addresses).toBe(3);
  });

  it('takes back an offer for a waiting pod, with a write conditional on the version it read', async () => {
    const nec = new MemoryNec(['10.0.16.3', '10.0.16.4']);
    const s = supply(nec);
    await s.limits();
    await s.look();
    await s.release('eni-1', ['10.0.16.3', '10.0.16.4']);
    await s.look();
    await s.assign('eni-1', 1, true);
    expect(Object.keys(nec.nec.status?.release ?? {})).toHaveLength(1);
    expect((await s.look()).enis[0]!.secondaryIps).toHaveLength(1);
    // ipamd took the other meanwhile: the conditional write fails, nothing is taken back, more is asked.
    const stale = nec.nec.metadata!.resourceVersion!;
    nec.nec = { ...structuredClone(nec.nec), metadata: { ...nec.nec.metadata, resourceVersion: String(Number(stale) + 1) } };
    const taken = nec.nec.status!.release!;
    for (const k of Object.keys(taken)) taken[k] = 'releasing';
    await s.assign('eni-1', 1, true);
    expect(Object.values(nec.nec.status?.release ?? {})).toEqual(['releasing']);
    expect(nec.nec.status?.demand?.addresses).toBe(2);
  });

  it('after a restart, counts the silence on a demand it left from its start, not from the epoch', async () => {
    let now = 1_000_000;
    const nec = new MemoryNec();
    nec.nec.status!.demand = { addresses: 4, urgent: false, maxENI: 3, maxIPPerENI: 9 };
    const s = supply(nec, { now: () => now });
    await s.limits();
    await s.look();
    expect(s.pending()).toBe(4);
    expect(s.problem()).toBeUndefined();
    now += 11_000;
    expect(s.problem()).toMatch(/has not answered .* in 11 s/);
  });

  it("names ipamd's silence once a demand has gone unanswered for 10 s, and ipamd's reason when it gives one", async () => {
    let now = 0;
    const nec = new MemoryNec();
    const s = supply(nec, { now: () => now });
    await s.limits();
    await s.look();
    await s.assign('eni-1', 2, true);
    now = 9_000;
    expect(s.problem()).toBeUndefined();
    now = 12_000;
    expect(s.problem()).toMatch(/tke-eni-ipamd has not answered the demand of node-1 for 2 more addresses in 12 s/);
    nec.nec.status!.ipamd!.problem = { reason: 'SubnetExhausted', message: 'node node-1: no subnet in ap-guangzhou-3 has free addresses' };
    expect(s.problem()).toBe('SubnetExhausted: node node-1: no subnet in ap-guangzhou-3 has free addresses');
  });
});
