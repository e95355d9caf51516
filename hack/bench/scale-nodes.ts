// bench:scale's simulated nodes, in a process of their own: each node runs the agent's real pool (links only
// named) fed by ipamd through its NEC, or (--standalone) by its own calls to the cloud with its own
// limiter, as every agent did before ipamd. When told, each node starts its pods; the process reports, as
// JSON lines on stdout, when each node could first serve a pod and when all its pods had addresses.
import { createInterface } from 'node:readline';
import * as k8s from '@kubernetes/client-node';
import { TencentCloud } from '../../agent/cloud/tencent.ts';
import { CloudSupply } from '../../agent/supply/cloud-supply.ts';
import { SimCluster, SimNode } from '../sim/nodes.ts';

interface Plan {
  mode: 'ipamd' | 'standalone';
  nodes: Array<{ name: string; instanceId: string; zone: string }>;
  pods: number;
  warm: number;
  /** ipamd mode */
  kubeconfig?: string;
  /** standalone mode */
  cloud?: { url: string; resolve: string; region: string; credentials: { secretId: string; secretKey: string }; subnetIds: string[]; securityGroupIds: string[] };
}

const plan = JSON.parse(process.argv[2]!) as Plan;
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function main(): Promise<void> {
  let sims: SimCluster | undefined;
  if (plan.mode === 'ipamd') {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(plan.kubeconfig!);
    sims = new SimCluster(kc);
    await sims.start();
  }
  const settings = { warm: { min: plan.warm, max: plan.warm }, checkIntervalMs: 1000, resyncIntervalMs: 60_000 };
  const nodes = plan.nodes.map((n) => {
    if (sims) return new SimNode(n.name, n.instanceId, { cluster: sims }, settings);
    const c = plan.cloud!;
    // The old design: each agent its own client and its own limiter, at Tencent's per-action limits.
    const cloud = new TencentCloud({ region: c.region, endpoint: { url: c.url, resolve: c.resolve }, credential: c.credentials });
    const supply = new CloudSupply({ cloud, instanceId: n.instanceId, zone: n.zone, subnetIds: c.subnetIds, securityGroupIds: c.securityGroupIds, log: () => {} });
    return new SimNode(n.name, n.instanceId, { supply }, settings);
  });
  say({ started: nodes.length });
  const t0 = Date.now();
  // Ready: the pool holds a free address, so a pod's ADD needs no cloud call. A node whose start failed,
  // or that is not ready within 10 minutes, is reported failed.
  await Promise.all(
    nodes.map(async (node) => {
      try {
        await node.start();
        const at = await untilFree(node, t0 + 600_000);
        say(at ? { node: node.name, readyMs: at - t0 } : { node: node.name, failed: 'no free address within 10 minutes' });
      } catch (err) {
        say({ node: node.name, failed: `start: ${(err as Error).message}` });
      }
    }),
  );
  // Then every node starts its pods at once.
  await waitForLine('pods');
  const p0 = Date.now();
  await Promise.all(
    nodes.map(async (node) => {
      // As the kubelet does, a pod whose ADD timed out (the agent's 30 s) is tried again, for up to 10 minutes.
      const got = await Promise.all(
        Array.from({ length: plan.pods }, async (_, i) => {
          for (let tries = 0; tries < 20; tries++) {
            const address = await node.addPod(`${node.name}-p${i}`, 30_000);
            if (address) return address;
          }
          return undefined;
        }),
      );
      say({ node: node.name, podsMs: Date.now() - p0, pods: got.filter(Boolean).length });
    }),
  );
  say({ done: true });
  await waitForLine('stop');
  await Promise.all(nodes.map((n) => n.stop()));
  await sims?.stop();
  process.exit(0);
}

async function untilFree(node: SimNode, deadline: number): Promise<number | undefined> {
  while (Date.now() < deadline) {
    if (node.store.counts().free > 0) return Date.now();
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

const lines = createInterface({ input: process.stdin });
const waiting = new Map<string, () => void>();
lines.on('line', (line) => waiting.get(line.trim())?.());
function waitForLine(word: string): Promise<void> {
  return new Promise((resolve) => waiting.set(word, resolve));
}

main().catch((err: Error) => {
  say({ fatal: err.message });
  process.exit(1);
});
