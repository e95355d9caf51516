// `npm run bench:burst`: a full node's pods at once on an empty node, with the cloud's latency and rate
// limits on. Prints the time until every pod has its address, the cloud calls made next to what one call
// per address would need, and whether any throttled call was left unretried. Ends with one JSON line.
import { existsSync } from 'node:fs';
import { build, TARGETS } from '../build/build.ts';
import { defaultWorld } from '../emulator/world.ts';
import { Lab } from '../lab/lab.ts';

const MUTATING = ['CreateNetworkInterface', 'AttachNetworkInterface', 'AssignPrivateIpAddresses', 'UnassignPrivateIpAddresses', 'DetachNetworkInterface', 'DeleteNetworkInterface'];
/** Asynchronous operations take this long, as they may on Tencent Cloud. */
const TASK_MS = Number(process.env.BENCH_TASK_MS ?? 500);

async function main(): Promise<void> {
  if (!existsSync('dist/bin/eni-cni') || !existsSync('dist/bin/eni-agent')) await build(TARGETS.filter((t) => t.name !== 'empty-node'));
  // Tight limits on the mutating actions, so that a burst meets RequestLimitExceeded.
  const world = defaultWorld();
  world.rateLimits = { CreateNetworkInterface: 1, AttachNetworkInterface: 1, AssignPrivateIpAddresses: 1, DescribeVpcTaskResult: 2 };
  const lab = await Lab.up({ nodes: 1, world, taskMs: TASK_MS, agents: { minWarm: 5, maxWarm: 5 } });
  try {
    const node = lab.nodes[0]!;
    const agent = node.agent!;
    const limit = lab.emulator.model.instance(node.instanceId);
    const pods = (limit.enis - 1) * (limit.ipsPerEni - 1);
    // Let the warm pool settle first: the burst starts from the node as a user would find it.
    await new Promise((r) => setTimeout(r, 3 * TASK_MS + 1000));
    const before = callCounts(lab);
    const namespaces = await Promise.all(Array.from({ length: pods }, (_, i) => lab.addPod(`burst${i}`)));
    const started = performance.now();
    const results = await Promise.all(namespaces.map((ns, i) => agent.cni('ADD', { containerId: `burst${i}`, netns: `/var/run/netns/${ns}`, ifName: 'eth0' })));
    const readyS = (performance.now() - started) / 1000;
    const after = callCounts(lab);
    const failed = results.filter((r) => r.code !== 0);
    const throttledUnretried = failed.filter((r) => /RequestLimitExceeded/.test(r.stdout)).length;
    const mutating = MUTATING.reduce((n, a) => n + (after[a]?.ok ?? 0) - (before[a]?.ok ?? 0), 0);
    const throttled = Object.keys(after).reduce((n, a) => n + (after[a]!.throttled - (before[a]?.throttled ?? 0)), 0);
    // One call per address, and a create and an attach per ENI opened.
    const enisOpened = Math.ceil(pods / (limit.ipsPerEni - 1));
    const naive = pods + 2 * enisOpened;
    console.log(`\n${pods} pods at once on ${node.instanceId} (${limit.spec.type}: ${limit.enis} ENIs x ${limit.ipsPerEni} addresses), task latency ${TASK_MS} ms`);
    console.log(`  all ADDs answered in ${readyS.toFixed(2)} s; ${failed.length} failed`);
    console.log(`  mutating cloud calls: ${mutating} (one call per address would be ${naive})`);
    const byAction = Object.keys(after).filter((a) => after[a]!.throttled > (before[a]?.throttled ?? 0)).map((a) => `${a} ${after[a]!.throttled - (before[a]?.throttled ?? 0)}`);
    console.log(`  throttled answers from the cloud: ${throttled}${byAction.length ? ` (${byAction.join(', ')})` : ''}, all retried: ${throttledUnretried === 0 ? 'yes' : 'no'}`);
    for (const r of failed.slice(0, 3)) console.log(`  failed: ${r.stdout}`);
    console.log(JSON.stringify({ pods, ready_s: Math.round(readyS * 100) / 100, mutating_calls: mutating, naive_calls: naive, throttled_unretried: throttledUnretried }));
    if (failed.length > 0) process.exitCode = 1;
  } finally {
    await lab.down();
  }
}

function callCounts(lab: Lab): Record<string, { ok: number; throttled: number; failed: number }> {
  return structuredClone(lab.emulator.state().calls);
}

main().catch((err: unknown) => {
  console.error(`bench:burst: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
