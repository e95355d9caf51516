// `npm run bench:hostile`: what a hostile runtime, client or cloud does to a node, counted. Each scenario runs
// the built plugin and agent on a lab node and prints what it found; the run ends with one JSON line. Run it
// on two checkouts to compare builds (it needs nothing of the code it measures beyond the lab).
//   churn     pods deleted and added faster than the cool-down: addresses bound at the peak, ENIs opened
//   netns     ADDs into a stale namespace file and /dev/null: agent crashes, allocations left behind
//   readd     DEL then ADD of the same container and interface: failures
//   eni-reuse every ENI given back, then a burst: the next ENIs get the same ethN; ADD failures, ENI cycles
//   kills     the agent SIGKILLed during bursts that grow the pool: orphan ENIs and unknown addresses after
//   idle      500 idle connections to the agent's socket: does ADD still work, descriptors the agent holds
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { build, TARGETS } from '../build/build.ts';
import { Lab, type LabNode } from '../lab/lab.ts';
import { REPO, type AgentSettings } from '../lab/node-agent.ts';
import { inNs } from '../lab/sh.ts';

const TAG = 'eni-cni.node';
const MUTATING = ['CreateNetworkInterface', 'AttachNetworkInterface', 'DetachNetworkInterface', 'DeleteNetworkInterface'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const env = (ns: string, containerId: string) => ({ containerId, netns: `/var/run/netns/${ns}`, ifName: 'eth0' });

async function withLab<T>(settings: AgentSettings, run: (lab: Lab, node: LabNode) => Promise<T>): Promise<T> {
  const lab = await Lab.up({ nodes: 1, taskMs: 40, agents: settings });
  try {
    return await run(lab, lab.nodes[0]!);
  } finally {
    await lab.down();
  }
}

function cloud(lab: Lab, node: LabNode) {
  const ours = lab.emulator.state().networkInterfaces.filter((e) => (e.TagSet as Array<{ Key: string; Value: string }>).some((t) => t.Key === TAG && t.Value === node.instanceId));
  return {
    enis: ours.filter((e) => e.Attachment?.InstanceId === node.instanceId).length,
    orphans: ours.filter((e) => !e.Attachment).length,
    addresses: ours.flatMap((e) => e.PrivateIpAddressSet.filter((a) => !a.Primary).map((a) => a.PrivateIpAddress)),
  };
}

function alive(node: LabNode): boolean {
  const pid = node.agent!.pid;
  return pid !== undefined && existsSync(`/proc/${pid}`) && !/^Z/.test(readFileSyncSafe(`/proc/${pid}/stat`).split(' ')[2] ?? '');
}

function readFileSyncSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

async function churn() {
  return withLab({ minWarm: 5, maxWarm: 5, cooldown: '5s' }, async (lab, node) => {
    const agent = node.agent!;
    const live: Array<{ ns: string; id: string }> = [];
    let seq = 0;
    const add = async (n: number) => {
      const made = await Promise.all(
        Array.from({ length: n }, async () => {
          const id = `ch${seq++}`;
          return { ns: await lab.addPod(id), id };
        }),
      );
      const results = await Promise.all(made.map((p) => agent.cni('ADD', env(p.ns, p.id))));
      made.forEach((p, i) => results[i]!.code === 0 && live.push(p));
    };
    const del = async (n: number) => {
      for (const p of live.splice(0, n)) {
        await agent.cni('DEL', env(p.ns, p.id));
        await lab.removePod(p.ns);
      }
    };
    await add(18);
    let peakBound = cloud(lab, node).addresses.length;
    let peakEnis = cloud(lab, node).enis;
    for (let round = 0; round < 6; round++) {
      await del(8);
      await add(8);
      await sleep(300);
      peakBound = Math.max(peakBound, cloud(lab, node).addresses.length);
      peakEnis = Math.max(peakEnis, cloud(lab, node).enis);
    }
    const pods = live.length;
    await del(12);
    await sleep(2000);
    const afterDelete = cloud(lab, node);
    return { peak_pods: 18, pods_at_end_of_churn: pods, peak_bound: peakBound, peak_enis: peakEnis, enis_after_deleting_12: afterDelete.enis, bound_after_deleting_12: afterDelete.addresses.length };
  });
}

async function netns() {
  return withLab({ minWarm: 3, maxWarm: 5 }, async (lab, node) => {
    const stale = `/var/run/netns/${lab.prefix}-stale`;
    writeFileSync(stale, '');
    let crashes = 0;
    let tries = 0;
    try {
      for (const [i, path] of [...Array(15).fill(stale), ...Array(6).fill('/dev/null')].entries()) {
        tries++;
        await node.agent!.cni('ADD', { containerId: `stale${i}`, netns: path as string, ifName: 'eth0' });
        await sleep(50);
        if (!alive(node)) {
          crashes++;
          await node.agent!.start();
        }
      }
    } finally {
      rmSync(stale, { force: true });
    }
    return { tries, crashes, allocations_left: node.agent!.allocations().filter((a) => a.containerId.startsWith('stale')).length };
  });
}

async function readd() {
  return withLab({ minWarm: 3, maxWarm: 5 }, async (lab, node) => {
    const ns = await lab.addPod('readd');
    let failures = 0;
    for (let i = 0; i < 10; i++) {
      if ((await node.agent!.cni('ADD', env(ns, 'readd'))).code !== 0) failures++;
      await node.agent!.cni('DEL', env(ns, 'readd'));
    }
    return { cycles: 10, failures };
  });
}

async function eniReuse() {
  return withLab({ minWarm: 0, maxWarm: 0, quickRelease: true, releasePeriod: '1s', cooldown: '1s' }, async (lab, node) => {
    const agent = node.agent!;
    const burst = async (tag: string) => {
      const pods = await Promise.all(Array.from({ length: 12 }, (_, i) => lab.addPod(`${tag}${i}`)));
      const results = await Promise.all(pods.map((ns, i) => agent.cni('ADD', env(ns, `${tag}${i}`))));
      return { pods, failed: results.filter((r) => r.code !== 0).length };
    };
    const first = await burst('ra');
    for (const [i, ns] of first.pods.entries()) {
      await agent.cni('DEL', env(ns, `ra${i}`));
      await lab.removePod(ns);
    }
    // Every address and ENI given back (min 0, quick release, a 1 s period).
    for (let i = 0; i < 40 && cloud(lab, node).enis > 0; i++) await sleep(250);
    const before = structuredClone(lab.emulator.state().calls);
    const second = await burst('rb');
    await sleep(10_000);
    const after = lab.emulator.state().calls;
    const calls = MUTATING.reduce((n, a) => n + (after[a]?.ok ?? 0) + (after[a]?.failed ?? 0) - (before[a]?.ok ?? 0) - (before[a]?.failed ?? 0), 0);
    return { adds: 12, failed_after_reuse: second.failed, eni_calls_in_10s_after: calls };
  });
}

async function kills() {
  return withLab({ minWarm: 0, maxWarm: 0, quickRelease: true, releasePeriod: '1s', cooldown: '1s', poolCheckInterval: '500ms' }, async (lab, node) => {
    const agent = node.agent!;
    for (let round = 0; round < 8; round++) {
      const pods = await Promise.all(Array.from({ length: 10 }, (_, i) => lab.addPod(`k${round}x${i}`)));
      const adding = Promise.all(pods.map((ns, i) => agent.cni('ADD', env(ns, `k${round}x${i}`))));
      await sleep(60 + ((round * 97) % 400));
      await agent.stop('SIGKILL');
      await adding;
      await agent.start();
      for (const [i, ns] of pods.entries()) {
        await agent.cni('DEL', env(ns, `k${round}x${i}`));
        await lab.removePod(ns);
      }
    }
    await sleep(5000);
    const now = cloud(lab, node);
    const status = JSON.parse(await inNs(node.ns, `${REPO}dist/bin/eni-cnictl`, ['status', '--json'])) as { enis: Array<{ addresses: string[] }>; allocations: unknown[] };
    const known = new Set(status.enis.flatMap((e) => e.addresses));
    return {
      kills: 8,
      orphan_enis: now.orphans,
      addresses_unknown_to_agent: now.addresses.filter((a) => !known.has(a)).length,
      addresses_left: now.addresses.length,
      allocations_left: status.allocations.length,
    };
  });
}

async function idle() {
  return withLab({ minWarm: 3, maxWarm: 5 }, async (lab, node) => {
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 500; i++) {
        const socket = connect(node.agent!.socket);
        socket.on('error', () => undefined);
        sockets.push(socket);
      }
      await sleep(500);
      const ns = await lab.addPod('idle');
      const r = await node.agent!.cni('ADD', env(ns, 'idle'));
      const fds = readdirSync(`/proc/${node.agent!.pid}/fd`).length;
      return { idle_connections: 500, add_ok: r.code === 0, agent_fds: fds };
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
}

async function main(): Promise<void> {
  if (!existsSync('dist/bin/eni-cni') || !existsSync('dist/bin/eni-agent')) await build(TARGETS.filter((t) => t.name !== 'empty-node'));
  const results: Record<string, unknown> = {};
  for (const [name, scenario] of Object.entries({ churn, netns, readd, 'eni-reuse': eniReuse, kills, idle })) {
    results[name] = await scenario();
    console.log(`${name.padEnd(10)} ${JSON.stringify(results[name])}`);
  }
  console.log(JSON.stringify(results));
}

main().catch((err: unknown) => {
  console.error(`bench:hostile: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
