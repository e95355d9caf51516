// Whole-ENI mode on the lab cluster: the seed's StatefulSet with `tke-direct-eni` and the direct-eni
// resource runs pods that each own an ENI, moved into the pod's namespace as its eth0 (with the ENI's MAC and
// primary address in its subnet); they reach a shared-ENI pod and the gateway by their own ENI (the fabric
// receives their packets on that ENI's end); deleting them brings the links back to the node and the spare
// ENIs down to the target; a pod gone while the agent was dead, its ENI's link lost with it, has the ENI
// replaced (the lab's containerd calls DEL with no namespace path and no prevResult, so the plugin cannot
// bring the link back itself there); a pod asking for more whole ENIs than a node can attach stays Pending.
import { fileURLToPath } from 'node:url';
import type * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Nec } from '../agent/k8s/nec.ts';
import { kubeClients, Lab, pings, whoamiFrom } from '../hack/lab/lab.ts';
import { httpGetIn, run } from '../hack/lab/sh.ts';
import { until } from './eventually.ts';
import { fixedIpPod } from './fixed-ip-pod.ts';

const DIRECT_STATEFULSET = fileURLToPath(new URL('../hack/examples/busybox-direct-eni-statefulset.yaml', import.meta.url));
const GATEWAY = '10.0.16.1';
const NEC = { group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'nodeeniconfigs' };

let lab: Lab;
let clients: ReturnType<typeof kubeClients>;

const kubectl = (...args: string[]) => run('kubectl', ['--kubeconfig', lab.kubeconfigFile('admin'), ...args]);
const podsOf = async (selector: string) => (await clients.core.listNamespacedPod({ namespace: 'default', labelSelector: selector })).items;
const running = (pods: k8s.V1Pod[]) => pods.filter((p) => p.status?.phase === 'Running' && p.status.podIP && !p.metadata?.deletionTimestamp);
const nec = async (name: string) => (await clients.custom.getClusterCustomObject({ ...NEC, name })) as Nec;
const directEnis = async (name: string) => (await nec(name)).status?.ipamd?.directEnis ?? [];
const linkMacs = async (ns: string) => (JSON.parse(await run('ip', ['-n', ns, '-j', 'link', 'show'])) as Array<{ address?: string }>).map((l) => l.address);

/** Packets the fabric has received on one of its ENI ends. */
async function rxPackets(link: string): Promise<number> {
  const [shown] = JSON.parse(await run('ip', ['-n', lab.fabric.names.vpc, '-s', '-j', 'link', 'show', 'dev', link])) as Array<{ stats64: { rx: { packets: number } } }>;
  return shown!.stats64.rx.packets;
}

async function runningPods(selector: string, count: number, ms = 60_000): Promise<k8s.V1Pod[]> {
  return until(`${count} pods ${selector} running`, () => podsOf(selector), (pods) => running(pods).length === count && pods.length === count, ms).catch(async (err: Error) => {
    err.message += `\n${await kubectl('get', 'pods', '-o', 'wide').catch(() => '')}\n${await kubectl('get', 'events').catch(() => '')}`;
    throw err;
  });
}

beforeAll(async () => {
  lab = await Lab.up({ nodes: 2, taskMs: 30, cluster: true, agents: { minWarm: 1, maxWarm: 2, directEni: true, gcInterval: '2s', releasePeriod: '2s' } });
  clients = kubeClients(lab.kubeconfigFile('admin'));
}, 120_000);

afterAll(async () => {
  await lab?.down();
});

describe('whole-ENI mode (tke-direct-eni)', () => {
  it('advertises direct-eni on each node and keeps one spare whole ENI attached (the defaults, 1 and 1)', async () => {
    for (const node of lab.nodes) {
      const enis = await until(`a spare whole ENI on ${node.name}`, () => directEnis(node.name), (e) => e.length === 1, 30_000);
      // Attached to the node in the cloud, its link in the node's namespace.
      const cloud = lab.emulator.state().networkInterfaces.find((e) => e.NetworkInterfaceId === enis[0]!.eniId)!;
      expect(cloud.Attachment?.InstanceId).toBe(node.instanceId);
      await until(`the link of ${enis[0]!.eniId} on ${node.name}`, () => linkMacs(node.ns), (macs) => macs.includes(enis[0]!.mac));
    }
    // The agent's gauges say the same: one spare, none in use, two at most.
    const { body } = await httpGetIn(lab.nodes[0]!.ns, 'http://127.0.0.1:61678/metrics');
    expect(body).toMatch(/^eni_cni_direct_enis\{state="spare"\} 1$/m);
    expect(body).toMatch(/^eni_cni_direct_enis\{state="in_use"\} 0$/m);
    expect(body).toMatch(/^eni_cni_direct_capacity_enis 2$/m);
    // Quota 4: less the primary and the one shared ENI, two whole ENIs each.
    const nodes = await until('direct-eni on both nodes', async () => (await clients.core.listNode()).items, (items) => items.length === 2 && items.every((n) => n.status?.allocatable?.['tke.cloud.tencent.com/direct-eni'] === '2'));
    expect(nodes).toHaveLength(2);
  }, 60_000);

  it('runs the seed-style StatefulSet: each pod owns an ENI of its node as eth0 and reaches a shared-ENI pod and the gateway by it', async () => {
    await clients.core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'shared', labels: { app: 'shared' }, annotations: { 'tke.cloud.tencent.com/networks': 'tke-route-eni' } },
        spec: { containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'], resources: { requests: { 'tke.cloud.tencent.com/eni-ip': '1' }, limits: { 'tke.cloud.tencent.com/eni-ip': '1' } } }] },
      },
    });
    const [shared] = await runningPods('app=shared', 1);
    await kubectl('apply', '-f', DIRECT_STATEFULSET);
    const pods = await runningPods('k8s-app=busybox-direct', 2);
    const state = lab.emulator.state();
    const owned = new Set<string>();
    for (const pod of pods) {
      const node = lab.nodes.find((n) => n.name === pod.spec!.nodeName)!;
      // The pod's address is the primary address of an ENI attached to its node, which no other pod has.
      const eni = state.networkInterfaces.find((e) => e.PrivateIpAddressSet.some((ip) => ip.Primary && ip.PrivateIpAddress === pod.status!.podIP))!;
      expect(eni, `the ENI of ${pod.metadata!.name}`).toBeDefined();
      expect(eni.Primary).toBe(false);
      expect(eni.Attachment?.InstanceId).toBe(node.instanceId);
      expect(owned.has(eni.NetworkInterfaceId)).toBe(false);
      owned.add(eni.NetworkInterfaceId);
      // In the pod: eth0 is that ENI (its MAC), addressed in its subnet; the node no longer has the link.
      const netns = await lab.podNetns('default', pod.metadata!.name!);
      const eth0 = JSON.parse(await run('nsenter', [`--net=${netns}`, 'ip', '-j', 'address', 'show', 'dev', 'eth0'])) as Array<{ address: string; addr_info: Array<{ local: string; prefixlen: number }> }>;
      expect(eth0[0]!.address).toBe(eni.MacAddress.toLowerCase());
      expect(eth0[0]!.addr_info).toContainEqual(expect.objectContaining({ local: pod.status!.podIP, prefixlen: 24 }));
      expect(await linkMacs(node.ns)).not.toContain(eni.MacAddress.toLowerCase());
      const name = netns.split('/').pop()!;
      expect(await pings(name, GATEWAY), `${pod.metadata!.name} pings the gateway`).toBe(true);
      expect(await pings(name, shared!.status!.podIP!), `${pod.metadata!.name} pings the shared-ENI pod`).toBe(true);
      // Its traffic leaves by its own ENI: the fabric receives the pings on that ENI's end (and an ENI's
      // end carries only what its own addresses send: strict reverse-path filtering drops the rest).
      const fabricEnd = lab.fabric.linkOf(eni.NetworkInterfaceId)!;
      const before = await rxPackets(fabricEnd);
      await run('ip', ['netns', 'exec', name, 'ping', '-c', '5', '-i', '0.2', '-W', '1', GATEWAY]);
      expect((await rxPackets(fabricEnd)) - before).toBeGreaterThanOrEqual(5);
    }
    // The NEC shows each whole ENI and its pod; the pool refilled its spare one on each node used.
    for (const node of new Set(pods.map((p) => p.spec!.nodeName!))) {
      const listed = ((await nec(node)).status?.enis as Array<{ type: string; ips: Array<{ podName?: string }> }> | undefined)?.filter((e) => e.type === 'direct');
      expect(listed?.some((e) => e.ips.some((ip) => ip.podName?.startsWith('busybox-direct-')))).toBe(true);
    }
  }, 120_000);

  it('passes CNI CHECK for a whole-ENI pod, and fails it naming the ENI when its interface is down', async () => {
    const [pod] = running(await podsOf('statefulset.kubernetes.io/pod-name=busybox-direct-0'));
    const node = lab.nodes.find((n) => n.name === pod!.spec!.nodeName)!;
    const held = node.agent!.allocations().find((a) => a.direct && a.pod?.name === 'busybox-direct-0')!;
    const netns = await lab.podNetns('default', 'busybox-direct-0');
    const conf = { ...node.agent!.netConf(), prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: netns }], ips: [{ address: `${held.address}/24`, interface: 0 }] } };
    const env = { containerId: held.containerId, netns, ifName: 'eth0' };
    expect((await node.agent!.cni('CHECK', env, conf)).code).toBe(0);
    await run('nsenter', [`--net=${netns}`, 'ip', 'link', 'set', 'eth0', 'down']);
    try {
      const broken = await node.agent!.cni('CHECK', env, conf);
      expect(broken.result).toMatchObject({ code: 5 });
      expect(String(broken.result!.msg)).toMatch(/eth0 \(eni-\w+\) in .* is not as planned: missing: link eth0 up/);
    } finally {
      await run('nsenter', [`--net=${netns}`, 'ip', 'link', 'set', 'eth0', 'up']);
      await run('nsenter', [`--net=${netns}`, 'ip', 'route', 'replace', 'default', 'via', GATEWAY, 'dev', 'eth0']);
    }
    expect((await node.agent!.cni('CHECK', env, conf)).code).toBe(0);
  }, 30_000);

  it('strands no ENI whose link was lost with a pod while the agent was dead: it is given back and replaced', async () => {
    const [pod] = running(await podsOf('statefulset.kubernetes.io/pod-name=busybox-direct-1'));
    const node = lab.nodes.find((n) => n.name === pod!.spec!.nodeName)!;
    const eni = lab.emulator.state().networkInterfaces.find((e) => e.PrivateIpAddressSet.some((ip) => ip.PrivateIpAddress === pod!.status!.podIP))!;
    await node.agent!.stop('SIGKILL');
    // The link dies in the pod's namespace (as the lab's veth ENIs do when a namespace goes with them).
    await run('nsenter', [`--net=${await lab.podNetns('default', 'busybox-direct-1')}`, 'ip', 'link', 'del', 'eth0']);
    await kubectl('delete', 'pod', 'busybox-direct-1', '--wait=false');
    await until('busybox-direct-1 gone from the node', () => node.runner!.netnsOf(pod!.metadata!.uid!), (ns) => ns === undefined, 30_000);
    await node.agent!.start();
    // The agent frees the pod's allocation, finds the ENI's link gone, and gives the ENI back; ipamd
    // deletes it, and the StatefulSet's new pod gets another whole ENI.
    await until(`${eni.NetworkInterfaceId} given back`, () => lab.emulator.state().networkInterfaces.some((e) => e.NetworkInterfaceId === eni.NetworkInterfaceId), (there) => !there, 45_000).catch((err: Error) => {
      err.message += `\n${node.agent!.log().split('\n').filter((l) => l.includes(eni.NetworkInterfaceId) || l.includes('direct') || l.includes('busybox-direct-1')).join('\n')}`;
      throw err;
    });
    const [again] = running(await runningPods('statefulset.kubernetes.io/pod-name=busybox-direct-1', 1));
    expect(again!.status!.podIP).not.toBe(pod!.status!.podIP);
    const heldNow = lab.nodes.flatMap((n) => n.agent!.allocations()).filter((a) => a.direct);
    expect(heldNow.map((a) => a.pod?.name).sort()).toEqual(['busybox-direct-0', 'busybox-direct-1']);
  }, 120_000);

  it("binds an EIP to a whole-ENI pod's address (eip-attributes): the internet sees the pod come from it; it goes with the pod", async () => {
    await clients.core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'direct-eip', labels: { app: 'direct-eip' }, annotations: { 'tke.cloud.tencent.com/networks': 'tke-direct-eni', 'tke.cloud.tencent.com/eip-attributes': '{"Bandwidth":"10","ISP":"BGP"}' } },
        spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'], resources: { requests: { 'tke.cloud.tencent.com/direct-eni': '1' }, limits: { 'tke.cloud.tencent.com/direct-eni': '1' } } }] },
      },
    });
    const [pod] = await runningPods('app=direct-eip', 1);
    const claim = await until('its EIPClaim bound', () => clients.custom.getNamespacedCustomObject({ group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'eipclaims', namespace: 'default', name: 'direct-eip' }) as Promise<{ status?: { phase?: string; publicIP?: string; boundIP?: string } }>, (c) => c.status?.phase === 'Bound', 30_000);
    expect(claim.status!.boundIP).toBe(pod!.status!.podIP);
    const eni = lab.emulator.state().networkInterfaces.find((e) => e.PrivateIpAddressSet.some((ip) => ip.Primary && ip.PrivateIpAddress === pod!.status!.podIP))!;
    expect(lab.emulator.state().addresses.find((a) => a.AddressIp === claim.status!.publicIP)).toMatchObject({ NetworkInterfaceId: eni.NetworkInterfaceId, PrivateAddressIp: pod!.status!.podIP });
    const netns = (await lab.podNetns('default', 'direct-eip')).split('/').pop()!;
    expect(await whoamiFrom(netns)).toBe(claim.status!.publicIP);
    await kubectl('delete', 'pod', 'direct-eip', '--wait=true');
    await until('its EIP released', () => lab.emulator.state().addresses.some((a) => a.AddressIp === claim.status!.publicIP), (there) => !there, 30_000);
  }, 90_000);

  it('leaves a pod asking for more whole ENIs than any node can attach Pending, with a FailedScheduling event', async () => {
    await clients.core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'greedy', annotations: { 'tke.cloud.tencent.com/networks': 'tke-direct-eni' } },
        spec: { containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'], resources: { requests: { 'tke.cloud.tencent.com/direct-eni': '3' }, limits: { 'tke.cloud.tencent.com/direct-eni': '3' } } }] },
      },
    });
    const events = await until('FailedScheduling for greedy', async () => (await clients.core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=greedy' })).items, (items) => items.some((e) => e.reason === 'FailedScheduling'), 30_000);
    expect(events.find((e) => e.reason === 'FailedScheduling')!.message).toContain('tke.cloud.tencent.com/direct-eni');
    expect((await clients.core.readNamespacedPod({ name: 'greedy', namespace: 'default' })).status?.phase).toBe('Pending');
    await kubectl('delete', 'pod', 'greedy', '--wait=false');
  }, 60_000);

  it('brings the ENIs back to their nodes when the pods go, and gives the spare ones above the target back', async () => {
    const pods = running(await podsOf('k8s-app=busybox-direct'));
    const macs = pods.map((p) => lab.emulator.state().networkInterfaces.find((e) => e.PrivateIpAddressSet.some((ip) => ip.PrivateIpAddress === p.status!.podIP))!);
    await kubectl('delete', 'statefulset', 'busybox-direct');
    await until('the whole-ENI pods gone', () => podsOf('k8s-app=busybox-direct'), (p) => p.length === 0, 30_000);
    // Each link is back in its node's namespace (an ENI given back meanwhile is detached: its link goes).
    for (const [i, pod] of pods.entries()) {
      const node = lab.nodes.find((n) => n.name === pod.spec!.nodeName)!;
      const eni = macs[i]!;
      await until(`${eni.NetworkInterfaceId} back on ${node.name} or given back`, async () => ({ macs: await linkMacs(node.ns), attached: lab.emulator.state().networkInterfaces.find((e) => e.NetworkInterfaceId === eni.NetworkInterfaceId)?.Attachment?.InstanceId }), (s) => s.macs.includes(eni.MacAddress.toLowerCase()) || s.attached !== node.instanceId, 20_000);
    }
    // No pod holds a whole ENI now: each node converges to pods + max, one spare, slowly (one per period).
    for (const node of lab.nodes) {
      await until(`one spare whole ENI on ${node.name}`, () => directEnis(node.name), (e) => e.length === 1, 45_000);
      expect(node.agent!.allocations().filter((a) => a.direct)).toEqual([]);
    }
    await kubectl('delete', 'pod', 'shared');
  }, 120_000);

  it("keeps a whole-ENI pod's fixed IP (Never): its ENI waits on its node, then follows it to another node", async () => {
    const fixed = fixedIpPod(lab, 'fixed-direct', { networks: 'tke-direct-eni' });
    const address = await fixed.on('node-1');
    const eni = fixed.inCloud(address)!;
    expect(eni.PrivateIpAddressSet.find((ip) => ip.PrivateIpAddress === address)?.Primary).toBe(true);
    expect((await fixed.claim()).spec).toMatchObject({ deletePolicy: 'Never', networkMode: 'tke-direct-eni', ip: address });
    await fixed.gone();
    // Kept for the claim on node-1: still attached there, given to no other pod.
    expect(fixed.inCloud(address)?.Attachment?.InstanceId).toBe(fixed.instanceOf('node-1'));
    expect(lab.nodes[0]!.agent!.allocations().find((a) => a.address === address)).toMatchObject({ reserved: true });
    // The next pod of the name on node-2: ipamd moves the whole ENI there, and it is the pod's eth0 again.
    expect(await fixed.on('node-2')).toBe(address);
    expect(fixed.inCloud(address)).toMatchObject({ NetworkInterfaceId: eni.NetworkInterfaceId, Attachment: { InstanceId: fixed.instanceOf('node-2') } });
    const netns = await lab.podNetns('default', 'fixed-direct');
    const eth0 = JSON.parse(await run('nsenter', [`--net=${netns}`, 'ip', '-j', 'link', 'show', 'dev', 'eth0'])) as Array<{ address: string }>;
    expect(eth0[0]!.address).toBe(eni.MacAddress.toLowerCase());
    expect(await pings(netns.split('/').pop()!, GATEWAY)).toBe(true);
    await until('node-1 holds it no more', async () => lab.nodes[0]!.agent!.allocations(), (a) => !a.some((x) => x.address === address), 30_000);
    // The claim deleted with the pod: the ENI is a spare one again, and the pool gives back what is above max.
    await kubectl('delete', 'pod', 'fixed-direct', '--wait=true');
    await kubectl('delete', 'vipc', 'fixed-direct');
    await until('no whole ENI held on node-2', async () => lab.nodes[1]!.agent!.allocations(), (a) => !a.some((x) => x.direct), 30_000);
    await until('one spare whole ENI on node-2', () => directEnis('node-2'), (e) => e.length === 1, 45_000);
  }, 150_000);
});
