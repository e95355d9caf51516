// Fixed pod IPs on the lab cluster (seed 000): the seed's StatefulSet with vpc-ip-claim-delete-policy: Never,
// applied verbatim. A deleted pod comes back with its address, on its node or, cordoned, on the other one
// (the address moved between the nodes' ENIs in the cloud); `kubectl get vip` and `vipc` show it all; a
// claim ends by `kubectl delete vipc`, by expiry, or with its StatefulSet (--enable-ownerref), and each time
// the address goes back to the subnet.
import { fileURLToPath } from 'node:url';
import type * as k8s from '@kubernetes/client-node';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../hack/lab/node-agent.ts';
import { kubeClients, Lab, pings } from '../hack/lab/lab.ts';
import { until } from './eventually.ts';
import { labKube } from './lab-kube.ts';

const FIXED_STATEFULSET = fileURLToPath(new URL('../hack/examples/fixed-ip-statefulset.yaml', import.meta.url));
const EXPIRY_S = 8;

let lab: Lab;
let clients: ReturnType<typeof kubeClients>;

const { kubectl, pod, runningPod } = labKube(() => lab, 'vipc');
type Claim = { metadata: { ownerReferences?: Array<{ kind: string; name: string }> }; spec: { deletePolicy: string; ip?: string }; status?: { phase?: string; nodeName?: string; ip?: string } };
const claim = (name: string) => clients.custom.getNamespacedCustomObject({ group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'vpcipclaims', namespace: 'default', name }) as Promise<Claim>;
const claimGone = (name: string) => until(`claim ${name} gone`, () => claim(name).then(() => 'there', (e: { code?: number }) => (e.code === 404 ? 'gone' : 'error')), (s) => s === 'gone', 30_000);
/** The ENI (and its instance) holding an address in the cloud, if any. */
const inCloud = (address: string) => lab.emulator.state().networkInterfaces.find((e) => e.PrivateIpAddressSet.some((ip) => ip.PrivateIpAddress === address));
const onNode = (name: string) => lab.nodes.find((n) => n.name === name)!;

beforeAll(async () => {
  lab = await Lab.up({
    nodes: 2,
    taskMs: 30,
    cluster: true,
    agents: { minWarm: 2, maxWarm: 3, gcInterval: '2s' },
    ipamdFlags: { 'enable-ownerref': 'true', 'claim-expiry-floor': '1s', 'claim-expired-duration': `${EXPIRY_S}s` },
  });
  clients = kubeClients(lab.kubeconfigFile('admin'));
}, 120_000);
afterAll(async () => lab?.down());

describe('fixed pod IPs', () => {
  const addresses = new Map<string, string>();

  it("gives each pod of the seed's StatefulSet a claim, and every address a VpcIP", async () => {
    await kubectl('apply', '-f', FIXED_STATEFULSET);
    for (const name of ['busybox-0', 'busybox-1', 'busybox-2']) addresses.set(name, (await runningPod(name)).status!.podIP!);
    for (const [name, address] of addresses) {
      const c = await claim(name);
      expect(c.spec).toMatchObject({ deletePolicy: 'Never', ip: address });
      expect(c.status).toMatchObject({ phase: 'Bound', ip: address, nodeName: (await pod(name)).spec!.nodeName });
      // --enable-ownerref: owned by the StatefulSet, so deleting it reclaims them.
      await until(`${name}'s claim owned`, () => claim(name), (x) => x.metadata.ownerReferences?.[0]?.kind === 'StatefulSet');
    }
    const vip = await until('three VpcIPs', () => kubectl('get', 'vip'), (out) => [...addresses.values()].every((a) => out.includes(a)));
    expect(vip).toMatch(/busybox-0/);
    expect(await kubectl('get', 'vipc')).toMatch(/busybox-0\s+\d+\.\d+\.\d+\.\d+\s+Bound/);
    // eni-cnictl doctor on the pod's node follows its path out to ipamd's view of the cloud and its claim.
    const node = onNode((await pod('busybox-0')).spec!.nodeName!);
    const doctor = await execa('ip', ['netns', 'exec', node.ns, `${REPO}dist/bin/eni-cnictl`, 'doctor', 'default/busybox-0', '--json'], { reject: false });
    const report = JSON.parse(doctor.stdout) as { broken?: unknown; findings: Array<{ check: string; ok: boolean; says: string }> };
    expect(doctor.exitCode, doctor.stdout).toBe(0);
    expect(report.findings.filter((f) => ['cloud', 'VpcIPClaim', 'VpcIP'].includes(f.check)).map((f) => [f.check, f.ok])).toEqual([['cloud', true], ['VpcIPClaim', true], ['VpcIP', true]]);
    expect(report.findings.find((f) => f.check === 'cloud')!.says).toContain('tke-eni-ipamd');
  }, 90_000);

  it('gives a deleted pod its address back', async () => {
    const before = await pod('busybox-0');
    await kubectl('delete', 'pod', 'busybox-0');
    const after = await runningPod('busybox-0', before.metadata!.uid);
    expect(after.status!.podIP).toBe(addresses.get('busybox-0'));
  }, 60_000);

  it('moves the address with its pod to another node: the fabric routes it there, pings work', async () => {
    const before = await pod('busybox-1');
    const from = before.spec!.nodeName!;
    const to = lab.nodes.find((n) => n.name !== from)!.name;
    const address = addresses.get('busybox-1')!;
    expect(inCloud(address)?.Attachment?.InstanceId).toBe(onNode(from).instanceId);
    await kubectl('cordon', from);
    try {
      await kubectl('delete', 'pod', 'busybox-1');
      const after = await runningPod('busybox-1', before.metadata!.uid);
      expect(after.spec!.nodeName).toBe(to);
      expect(after.status!.podIP).toBe(address);
    } finally {
      await kubectl('uncordon', from);
    }
    // In the cloud the address is on an ENI of the new node now; the VpcIP says so.
    expect(inCloud(address)?.Attachment?.InstanceId).toBe(onNode(to).instanceId);
    await until('the VpcIP on the new node', () => kubectl('get', 'vip', address), (out) => out.includes(to));
    await lab.settled();
    const other = (await pod('busybox-0')).status!.podIP!;
    const netns = (await lab.podNetns('default', 'busybox-1')).split('/').pop()!;
    expect(await pings(netns, other)).toBe(true);
    expect(await pings(netns, '10.0.16.1')).toBe(true);
  }, 90_000);

  it('keeps the claim of a pod scaled away, reserved from every other pod, until `kubectl delete vipc` gives it back to the subnet', async () => {
    await kubectl('scale', 'statefulset', 'busybox', '--replicas=2');
    await until('busybox-2 gone', () => clients.core.listNamespacedPod({ namespace: 'default', fieldSelector: 'metadata.name=busybox-2' }), (l) => l.items.length === 0, 30_000);
    const address = addresses.get('busybox-2')!;
    await until('busybox-2 claim Released', () => claim('busybox-2'), (c) => c.status?.phase === 'Released');
    // Still on its node's ENI, held there for the claim (a reservation in the agent's checkpoint): a new pod does not get it.
    expect(inCloud(address)).toBeDefined();
    const held = lab.nodes.flatMap((n) => n.agent!.allocations() as Array<{ address: string; containerId: string; reserved?: boolean }>);
    expect(held).toContainEqual(expect.objectContaining({ address, containerId: 'claim:default/busybox-2', reserved: true }));
    await clients.core.createNamespacedPod({
      namespace: 'default',
      body: { metadata: { name: 'other', annotations: { 'tke.cloud.tencent.com/networks': 'tke-route-eni' } }, spec: { containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'], resources: { requests: { 'tke.cloud.tencent.com/eni-ip': '1' } } }] } },
    });
    expect((await runningPod('other')).status!.podIP).not.toBe(address);
    await kubectl('delete', 'pod', 'other');
    await kubectl('delete', 'vipc', 'busybox-2');
    await claimGone('busybox-2');
    await until(`${address} back in the subnet`, async () => inCloud(address), (eni) => eni === undefined, 30_000);
    await until('its VpcIP gone', () => kubectl('get', 'vip'), (out) => !out.includes(address));
  }, 90_000);

  it('refuses a delete policy it does not know, with an event naming it', async () => {
    await clients.core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'odd', annotations: { 'tke.cloud.tencent.com/networks': 'tke-route-eni', 'tke.cloud.tencent.com/vpc-ip-claim-delete-policy': 'Sometimes' } },
        spec: { containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'], resources: { requests: { 'tke.cloud.tencent.com/eni-ip': '1' } } }] },
      },
    });
    const events = await until(
      'FailedCreatePodSandBox for odd',
      async () => (await clients.core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=odd,reason=FailedCreatePodSandBox' })).items,
      (items: k8s.CoreV1Event[]) => items.length > 0,
      30_000,
    );
    expect(events[0]!.message).toContain('"Sometimes" is not a delete policy');
    await kubectl('delete', 'pod', 'odd');
  }, 60_000);

  it('expires the claim of a pod gone for --claim-expired-duration, and reclaims the rest with the StatefulSet', async () => {
    await kubectl('scale', 'statefulset', 'busybox', '--replicas=1');
    const address = addresses.get('busybox-1')!;
    await until('busybox-1 claim Released', () => claim('busybox-1'), (c) => c.status?.phase === 'Released', 30_000);
    await claimGone('busybox-1');
    await until(`${address} back in the subnet`, async () => inCloud(address), (eni) => eni === undefined, 30_000);

    const last = addresses.get('busybox-0')!;
    await kubectl('delete', '-f', FIXED_STATEFULSET);
    await claimGone('busybox-0');
    await until(`${last} back in the subnet`, async () => inCloud(last), (eni) => eni === undefined, 30_000);
    await until('no VpcIP left', () => kubectl('get', 'vip', '-o', 'name'), (out) => out.trim() === '');
    await until('no allocation left', async () => lab.nodes.flatMap((n) => n.agent!.allocations()), (a) => a.length === 0);
  }, 90_000);
});
