// `npm run bench:add`: the cost of a pod's network, side by side in one run.
//  - ADD then DEL of the eni-cni plugin against its agent with a warm pool, on a lab node;
//  - the same with Debian's Go reference plugins, ptp + host-local;
//  - an empty standalone Node executable built like the plugin: the start-up floor a Node plugin pays;
//  - RunPodSandbox through containerd with each plugin, the same plugins chained behind: the cost a user feels per pod;
//  - where the plugin's time goes: VERSION (start-up and loading), STATUS (plus the socket), and the
//    agent's own part of each ADD (its request histogram); the agent's memory with a full node;
//  - a warm whole-ENI (tke-direct-eni) ADD and DEL, on a lab cluster: a spare ENI made the pod's eth0.
// Every executable runs under `nsenter --net=<node>` without NODE_EXTRA_CA_CERTS, as a runtime on that node
// would run it, iterations interleaved so that machine noise falls on all alike. Ends with one JSON line.
// The agent keeps at least 5 addresses warm and no cool-down, so the pool stays quiet while we measure:
// one pod at a time comes and goes, and no ADD waits for the cloud.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { build, TARGETS } from '../build/build.ts';
import { startContainerd } from '../cri/containerd.ts';
import type { Nec } from '../../agent/k8s/nec.ts';
import { kubeClients, Lab } from '../lab/lab.ts';
import { httpGetIn } from '../lab/sh.ts';
import { median, timed } from './timing.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const SANDBOXES = Number(process.env.BENCH_SANDBOXES ?? 10);
const FLOOR = 'dist/bench/empty-node';
const REFERENCE = '/usr/lib/cni';

async function main(): Promise<void> {
  if (!existsSync(FLOOR) || !existsSync('dist/bin/eni-cni') || !existsSync('dist/bin/eni-agent')) await build(TARGETS);
  for (const plugin of ['ptp', 'host-local', 'loopback']) {
    if (!existsSync(`${REFERENCE}/${plugin}`)) throw new Error(`${REFERENCE}/${plugin} is missing: apt-get install containernetworking-plugins`);
  }
  const lab = await Lab.up({ nodes: 1, taskMs: 50, agents: { minWarm: 5, maxWarm: 40, cooldown: '0s' } });
  const work = mkdtempSync(`${tmpdir()}/eni-cni-bench-`);
  let figures: Record<string, number>;
  try {
    const node = lab.nodes[0]!;
    const agent = node.agent!;
    // Let the warm pool fill before measuring: every ADD then takes a ready address.
    const secondaries = () =>
      lab.emulator.state().networkInterfaces.filter((e) => e.Attachment?.InstanceId === node.instanceId && !e.Primary).flatMap((e) => e.PrivateIpAddressSet.filter((a) => !a.Primary)).length;
    for (let i = 0; i < 600 && secondaries() < 5; i++) await new Promise((r) => setTimeout(r, 100));
    if (secondaries() < 5) throw new Error(`the warm pool did not fill to 5 addresses: ${agent.log().slice(-1000)}`);
    const ours = JSON.stringify(agent.netConf('1.1.0'));
    const reference = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'bench-ptp',
      type: 'ptp',
      ipam: { type: 'host-local', subnet: '100.96.0.0/16', dataDir: `${work}/host-local` },
    });
    const samples = { add: [] as number[], del: [] as number[], refAdd: [] as number[], refDel: [] as number[], floor: [] as number[], agentAdd: [] as number[], allocate: [] as number[], plumb: [] as number[], version: [] as number[], status: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      const pod = await lab.addPod(`bench${i}`);
      const refPod = await lab.addPod(`ref${i}`);
      const env = (ns: string, cmd: string, id: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: `/var/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: REFERENCE });
      // Between measurements the pool may refill behind an ADD (a cloud call): let it settle, so that
      // what is timed is the pod's own ADD or DEL, as on a node whose pool is warm.
      const settle = () => new Promise((r) => setTimeout(r, 150));
      await settle();
      const agentBefore = await agentSums(node.ns);
      const add = await timed(node.ns, `${agent.binDir}/eni-cni`, env(pod, 'ADD', `b${i}`), ours);
      const agentAfter = await agentSums(node.ns);
      samples.agentAdd.push((agentAfter.add - agentBefore.add) * 1000);
      samples.allocate.push((agentAfter.allocate - agentBefore.allocate) * 1000);
      samples.plumb.push((agentAfter.plumb - agentBefore.plumb) * 1000);
      const refAdd = await timed(node.ns, `${REFERENCE}/ptp`, env(refPod, 'ADD', `r${i}`), reference);
      const floor = await timed(node.ns, FLOOR, {}, '');
      // Where the plugin's time goes: VERSION is start-up, loading and the answer without the socket;
      // STATUS adds one round trip to the agent, which does next to nothing for it.
      const version = await timed(node.ns, `${agent.binDir}/eni-cni`, { CNI_COMMAND: 'VERSION' }, ours);
      const status = await timed(node.ns, `${agent.binDir}/eni-cni`, { CNI_COMMAND: 'STATUS', CNI_PATH: REFERENCE }, ours);
      if (version.code !== 0 || status.code !== 0) throw new Error(`VERSION or STATUS failed: ${version.out} / ${status.out}`);
      samples.version.push(version.ms);
      samples.status.push(status.ms);
      if (add.code !== 0 || refAdd.code !== 0) throw new Error(`ADD failed: eni-cni ${add.out} / ptp ${refAdd.out}`);
      await settle();
      const del = await timed(node.ns, `${agent.binDir}/eni-cni`, env(pod, 'DEL', `b${i}`), ours);
      const refDel = await timed(node.ns, `${REFERENCE}/ptp`, env(refPod, 'DEL', `r${i}`), reference);
      if (del.code !== 0 || refDel.code !== 0) throw new Error(`DEL failed: eni-cni ${del.out} / ptp ${refDel.out}`);
      samples.add.push(add.ms);
      samples.del.push(del.ms);
      samples.refAdd.push(refAdd.ms);
      samples.refDel.push(refDel.ms);
      samples.floor.push(floor.ms);
      await lab.removePod(pod);
      await lab.removePod(refPod);
    }
    const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])) as Record<keyof typeof samples, number>;
    const f = (n: number) => n.toFixed(1).padStart(6);
    console.log(`\nmedians over ${RUNS} runs each (ms), run under nsenter in a lab node, warm pool:`);
    console.log(`  empty Node executable (floor) ${f(m.floor)}`);
    console.log(`  eni-cni ADD                   ${f(m.add)}   floor + ${(m.add - m.floor).toFixed(1)} ms   ${(m.add / m.refAdd).toFixed(2)}x ptp+host-local`);
    console.log(`  ptp + host-local ADD          ${f(m.refAdd)}`);
    console.log(`  eni-cni DEL                   ${f(m.del)}   ${(m.del / m.refDel).toFixed(2)}x ptp+host-local`);
    console.log(`  ptp + host-local DEL          ${f(m.refDel)}`);
    console.log(`  the agent's own part of an ADD ${f(m.agentAdd)}   (its request histogram, from request read to answer written)`);
    console.log(`    allocate (address and checkpoint) ${m.allocate.toFixed(1)}, plumb (the pod's network) ${m.plumb.toFixed(1)}`);
    console.log(`\nwhere an ADD's time goes (medians, ms): start-up ${m.floor.toFixed(1)} (the floor), loading and answering ${(m.version - m.floor).toFixed(1)} (VERSION),`);
    console.log(`  the socket ${(m.status - m.version).toFixed(1)} (STATUS), the agent's work ${m.agentAdd.toFixed(1)}, the rest ${(m.add - m.status - m.agentAdd).toFixed(1)} (the ADD's own parsing and checking on both sides)`);

    const full = await fullNode(lab, node.ns, `${agent.binDir}/eni-cni`, ours);
    console.log(`\nagent RSS: ${full.idleMb.toFixed(1)} MB with no pods, ${full.fullMb.toFixed(1)} MB with a full node (${full.pods} pods)`);

    const sandbox = await sandboxes(node.ns, agent.binDir, agent.confDir, work, reference);
    console.log(`\nRunPodSandbox through containerd, median of ${SANDBOXES} (ms):`);
    console.log(`  eni-cni                       ${f(sandbox.ours)}`);
    console.log(`  ptp + host-local              ${f(sandbox.reference)}   eni-cni is ${(sandbox.ours / sandbox.reference).toFixed(2)}x`);
    figures = {
        add_ms: round(m.add),
        del_ms: round(m.del),
        ref_add_ms: round(m.refAdd),
        ref_del_ms: round(m.refDel),
        floor_ms: round(m.floor),
        sandbox_ms: round(sandbox.ours),
        ref_sandbox_ms: round(sandbox.reference),
        sandbox_ratio: Math.round((sandbox.ours / sandbox.reference) * 100) / 100,
        agent_add_ms: round(m.agentAdd),
        agent_allocate_ms: round(m.allocate),
        agent_plumb_ms: round(m.plumb),
        version_ms: round(m.version),
        status_ms: round(m.status),
        agent_rss_mb: round(full.fullMb),
        agent_idle_rss_mb: round(full.idleMb),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
    await lab.down();
  }
  const direct = await wholeEni();
  const f = (n: number) => n.toFixed(1).padStart(6);
  console.log(`\nwhole-ENI (tke-direct-eni) pods on a lab cluster, a spare ENI warm, medians of ${RUNS} (ms):`);
  console.log(`  eni-cni ADD                   ${f(direct.add)}   (the agent's part ${direct.agentAdd.toFixed(1)})`);
  console.log(`  eni-cni DEL                   ${f(direct.del)}`);
  console.log(JSON.stringify({ ...figures, direct_add_ms: round(direct.add), direct_del_ms: round(direct.del), direct_agent_add_ms: round(direct.agentAdd) }));
}

/**
 * ADD and DEL of whole-ENI pods, one at a time, each with a spare ENI ready: the pod objects exist (with
 * the networks annotation) but are never scheduled, so that only the plugin runs their network.
 */
async function wholeEni(): Promise<{ add: number; del: number; agentAdd: number }> {
  const lab = await Lab.up({ nodes: 1, taskMs: 50, cluster: true, agents: { minWarm: 1, maxWarm: 2, cooldown: '0s', directEni: true, releasePeriod: '10m' } });
  try {
    const node = lab.nodes[0]!;
    const agent = node.agent!;
    const { core, custom } = kubeClients(lab.kubeconfigFile('admin'));
    const spare = async () => {
      const nec = (await custom.getClusterCustomObject({ group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'nodeeniconfigs', name: node.name })) as Nec;
      const held = new Set(agent.allocations().filter((a) => a.direct).map((a) => a.direct!.mac));
      return (nec.status?.ipamd?.directEnis ?? []).filter((e) => !held.has(e.mac)).length;
    };
    const conf = JSON.stringify(agent.netConf('1.1.0'));
    const samples = { add: [] as number[], del: [] as number[], agentAdd: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      const name = `whole${i}`;
      await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name, annotations: { 'tke.cloud.tencent.com/networks': 'tke-direct-eni' } }, spec: { schedulerName: 'nobody', containers: [{ name: 'c', image: 'busybox' }] } } });
      const pod = await lab.addPod(name);
      for (let t = 0; t < 300 && (await spare()) < 1; t++) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 150));
      const env = (cmd: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: `w${i}`, CNI_NETNS: `/var/run/netns/${pod}`, CNI_IFNAME: 'eth0', CNI_PATH: REFERENCE, CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}` });
      const before = await agentSums(node.ns);
      const add = await timed(node.ns, `${agent.binDir}/eni-cni`, env('ADD'), conf);
      const after = await agentSums(node.ns);
      if (add.code !== 0 || !add.out.includes('"mac"')) throw new Error(`whole-ENI ADD failed: ${add.out}`);
      await new Promise((r) => setTimeout(r, 150));
      const del = await timed(node.ns, `${agent.binDir}/eni-cni`, env('DEL'), conf);
      if (del.code !== 0) throw new Error(`whole-ENI DEL failed: ${del.out}`);
      samples.add.push(add.ms);
      samples.del.push(del.ms);
      samples.agentAdd.push((after.add - before.add) * 1000);
      await lab.removePod(pod);
      await core.deleteNamespacedPod({ namespace: 'default', name });
    }
    return { add: median(samples.add), del: median(samples.del), agentAdd: median(samples.agentAdd) };
  } finally {
    await lab.down();
  }
}

const round = (n: number) => Math.round(n * 10) / 10;

/** The agent's ADD seconds so far, from its own histograms on its health port: the whole answer, and its allocate and plumb halves. */
async function agentSums(nodeNs: string): Promise<{ add: number; allocate: number; plumb: number }> {
  const { ok, body } = await httpGetIn(nodeNs, 'http://127.0.0.1:61678/metrics');
  if (!ok || !body.includes('# TYPE eni_cni_request_duration_seconds histogram')) throw new Error(`the agent's /metrics has no request histogram: ${body.slice(0, 300)}`);
  // No series before the first ADD.
  const sum = (re: RegExp) => Number(re.exec(body)?.[1] ?? 0);
  return {
    add: sum(/^eni_cni_request_duration_seconds_sum\{command="add"\} (\S+)$/m),
    allocate: sum(/^eni_cni_add_phase_seconds_sum\{phase="allocate"\} (\S+)$/m),
    plumb: sum(/^eni_cni_add_phase_seconds_sum\{phase="plumb"\} (\S+)$/m),
  };
}

/** The agent's resident memory with no pods, then with as many pods as the node's quota holds. */
async function fullNode(lab: Lab, nodeNs: string, plugin: string, conf: string) {
  const status = async () => {
    const { ok, body } = await httpGetIn(nodeNs, 'http://127.0.0.1:61678/status');
    if (!ok) throw new Error(`the agent's /status did not answer: ${body.slice(0, 300)}`);
    return JSON.parse(body) as { memory: { rss: number }; limits: { maxEnis: number; maxIpsPerEni: number } };
  };
  const idle = await status();
  const pods = idle.limits.maxEnis * idle.limits.maxIpsPerEni;
  const made: string[] = [];
  try {
    for (let i = 0; i < pods; i++) {
      const ns = await lab.addPod(`full${i}`);
      made.push(ns);
      const r = await timed(nodeNs, plugin, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `full${i}`, CNI_NETNS: `/var/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: REFERENCE }, conf);
      if (r.code !== 0) throw new Error(`filling the node: ADD ${i + 1} of ${pods} failed: ${r.out}`);
    }
    const full = await status();
    return { pods, idleMb: idle.memory.rss / 2 ** 20, fullMb: full.memory.rss / 2 ** 20 };
  } finally {
    for (const [i, ns] of made.entries()) {
      await timed(nodeNs, plugin, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: `full${i}`, CNI_NETNS: `/var/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: REFERENCE }, conf);
      await lab.removePod(ns);
    }
  }
}

/** RunPodSandbox timings through containerd inside the node, with our conflist and with ptp + host-local. */
async function sandboxes(nodeNs: string, binDir: string, ourConfDir: string, work: string, reference: string) {
  const refConfDir = `${work}/ref-net.d`;
  const refBinDir = `${work}/ref-bin`;
  mkdirSync(refConfDir, { recursive: true });
  mkdirSync(refBinDir, { recursive: true });
  const refConf = JSON.parse(reference) as Record<string, unknown>;
  // The same plugins chained behind each (portmap and bandwidth, as the lab installs ours), so that what
  // differs is only the pod network's own plugin.
  const ours = JSON.parse(readFileSync(`${ourConfDir}/10-eni-cni.conflist`, 'utf8')) as { plugins: Array<{ type: string }> };
  const chained = ours.plugins.slice(1);
  writeFileSync(`${refConfDir}/10-ptp.conflist`, JSON.stringify({ cniVersion: '1.0.0', name: 'bench-ptp', plugins: [{ type: 'ptp', ipam: refConf.ipam }, ...chained] }));
  for (const plugin of ['ptp', 'host-local', ...chained.map((p) => p.type)]) copyFileSync(`${REFERENCE}/${plugin}`, `${refBinDir}/${plugin}`);
  const measure = async (cniBinDir: string, cniConfDir: string, tag: string) => {
    const containerd = await startContainerd({ cniBinDir, cniConfDir, netnsMountsUnder: 'host', netns: nodeNs });
    try {
      const cri = containerd.client();
      await cri.runPodSandbox({ name: `${tag}-warmup`, namespace: 'bench' });
      const times: number[] = [];
      for (let i = 0; i < SANDBOXES; i++) {
        const started = performance.now();
        await cri.runPodSandbox({ name: `${tag}-${i}`, namespace: 'bench' });
        times.push(performance.now() - started);
      }
      return median(times);
    } finally {
      await containerd.stop();
    }
  };
  return { ours: await measure(binDir, ourConfDir, 'eni'), reference: await measure(refBinDir, refConfDir, 'ptp') };
}

main().catch((err: unknown) => {
  console.error(`bench:add: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
