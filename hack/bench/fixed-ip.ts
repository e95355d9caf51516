// `npm run bench:fixed-ip`: how fast a fixed-IP pod (vpc-ip-claim-delete-policy: Never) starts when it comes
// back, next to a pod from the warm pool, in one run on a two-node lab with ipamd and the API server.
//  - warm: ADD of a pod without Never (a warm address; its claim is a ledger written after the answer);
//  - same node: a Never pod deleted and made again on its node: its address is the node's reservation;
//  - other node: made again on the other node: ipamd moves the address (MigratePrivateIpAddress) first.
// Each is the plugin's ADD as the runtime runs it (nsenter into the node, CNI variables, the pod's uid), with
// the Pod object in the API server as kubelet would have it. Ends with one JSON line.
import { existsSync } from 'node:fs';
import { build, TARGETS } from '../build/build.ts';
import { kubeClients, Lab, type LabNode } from '../lab/lab.ts';
import { median, timed } from './timing.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const NEVER = { 'tke.cloud.tencent.com/networks': 'tke-route-eni', 'tke.cloud.tencent.com/vpc-ip-claim-delete-policy': 'Never' };

async function main(): Promise<void> {
  if (!existsSync('dist/bin/eni-cni') || !existsSync('dist/bin/eni-agent') || !existsSync('dist/bin/eni-ipamd')) await build(TARGETS);
  const lab = await Lab.up({ nodes: 2, taskMs: 50, kube: true, agents: { minWarm: 5, maxWarm: 40, cooldown: '0s' } });
  const { core, custom } = kubeClients(lab.kubeconfigFile('admin'));
  const claims = { group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'vpcipclaims', namespace: 'default' };
  try {
    const [one, two] = lab.nodes as [LabNode, LabNode];
    // Let both warm pools fill before measuring: a warm ADD then takes a ready address.
    const secondaries = (node: LabNode) =>
      lab.emulator.state().networkInterfaces.filter((e) => e.Attachment?.InstanceId === node.instanceId && !e.Primary).flatMap((e) => e.PrivateIpAddressSet.filter((a) => !a.Primary)).length;
    for (let i = 0; i < 600 && (secondaries(one) < 5 || secondaries(two) < 5); i++) await new Promise((r) => setTimeout(r, 100));
    await lab.settled();
    /** A Pod object bound to `node`, then the plugin's ADD for it there; answers the ms and the address. */
    const add = async (node: LabNode, name: string, annotations: Record<string, string>, id: string) => {
      const pod = await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name, annotations }, spec: { nodeName: node.name, containers: [{ name: 'c', image: 'busybox' }] } } });
      const netns = await lab.addPod(id);
      const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: `/var/run/netns/${netns}`, CNI_IFNAME: 'eth0', CNI_PATH: node.agent!.binDir, CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name};K8S_POD_UID=${pod.metadata!.uid}` };
      const r = await timed(node.ns, `${node.agent!.binDir}/eni-cni`, env, JSON.stringify(node.agent!.netConf('1.1.0')));
      if (r.code !== 0) throw new Error(`ADD of ${name} on ${node.name} failed: ${r.out}`);
      const address = ((JSON.parse(r.out) as { ips: Array<{ address: string }> }).ips[0]!.address).split('/')[0]!;
      return { ms: r.ms, address, netns, env };
    };
    /** The plugin's DEL, then the Pod object deleted, as kubelet ends a pod. */
    const del = async (node: LabNode, name: string, added: { netns: string; env: Record<string, string> }) => {
      const r = await timed(node.ns, `${node.agent!.binDir}/eni-cni`, { ...added.env, CNI_COMMAND: 'DEL' }, JSON.stringify(node.agent!.netConf('1.1.0')));
      if (r.code !== 0) throw new Error(`DEL of ${name} on ${node.name} failed: ${r.out}`);
      await lab.removePod(added.netns);
      await core.deleteNamespacedPod({ name, namespace: 'default', gracePeriodSeconds: 0 });
    };
    const samples = { warm: [] as number[], same: [] as number[], other: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      const warm = await add(one, `warm-${i}`, { 'tke.cloud.tencent.com/networks': 'tke-route-eni' }, `w${i}`);
      await del(one, `warm-${i}`, warm);
      samples.warm.push(warm.ms);

      const name = `fixed-${i}`;
      const first = await add(one, name, NEVER, `f${i}a`);
      await del(one, name, first);
      const same = await add(one, name, NEVER, `f${i}b`);
      if (same.address !== first.address) throw new Error(`${name} came back on ${one.name} with ${same.address}, not ${first.address}`);
      await del(one, name, same);
      const other = await add(two, name, NEVER, `f${i}c`);
      if (other.address !== first.address) throw new Error(`${name} came back on ${two.name} with ${other.address}, not ${first.address}`);
      await del(two, name, other);
      samples.same.push(same.ms);
      samples.other.push(other.ms);
      await custom.deleteNamespacedCustomObject({ ...claims, name });
      await lab.settled();
    }
    const m = { warm: median(samples.warm), same: median(samples.same), other: median(samples.other) };
    const f = (n: number) => n.toFixed(1).padStart(7);
    console.log(`\nmedians over ${RUNS} runs each (ms), the plugin's ADD under nsenter in a lab node:`);
    console.log(`  warm-pool pod                       ${f(m.warm)}`);
    console.log(`  fixed IP back on the same node      ${f(m.same)}   ${(m.same / m.warm).toFixed(2)}x warm`);
    console.log(`  fixed IP back on the other node     ${f(m.other)}   ${(m.other / m.warm).toFixed(2)}x warm (a MigratePrivateIpAddress on the way)`);
    console.log(JSON.stringify({ warm_add_ms: round(m.warm), same_node_return_ms: round(m.same), other_node_return_ms: round(m.other) }));
  } finally {
    await lab.down();
  }
}

const round = (n: number) => Math.round(n * 10) / 10;

main().catch((err: unknown) => {
  console.error(`bench:fixed-ip: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
