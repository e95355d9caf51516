// Fixed IPs through crashes and races on a two-node lab cluster: ipamd's leader killed while it moves an
// address, the waiting node's agent killed meanwhile, two pods of one name on two nodes at once (the first
// still being torn down when the second starts). Each time the address ends on one ENI and one pod, the
// claim says where, and the node it left no longer answers for it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeClients, Lab, pings } from '../hack/lab/lab.ts';
import { ip } from '../hack/lab/sh.ts';
import { until } from './eventually.ts';
import { fixedIpPod } from './fixed-ip-pod.ts';

let lab: Lab;
let pod: ReturnType<typeof fixedIpPod>;
const NAME = 'crasher';

beforeAll(async () => {
  lab = await Lab.up({ nodes: 2, taskMs: 30, cluster: true, agents: { minWarm: 1, maxWarm: 2, gcInterval: '2s' } });
  pod = fixedIpPod(lab, NAME);
}, 120_000);
afterAll(async () => lab?.down());

const node = (name: string) => lab.nodes.find((n) => n.name === name)!;

/** The end of every case: on `where` only, in the cloud and on the agents, the claim Bound there. */
async function heldOnlyOn(address: string, where: string): Promise<void> {
  expect(pod.cloudHolders(address)).toEqual([pod.instanceOf(where)]);
  await until(`${address} held by ${where} alone`, async () => pod.agentHolders(address), (h) => h.length === 1 && h[0] === where, 30_000);
  expect(pod.podHolders(address)).toEqual([where]);
  const claim = await pod.claim();
  expect(claim.status).toMatchObject({ phase: 'Bound', nodeName: where, ip: address });
  expect(claim.status?.targetNode ?? null).toBeNull();
}

/** Samples, until `done` settles, that no two pods and no two ENIs ever hold the address. */
function neverTwice(address: string, done: Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  let over = false;
  void done.finally(() => (over = true)).catch(() => undefined);
  return (async () => {
    while (!over) {
      const pods = pod.podHolders(address);
      const enis = pod.cloudHolders(address);
      if (pods.length > 1 || enis.length > 1) seen.push(`pods ${pods.join(',')}; ENIs on ${enis.join(',')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return seen;
  })();
}

describe('fixed IPs through crashes and races', () => {
  let address = '';

  it("finishes a move once when ipamd's leader is killed during it", async () => {
    address = await pod.on('node-1');
    await pod.gone();
    const { coordination } = kubeClients(lab.kubeconfigFile('admin'));
    lab.emulator.addFault({ action: 'MigratePrivateIpAddress', times: 1, effect: { kind: 'latency', ms: 1500 } });
    try {
      await pod.create('node-2');
      await pod.moving();
      const holder = (await coordination.readNamespacedLease({ name: 'tke-eni-ipamd', namespace: 'kube-system' })).spec!.holderIdentity!;
      const leader = lab.ipamds.find((r) => r.identity === holder)!;
      await leader.stop('SIGKILL');
      // The other replica takes the Lease once it lapses, and finishes the move.
      expect(await pod.running('node-2', 60_000)).toBe(address);
      expect((await coordination.readNamespacedLease({ name: 'tke-eni-ipamd', namespace: 'kube-system' })).spec!.holderIdentity).not.toBe(holder);
      leader.start();
    } finally {
      lab.emulator.faults.clear();
    }
    await heldOnlyOn(address, 'node-2');
    // One call moved it: the new leader found it there, it did not move it again.
    const migrations = lab.emulator.calls().MigratePrivateIpAddress!;
    expect(migrations.ok + migrations.failed).toBe(1);
  }, 120_000);

  it('the node it left no longer answers for it: the fabric routes it to the new node, where it pings', async () => {
    const old = node('node-1');
    expect(await ip(old.ns, 'route', 'get', address)).not.toMatch(/dev eni/);
    expect(await ip(old.ns, 'rule', 'show')).not.toContain(address);
    const fabric = await ip(lab.fabric.names.vpc, 'route', 'get', address);
    const eniLink = pod.inCloud(address)!.NetworkInterfaceId;
    expect(fabric).toContain(lab.fabric.linkOf(eniLink)!);
    await lab.settled();
    expect(await pings(old.ns, address)).toBe(true);
  }, 60_000);

  it('brings the address to a waiting node whose agent was killed and came back', async () => {
    await pod.gone();
    lab.emulator.addFault({ action: 'MigratePrivateIpAddress', times: 1, effect: { kind: 'latency', ms: 1500 } });
    const agent = node('node-1').agent!;
    try {
      await pod.create('node-1');
      await pod.moving();
      await agent.stop('SIGKILL');
      await agent.start();
      expect(await pod.running('node-1', 60_000)).toBe(address);
    } finally {
      lab.emulator.faults.clear();
    }
    await heldOnlyOn(address, 'node-1');
  }, 120_000);

  it('gives the address to one pod at a time when two pods of one name race on two nodes', async () => {
    // The first pod's object goes at once (grace 0, as a force delete) while its node, whose agent is
    // frozen, still runs it; the second pod starts on the other node meanwhile and must wait for the
    // first to let go, however long that takes.
    const first = node('node-1').agent!;
    process.kill(first.pid!, 'SIGSTOP');
    let frozen = true;
    try {
      await pod.kubectl('delete', 'pod', NAME, '--wait=false');
      await until('the first pod object gone', () => pod.clients.core.listNamespacedPod({ namespace: 'default' }), (l) => !l.items.some((p) => p.metadata?.name === NAME), 10_000);
      await pod.create('node-2');
      const started = pod.running('node-2', 60_000);
      const doubles = neverTwice(address, started);
      await new Promise((r) => setTimeout(r, 3000));
      const second = await pod.clients.core.readNamespacedPod({ name: NAME, namespace: 'default' });
      expect(second.status?.phase).not.toBe('Running');
      process.kill(first.pid!, 'SIGCONT');
      frozen = false;
      expect(await started).toBe(address);
      expect(await doubles).toEqual([]);
    } finally {
      if (frozen) process.kill(first.pid!, 'SIGCONT');
    }
    await heldOnlyOn(address, 'node-2');
  }, 120_000);
});
