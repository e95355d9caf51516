// EIPs per pod on the lab cluster (seeds 001–003): the seed's StatefulSet applied verbatim gets each pod a
// new EIP, bound to its address, written on the pod as eip-public-ip, and the lab's internet sees the pod's
// traffic come from it, with no one editing NonMasqueradeSrcCIDRs; the pod made again gets the same EIP
// (Never); a pod without Never has its EIP released when it goes; a broken annotation is refused with an
// error naming it, and costs no EIP; deleting the claims of the StatefulSet releases their EIPs.
import { fileURLToPath } from 'node:url';
import type * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultWorld } from '../hack/emulator/world.ts';
import { kubeClients, Lab, pings, whoamiFrom } from '../hack/lab/lab.ts';
import { inNs } from '../hack/lab/sh.ts';
import type { EipClaim } from '../agent/k8s/eip-claims.ts';
import { until } from './eventually.ts';
import { labKube } from './lab-kube.ts';

const EIP_STATEFULSET = fileURLToPath(new URL('../hack/examples/eip-statefulset.yaml', import.meta.url));
const ID_LIST_STATEFULSET = fileURLToPath(new URL('../hack/examples/eip-id-list-statefulset.yaml', import.meta.url));

const EXPIRY_S = 6;
let lab: Lab;
let clients: ReturnType<typeof kubeClients>;

const { kubectl, pod, runningPod } = labKube(() => lab, 'eipc');
/** A pod of the VPC-CNI network with these annotations (and, as the seed's pods do, an eip resource request). */
const createPod = (name: string, annotations: Record<string, string>, o: { eipResource?: boolean } = {}) =>
  clients.core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name, annotations: { 'tke.cloud.tencent.com/networks': 'tke-route-eni', ...annotations } },
      spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'], ...(o.eipResource ? { resources: { requests: { 'tke.cloud.tencent.com/eip': '1' }, limits: { 'tke.cloud.tencent.com/eip': '1' } } } : {}) }] },
    },
  });
const claim = (name: string) => clients.custom.getNamespacedCustomObject({ group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'eipclaims', namespace: 'default', name }) as Promise<EipClaim>;
const claimGone = (name: string) => until(`EIPClaim ${name} gone`, () => claim(name).then(() => 'there', (e: { code?: number }) => (e.code === 404 ? 'gone' : 'error')), (s) => s === 'gone', 30_000);
const eips = () => lab.emulator.state().addresses;
const netnsOf = async (name: string) => (await lab.podNetns('default', name)).split('/').pop()!;

beforeAll(async () => {
  // The account holds the two EIPs the seed's eip-id-list names.
  lab = await Lab.up({ nodes: 2, taskMs: 30, cluster: true, agents: { minWarm: 1, maxWarm: 2, gcInterval: '2s' }, world: { ...defaultWorld(), eips: ['eip-xxx1', 'eip-xxx2'] }, ipamdFlags: { 'enable-ownerref': 'true', 'claim-expiry-floor': '1s', 'claim-expired-duration': `${EXPIRY_S}s` } });
  clients = kubeClients(lab.kubeconfigFile('admin'));
}, 120_000);
afterAll(async () => lab?.down());

describe('EIPs per pod', () => {
  let first = { eipId: '', publicIp: '' };

  it('advertises tke.cloud.tencent.com/eip on each node: its public IP binding count less one', async () => {
    for (const node of lab.nodes) {
      const cpus = lab.emulator.model.instance(node.instanceId).spec.cpu;
      const n = await until(`${node.name}'s eip resource`, () => clients.core.readNode({ name: node.name }), (x) => x.status?.allocatable?.['tke.cloud.tencent.com/eip'] !== undefined);
      expect(Number(n.status!.allocatable!['tke.cloud.tencent.com/eip'])).toBe(Math.min(10, Math.floor(cpus / 6) + 2) - 1);
    }
  });

  it("binds a new EIP to the seed's pod, writes it on the pod, and the internet sees the pod's traffic come from it", async () => {
    await kubectl('apply', '-f', EIP_STATEFULSET);
    const p = await runningPod('busybox-0');
    const c = await until('busybox-0 EIP bound', () => claim('busybox-0'), (x) => x.status?.phase === 'Bound');
    expect(c.spec).toMatchObject({ deletePolicy: 'Never', bandwidth: 100, isp: 'BGP' });
    first = { eipId: c.status!.eipId!, publicIp: c.status!.publicIP! };
    expect(eips().find((e) => e.AddressId === first.eipId)).toMatchObject({ AddressStatus: 'BIND', PrivateAddressIp: p.status!.podIP, Bandwidth: 100, InternetServiceProvider: 'BGP', InternetChargeType: 'TRAFFIC_POSTPAID_BY_HOUR' });
    expect(p.metadata?.annotations?.['tke.cloud.tencent.com/eip-public-ip'] ?? (await pod('busybox-0')).metadata?.annotations?.['tke.cloud.tencent.com/eip-public-ip']).toBe(first.publicIp);
    const netns = await netnsOf('busybox-0');
    expect(await whoamiFrom(netns)).toBe(first.publicIp);
    // The VPC is unaffected: the gateway and the nodes are reached with the pod's own address.
    expect(await pings(netns, '10.0.16.1')).toBe(true);
    expect(await kubectl('get', 'eipc')).toMatch(new RegExp(`busybox-0\\s+${first.eipId}\\s+${first.publicIp.replace(/\./g, '\\.')}\\s+Bound`));
  }, 90_000);

  it('gives the same EIP back to the pod made again (Never), and unbinds it meanwhile', async () => {
    const before = await pod('busybox-0');
    await kubectl('delete', 'pod', 'busybox-0', '--wait=false');
    const again = await runningPod('busybox-0', before.metadata!.uid);
    const c = await until('busybox-0 EIP bound again', () => claim('busybox-0'), (x) => x.status?.phase === 'Bound' && x.status.privateIP === again.status!.podIP);
    expect(c.status).toMatchObject({ eipId: first.eipId, publicIP: first.publicIp });
    expect(eips().filter((e) => e.AddressId === first.eipId)).toHaveLength(1);
    expect(eips().find((e) => e.AddressId === first.eipId)).toMatchObject({ AddressStatus: 'BIND', PrivateAddressIp: again.status!.podIP });
    expect(await whoamiFrom(await netnsOf('busybox-0'))).toBe(first.publicIp);
  }, 90_000);

  it('releases the EIP of a pod without Never when the pod goes', async () => {
    await createPod('passing', { 'tke.cloud.tencent.com/eip-attributes': '{"Bandwidth":"10","ISP":"BGP"}' }, { eipResource: true });
    await runningPod('passing');
    const c = await until('passing EIP bound', () => claim('passing'), (x) => x.status?.phase === 'Bound');
    expect(c.spec).toMatchObject({ deletePolicy: 'Immediate', bandwidth: 10 });
    expect(await whoamiFrom(await netnsOf('passing'))).toBe(c.status!.publicIP);
    const node = lab.nodes.find((n) => n.name === c.status!.nodeName)!;
    const exemption = `-s ${c.status!.privateIP}/32`;
    expect(await inNs(node.ns, 'iptables-save', ['-t', 'mangle'])).toContain(exemption);
    await kubectl('delete', 'pod', 'passing', '--wait=true');
    // The exemption goes with the pod: the next pod of that address is masqueraded as any other.
    await until('the exemption gone', () => inNs(node.ns, 'iptables-save', ['-t', 'mangle']), (out) => !out.includes(exemption), 10_000);
    await claimGone('passing');
    expect(eips().map((e) => e.AddressId)).not.toContain(c.status!.eipId);
  }, 90_000);

  it('refuses a broken eip-attributes with an error naming it, and allocates nothing', async () => {
    const before = eips().length;
    await createPod('broken', { 'tke.cloud.tencent.com/eip-attributes': '{"Bandwidth":"100","ISP":"XYZ"}' });
    try {
      const events = await until(
        'a refusal for broken',
        async () => (await clients.core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=broken,reason=FailedCreatePodSandBox' })).items,
        (items: k8s.CoreV1Event[]) => items.length > 0,
        30_000,
      );
      expect(events[0]!.message).toContain('tke.cloud.tencent.com/eip-attributes: ISP "XYZ" is not one of BGP, CMCC, CTCC, CUCC');
      expect(eips().length).toBe(before);
      await expect(claim('broken')).rejects.toMatchObject({ code: 404 });
      const held = lab.nodes.flatMap((n) => n.agent!.allocations().filter((a) => a.pod?.name === 'broken'));
      expect(held).toEqual([]);
    } finally {
      await kubectl('delete', 'pod', 'broken', '--wait=true');
    }
  }, 60_000);

  it("releases the StatefulSet's kept EIPs with it (--enable-ownerref)", async () => {
    await until("busybox-0's claim owned by its StatefulSet", () => claim('busybox-0'), (c) => c.metadata.ownerReferences?.[0]?.kind === 'StatefulSet');
    await kubectl('delete', 'statefulset', 'busybox', '--wait=true');
    await claimGone('busybox-0');
    await until(`${first.eipId} released`, async () => eips().map((e) => e.AddressId), (ids) => !ids.includes(first.eipId), 30_000);
  }, 90_000);

  it('keeps the EIP of a Never pod gone until `kubectl delete eipc`, or until --claim-expired-duration has passed', async () => {
    const kept = async (name: string) => {
      await createPod(name, { 'tke.cloud.tencent.com/eip-attributes': '', 'tke.cloud.tencent.com/eip-claim-delete-policy': 'Never' });
      await runningPod(name);
      const eipId = (await until(`${name} bound`, () => claim(name), (x) => x.status?.phase === 'Bound')).status!.eipId!;
      await kubectl('delete', 'pod', name, '--wait=true');
      await until(`${name}'s EIP kept`, () => claim(name), (x) => x.status?.phase === 'Released', 30_000);
      expect(eips().find((e) => e.AddressId === eipId)).toMatchObject({ AddressStatus: 'UNBIND' });
      return eipId;
    };
    const byHand = await kept('kept-by-hand');
    await kubectl('delete', 'eipc', 'kept-by-hand');
    await claimGone('kept-by-hand');
    expect(eips().map((e) => e.AddressId)).not.toContain(byHand);

    // Back once, then gone for good: the expiry counts from the last time it went, not the first.
    const expiring = await kept('kept-to-expire');
    await createPod('kept-to-expire', { 'tke.cloud.tencent.com/eip-attributes': '', 'tke.cloud.tencent.com/eip-claim-delete-policy': 'Never' });
    await runningPod('kept-to-expire');
    const back = await until('kept-to-expire bound again', () => claim('kept-to-expire'), (x) => x.status?.phase === 'Bound');
    expect(back.status).toMatchObject({ eipId: expiring });
    expect(back.status?.releasedAt).toBeUndefined();
    await new Promise((r) => setTimeout(r, EXPIRY_S * 1000));
    await kubectl('delete', 'pod', 'kept-to-expire', '--wait=true');
    const gone = Date.now();
    await until('kept-to-expire kept again', () => claim('kept-to-expire'), (x) => x.status?.phase === 'Released', 30_000);
    await claimGone('kept-to-expire');
    expect(Date.now() - gone).toBeGreaterThanOrEqual(EXPIRY_S * 1000 - 500);
    expect(eips().map((e) => e.AddressId)).not.toContain(expiring);
  }, 120_000);

  it("binds the user's EIP of the pod's ordinal from eip-id-list, to one pod only, and never releases it", async () => {
    await kubectl('apply', '-f', ID_LIST_STATEFULSET);
    const p = await runningPod('busybox-0');
    await until('busybox-0 bound to eip-xxx1', () => claim('busybox-0'), (x) => x.status?.phase === 'Bound' && x.status.eipId === 'eip-xxx1');
    expect(eips().find((e) => e.AddressId === 'eip-xxx1')).toMatchObject({ AddressStatus: 'BIND', PrivateAddressIp: p.status!.podIP });
    expect(await whoamiFrom(await netnsOf('busybox-0'))).toBe(eips().find((e) => e.AddressId === 'eip-xxx1')!.AddressIp);

    // A second pod wanting the same EIP gets a clear error, and the first keeps it.
    await createPod('rival', { 'tke.cloud.tencent.com/eip-id-list': 'eip-xxx1' });
    const refused = await until(
      'a refusal for rival',
      async () => (await clients.core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=rival,reason=FailedCreatePodSandBox' })).items,
      (items: k8s.CoreV1Event[]) => items.some((e) => e.message?.includes('eip-xxx1 is bound to')),
      30_000,
    );
    expect(refused.find((e) => e.message?.includes('eip-xxx1'))!.message).toContain(p.status!.podIP!);
    expect(eips().find((e) => e.AddressId === 'eip-xxx1')).toMatchObject({ AddressStatus: 'BIND', PrivateAddressIp: p.status!.podIP });
    // Each of its tries gives its address back when refused (between tries it holds nothing).
    await until('rival between tries holds nothing', async () => lab.nodes.flatMap((n) => n.agent!.allocations().filter((a) => a.pod?.name === 'rival')), (held) => held.length === 0, 10_000);

    // The StatefulSet gone, its EIP is unbound, not released, and the waiting pod gets it.
    await kubectl('delete', 'statefulset', 'busybox', '--wait=true');
    const rival = await runningPod('rival');
    await until('rival bound to eip-xxx1', () => claim('rival'), (x) => x.status?.phase === 'Bound', 30_000);
    expect(eips().find((e) => e.AddressId === 'eip-xxx1')).toMatchObject({ AddressStatus: 'BIND', PrivateAddressIp: rival.status!.podIP });
    await kubectl('delete', 'pod', 'rival', '--wait=true');
    await claimGone('rival');
    expect(eips().filter((e) => e.AddressId.startsWith('eip-xxx')).map((e) => [e.AddressId, e.AddressStatus])).toEqual([
      ['eip-xxx1', 'UNBIND'],
      ['eip-xxx2', 'UNBIND'],
    ]);
  }, 120_000);

  it("releases, as the uninstall step, the cluster's unbound EIPs and never a user's", async () => {
    await createPod('left', { 'tke.cloud.tencent.com/eip-attributes': '{}', 'tke.cloud.tencent.com/eip-claim-delete-policy': 'Never' });
    await runningPod('left');
    const eipId = (await until('left bound', () => claim('left'), (x) => x.status?.phase === 'Bound')).status!.eipId!;
    const tags = Object.fromEntries(eips().find((e) => e.AddressId === eipId)!.TagSet.map((t) => [t.Key, t.Value]));
    const kubeSystem = await clients.core.readNamespace({ name: 'kube-system' });
    expect(tags['eni-cni.cluster']).toBe(kubeSystem.metadata!.uid);
    // Bound: named and left alone.
    expect(await lab.ipamds[0]!.once(['--release-cluster-eips'])).toContain(`${eipId} (${eips().find((e) => e.AddressId === eipId)!.AddressIp}) is BIND`);
    expect(eips().map((e) => e.AddressId)).toContain(eipId);
    await kubectl('delete', 'pod', 'left', '--wait=true');
    await until('left kept', () => claim('left'), (x) => x.status?.phase === 'Released', 30_000);
    const out = await lab.ipamds[0]!.once(['--release-cluster-eips']);
    expect(out).toContain(`released ${eipId}`);
    expect(out).toContain('1 EIP released, 0 still bound');
    expect(eips().map((e) => e.AddressId).sort()).toEqual(['eip-xxx1', 'eip-xxx2']);
    await kubectl('delete', 'eipc', 'left');
    await claimGone('left');
  }, 90_000);
});
