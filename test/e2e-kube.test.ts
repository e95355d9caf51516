// The agent as a Kubernetes citizen, on the lab with the API server stand-in and tke-eni-ipamd's two
// replicas (both programs started from the manifests' commands): ipamd makes each node's NEC with its
// defaults and is the only one holding cloud keys; the node's eni-ip resource follows the pool, pod
// annotations choose the mode, NEC overrides apply or are refused visibly, events come once per cause,
// the informers survive the API server restarting, and killing the active ipamd hands over.
import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer } from '../hack/apiserver/server.ts';
import { kubeClients, Lab, type LabNode } from '../hack/lab/lab.ts';
import { until } from './eventually.ts';

let lab: Lab;
let a: LabNode;
let clients: ReturnType<typeof kubeClients>;

type Nec = { metadata: { annotations?: Record<string, string>; ownerReferences?: Array<{ kind: string; name: string }> }; spec?: { quota?: object; defaults?: Record<string, number> }; status?: { pool?: Record<string, number>; enis?: Array<{ eniId: string; ips: Array<{ ip: string; podName?: string }> }>; conditions?: Array<{ type: string; status: string; message: string }> } };

const nec = async (name: string) => (await clients.custom.getClusterCustomObject({ group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'nodeeniconfigs', name })) as Nec;


async function annotateNec(name: string, annotations: Record<string, string | null>) {
  const { setHeaderOptions, PatchStrategy } = await import('@kubernetes/client-node');
  await clients.custom.patchClusterCustomObject(
    { group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'nodeeniconfigs', name, body: { metadata: { annotations } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

beforeAll(async () => {
  lab = await Lab.up({ nodes: 2, taskMs: 30, kube: true, agents: { minWarm: 3, maxWarm: 6, quickRelease: true, releasePeriod: '1s' } });
  a = lab.nodes[0]!;
  clients = kubeClients(lab.kubeconfigFile('admin'));
});
afterAll(async () => lab?.down());

describe('the agent and Kubernetes', () => {
  it("creates each node's NEC with the pool in its status, and publishes eni-ip", async () => {
    for (const node of lab.nodes) {
      const status = (await until(`NEC ${node.name} status`, () => nec(node.name), (n) => (n.status?.pool?.bound ?? 0) >= 3)).status!;
      expect(status.pool).toMatchObject({ minWarmTarget: 3, maxWarmTarget: 6, capacity: 27 });
      expect(status.enis!.length).toBeGreaterThan(0);
    }
    // Allocatable is what the node can bind, not what it has bound: the pool grows for the pods it is given.
    const node = await until('eni-ip on node-1', () => clients.core.readNode({ name: a.name }), (n) => n.status?.allocatable?.['tke.cloud.tencent.com/eni-ip'] !== undefined);
    expect(node.status!.capacity!['tke.cloud.tencent.com/eni-ip']).toBe('27');
    expect(node.status!.allocatable!['tke.cloud.tencent.com/eni-ip']).toBe('27');
  });

  it('serves a tke-route-eni pod, shows it in the NEC, and refuses a mode the node cannot serve', async () => {
    for (const [name, mode] of [['shared-0', 'tke-route-eni'], ['whole-0', 'tke-direct-eni']] as const) {
      await clients.core.createNamespacedPod({
        namespace: 'default',
        body: { metadata: { name, annotations: { 'tke.cloud.tencent.com/networks': mode } }, spec: { nodeName: a.name, containers: [{ name: 'c', image: 'busybox' }] } },
      });
    }
    const shared = await lab.addPod('shared-0');
    const ok = await a.agent!.cni('ADD', { containerId: 'k-shared', netns: `/var/run/netns/${shared}`, ifName: 'eth0', args: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=shared-0' });
    expect(ok.code, ok.stdout).toBe(0);
    const address = (ok.result!.ips as Array<{ address: string }>)[0]!.address.split('/')[0];
    await until('the pod in the NEC', () => nec(a.name), (n) => (n.status?.enis ?? []).some((e) => e.ips.some((ip) => ip.ip === address && ip.podName === 'shared-0')));

    const whole = await lab.addPod('whole-0');
    const refused = await a.agent!.cni('ADD', { containerId: 'k-whole', netns: `/var/run/netns/${whole}`, ifName: 'eth0', args: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=whole-0' });
    expect(refused.code).toBe(1);
    expect(refused.result).toMatchObject({ code: 100 });
    expect(String(refused.result!.msg)).toContain('default/whole-0');
    expect(String(refused.result!.msg)).toContain('tke-direct-eni');
  });

  it('applies NEC overrides at once, and refuses a bad one visibly, with one event', async () => {
    const name = lab.nodes[1]!.name;
    await annotateNec(name, { 'tke.cloud.tencent.com/route-eni-ip-min-warm-target': '8', 'tke.cloud.tencent.com/route-eni-ip-max-warm-target': '9' });
    await until('the pool at 8 warm', () => nec(name), (n) => n.status?.pool?.minWarmTarget === 8 && (n.status?.pool?.bound ?? 0) >= 8);

    await annotateNec(name, { 'tke.cloud.tencent.com/route-eni-ip-min-warm-target': '7', 'tke.cloud.tencent.com/route-eni-ip-max-warm-target': '2' });
    const refused = await until('the refusal on the NEC', () => nec(name), (n) => (n.status?.conditions ?? []).some((c) => c.type === 'OverridesApplied' && c.status === 'False'));
    expect(refused.status!.conditions!.find((c) => c.type === 'OverridesApplied')!.message).toContain('(7) is above');
    // A refused override changes nothing (seed 004): the last valid values stay in force, not 7/2, nor the defaults.
    expect(refused.status!.pool).toMatchObject({ minWarmTarget: 8, maxWarmTarget: 9 });
    // The same refusal again within the minute: still one event.
    await annotateNec(name, { 'tke.cloud.tencent.com/route-eni-ip-max-warm-target': '1' });
    await annotateNec(name, { 'tke.cloud.tencent.com/route-eni-ip-max-warm-target': '2' });
    await until(
      'the OverrideRefused events of both causes',
      () => clients.core.listNamespacedEvent({ namespace: 'default' }),
      (l) => ['max-warm-target (2)', 'max-warm-target (1)'].every((m) => l.items.some((e) => e.reason === 'OverrideRefused' && e.involvedObject.name === name && e.message?.includes(m))),
    );
    // Give the repeated refusal its chance to (wrongly) record a second event.
    await new Promise((r) => setTimeout(r, 500));
    const refusals = (await clients.core.listNamespacedEvent({ namespace: 'default' })).items.filter((e) => e.reason === 'OverrideRefused' && e.involvedObject.name === name);
    // 7 over 2, then 7 over 1 (another cause), then 7 over 2 again (the first cause, within the minute).
    expect(refusals.filter((e) => e.message?.includes('max-warm-target (2)')).length).toBe(1);
    expect(refusals.filter((e) => e.message?.includes('max-warm-target (1)')).length).toBe(1);
  });

  it('keeps following the NEC after the API server restarts', async () => {
    const server = lab.apiserver!;
    const { host, port, store } = server;
    await server.close();
    await new Promise((r) => setTimeout(r, 500));
    lab.apiserver = await startApiServer({ host, port, store });
    const name = lab.nodes[1]!.name;
    await annotateNec(name, { 'tke.cloud.tencent.com/route-eni-ip-min-warm-target': '4', 'tke.cloud.tencent.com/route-eni-ip-max-warm-target': '5' });
    await until('the new targets after the restart', () => nec(name), (n) => n.status?.pool?.minWarmTarget === 4, 20_000);
  });

  it('gives the agents no cloud keys: ipamd made the NECs, and every cloud call came from ipamd', async () => {
    const secret = lab.emulator.world.credentials[0]!.secretKey;
    for (const node of lab.nodes) {
      const pid = node.agent!.pid!;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      expect(cmdline).not.toContain('credentials');
      expect(`${cmdline}${environ}`).not.toContain(secret);
      expect(environ).not.toMatch(/SECRET|TENCENTCLOUD/);
      const made = await nec(node.name);
      expect(made.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Node', name: node.name })]);
      expect(made.spec?.defaults).toMatchObject({ ipMinWarmTarget: 3, ipMaxWarmTarget: 6 });
    }
    // No CVM role's keys were ever handed out: the agents asked the metadata service for none (ipamd uses its file).
    expect(lab.emulator.keys.issued).toBe(0);
    for (const replica of lab.ipamds) expect(replica.running).toBe(true);
  });

  it('hands over to the other ipamd replica within 15 s when the active one is killed, and does nothing twice', async () => {
    const lease = () => clients.coordination.readNamespacedLease({ name: 'tke-eni-ipamd', namespace: 'kube-system' });
    const holder = (await lease()).spec!.holderIdentity!;
    const active = lab.ipamds.find((r) => r.log().includes(`"identity":"${holder}"`))!;
    expect(active, `the replica ${holder}`).toBeDefined();
    const enisBefore = lab.emulator.state().networkInterfaces.filter((e) => !e.Primary).map((e) => e.NetworkInterfaceId).sort();
    const createsBefore = lab.emulator.state().calls.CreateNetworkInterface?.ok ?? 0;
    await active.stop('SIGKILL');
    const killedAt = Date.now();
    await until('the other replica leads', () => lease(), (l) => l.spec?.holderIdentity !== holder, 20_000);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    // A pod asks for more than the pool holds: the new leader serves it.
    const name = lab.nodes[1]!.name;
    await annotateNec(name, { 'tke.cloud.tencent.com/route-eni-ip-min-warm-target': '12', 'tke.cloud.tencent.com/route-eni-ip-max-warm-target': '12' });
    await until('12 warm after the handover', () => nec(name), (n) => (n.status?.pool?.bound ?? 0) >= 12, 20_000);
    // Nothing redone: the ENIs that were there are still the same ones, one more at most for the growth.
    const enisAfter = lab.emulator.state().networkInterfaces.filter((e) => !e.Primary).map((e) => e.NetworkInterfaceId);
    for (const id of enisBefore) expect(enisAfter).toContain(id);
    expect((lab.emulator.state().calls.CreateNetworkInterface?.ok ?? 0) - createsBefore).toBeLessThanOrEqual(1);
    // What the cloud holds for the node is what its NEC says, address for address.
    const node = lab.nodes[1]!;
    const inCloud = lab.emulator.state().networkInterfaces.filter((e) => e.Attachment?.InstanceId === node.instanceId && !e.Primary).flatMap((e) => e.PrivateIpAddressSet.filter((ip) => !ip.Primary).map((ip) => ip.PrivateIpAddress)).sort();
    const inNec = ((await nec(name)).status as { ipamd?: { enis: Array<{ ips: string[] }> } }).ipamd!.enis.flatMap((e) => e.ips).sort();
    expect(inNec).toEqual(inCloud);
  });

  it('writes a NEC only when something changed: an idle node makes no writes', async () => {
    const name = lab.nodes[0]!.name;
    const rv = async () => ((await clients.custom.getClusterCustomObject({ group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'nodeeniconfigs', name })) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    await until('the node idle', async () => [await rv(), await new Promise((r) => setTimeout(r, 1500)).then(rv)], ([a, b]) => a === b, 20_000);
    const before = await rv();
    await new Promise((r) => setTimeout(r, 2000));
    expect(await rv()).toBe(before);
  });

  it('answers kubectl get nec', async () => {
    const { stdout } = await execa('kubectl', ['--kubeconfig', lab.kubeconfigFile('admin'), 'get', 'nec']);
    for (const node of lab.nodes) expect(stdout).toContain(node.name);
  });
});
