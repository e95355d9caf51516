// One Never pod of a lab cluster, bound by hand to a node (no scheduler in the way), and what tests of
// fixed IPs read about its address: where the cloud has it, which agents hold it, its claim.
import { expect } from 'vitest';
import { vpcClient, waitTask } from '../hack/emulator/testing.ts';
import { kubeClients, type Lab } from '../hack/lab/lab.ts';
import { run } from '../hack/lab/sh.ts';
import type { VpcIpClaim } from '../agent/k8s/claims.ts';
import { until } from './eventually.ts';

/** `networks`: the pod's network mode (shared-ENI by default, tke-direct-eni for a whole-ENI pod). */
export function fixedIpPod(lab: Lab, name: string, o: { networks?: string } = {}) {
  const clients = kubeClients(lab.kubeconfigFile('admin'));
  const kubectl = (...args: string[]) => run('kubectl', ['--kubeconfig', lab.kubeconfigFile('admin'), ...args]);
  const vpc = () => vpcClient(lab.emulator);
  const instanceOf = (node: string) => lab.nodes.find((n) => n.name === node)!.instanceId;
  const claim = () => clients.custom.getNamespacedCustomObject({ group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'vpcipclaims', namespace: 'default', name }) as Promise<VpcIpClaim>;

  const pod = {
    clients,
    kubectl,
    vpc,
    instanceOf,
    claim,
    /** the ENI the cloud has the address on */
    inCloud: (address: string) => lab.emulator.state().networkInterfaces.find((e) => e.PrivateIpAddressSet.some((ip) => ip.PrivateIpAddress === address)),
    /** the instances of every ENI holding the address: one at most, ever */
    cloudHolders: (address: string) =>
      lab.emulator
        .state()
        .networkInterfaces.filter((e) => e.PrivateIpAddressSet.some((ip) => ip.PrivateIpAddress === address))
        .map((e) => e.Attachment?.InstanceId ?? 'detached'),
    /** every log line of the agents, ipamd and the cluster that names the address, for a failure's message */
    logsAbout: (address: string) =>
      [...lab.nodes.map((n) => [n.name, n.agent!.log()] as const), ...lab.ipamds.map((r) => [r.identity, r.log()] as const)]
        .flatMap(([who, text]) => text.split('\n').filter((l) => l.includes(address)).map((l) => `${who}: ${l.slice(0, 400)}`))
        .join('\n'),
    /** the nodes whose agent gives the address to a pod (reservations aside) */
    podHolders: (address: string) => lab.nodes.flatMap((n) => (n.agent!.allocations().some((a) => a.address === address && !a.reserved) ? [n.name] : [])),
    /** the nodes whose agent holds the address at all, for a pod or reserved */
    agentHolders: (address: string) => lab.nodes.flatMap((n) => (n.agent!.allocations().some((a) => a.address === address) ? [n.name] : [])),

    create(node: string) {
      return clients.core.createNamespacedPod({
        namespace: 'default',
        body: {
          metadata: { name, annotations: { 'tke.cloud.tencent.com/networks': o.networks ?? 'tke-route-eni', 'tke.cloud.tencent.com/vpc-ip-claim-delete-policy': 'Never' } },
          spec: { nodeName: node, terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'] }] },
        },
      });
    },

    /** Waits for the pod to run; answers its address. */
    async running(node: string, ms = 45_000): Promise<string> {
      const found = await until(`${name} running on ${node}`, () => clients.core.readNamespacedPod({ name, namespace: 'default' }), (p) => p.spec?.nodeName === node && p.status?.phase === 'Running' && Boolean(p.status.podIP), ms).catch(async (err: Error) => {
        err.message += `\n${await kubectl('get', 'events').catch(() => '')}\n${await kubectl('get', 'vipc', name, '-o', 'yaml').catch(() => '')}\n${lab.ipamds.map((r) => r.log().slice(-3000)).join('\n')}`;
        throw err;
      });
      return found.status!.podIP!;
    },

    /** The pod, created on `node` and running; answers its address. */
    async on(node: string): Promise<string> {
      await pod.create(node);
      return pod.running(node);
    },

    /** Deletes the pod and waits until its claim is Released (no pod holds the address). */
    async gone(): Promise<void> {
      await kubectl('delete', 'pod', name, '--wait=true');
      await until(`${name}'s claim Released`, claim, (c) => c.status?.phase === 'Released', 30_000);
    },

    /** Waits until ipamd says the address is on its way (the cloud call made or about to be). */
    async moving(): Promise<void> {
      await until(`${name}'s address on its way`, claim, (c) => Boolean(c.status?.message?.startsWith('moving')), 30_000);
    },

    /** Takes an address off whatever ENI holds it, behind the cluster's back. */
    async unassign(address: string): Promise<void> {
      const eni = pod.inCloud(address)!;
      const r = await vpc().UnassignPrivateIpAddresses({ NetworkInterfaceId: eni.NetworkInterfaceId, PrivateIpAddresses: [{ PrivateIpAddress: address }] });
      expect(await waitTask(vpc(), r.RequestId)).toBe('SUCCESS');
    },
  };
  return pod;
}
