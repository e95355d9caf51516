// The agent's handlers with a real store and fakes for the pool, the checkpoint and the datapath:
// the orderings that are hard to force on a real node (GC in the middle of an ADD, a failing datapath).
import { pino } from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, type AgentOptions } from './agent.ts';
import type { Datapath, PodTarget } from './datapath/linux.ts';
import type { Pool } from './pool/pool.ts';
import type { CheckpointState } from './pool/checkpoint.ts';
import { PoolStore } from './pool/store.ts';
import { hostIfName } from '../shared/names.ts';

class FakeDatapath implements Datapath {
  pods = new Map<string, PodTarget>();
  missingNetns = new Set<string>();
  /** when set, addPod waits for it: an ADD held in flight */
  gate?: Promise<void>;
  failNext = false;
  async setupEni() {
    return { ifName: 'eth1', table: 2003, primaryIp: '', gateway: '' };
  }
  async addPod(pod: PodTarget) {
    await this.gate;
    if (this.failNext) {
      this.failNext = false;
      throw new Error(`cannot plumb ${pod.address}`);
    }
    // As the kernel: a veth's name is taken once.
    if (this.pods.has(pod.hostIf)) throw new Error(`creating the veth ${pod.hostIf}: EEXIST`);
    this.pods.set(pod.hostIf, pod);
  }
  /** when set, the veth of a removed pod stays until the test resolves this */
  linkGone?: Promise<void>;
  async removePod(pod: { hostIf: string }) {
    this.pods.delete(pod.hostIf);
    return { linkGone: this.linkGone ?? Promise.resolve() };
  }
  async removeVeth(hostIf: string) {
    await this.linkGone;
    return this.pods.delete(hostIf);
  }
  async checkPod(pod: PodTarget) {
    return this.pods.has(pod.hostIf) ? undefined : `${pod.hostIf} is missing`;
  }
  keepSysctls() {
    return [];
  }
  netnsProblem(netns: string) {
    return this.missingNetns.has(netns) ? { why: `${netns} does not exist`, gone: true } : undefined;
  }
}

const notesDirs: string[] = [];
afterEach(() => {
  for (const dir of notesDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function notesDir(): string {
  const dir = mkdtempSync(`${tmpdir()}/eni-cni-notes-`);
  notesDirs.push(dir);
  return dir;
}

function setup(addresses = ['10.0.16.2', '10.0.16.3', '10.0.16.4'], podAnnotations?: (ns: string, name: string) => Promise<Record<string, string> | undefined>, extra: Partial<AgentOptions> = {}) {
  let now = 1_000_000;
  const store = new PoolStore({ now: () => now });
  store.addEni({ id: 'eni-1', mac: 'aa', subnetId: 'subnet-1', primaryIp: '10.0.16.10', gateway: '10.0.16.1', subnetCidr: '10.0.16.0/24', capacity: 9, ifName: 'eth1', table: 2003, addresses: new Set(addresses) });
  const saved: CheckpointState[] = [];
  const datapath = new FakeDatapath();
  const pool = { waitForFree: async () => store.counts().free > 0, kick: async () => {}, capacity: () => 9, lastError: undefined } as unknown as Pool;
  const agent = new Agent({
    store,
    pool,
    datapath,
    checkpoint: { load: () => saved.at(-1) ?? { allocations: [], cooling: {} }, save: (state) => {
      saved.push(structuredClone(state));
      return Promise.resolve();
    } },
    log: pino({ level: 'silent' }),
    pendingDelDir: notesDir(),
    addWaitMs: 50,
    gcGraceMs: 1000,
    cooldownMs: 5000,
    ...(podAnnotations ? { podAnnotations } : {}),
    ...extra,
    clock: { now: () => now },
  });
  agent.ready = true;
  return { agent, store, datapath, saved, advance: (ms: number) => (now += ms) };
}

const add = (containerId: string, netns = `/var/run/netns/${containerId}`) => ({ op: 'add' as const, containerId, netns, ifName: 'eth0' });

/**
 * DELs a container while its veth's deletion is held, ADDs it again at once, and checks that the ADD waits
 * for the deletion (its veth has the same name as the old one); returns that ADD's answer.
 */
async function delThenAddAgain(agent: Agent, datapath: FakeDatapath, containerId: string, afterDel: () => void = () => undefined) {
  let gone!: () => void;
  datapath.linkGone = new Promise((r) => (gone = r));
  expect((await agent.del({ op: 'del', containerId, ifName: 'eth0' })).ok).toBe(true);
  afterDel();
  let answered = false;
  const again = agent.add(add(containerId)).then((r) => ((answered = true), r));
  await new Promise((r) => setTimeout(r, 20));
  expect(answered).toBe(false);
  datapath.linkGone = undefined;
  gone();
  return again;
}

describe('agent', () => {
  it('gives an address, saves it before answering, and gives the same answer twice', async () => {
    const { agent, saved } = setup();
    const first = await agent.add(add('c1'));
    expect(first.ok).toBe(true);
    expect(saved.at(-1)!.allocations.map((a) => a.address)).toEqual([first.attachment!.address]);
    const again = await agent.add(add('c1'));
    expect(again.attachment).toEqual(first.attachment);
  });

  it('refuses with no-address when the pool stays empty, naming the pod', async () => {
    const { agent } = setup([]);
    const r = await agent.add({ ...add('c1'), pod: { namespace: 'web', name: 'nginx-0' } });
    expect(r).toMatchObject({ ok: false, error: { code: 'no-address' } });
    expect(r.error!.message).toContain('web/nginx-0');
  });

  it('refuses a pod asking for a mode the node does not serve, and serves others even when the API server is away', async () => {
    const annotations: Record<string, Record<string, string>> = { whole: { 'tke.cloud.tencent.com/networks': 'tke-direct-eni' }, odd: { 'tke.cloud.tencent.com/networks': 'flannel' } };
    const { agent } = setup(undefined, async (_ns, name) => {
      if (name === 'down') throw new Error('connect ECONNREFUSED');
      return annotations[name];
    });
    const ask = (name: string) => agent.add({ ...add(name), pod: { namespace: 'shop', name } });
    expect(await ask('whole')).toMatchObject({ ok: false, error: { code: 'unsupported-mode', message: expect.stringContaining('shop/whole asks for tke-direct-eni') } });
    expect(await ask('odd')).toMatchObject({ ok: false, error: { code: 'unsupported-mode', message: expect.stringContaining('"flannel"') } });
    expect((await ask('plain')).ok).toBe(true);
    expect((await ask('down')).ok).toBe(true);
  });

  it("removes the veth of a container it has no address of on DEL (an ADD cut short before it was written down), and a new ADD waits for that", async () => {
    const { agent, datapath } = setup();
    // Left by an ADD whose agent died between making the veth and writing the allocation down.
    const hostIf = hostIfName('c1', 'eth0');
    datapath.pods.set(hostIf, { containerId: 'c1', ifName: 'eth0', hostIf, address: '10.0.16.2', table: 2003, netns: '/var/run/netns/c1' });
    datapath.pods.set('eni-other', { containerId: 'c2', ifName: 'eth0', hostIf: 'eni-other', address: '10.0.16.3', table: 2003, netns: '/var/run/netns/c2' });
    const again = await delThenAddAgain(agent, datapath, 'c1');
    expect(again.ok).toBe(true);
    expect(datapath.pods.get(hostIf)?.address).toBe(again.attachment!.address);
    // Nobody else's veth is touched, and a DEL of nothing finds nothing to do.
    expect((await agent.del({ op: 'del', containerId: 'c3', ifName: 'eth0' })).ok).toBe(true);
    expect([...datapath.pods.keys()].sort()).toEqual([hostIf, 'eni-other'].sort());
  });

  it('plumbs a container again when an ADD of it left its veth unrecorded and the runtime retries without DEL', async () => {
    const { agent, datapath, store } = setup();
    const hostIf = hostIfName('c1', 'eth0');
    datapath.pods.set(hostIf, { containerId: 'c1', ifName: 'eth0', hostIf, address: '10.0.16.9', table: 2003, netns: '/var/run/netns/c1' });
    const answer = await agent.add(add('c1'));
    expect(answer.ok).toBe(true);
    expect(datapath.pods.get(hostIf)?.address).toBe(answer.attachment!.address);
    // A recorded pod's veth is not taken for a leftover: an ADD of another container whose name is taken
    // (here, by a link the fake says exists) fails and keeps nothing.
    const other = hostIfName('c2', 'eth0');
    datapath.pods.set(other, { containerId: 'c2', ifName: 'eth0', hostIf: other, address: '10.0.16.8', table: 2003, netns: '/var/run/netns/c2' });
    datapath.removeVeth = async () => false;
    const refused = await agent.add(add('c2'));
    expect(refused).toMatchObject({ ok: false, error: { code: 'datapath', message: expect.stringContaining('EEXIST') } });
    expect(store.allocations().map((a) => a.containerId)).toEqual(['c1']);
  });

  it('holds a new ADD of the same container until the old veth of its fixed address is gone', async () => {
    const fixedIps = { released: async () => 'reserved' as const } as unknown as NonNullable<AgentOptions['fixedIps']>;
    const { agent, store, datapath } = setup(undefined, undefined, { fixedIps });
    expect((await agent.add(add('c1'))).ok).toBe(true);
    store.get('c1', 'eth0')!.claim = { namespace: 'shop', name: 'db-0' };
    expect((await delThenAddAgain(agent, datapath, 'c1')).ok).toBe(true);
  });

  it('holds a freed address and a new ADD of the same container until the old veth is gone', async () => {
    const { agent, store, datapath } = setup(['10.0.16.2', '10.0.16.3']);
    const first = await agent.add(add('c1'));
    const second = await delThenAddAgain(agent, datapath, 'c1', () => expect(store.counts()).toMatchObject({ free: 1, cooling: 1 }));
    expect(second.ok).toBe(true);
    // And it got the other address: the freed one still cools down.
    expect(second.attachment!.address).not.toBe(first.attachment!.address);
    expect(store.isCooling(first.attachment!.address)).toBe(true);
  });

  it('refuses a namespace it cannot plumb before taking an address', async () => {
    const { agent, store, datapath, saved } = setup();
    datapath.missingNetns.add('/dev/null');
    const r = await agent.add({ ...add('c1', '/dev/null'), pod: { namespace: 'web', name: 'nginx-0' } });
    expect(r).toMatchObject({ ok: false, error: { code: 'bad-netns', message: expect.stringContaining('web/nginx-0: CNI_NETNS /dev/null') } });
    expect(store.counts()).toMatchObject({ assigned: 0, free: 3 });
    expect(saved).toEqual([]);
  });

  it('leaves a running pod alone when its container is ADDed again into a namespace it cannot plumb', async () => {
    const { agent, store, datapath } = setup();
    const first = await agent.add(add('c1'));
    datapath.missingNetns.add('/dev/null');
    expect(await agent.add(add('c1', '/dev/null'))).toMatchObject({ ok: false, error: { code: 'bad-netns' } });
    expect(store.get('c1', 'eth0')?.address).toBe(first.attachment!.address);
    expect(datapath.pods.size).toBe(1);
  });

  it('returns the address when plumbing fails', async () => {
    const { agent, store, datapath } = setup();
    datapath.failNext = true;
    const r = await agent.add(add('c1'));
    expect(r).toMatchObject({ ok: false, error: { code: 'datapath' } });
    expect(store.counts()).toMatchObject({ assigned: 0, free: 3 });
  });

  it('never lets GC or the periodic check take an address whose ADD is in flight', async () => {
    const { agent, store, datapath, advance } = setup();
    let open!: () => void;
    datapath.gate = new Promise((r) => (open = r));
    const adding = agent.add(add('c1'));
    await new Promise((r) => setTimeout(r, 10));
    expect(store.get('c1', 'eth0')).toBeDefined();
    // Its namespace looks gone while its ADD is held: still not the GC's to take.
    datapath.missingNetns.add('/var/run/netns/c1');
    advance(10_000);
    expect(await agent.gc({ op: 'gc', valid: [] })).toMatchObject({ ok: true, released: 0 });
    expect(await agent.reconcile()).toBe(0);
    datapath.missingNetns.delete('/var/run/netns/c1');
    open();
    expect((await adding).ok).toBe(true);
    expect(store.get('c1', 'eth0')).toBeDefined();
  });

  it('frees in the periodic check what no namespace holds any more, once past the grace period', async () => {
    const { agent, store, datapath, advance } = setup();
    await agent.add(add('young'));
    await agent.add(add('old'));
    datapath.missingNetns.add('/var/run/netns/young');
    datapath.missingNetns.add('/var/run/netns/old');
    advance(500);
    expect(await agent.reconcile()).toBe(0);
    advance(600);
    expect(await agent.reconcile()).toBe(2);
    await new Promise((r) => setTimeout(r, 0));
    expect(store.counts()).toMatchObject({ assigned: 0, free: 1, cooling: 2 });
    advance(5000);
    expect(store.counts()).toMatchObject({ assigned: 0, free: 3, cooling: 0 });
  });

  it('serialises ADD and DEL of one container: a DEL right after an ADD leaves nothing', async () => {
    const { agent, store, datapath } = setup();
    const [added, deleted] = await Promise.all([agent.add(add('c1')), agent.del({ op: 'del', containerId: 'c1', ifName: 'eth0' })]);
    expect(added.ok && deleted.ok).toBe(true);
    expect(store.get('c1', 'eth0')).toBeUndefined();
    expect(datapath.pods.size).toBe(0);
  });

  it('restores every checkpointed allocation, held even before its ENI is known; the periodic check frees those whose pod is gone', async () => {
    const first = setup();
    await first.agent.add(add('c1'));
    const { allocations } = first.saved.at(-1)!;
    // On an ENI the pool does not hold (yet): its address must not be free when the ENI shows up.
    const elsewhere = { ...allocations[0]!, containerId: 'elsewhere', address: '10.0.99.9', eniId: 'eni-late', netns: '/var/run/netns/elsewhere' };
    const second = setup();
    second.saved.push({ allocations: [...allocations, elsewhere], cooling: { '10.0.16.4': 1_000_000 + 3000 } });
    second.agent.restore();
    expect(second.store.get('c1', 'eth0')?.address).toBe(allocations[0]!.address);
    second.store.addEni({ id: 'eni-late', mac: 'bb', subnetId: 'subnet-9', primaryIp: '10.0.99.10', gateway: '10.0.99.1', subnetCidr: '10.0.99.0/24', capacity: 9, ifName: 'eth2', table: 2004, addresses: new Set(['10.0.99.9']) });
    expect(second.store.freeAddresses().map((f) => f.address)).not.toContain('10.0.99.9');
    second.datapath.missingNetns.add('/var/run/netns/elsewhere');
    second.advance(2000);
    expect(await second.agent.reconcile()).toBe(1);
    expect(second.store.get('elsewhere', 'eth0')).toBeUndefined();
    second.advance(-2000);
    // The cool-down survives the restart.
    expect(second.store.isCooling('10.0.16.4')).toBe(true);
    second.advance(3000);
    expect(second.store.isCooling('10.0.16.4')).toBe(false);
  });
});
