// Churn on a lab node with the agent SIGKILLed at random and the cloud losing answers at random: rounds
// of pods added and deleted as a runtime does (a failed ADD is cleaned up with DEL and tried again until it
// works, DEL goes on with the agent away). At the end, after one reconcile: no address was ever given to two live
// pods, the cloud holds nothing the agent does not know (no orphan ENI, no stray address), and the node
// keeps no link, rule, route or note of a pod.
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabNode } from '../hack/lab/lab.ts';
import { REPO } from '../hack/lab/node-agent.ts';
import { inNs, ip } from '../hack/lab/sh.ts';
import { OWNER_TAG } from '../agent/cloud/cloud.ts';

let lab: Lab;
let node: LabNode;

beforeAll(async () => {
  lab = await Lab.up({
    nodes: 1,
    taskMs: 40,
    agents: {
      minWarm: 2,
      maxWarm: 4,
      quickRelease: true,
      releasePeriod: '1s',
      cooldown: '1s',
      gcInterval: '2s',
      gcGrace: '1s',
      poolCheckInterval: '500ms',
      poolResyncInterval: '2s',
    },
  });
  node = lab.nodes[0]!;
});

afterAll(async () => {
  await lab?.down();
});

/** A small seeded generator, so that a failing run can be run again as it was. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const SEED = Number(process.env.CHURN_SEED ?? 20261201);
const ROUNDS = 8;
const PODS = 10;
/** the actions whose answers the odd rounds lose on every try, in turn */
const LOST_EVERY_TRY = ['AssignPrivateIpAddresses', 'UnassignPrivateIpAddresses', 'CreateNetworkInterface', 'AttachNetworkInterface'];
const MUTATIONS = ['AssignPrivateIpAddresses', 'UnassignPrivateIpAddresses', 'CreateNetworkInterface', 'AttachNetworkInterface', 'DetachNetworkInterface', 'DeleteNetworkInterface'];

const env = (ns: string, containerId: string) => ({ containerId, netns: `/var/run/netns/${ns}`, ifName: 'eth0' });
const addressOf = (r: { result?: Record<string, unknown> | undefined }) => (r.result!.ips as Array<{ address: string }>)[0]!.address.split('/')[0]!;

interface AgentStatus {
  enis: Array<{ id: string; addresses: string[] }>;
  allocations: Array<{ address: string; containerId: string }>;
}

async function agentStatus(): Promise<AgentStatus> {
  return JSON.parse(await inNs(node.ns, `${REPO}dist/bin/eni-cnictl`, ['status', '--json'])) as AgentStatus;
}

/** The ENIs the cloud holds that were made for this node, and where they are. */
function cloudEnis() {
  return lab.emulator
    .state()
    .networkInterfaces.filter((e) => (e.TagSet as Array<{ Key: string; Value: string }>).some((t) => t.Key === OWNER_TAG && t.Value === node.instanceId))
    .map((e) => ({ id: e.NetworkInterfaceId, attachedTo: e.Attachment?.InstanceId, addresses: e.PrivateIpAddressSet.filter((a) => !a.Primary).map((a) => a.PrivateIpAddress).sort() }));
}

/** A runtime's retries of a pod whose ADD failed: DEL, a pause, ADD again. */
async function retryAdd(ns: string, containerId: string) {
  let r = await node.agent!.cni('ADD', env(ns, containerId));
  for (let attempt = 1; r.code !== 0 && attempt < 6; attempt++) {
    expect((await node.agent!.cni('DEL', env(ns, containerId))).code).toBe(0);
    await new Promise((res) => setTimeout(res, 500));
    r = await node.agent!.cni('ADD', env(ns, containerId));
  }
  return r;
}

/** Why the cloud and the agent disagree about the node's ENIs and addresses, or undefined when they agree. */
async function cloudAgrees(): Promise<string | undefined> {
  const status = await agentStatus();
  const enis = cloudEnis();
  const stray = enis.filter((e) => e.attachedTo !== node.instanceId);
  if (stray.length > 0) return `ENIs made for the node but not attached to it: ${stray.map((e) => e.id).join(', ')}`;
  if (status.enis.length !== enis.length) return `the cloud has ${enis.length} ENIs for the node, the agent ${status.enis.length}`;
  const known = status.enis.flatMap((e) => e.addresses).sort();
  const inCloud = enis.flatMap((e) => e.addresses).sort();
  if (JSON.stringify(known) !== JSON.stringify(inCloud)) return `the cloud holds ${inCloud.join(', ')}; the agent knows ${known.join(', ')}`;
  return undefined;
}

async function until(what: string, check: () => Promise<string | undefined>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let why: string | undefined;
  while ((why = await check()) !== undefined) {
    if (Date.now() > deadline) throw new Error(`${what}: ${why}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('churn with agent kills and lost answers', () => {
  it('ends with no address given twice, nothing leaked in the cloud, and nothing left on the node', async () => {
    const rand = random(SEED);
    const agent = node.agent!;
    const live = new Map<string, { ns: string; address: string }>();
    let kills = 0;
    let lostAnswers = 0;
    let podSeq = 0;

    for (let round = 0; round < ROUNDS; round++) {
      // Odd rounds: the agent stays up while the cloud loses the answers of one pool action on every try,
      // until the agent gives up (the cloud did it anyway), so no restart can mend what the pool missed.
      // Even rounds: answers lost once (the retry, with the same ClientToken, learns them) and a SIGKILL.
      const quiet = round % 2 === 1;
      const lost = quiet ? LOST_EVERY_TRY[Math.floor(round / 2) % LOST_EVERY_TRY.length]! : MUTATIONS[Math.floor(rand() * MUTATIONS.length)]!;
      lab.emulator.addFault({ action: lost, times: quiet ? 10 : 1, effect: { kind: 'drop' } });
      lostAnswers++;
      const pods = await Promise.all(Array.from({ length: PODS }, () => lab.addPod(`churn${podSeq++}`)));
      const ids = pods.map((ns) => `ctr-${ns}`);
      const kill = quiet ? undefined : 50 + Math.floor(rand() * 400);
      const adding = Promise.all(pods.map((ns, i) => agent.cni('ADD', env(ns, ids[i]!))));
      if (kill !== undefined) {
        await new Promise((r) => setTimeout(r, kill));
        await agent.stop('SIGKILL');
        kills++;
      }
      const first = await adding;
      // As a runtime does: DEL what failed (the agent may be away: DEL must still succeed) …
      for (const [i, r] of first.entries()) if (r.code !== 0) expect((await agent.cni('DEL', env(pods[i]!, ids[i]!))).code).toBe(0);
      if (kill !== undefined) await agent.start();
      // … and try it again, as kubelet does, until it works: a pod that can never start is a broken node.
      const final = await Promise.all(first.map((r, i) => (r.code === 0 ? r : retryAdd(pods[i]!, ids[i]!))));
      for (const [i, r] of final.entries()) {
        expect(r.code, `round ${round}: ${ids[i]}: ${r.stdout}`).toBe(0);
        const address = addressOf(r);
        const twice = [...live.entries()].find(([, p]) => p.address === address);
        expect(twice, `round ${round}: ${address} given to ${ids[i]} while ${twice?.[0]} holds it`).toBeUndefined();
        live.set(ids[i]!, { ns: pods[i]!, address });
      }

      // A sandbox restarted by its runtime: DEL, then ADD of the same container and interface.
      for (const id of [...live.keys()].slice(0, 2)) {
        const pod = live.get(id)!;
        expect((await agent.cni('DEL', env(pod.ns, id))).code).toBe(0);
        live.delete(id);
        const again = await agent.cni('ADD', env(pod.ns, id));
        expect(again.code, `round ${round}: ${id} added again: ${again.stdout}`).toBe(0);
        live.set(id, { ns: pod.ns, address: addressOf(again) });
      }
      expect(new Set([...live.values()].map((p) => p.address)).size, `round ${round}: an address held twice`).toBe(live.size);

      // Delete about half of the live pods, sometimes with the agent killed halfway through.
      const leaving = [...live.keys()].filter(() => rand() < 0.5);
      const killDuringDel = !quiet && rand() < 0.5;
      for (const [n, id] of leaving.entries()) {
        if (killDuringDel && n === Math.floor(leaving.length / 2)) {
          await agent.stop('SIGKILL');
          kills++;
        }
        const pod = live.get(id)!;
        expect((await agent.cni('DEL', env(pod.ns, id))).code, `DEL ${id}`).toBe(0);
        // containerd calls DEL twice (stop, then remove); the second finds nothing.
        expect((await agent.cni('DEL', env(pod.ns, id))).code).toBe(0);
        await lab.removePod(pod.ns);
        live.delete(id);
      }
      if (killDuringDel) await agent.start();
      // Within a re-sync or two, whatever was lost, the agent knows all the cloud holds for the node.
      await until(`after round ${round}`, cloudAgrees, 10_000);
    }

    // Every pod goes; the faults go too; then one reconcile and one re-sync.
    for (const [id, pod] of live) {
      expect((await agent.cni('DEL', env(pod.ns, id))).code).toBe(0);
      await lab.removePod(pod.ns);
    }
    live.clear();
    lab.emulator.faults.clear();
    expect(kills).toBeGreaterThan(0);
    expect(lostAnswers).toBeGreaterThan(0);

    await until('the agent holds nothing', async () => {
      const held = (await agentStatus()).allocations;
      return held.length > 0 ? `the agent still holds ${held.map((a) => `${a.address} for ${a.containerId}`).join(', ')}` : undefined;
    }, 10_000);
    await until('the agent and the cloud agree', cloudAgrees, 10_000);
    await until(
      'the node is clean',
      async () => {
        const links = (await ip(node.ns, '-o', 'link', 'show')).match(/: eni[0-9a-f]{11}@/g) ?? [];
        if (links.length > 0) return `pod veths left: ${links.join(' ')}`;
        const rules = (await ip(node.ns, 'rule', 'show')).split('\n').filter((r) => /^(512|1536):/.test(r));
        if (rules.length > 0) return `pod rules left: ${rules.join('; ')}`;
        const routes = (await ip(node.ns, 'route', 'show')).split('\n').filter((r) => / dev eni[0-9a-f]{11}/.test(r));
        if (routes.length > 0) return `pod routes left: ${routes.join('; ')}`;
        const notes = readdirSync(`${agent.socket.replace(/\/[^/]+$/, '')}/pending-del`);
        if (notes.length > 0) return `pending DEL notes left: ${notes.join(', ')}`;
        return undefined;
      },
      10_000,
    );
  }, 240_000);
});
