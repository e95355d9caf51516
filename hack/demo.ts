// `npm run demo`: a user's tour of eni-cni on the local cloud. Brings up a lab cluster (the emulated
// Tencent Cloud and its VPC, an internet, a Kubernetes API server, tke-eni-ipamd, and two nodes each with
// an agent, containerd and a node runner), then does what a user of Tencent's documentation does: applies
// a StatefulSet in the seed's shape with kubectl, looks at its pods, their addresses and ENIs, the pools
// (`kubectl get nec`), pings between pods, asks the internet who it sees, scales down, deletes the set,
// and shows what remains; then fixed IPs (seed 000) and whole-ENI pods (tke-direct-eni). Exits non-zero if any
// check fails; the lab is removed either way.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as k8s from '@kubernetes/client-node';
import { build, TARGETS } from './build/build.ts';
import { kubeClients, Lab, pings, WHOAMI_URL } from './lab/lab.ts';
import { AGENT_BINARY, PLUGIN_BINARY } from './lab/node-agent.ts';
import { run } from './lab/sh.ts';

const STATEFULSET = fileURLToPath(new URL('./examples/busybox-statefulset.yaml', import.meta.url));
const FIXED_STATEFULSET = fileURLToPath(new URL('./examples/fixed-ip-statefulset.yaml', import.meta.url));
const DIRECT_STATEFULSET = fileURLToPath(new URL('./examples/busybox-direct-eni-statefulset.yaml', import.meta.url));
const GATEWAY = '10.0.16.1';

let failures = 0;
function check(what: string, ok: boolean, detail = ''): void {
  console.log(`${ok ? '  ok  ' : '  FAIL'} ${what}${detail ? `  (${detail})` : ''}`);
  if (!ok) failures++;
}

function show(title: string, text: string): void {
  console.log(`\n$ ${title}`);
  for (const line of text.trimEnd().split('\n')) console.log(`  ${line}`);
}

async function waitFor<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, ms = 60_000): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && ok(value)) return value;
    if (Date.now() > deadline) {
      check(what, false, `not within ${ms / 1000} s`);
      return undefined;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main(): Promise<void> {
  if (!existsSync(PLUGIN_BINARY) || !existsSync(AGENT_BINARY)) {
    console.log('building the plugin, the agent and ipamd (standalone executables)…');
    await build(TARGETS.filter((t) => t.name !== 'empty-node'));
  }
  console.log('bringing up the lab cluster: emulated Tencent Cloud, VPC, internet, Kubernetes API, tke-eni-ipamd, 2 nodes (agent, containerd, node runner)…');
  const lab = await Lab.up({ nodes: 2, taskMs: 100, cluster: true, agents: { minWarm: 3, maxWarm: 6, directEni: true } });
  const kubeconfig = lab.kubeconfigFile('admin');
  const kubectl = (...args: string[]) => run('kubectl', ['--kubeconfig', kubeconfig, ...args]).catch((err: Error) => `kubectl failed: ${err.message}`);
  const { core } = kubeClients(kubeconfig);
  const pods = async () => (await core.listNamespacedPod({ namespace: 'default', labelSelector: 'k8s-app=busybox' })).items;
  const runningPods = (items: k8s.V1Pod[]) => items.filter((p) => p.status?.phase === 'Running' && p.status.podIP && !p.metadata?.deletionTimestamp);
  try {
    console.log(`\nKUBECONFIG=${kubeconfig}`);
    await waitFor('both nodes publish tke.cloud.tencent.com/eni-ip', async () => (await core.listNode()).items, (n) => n.length === 2 && n.every((x) => Number(x.status?.allocatable?.['tke.cloud.tencent.com/eni-ip']) > 0));
    show('kubectl get nodes -o wide', await kubectl('get', 'nodes', '-o', 'wide'));
    show('kubectl get nodes -o custom-columns=…', await kubectl('get', 'nodes', '-o', 'custom-columns=NAME:.metadata.name,ZONE:.metadata.labels.topology\\.kubernetes\\.io/zone,ENI-IP:.status.allocatable.tke\\.cloud\\.tencent\\.com/eni-ip'));

    show(`kubectl apply -f ${STATEFULSET.replace(/^.*\/hack\//, 'hack/')}`, await kubectl('apply', '-f', STATEFULSET));
    const up = await waitFor('three busybox pods run', pods, (items) => runningPods(items).length === 3);
    show('kubectl get pods -o wide', await kubectl('get', 'pods', '-o', 'wide'));
    show('kubectl get statefulset', await kubectl('get', 'statefulset'));
    if (!up) return;

    const state = lab.emulator.state();
    console.log('\npods, their addresses and where the cloud has them');
    console.log('  pod         node     address       ENI (on that node)');
    for (const pod of up) {
      const node = lab.nodes.find((n) => n.name === pod.spec!.nodeName)!;
      const eni = state.networkInterfaces.find((e) => e.PrivateIpAddressSet.some((ip) => ip.PrivateIpAddress === pod.status!.podIP));
      console.log(`  ${pod.metadata!.name!.padEnd(11)} ${node.name.padEnd(8)} ${pod.status!.podIP!.padEnd(13)} ${eni?.NetworkInterfaceId ?? '?'}`);
      check(`${pod.metadata!.name} has an address of an ENI attached to ${node.name}`, eni?.Attachment?.InstanceId === node.instanceId);
    }
    await new Promise((r) => setTimeout(r, 1000)); // the agents write NEC status at most twice a second
    show('kubectl get nec', await kubectl('get', 'nec'));

    console.log('\nping matrix, from inside each pod (row) to each column');
    const targets = [...up.map((p) => ({ label: p.metadata!.name!, address: p.status!.podIP! })), { label: 'gateway', address: GATEWAY }, { label: 'node-2', address: lab.nodes[1]!.privateIp }];
    console.log(`  ${''.padEnd(11)}${targets.map((t) => t.label.padStart(11)).join('')}`);
    for (const from of up) {
      const netns = (await lab.podNetns('default', from.metadata!.name!)).split('/').pop()!;
      const cells: string[] = [];
      for (const to of targets) {
        if (to.address === from.status!.podIP) {
          cells.push('-'.padStart(11));
          continue;
        }
        const ok = await pings(netns, to.address);
        if (!ok) failures++;
        cells.push((ok ? 'ok' : 'FAIL').padStart(11));
      }
      console.log(`  ${from.metadata!.name!.padEnd(11)}${cells.join('')}`);
    }

    console.log(`\nthe internet sees (wget -qO- ${WHOAMI_URL} from a pod on each node)`);
    for (const node of lab.nodes) {
      const pod = up.find((p) => p.spec!.nodeName === node.name);
      if (!pod) continue;
      const netns = await lab.podNetns('default', pod.metadata!.name!);
      const seen = (await run('nsenter', [`--net=${netns}`, 'timeout', '5', 'busybox', 'wget', '-qO-', WHOAMI_URL]).catch((e: Error) => e.message)).trim();
      check(`${pod.metadata!.name} on ${node.name} leaves with its node's public address`, seen === node.publicIp, seen);
    }

    show('kubectl scale statefulset busybox --replicas=1', await kubectl('scale', 'statefulset', 'busybox', '--replicas=1'));
    const one = await waitFor('the set is down to busybox-0', pods, (items) => items.length === 1 && runningPods(items).length === 1);
    show('kubectl get pods -o wide', await kubectl('get', 'pods', '-o', 'wide'));
    const held = () => lab.nodes.flatMap((n) => n.agent!.allocations());
    if (one) check('the two removed pods gave their addresses back', (await waitFor('one address held', async () => held(), (h) => h.length === 1)) !== undefined);

    show(`kubectl delete -f ${STATEFULSET.replace(/^.*\/hack\//, 'hack/')}`, await kubectl('delete', '-f', STATEFULSET));
    await waitFor('every busybox pod is gone', pods, (items) => items.length === 0);
    check('no node holds an address for a pod', (await waitFor('no address held', async () => held(), (h) => h.length === 0)) !== undefined);
    show('kubectl get pods', (await kubectl('get', 'pods')) || 'No resources found in default namespace.');
    await new Promise((r) => setTimeout(r, 1000));
    show('kubectl get nec   (what remains: each node keeps its warm pool, between min and max warm)', await kubectl('get', 'nec'));

    await fixedIps(lab, kubectl, core);
    await wholeEnis(lab, kubectl, core);
  } finally {
    await lab.down();
  }
}

/** Seed 000's act: pods that keep their addresses, across a restart and a move to the other node. */
async function fixedIps(lab: Lab, kubectl: (...args: string[]) => Promise<string>, core: ReturnType<typeof kubeClients>['core']): Promise<void> {
  console.log('\nfixed pod IPs (seed 000): the same StatefulSet with tke.cloud.tencent.com/vpc-ip-claim-delete-policy: Never');
  const pod = (name: string) => core.readNamespacedPod({ name, namespace: 'default' });
  const running = (name: string, not?: string) => waitFor(`${name} runs`, () => pod(name), (p) => p.status?.phase === 'Running' && Boolean(p.status.podIP) && !p.metadata?.deletionTimestamp && p.metadata?.uid !== not);
  show(`kubectl apply -f ${FIXED_STATEFULSET.replace(/^.*\/hack\//, 'hack/')}`, await kubectl('apply', '-f', FIXED_STATEFULSET));
  const before = await running('busybox-0');
  const others = [await running('busybox-1'), await running('busybox-2')];
  if (!before || others.some((p) => !p)) return;
  const fixed = [before, ...others].map((p) => p!.status!.podIP!);
  show('kubectl get vipc', await kubectl('get', 'vipc'));
  show('kubectl get vip -o wide', await kubectl('get', 'vip', '-o', 'wide'));
  const from = before.spec!.nodeName!;
  show(`kubectl cordon ${from}; kubectl delete pod busybox-0`, `${await kubectl('cordon', from)}\n${await kubectl('delete', 'pod', 'busybox-0')}`);
  const after = await running('busybox-0', before.metadata!.uid);
  await kubectl('uncordon', from);
  if (!after) return;
  check(`busybox-0 came back on ${after.spec!.nodeName} (not ${from}) with its address ${before.status!.podIP}`, after.spec!.nodeName !== from && after.status!.podIP === before.status!.podIP, `now ${after.status!.podIP} on ${after.spec!.nodeName}`);
  const eni = lab.emulator.state().networkInterfaces.find((e) => e.PrivateIpAddressSet.some((ip) => ip.PrivateIpAddress === before.status!.podIP));
  const to = lab.nodes.find((n) => n.name === after.spec!.nodeName)!;
  check(`the cloud moved ${before.status!.podIP} to ${eni?.NetworkInterfaceId} of ${to.name} (MigratePrivateIpAddress)`, eni?.Attachment?.InstanceId === to.instanceId);
  const netns = (await lab.podNetns('default', 'busybox-0')).split('/').pop()!;
  const peer = await pod('busybox-1');
  check(`busybox-0 on ${to.name} pings busybox-1 (${peer.status?.podIP}) and the gateway`, (await pings(netns, peer.status!.podIP!)) && (await pings(netns, GATEWAY)));
  show('kubectl get vip -o wide', await kubectl('get', 'vip', '-o', 'wide'));
  show(`kubectl delete -f ${FIXED_STATEFULSET.replace(/^.*\/hack\//, 'hack/')}; kubectl delete vipc --all`, `${await kubectl('delete', '-f', FIXED_STATEFULSET)}\n${await kubectl('delete', 'vipc', '--all')}`);
  const gone = await waitFor('every claim and VpcIP is gone', async () => `${await kubectl('get', 'vipc', '-o', 'name')}${await kubectl('get', 'vip', '-o', 'name')}`, (out) => out.trim() === '');
  const inCloud = () => lab.emulator.state().networkInterfaces.flatMap((e) => e.PrivateIpAddressSet.map((ip) => ip.PrivateIpAddress)).filter((a) => fixed.includes(a));
  if (gone !== undefined) check(`the fixed addresses (${fixed.join(', ')}) went back to the subnet`, (await waitFor('no fixed address on any ENI', async () => inCloud(), (held) => held.length === 0)) !== undefined);
}

/** Whole-ENI pods (seed 000's note): each owns an ENI of its node, moved into its namespace as eth0. */
async function wholeEnis(lab: Lab, kubectl: (...args: string[]) => Promise<string>, core: ReturnType<typeof kubeClients>['core']): Promise<void> {
  console.log('\nwhole-ENI pods: the StatefulSet with tke.cloud.tencent.com/networks: "tke-direct-eni" and the direct-eni resource');
  const list = async () => (await core.listNamespacedPod({ namespace: 'default', labelSelector: 'k8s-app=busybox-direct' })).items;
  show(`kubectl apply -f ${DIRECT_STATEFULSET.replace(/^.*\/hack\//, 'hack/')}`, await kubectl('apply', '-f', DIRECT_STATEFULSET));
  const up = await waitFor('two whole-ENI pods run', list, (items) => items.filter((p) => p.status?.phase === 'Running' && p.status.podIP).length === 2);
  show('kubectl get pods -l k8s-app=busybox-direct -o wide', await kubectl('get', 'pods', '-l', 'k8s-app=busybox-direct', '-o', 'wide'));
  if (!up) return;
  for (const pod of up) {
    const node = lab.nodes.find((n) => n.name === pod.spec!.nodeName)!;
    const eni = lab.emulator.state().networkInterfaces.find((e) => e.PrivateIpAddressSet.some((ip) => ip.Primary && ip.PrivateIpAddress === pod.status!.podIP));
    const netns = await lab.podNetns('default', pod.metadata!.name!);
    const eth0 = await run('nsenter', [`--net=${netns}`, 'ip', '-br', 'link', 'show', 'dev', 'eth0']).catch((e: Error) => e.message);
    show(`nsenter --net=<${pod.metadata!.name}> ip -br link show dev eth0`, eth0);
    check(`${pod.metadata!.name}'s eth0 is ${eni?.NetworkInterfaceId}, attached to ${node.name}, with its MAC`, Boolean(eni && eni.Attachment?.InstanceId === node.instanceId && eth0.toLowerCase().includes(eni.MacAddress.toLowerCase())));
    check(`${pod.metadata!.name} pings the gateway by its own ENI`, await pings(netns.split('/').pop()!, GATEWAY));
  }
  await new Promise((r) => setTimeout(r, 1000));
  show('kubectl get nodes -o custom-columns=…', await kubectl('get', 'nodes', '-o', 'custom-columns=NAME:.metadata.name,DIRECT-ENI:.status.allocatable.tke\\.cloud\\.tencent\\.com/direct-eni'));
  show(`kubectl delete -f ${DIRECT_STATEFULSET.replace(/^.*\/hack\//, 'hack/')}`, await kubectl('delete', '-f', DIRECT_STATEFULSET));
  await waitFor('every whole-ENI pod is gone', list, (items) => items.length === 0);
  const held = () => lab.nodes.flatMap((n) => n.agent!.allocations().filter((a) => a.direct));
  check('their ENIs went back to the nodes\' pools', (await waitFor('no whole ENI held', async () => held(), (h) => h.length === 0)) !== undefined);
}

main()
  .then(() => {
    console.log(failures === 0 ? '\ndemo: all checks passed; the lab is gone' : `\ndemo: ${failures} check(s) failed`);
    process.exit(failures === 0 ? 0 : 1);
  })
  .catch((err: unknown) => {
    console.error(`demo: ${(err as Error).stack ?? err}`);
    process.exit(1);
  });
