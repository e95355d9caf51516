// tke-eni-ipamd against the emulated cloud (through the real Tencent adapter) and the API server stand-in,
// with simulated agents (the real pool and NecSupply, links only named): nodes join and get NECs with the
// defaults, pools fill through ipamd, the release handshake never unassigns what a pod may get, nodes that
// leave lose their ENIs, the three causes of "no ENI" are events, and a second replica takes over.
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseIpamdArgs } from '../agent/ipamd/config.ts';
import { startIpamd, type RunningIpamd } from '../agent/ipamd/ipamd.ts';
import type { Nec } from '../agent/k8s/nec.ts';
import { OWNER_TAG } from '../agent/cloud/cloud.ts';
import { startApiServer, type ApiServer } from '../hack/apiserver/server.ts';
import { crdModel } from '../hack/apiserver/testing.ts';
import type { Emulator } from '../hack/emulator/emulator.ts';
import { startTestEmulator, testWorld } from '../hack/emulator/testing.ts';
import { SimCluster, SimNode, type SimPoolSettings } from '../hack/sim/nodes.ts';
import { until } from './eventually.ts';
import { parsePrometheus, sample } from './prom-text.ts';

const CRD_DIR = fileURLToPath(new URL('../daemonset/crds', import.meta.url));
const GROUP = { group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'nodeeniconfigs' };

let emulator: Emulator;
let apiserver: ApiServer;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
let custom: k8s.CustomObjectsApi;
let sims: SimCluster;
const ipamds: RunningIpamd[] = [];
const nodes: SimNode[] = [];

beforeEach(async () => {
  const subnets = [...testWorld().subnets, { id: 'subnet-small', name: 'small', zone: 'ap-guangzhou-3', cidr: '10.0.18.0/27' }];
  emulator = await startTestEmulator({ world: testWorld({ latencies: { taskMs: 20, apiMs: 0 }, subnets }) });
  apiserver = await startApiServer();
  kc = new k8s.KubeConfig();
  kc.loadFromString(apiserver.kubeconfig());
  core = kc.makeApiClient(k8s.CoreV1Api);
  custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  for (const file of readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml'))) await ext.createCustomResourceDefinition({ body: crdModel(parseYaml(readFileSync(`${CRD_DIR}/${file}`, 'utf8'))) });
  sims = new SimCluster(kc);
  await sims.start();
});

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
  await Promise.all(ipamds.splice(0).map((i) => i.stop()));
  await sims.stop();
  await apiserver.close();
  await emulator.close();
  for (const file of [KUBECONFIG, CREDENTIALS]) rmSync(file, { force: true });
});

const KUBECONFIG = `${tmpdir()}/eni-cni-ipamd-test-${process.pid}.kubeconfig`;
const CREDENTIALS = `${tmpdir()}/eni-cni-ipamd-test-${process.pid}.credentials`;

async function ipamd(identity: string, extra: string[] = [], onLost = () => {}): Promise<RunningIpamd> {
  await apiserver.writeKubeconfig(KUBECONFIG);
  const config = await parseIpamdArgs([
    '--kubeconfig', KUBECONFIG,
    '--region', emulator.world.region,
    '--api-url', `http://tencentcloudapi.com:${emulator.apiAddress.port}`,
    '--api-resolve', emulator.apiAddress.address,
    '--credentials-file', credentialsFile(),
    '--subnet-ids', 'subnet-pod3a,subnet-pod3b',
    '--ip-min-warm-target', '3', '--ip-max-warm-target', '3',
    '--leader-elect-identity', identity,
    '--leader-elect-lease-duration', '2s', '--leader-elect-renew-deadline', '1500ms', '--leader-elect-retry-period', '300ms',
    '--resync-interval', '5s',
    '--health-address', '127.0.0.1:0',
    '--log-level', process.env.IPAMD_LOG ?? 'error',
    ...extra,
  ]);
  const running = await startIpamd(config, onLost);
  ipamds.push(running);
  return running;
}

function credentialsFile(): string {
  writeFileSync(CREDENTIALS, JSON.stringify(emulator.world.credentials[0]));
  return CREDENTIALS;
}

async function addNode(name: string, instanceId: string, zone = 'ap-guangzhou-3', labels: Record<string, string> = {}): Promise<void> {
  await core.createNode({ body: { metadata: { name, labels: { 'topology.kubernetes.io/zone': zone, ...labels } }, spec: { providerID: `qcloud:///${zone}/${instanceId}` } } });
}

async function simNode(name: string, instanceId: string, settings: SimPoolSettings = {}): Promise<SimNode> {
  const node = new SimNode(name, instanceId, { cluster: sims }, { warm: { min: 3, max: 3 }, checkIntervalMs: 100, ...settings }, process.env.IPAMD_LOG ? (l, m) => console.log(`[${name}] ${l} ${m}`) : undefined);
  nodes.push(node);
  await node.start();
  return node;
}

const nec = async (name: string) => (await custom.getClusterCustomObject({ ...GROUP, name })) as Nec;


/** Secondary addresses the cloud holds on an instance's pod ENIs. */
function cloudAddresses(instanceId: string): string[] {
  return emulator
    .state()
    .networkInterfaces.filter((e) => e.Attachment?.InstanceId === instanceId && !e.Primary)
    .flatMap((e) => e.PrivateIpAddressSet.filter((ip) => !ip.Primary).map((ip) => ip.PrivateIpAddress))
    .sort();
}

const poolAddresses = (node: SimNode) => [...node.store.enis.values()].flatMap((e) => [...e.addresses]).sort();

async function annotate(name: string, annotations: Record<string, string>) {
  await custom.patchClusterCustomObject({ ...GROUP, name, body: { metadata: { annotations } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
}

async function eventsFor(name: string) {
  return (await core.listNamespacedEvent({ namespace: 'default' })).items.filter((e) => e.involvedObject.name === name);
}

describe('tke-eni-ipamd', () => {
  it('makes each joining node a NEC with its quota and the defaults, owned by the Node, and fills its pool', async () => {
    await ipamd('a');
    await addNode('node-1', 'ins-node0001');
    const made = await until('the NEC of node-1', () => nec('node-1'), (n) => n.spec?.quota !== undefined);
    const node = await core.readNode({ name: 'node-1' });
    expect(made.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'Node', name: 'node-1', uid: node.metadata!.uid })]);
    expect(made.spec).toMatchObject({ instanceId: 'ins-node0001', zone: 'ap-guangzhou-3', subnetIds: ['subnet-pod3a', 'subnet-pod3b'], quota: { enis: 4, ipsPerEni: 10 }, defaults: { ipMinWarmTarget: 3, ipMaxWarmTarget: 3 } });
    const sim = await simNode('node-1', 'ins-node0001', { warm: { min: 0, max: 0 } });
    // The NEC's defaults (ipamd's flags) replace the agent's own.
    await until('3 addresses on node-1', () => poolAddresses(sim), (a) => a.length === 3);
    expect(poolAddresses(sim)).toEqual(cloudAddresses('ins-node0001'));
    expect((await nec('node-1')).status?.demand).toMatchObject({ addresses: 3, maxENI: 3, maxIPPerENI: 9 });
    // Pods beyond the warm pool wait for ipamd, and get addresses the cloud has.
    const addresses = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((p) => sim.addPod(p, 10_000)));
    expect(addresses.every(Boolean)).toBe(true);
    for (const a of addresses) expect(cloudAddresses('ins-node0001')).toContain(a);
    await until('pods + min on node-1', () => cloudAddresses('ins-node0001').length, (n) => n === 8);
    expect(emulator.state().calls.AssignPrivateIpAddresses?.throttled ?? 0).toBe(0);
  });

  it('counts its cloud calls by action and outcome on /metrics, and says it leads', async () => {
    const running = await ipamd('a');
    emulator.addFault({ action: 'CreateNetworkInterface', times: 1, effect: { kind: 'error', code: 'RequestLimitExceeded', message: 'slow down' } });
    await addNode('node-1', 'ins-node0001');
    const sim = await simNode('node-1', 'ins-node0001');
    await until('the pool filled', () => poolAddresses(sim), (a) => a.length >= 3);
    const scraped = parsePrometheus(await (await fetch(`http://127.0.0.1:${running.healthPort}/metrics`)).text());
    const calls = emulator.calls();
    for (const action of ['CreateNetworkInterface', 'AttachNetworkInterface', 'DescribeNetworkInterfaceLimit']) {
      expect(sample(scraped, `eni_ipamd_cloud_calls_total{action="${action}",outcome="ok"}`), action).toBe(calls[action]?.ok ?? 0);
    }
    expect(calls.CreateNetworkInterface?.throttled).toBe(1);
    expect(sample(scraped, 'eni_ipamd_cloud_calls_total{action="CreateNetworkInterface",outcome="throttled"}')).toBe(1);
    expect(sample(scraped, 'eni_ipamd_cloud_call_duration_seconds_count{action="CreateNetworkInterface"}')).toBe(calls.CreateNetworkInterface!.ok + 1);
    expect(sample(scraped, 'eni_ipamd_leader{}')).toBe(1);
    expect(sample(scraped, 'eni_ipamd_releases_pending{state="offered"}') + sample(scraped, 'eni_ipamd_releases_pending{state="releasing"}')).toBe(0);

    // An address given back while the cloud is slow to unassign it counts as pending until it is gone.
    await sim.stop();
    const [given] = cloudAddresses('ins-node0001') as [string];
    emulator.addFault({ action: 'UnassignPrivateIpAddresses', times: 1, effect: { kind: 'latency', ms: 1500 } });
    await custom.patchClusterCustomObjectStatus({ ...GROUP, name: 'node-1', body: { status: { release: { [given]: 'offered' } } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    const pending = async () => {
      const now = parsePrometheus(await (await fetch(`http://127.0.0.1:${running.healthPort}/metrics`)).text());
      return sample(now, 'eni_ipamd_releases_pending{state="offered"}') + sample(now, 'eni_ipamd_releases_pending{state="releasing"}');
    };
    await until('the offer pending on /metrics', pending, (n) => n === 1);
    await until(`${given} unassigned`, () => cloudAddresses('ins-node0001'), (a) => !a.includes(given));
    await until('no release pending on /metrics', pending, (n) => n === 0);
  });

  it('never unassigns an offered address a fixed-IP claim holds on that node (a stale offer), and unassigns the others', async () => {
    await ipamd('a');
    await addNode('node-1', 'ins-node0001');
    const sim = await simNode('node-1', 'ins-node0001');
    await until('the pool filled', () => cloudAddresses('ins-node0001'), (a) => a.length >= 3);
    const [kept, freed] = cloudAddresses('ins-node0001') as [string, string];
    const claims = { group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'vpcipclaims', namespace: 'default' };
    await custom.createNamespacedCustomObject({ ...claims, body: { apiVersion: 'networking.tke.cloud.tencent.com/v1', kind: 'VpcIPClaim', metadata: { name: 'web-0' }, spec: { deletePolicy: 'Never', ip: kept, subnetId: 'subnet-pod3a' } } });
    await custom.patchNamespacedCustomObjectStatus({ ...claims, name: 'web-0', body: { status: { phase: 'Bound', ip: kept, nodeName: 'node-1', podUID: 'uid-1' } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await new Promise((r) => setTimeout(r, 500));
    await sim.stop();
    const released: string[] = [];
    emulator.onEvent((e) => e.type === 'ip-released' && released.push(e.address));
    await custom.patchClusterCustomObjectStatus({ ...GROUP, name: 'node-1', body: { status: { release: { [kept]: 'offered', [freed]: 'offered' } } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await until('the offers answered', () => nec('node-1'), (n) => !n.status?.release?.[kept] && !n.status?.release?.[freed]);
    expect(released).toEqual([freed]);
    expect(cloudAddresses('ins-node0001')).toContain(kept);
  });

  it('takes LimitExceeded on an assign as that ENI being full: opens another, no ENILimit', async () => {
    await ipamd('a');
    await addNode('node-1', 'ins-node0001');
    const sim = await simNode('node-1', 'ins-node0001');
    await until('3 addresses', () => poolAddresses(sim), (a) => a.length === 3);
    emulator.addFault({ action: 'AssignPrivateIpAddresses', times: 1, effect: { kind: 'error', code: 'LimitExceeded' } });
    const got = await Promise.all(['a', 'b', 'c', 'd'].map((p) => sim.addPod(p, 10_000)));
    expect(got.every(Boolean)).toBe(true);
    await until('pods + min', () => cloudAddresses('ins-node0001').length, (n) => n === 7);
    expect(emulator.state().networkInterfaces.filter((e) => e.Attachment?.InstanceId === 'ins-node0001' && !e.Primary)).toHaveLength(2);
    expect((await eventsFor('node-1')).filter((e) => e.reason === 'ENILimit')).toEqual([]);
  });

  it('asks the quota of an instance type once, however many nodes of it join', async () => {
    await ipamd('a');
    await addNode('node-1', 'ins-node0001', 'ap-guangzhou-3', { 'node.kubernetes.io/instance-type': 'S5.LARGE8' });
    await addNode('node-2', 'ins-node0002', 'ap-guangzhou-3', { 'node.kubernetes.io/instance-type': 'S5.LARGE8' });
    for (const name of ['node-1', 'node-2']) await until(`the NEC of ${name}`, () => nec(name), (n) => n.spec?.quota !== undefined);
    expect((await nec('node-2')).spec?.quota).toEqual({ enis: 4, ipsPerEni: 10 });
    expect(emulator.state().calls.DescribeNetworkInterfaceLimit?.ok).toBe(1);
  });

  it('unassigns only what the agent offered, never an address a pod holds, and deletes an offered empty ENI', async () => {
    await ipamd('a');
    await addNode('node-1', 'ins-node0001');
    const sim = await simNode('node-1', 'ins-node0001', { quickRelease: true, releasePeriodMs: 200, cooldownMs: 0 });
    const pods = ['a', 'b', 'c', 'd', 'e', 'f'];
    const addresses = await Promise.all(pods.map((p) => sim.addPod(p, 10_000)));
    await until('pods + min', () => cloudAddresses('ins-node0001').length, (n) => n === 9);
    for (const p of pods.slice(2)) sim.delPod(p);
    // Quick release gives back down to pods + max: 2 pods + 3.
    await until('released to pods + max', () => cloudAddresses('ins-node0001').length, (n) => n === 5, 20_000);
    for (const a of addresses.slice(0, 2)) expect(cloudAddresses('ins-node0001')).toContain(a);
    // The handshake ends: the entries go, and what the pool has is what the cloud has.
    await until('the release entries gone', () => nec('node-1'), (n) => Object.keys(n.status?.release ?? {}).length === 0);
    await until('the pool as the cloud', () => poolAddresses(sim).join(), (a) => a === cloudAddresses('ins-node0001').join());
  });

  it('leaves the offers the agent took back before ipamd took them', async () => {
    await addNode('node-1', 'ins-node0001');
    const first = await ipamd('a');
    const sim = await simNode('node-1', 'ins-node0001', { quickRelease: true, releasePeriodMs: 200, cooldownMs: 0 });
    await until('3 addresses', () => poolAddresses(sim), (a) => a.length === 3);
    // No ipamd acts while the agent offers its idle addresses and a pod comes.
    await first.stop();
    ipamds.splice(0);
    await annotate('node-1', { 'tke.cloud.tencent.com/route-eni-ip-min-warm-target': '0', 'tke.cloud.tencent.com/route-eni-ip-max-warm-target': '0' });
    const addressesOffered = (n: Nec) => Object.keys(n.status?.release ?? {}).filter((k) => !k.startsWith('eni-'));
    // All three, and then their ENI, which holds nothing more.
    const offered = addressesOffered(await until('3 offers and the ENI', () => nec('node-1'), (n) => Object.keys(n.status?.release ?? {}).length === 4));
    // With nothing free the pod's ADD waits; the pool takes an offer back rather than wait for ipamd.
    const got = await sim.addPod('p', 5000);
    expect(offered).toContain(got);
    // Taken back with its ENI: the two others stay offered.
    await until('one offer taken back', () => nec('node-1'), (n) => Object.keys(n.status?.release ?? {}).length === 2);
    expect(addressesOffered(await nec('node-1'))).toHaveLength(2);
    await ipamd('b');
    // b leads once a's lease runs out, and unassigns the two still offered, not the pod's.
    await until('the offers released', () => cloudAddresses('ins-node0001').length, (n) => n === 1);
    expect(cloudAddresses('ins-node0001')).toEqual([got]);
    expect(poolAddresses(sim)).toEqual([got]);
  });

  it('deletes an ENI made for the node and attached nowhere (an ipamd killed between create and attach)', async () => {
    const { vpcClient, waitTask } = await import('../hack/emulator/testing.ts');
    const vpc = vpcClient(emulator);
    const left = await vpc.CreateNetworkInterface({ VpcId: emulator.world.vpc.id, SubnetId: 'subnet-pod3a', NetworkInterfaceName: 'left', Tags: [{ Key: OWNER_TAG, Value: 'ins-node0001' }] });
    await waitTask(vpc, left.RequestId);
    const other = await vpc.CreateNetworkInterface({ VpcId: emulator.world.vpc.id, SubnetId: 'subnet-pod3a', NetworkInterfaceName: 'not ours' });
    await waitTask(vpc, other.RequestId);
    await ipamd('a');
    await addNode('node-1', 'ins-node0001');
    const sim = await simNode('node-1', 'ins-node0001');
    await until('3 addresses', () => poolAddresses(sim), (a) => a.length === 3);
    const ids = () => emulator.state().networkInterfaces.map((e) => e.NetworkInterfaceId);
    await until('the leftover deleted', () => ids(), (l) => !l.includes(left.NetworkInterface!.NetworkInterfaceId!));
    expect(ids()).toContain(other.NetworkInterface!.NetworkInterfaceId);
  });

  it("detaches and deletes a node's ENIs when it leaves, and its NEC goes", async () => {
    await ipamd('a');
    await addNode('node-1', 'ins-node0001');
    const sim = await simNode('node-1', 'ins-node0001');
    await until('3 addresses', () => poolAddresses(sim), (a) => a.length === 3);
    await sim.stop();
    await core.deleteNode({ name: 'node-1' });
    await until('no ENI made for ins-node0001', () => emulator.state().networkInterfaces.filter((e) => (e.TagSet as Array<{ Key: string; Value: string }>).some((t) => t.Key === OWNER_TAG && t.Value === 'ins-node0001')).length, (n) => n === 0);
    await until('the NEC gone', () => custom.listClusterCustomObject(GROUP) as Promise<{ items: unknown[] }>, (l) => l.items.length === 0);
  });

  it('says why a node gets no ENI when no subnet given to ipamd is in its zone', async () => {
    await ipamd('a');
    // ins-node0003 is in ap-guangzhou-4; ipamd was given subnets of ap-guangzhou-3 only.
    await addNode('node-3', 'ins-node0003', 'ap-guangzhou-4');
    await simNode('node-3', 'ins-node0003');
    const events = await until('a NoSubnetInZone event', () => eventsFor('node-3'), (e) => e.filter((x) => x.reason === 'NoSubnetInZone').length >= 2);
    const kinds = events.filter((e) => e.reason === 'NoSubnetInZone').map((e) => e.involvedObject.kind).sort();
    expect(kinds).toEqual(['Node', 'NodeENIConfig']);
    expect(events[0]!.message).toMatch(/node-3.*ap-guangzhou-4/);
    expect((await nec('node-3')).status?.ipamd?.problem).toMatchObject({ reason: 'NoSubnetInZone' });
  });

  it('opens no ENI in a subnet the ENIs already there could fill (the soft limit), and says why', async () => {
    // subnet-small is a /27: 29 addresses. Two ENIs of 10 fit under the soft limit; a third does not,
    // though the subnet still has free addresses.
    await ipamd('a', ['--subnet-ids', 'subnet-small']);
    await addNode('node-1', 'ins-node0001');
    await addNode('node-2', 'ins-node0002');
    const one = await simNode('node-1', 'ins-node0001');
    const two = await simNode('node-2', 'ins-node0002');
    await until('both nodes have addresses', () => poolAddresses(one).length + poolAddresses(two).length, (n) => n === 6);
    // node-1's pods fill its ENI (9 addresses); the tenth would need a second ENI.
    const got = await Promise.all(Array.from({ length: 10 }, (_, i) => one.addPod(`p${i}`, 3000)));
    expect(got.filter(Boolean)).toHaveLength(9);
    const events = await until('a SubnetExhausted event', () => eventsFor('node-1'), (e) => e.some((x) => x.reason === 'SubnetExhausted'));
    expect(events.find((e) => e.reason === 'SubnetExhausted')!.message).toMatch(/soft limit.*subnet-small/);
    expect((await nec('node-1')).status?.ipamd?.problem).toMatchObject({ reason: 'SubnetExhausted' });
    expect(emulator.state().networkInterfaces.filter((e) => e.SubnetId === 'subnet-small')).toHaveLength(2);
  });

  it('hands over to the second replica when the leader is gone, which serves what comes next without doing anything twice', async () => {
    let lost = 0;
    const a = await ipamd('a', [], () => lost++);
    await until('a leads', () => apiserver.store.get('coordination.k8s.io/leases', 'kube-system', 'tke-eni-ipamd') as { spec?: { holderIdentity?: string } } | undefined, (l) => l?.spec?.holderIdentity === 'a');
    await ipamd('b');
    await addNode('node-1', 'ins-node0001');
    const sim = await simNode('node-1', 'ins-node0001');
    await until('3 addresses', () => poolAddresses(sim), (x) => x.length === 3);
    const callsBefore = structuredClone(emulator.state().calls);
    // a is killed: it renews no more.
    await a.stop();
    const killedAt = Date.now();
    await until('b leads', () => apiserver.store.get('coordination.k8s.io/leases', 'kube-system', 'tke-eni-ipamd') as { spec?: { holderIdentity?: string } } | undefined, (l) => l?.spec?.holderIdentity === 'b');
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    // Nothing was redone: the new leader read the cloud, and the node had what it asked for.
    const calls = emulator.state().calls;
    for (const action of ['CreateNetworkInterface', 'AssignPrivateIpAddresses', 'AttachNetworkInterface', 'UnassignPrivateIpAddresses']) {
      expect(calls[action]?.ok ?? 0, `${action} after the handover`).toBe(callsBefore[action]?.ok ?? 0);
    }
    const got = await Promise.all(['a', 'b', 'c', 'd'].map((p) => sim.addPod(p, 10_000)));
    expect(got.every(Boolean)).toBe(true);
    await until('pods + min', () => cloudAddresses('ins-node0001').length, (n) => n === 7);
    await until('the pool as the cloud', () => poolAddresses(sim).join(), (a) => a === cloudAddresses('ins-node0001').join());
    expect(lost).toBe(0);
  });

  it("opens whole ENIs up to the node's demand beside its shared ones, within one quota, and deletes one offered back", async () => {
    await ipamd('a');
    await addNode('node-1', 'ins-node0001');
    const sim = await simNode('node-1', 'ins-node0001');
    await until('3 addresses', () => poolAddresses(sim), (a) => a.length === 3);
    // The agent's whole-ENI pool asks for two (quota 4: the primary, one shared, two whole).
    const demand = async (status: Record<string, unknown>) => custom.patchClusterCustomObjectStatus({ ...GROUP, name: 'node-1', body: { status } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await demand({ demand: { directENIs: 2, directUrgent: true } });
    const direct = (await until('two whole ENIs', () => nec('node-1'), (n) => (n.status?.ipamd?.directEnis ?? []).length === 2)).status!.ipamd!.directEnis!;
    const inCloud = (id: string) => emulator.state().networkInterfaces.find((e) => e.NetworkInterfaceId === id)!;
    for (const e of direct) {
      expect(e.ips).toEqual([]);
      expect(inCloud(e.eniId)).toMatchObject({ Attachment: { InstanceId: 'ins-node0001' }, PrivateIpAddressSet: [{ Primary: true, PrivateIpAddress: e.primaryIP }] });
      expect(inCloud(e.eniId).TagSet).toContainEqual({ Key: 'eni-cni.mode', Value: 'direct' });
    }
    // The shared pool never sees them, and keeps its own ENI.
    expect((await nec('node-1')).status!.ipamd!.enis.map((e) => e.eniId)).not.toContain(direct[0]!.eniId);
    expect(sim.store.enis.size).toBe(1);
    // A third is beyond the quota: said, not opened.
    await demand({ demand: { directENIs: 3, directUrgent: true } });
    await until('ENILimit', () => nec('node-1'), (n) => n.status?.ipamd?.problem?.reason === 'ENILimit');
    expect((await nec('node-1')).status!.ipamd!.directEnis).toHaveLength(2);
    // One offered back: detached and deleted, and gone from the list.
    await demand({ demand: { directENIs: 1, directUrgent: false }, release: { [direct[0]!.eniId]: 'offered' } });
    await until(`${direct[0]!.eniId} deleted`, () => emulator.state().networkInterfaces.some((e) => e.NetworkInterfaceId === direct[0]!.eniId), (there) => !there);
    await until('one whole ENI listed, the offer gone', () => nec('node-1'), (n) => (n.status?.ipamd?.directEnis ?? []).length === 1 && !n.status?.release?.[direct[0]!.eniId]);
  });
});
