// `npm run demo`: the main job on the local cloud. Brings up a lab (the emulated Tencent Cloud, a VPC
// fabric, a Kubernetes API server stand-in, two nodes with an eni-cni agent each), starts pods through
// the real plugin binary as a runtime would, shows their addresses, the pool of each node, what
// `kubectl get nec` shows, and a ping matrix, then removes everything. Exits non-zero if any check fails.
import { existsSync } from 'node:fs';
import { build, TARGETS } from './build/build.ts';
import { Lab, pings, whoamiFrom, type LabNode } from './lab/lab.ts';
import { run } from './lab/sh.ts';
import { AGENT_BINARY, PLUGIN_BINARY } from './lab/node-agent.ts';

let failures = 0;
function check(what: string, ok: boolean, detail = ''): void {
  console.log(`${ok ? '  ok  ' : '  FAIL'} ${what}${detail ? `  (${detail})` : ''}`);
  if (!ok) failures++;
}

interface Pod {
  name: string;
  node: LabNode;
  ns: string;
  address: string;
  hostIf: string;
}

async function main(): Promise<void> {
  if (!existsSync(PLUGIN_BINARY) || !existsSync(AGENT_BINARY)) {
    console.log('building the plugin and the agent (standalone executables)…');
    await build(TARGETS.filter((t) => t.name === 'eni-cni' || t.name === 'eni-agent'));
  }
  console.log('bringing up the lab: emulated Tencent Cloud, VPC fabric, internet, Kubernetes API, 2 nodes with an agent each…');
  const lab = await Lab.up({ nodes: 2, taskMs: 100, kube: true, agents: { minWarm: 3, maxWarm: 6 } });
  try {
    for (const node of lab.nodes) console.log(`  ${node.name}  ${node.instanceId}  ${node.privateIp}  public ${node.publicIp}  ${node.zone}  netns ${node.ns}`);

    console.log('\nstarting pods through the eni-cni plugin (CNI ADD, as containerd runs it)…');
    const pods: Pod[] = [];
    for (const [i, node] of [lab.nodes[0]!, lab.nodes[0]!, lab.nodes[1]!, lab.nodes[1]!].entries()) {
      const name = `web-${i}`;
      const ns = await lab.addPod(name);
      const r = await node.agent!.cni('ADD', { containerId: `demo-${name}`, netns: `/var/run/netns/${ns}`, ifName: 'eth0', args: `K8S_POD_NAMESPACE=shop;K8S_POD_NAME=${name}` });
      check(`ADD shop/${name} on ${node.name}`, r.code === 0, r.code === 0 ? '' : r.stdout);
      if (r.code !== 0) continue;
      const address = (r.result!.ips as Array<{ address: string }>)[0]!.address.split('/')[0]!;
      pods.push({ name, node, ns, address, hostIf: (r.result!.interfaces as Array<{ name: string }>)[0]!.name });
    }

    const state = lab.emulator.state();
    const eniOf = (address: string) => state.networkInterfaces.find((e) => e.PrivateIpAddressSet.some((ip) => ip.PrivateIpAddress === address));
    console.log('\npods');
    console.log('  pod            node     address       ENI            host veth');
    for (const p of pods) console.log(`  shop/${p.name.padEnd(9)} ${p.node.name.padEnd(8)} ${p.address.padEnd(13)} ${(eniOf(p.address)?.NetworkInterfaceId ?? '?').padEnd(14)} ${p.hostIf}`);

    console.log('\nthe pool of each node (cloud view; * = held by a pod)');
    for (const node of lab.nodes) {
      const held = new Set(node.agent!.allocations().map((a) => a.address));
      for (const eni of state.networkInterfaces.filter((e) => e.Attachment?.InstanceId === node.instanceId)) {
        const ips = eni.PrivateIpAddressSet.map((ip) => (ip.Primary ? `${ip.PrivateIpAddress}(primary)` : `${ip.PrivateIpAddress}${held.has(ip.PrivateIpAddress) ? '*' : ''}`));
        console.log(`  ${node.name}  ${eni.NetworkInterfaceId}  dev ${eni.Attachment?.DeviceIndex}  ${eni.SubnetId.padEnd(13)} ${ips.join(' ')}`);
      }
    }

    console.log('\nkubectl get nec; kubectl get node -o custom-columns=… (the eni-ip resource)');
    const kubectl = (...args: string[]) => run('kubectl', ['--kubeconfig', lab.kubeconfigFile('admin'), ...args]).catch((err: Error) => `kubectl failed: ${err.message}`);
    await new Promise((r) => setTimeout(r, 1000)); // the agents write status at most twice a second
    for (const line of (await kubectl('get', 'nec')).split('\n')) console.log(`  ${line}`);
    const nodes = await kubectl('get', 'node', '-o', 'custom-columns=NAME:.metadata.name,ENI-IP-CAPACITY:.status.capacity.tke\\.cloud\\.tencent\\.com/eni-ip,ENI-IP-ALLOCATABLE:.status.allocatable.tke\\.cloud\\.tencent\\.com/eni-ip');
    for (const line of nodes.split('\n')) console.log(`  ${line}`);
    check('each node publishes tke.cloud.tencent.com/eni-ip', /node-1\s+27\s+\d+/.test(nodes) && /node-2\s+27\s+\d+/.test(nodes));

    console.log('\nping matrix (from row to column)');
    const targets = [...pods.map((p) => ({ label: p.name, address: p.address })), { label: 'gateway', address: '10.0.16.1' }, { label: 'node-2', address: lab.nodes[1]!.privateIp }];
    console.log(`  ${''.padEnd(8)}${targets.map((t) => t.label.padStart(9)).join('')}`);
    for (const from of pods) {
      const cells: string[] = [];
      for (const to of targets) {
        if (to.address === from.address) {
          cells.push('-'.padStart(9));
          continue;
        }
        const ok = await pings(from.ns, to.address);
        if (!ok) failures++;
        cells.push((ok ? 'ok' : 'FAIL').padStart(9));
      }
      console.log(`  ${from.name.padEnd(8)}${cells.join('')}`);
    }

    console.log('\nthe internet sees');
    for (const p of [pods[0]!, pods[2]!]) {
      const seen = await whoamiFrom(p.ns);
      check(`${p.name} leaves with its node's public address`, seen === p.node.publicIp, `${seen}`);
    }

    console.log('\nremoving the pods (CNI DEL)…');
    for (const p of pods) {
      const r = await p.node.agent!.cni('DEL', { containerId: `demo-${p.name}`, netns: `/var/run/netns/${p.ns}`, ifName: 'eth0' });
      check(`DEL shop/${p.name}`, r.code === 0, r.code === 0 ? '' : r.stdout);
    }
  } finally {
    await lab.down();
  }
  console.log(failures === 0 ? '\ndemo: all checks passed; the lab is gone' : `\ndemo: ${failures} check(s) failed`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((err: unknown) => {
  console.error(`demo: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
