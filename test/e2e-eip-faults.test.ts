// EIPs through a faulty cloud, on the lab cluster: lost answers and throttling on every EIP action, the
// account's quota reached, ipamd's leader killed while it allocates. No EIP is made twice, none is left
// behind once the pods and their claims are gone, and a pod that cannot have one is told why and holds
// nothing.
import type * as k8s from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaultWorld } from '../hack/emulator/world.ts';
import { kubeClients, Lab } from '../hack/lab/lab.ts';
import { run } from '../hack/lab/sh.ts';
import type { EipClaim } from '../agent/k8s/eip-claims.ts';
import { until } from './eventually.ts';

const QUOTA = 5;
let lab: Lab;
let clients: ReturnType<typeof kubeClients>;

const kubectl = (...args: string[]) => run('kubectl', ['--kubeconfig', lab.kubeconfigFile('admin'), ...args]);
const eips = () => lab.emulator.state().addresses;
const claims = async () => ((await clients.custom.listNamespacedCustomObject({ group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'eipclaims', namespace: 'default' })) as { items: EipClaim[] }).items;
const pods = async () => (await clients.core.listNamespacedPod({ namespace: 'default' })).items;

function eipPod(name: string) {
  return clients.core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name, annotations: { 'tke.cloud.tencent.com/networks': 'tke-route-eni', 'tke.cloud.tencent.com/eip-attributes': '{"Bandwidth":"5"}' } },
      spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'] }] },
    },
  });
}

/** Every pod running with its EIP bound, each EIP bound to its own pod's address. */
async function allBound(names: string[]): Promise<EipClaim[]> {
  const bound = await until(`${names.length} EIPs bound`, claims, (c) => names.every((n) => c.some((x) => x.metadata.name === n && x.status?.phase === 'Bound')), 60_000).catch(async (err: Error) => {
    err.message += `\n${await kubectl('get', 'pods,eipc', '-o', 'wide').catch(() => '')}\n${await kubectl('get', 'events').catch(() => '')}\n${lab.ipamds.map((r) => `${r.identity}:\n${r.log().slice(-4000)}`).join('\n')}`;
    throw err;
  });
  const running = await until('the pods running', pods, (l) => names.every((n) => l.some((p) => p.metadata?.name === n && p.status?.phase === 'Running')), 30_000);
  for (const name of names) {
    const c = bound.find((x) => x.metadata.name === name)!;
    const p = running.find((x) => x.metadata?.name === name)!;
    expect(eips().find((e) => e.AddressId === c.status!.eipId)).toMatchObject({ AddressStatus: 'BIND', PrivateAddressIp: p.status!.podIP });
  }
  return bound;
}

/** Deletes the pods; waits until no claim is left; then the cloud must hold no EIP at all. */
async function noneLeft(names: string[]): Promise<void> {
  await kubectl('delete', 'pod', ...names, '--wait=true');
  await until('no EIPClaim left', claims, (c) => c.length === 0, 60_000);
  await until('no EIP left', async () => eips(), (e) => e.length === 0, 30_000);
}

beforeAll(async () => {
  lab = await Lab.up({ nodes: 2, taskMs: 60, cluster: true, agents: { minWarm: 2, maxWarm: 4, gcInterval: '2s', cooldown: '1s' }, world: { ...defaultWorld(), eipQuota: QUOTA } });
  clients = kubeClients(lab.kubeconfigFile('admin'));
}, 120_000);
afterEach(() => lab.emulator.faults.clear());
afterAll(async () => lab?.down());

describe('EIPs through a faulty cloud', () => {
  it('makes no second EIP and leaves none behind when every EIP action loses answers and is throttled', async () => {
    const faults = ['AllocateAddresses', 'AssociateAddress', 'DisassociateAddress', 'ReleaseAddresses', 'DescribeAddresses'].flatMap((action) => [
      lab.emulator.addFault({ action, nth: 1, times: 1, effect: { kind: 'drop' } }),
      lab.emulator.addFault({ action, nth: 2, times: 2, effect: { kind: 'error', code: 'RequestLimitExceeded', message: 'too many requests' } }),
    ]);
    const names = ['flaky-0', 'flaky-1', 'flaky-2', 'flaky-3'];
    await Promise.all(names.map(eipPod));
    const bound = await allBound(names);
    expect(new Set(bound.map((c) => c.status!.eipId)).size).toBe(names.length);
    expect(eips()).toHaveLength(names.length);
    await noneLeft(names);
    // Each fault was met, or this test proved nothing.
    for (const fault of faults) expect(fault.hits, `${fault.action} ${fault.effect.kind}`).toBeGreaterThan(0);
  }, 180_000);

  it("tells a pod over the account's quota why, and it holds nothing", async () => {
    const names = Array.from({ length: QUOTA + 1 }, (_, i) => `many-${i}`);
    await Promise.all(names.map(eipPod));
    const events = await until(
      'a quota refusal',
      async () => (await clients.core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'reason=FailedCreatePodSandBox' })).items,
      (items: k8s.CoreV1Event[]) => items.some((e) => e.message?.includes('AddressQuotaLimitExceeded')),
      60_000,
    );
    const refused = events.find((e) => e.message?.includes('AddressQuotaLimitExceeded'))!.involvedObject.name!;
    const others = names.filter((n) => n !== refused);
    await allBound(others);
    expect(eips()).toHaveLength(QUOTA);
    const claim = (await claims()).find((c) => c.metadata.name === refused)!;
    expect(claim.status?.eipId).toBeUndefined();
    await until(`${refused} holds no address`, async () => lab.nodes.flatMap((n) => n.agent!.allocations().filter((a) => a.pod?.name === refused)), (held) => held.length === 0, 15_000);
    expect((await pods()).find((p) => p.metadata?.name === refused)?.status?.phase).not.toBe('Running');
    await noneLeft(names);
  }, 180_000);

  it("makes one EIP when ipamd's leader is killed while it allocates", async () => {
    // A new day for the account: Tencent allows twice the quota of allocations a day, and the tests before used them.
    lab.emulator.model.eipAllocationsToday = 0;
    lab.emulator.addFault({ action: 'AllocateAddresses', times: 1, effect: { kind: 'latency', ms: 1500 } });
    await eipPod('survivor');
    await until('allocating', claims, (c) => c.some((x) => x.status?.phase === 'Allocating'), 30_000);
    const { coordination } = kubeClients(lab.kubeconfigFile('admin'));
    const holder = (await coordination.readNamespacedLease({ name: 'tke-eni-ipamd', namespace: 'kube-system' })).spec!.holderIdentity!;
    const leader = lab.ipamds.find((r) => r.identity === holder)!;
    await leader.stop('SIGKILL');
    await allBound(['survivor']);
    leader.start();
    expect(eips()).toHaveLength(1);
    await noneLeft(['survivor']);
  }, 120_000);

  it('gives a freed address to no other pod while its EIP is still bound to it', async () => {
    const node = lab.nodes[0]!;
    const made = (name: string, annotations: Record<string, string> = {}) =>
      clients.core.createNamespacedPod({
        namespace: 'default',
        body: { metadata: { name, annotations: { 'tke.cloud.tencent.com/networks': 'tke-route-eni', ...annotations } }, spec: { nodeName: node.name, terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'] }] } },
      });
    await made('holder', { 'tke.cloud.tencent.com/eip-attributes': '{}' });
    const bound = await allBound(['holder']);
    const address = bound[0]!.status!.privateIP!;
    const eipId = bound[0]!.status!.eipId!;
    // The unbind takes long, well past the address's cool-down (1 s here).
    lab.emulator.addFault({ action: 'DisassociateAddress', times: 1, effect: { kind: 'latency', ms: 10_000 } });
    await kubectl('delete', 'pod', 'holder', '--wait=true');
    await new Promise((r) => setTimeout(r, 1500));
    const names = Array.from({ length: 6 }, (_, i) => `after-${i}`);
    for (const name of names) await made(name);
    const running = await until('the pods after running', pods, (l) => names.every((n) => l.some((p) => p.metadata?.name === n && p.status?.phase === 'Running')), 60_000);
    // Still bound when they all have their addresses (or this test proves nothing), and none has it.
    expect(eips().find((e) => e.AddressId === eipId)?.PrivateAddressIp).toBe(address);
    expect(running.filter((p) => names.includes(p.metadata!.name!)).map((p) => p.status!.podIP)).not.toContain(address);
    await kubectl('delete', 'pod', ...names, '--wait=true');
    await until('no EIPClaim left', claims, (c) => c.length === 0, 60_000);
    await until('no EIP left', async () => eips(), (e) => e.length === 0, 30_000);
  }, 120_000);
});
