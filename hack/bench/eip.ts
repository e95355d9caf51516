// `npm run bench:eip`: a burst of pods asking for an EIP each (eip-attributes), on a two-node lab cluster,
// next to the same burst of pods without one, in one run. Each pod is timed from its creation (kubectl's
// moment) to its first packet to the lab's internet leaving with the address it should: its EIP, or, for
// the plain pods, its node's public IP. Also the busiest second of EIP calls (Tencent allows 10 a second
// per action). Ends with one JSON line.
import { existsSync } from 'node:fs';
import { build, TARGETS } from '../build/build.ts';
import { defaultWorld } from '../emulator/world.ts';
import { kubeClients, Lab, whoamiFrom } from '../lab/lab.ts';
import { median } from './timing.ts';

const PODS = Number(process.env.BENCH_PODS ?? 10);
/** Asynchronous cloud operations take this long, as they may on Tencent Cloud. */
const TASK_MS = Number(process.env.BENCH_TASK_MS ?? 200);
const EIP_ACTIONS = ['AllocateAddresses', 'AssociateAddress', 'DisassociateAddress', 'ReleaseAddresses'];

async function main(): Promise<void> {
  if (!existsSync('dist/bin/eni-cni') || !existsSync('dist/bin/eni-agent') || !existsSync('dist/bin/eni-ipamd')) await build(TARGETS);
  const lab = await Lab.up({ nodes: 2, taskMs: TASK_MS, cluster: true, world: { ...defaultWorld(), eipQuota: Math.max(20, PODS) }, agents: { minWarm: PODS, maxWarm: 2 * PODS, gcInterval: '5s' } });
  const { core, custom } = kubeClients(lab.kubeconfigFile('admin'));
  try {
    // Both warm pools full first: the burst measures the EIPs, not the addresses.
    const ready = () => lab.nodes.every((n) => n.agent!.allocations().length === 0) && lab.emulator.state().networkInterfaces.filter((e) => !e.Primary).flatMap((e) => e.PrivateIpAddressSet.filter((a) => !a.Primary)).length >= 2 * PODS;
    for (let i = 0; i < 600 && !ready(); i++) await new Promise((r) => setTimeout(r, 100));
    await lab.settled();

    /** Creates `PODS` pods at once; answers each one's ms from creation to its egress leaving as `expected` says. */
    const burst = async (prefix: string, annotations: Record<string, string>, expected: (name: string) => Promise<string | undefined>): Promise<number[]> => {
      const names = Array.from({ length: PODS }, (_, i) => `${prefix}-${i}`);
      return Promise.all(
        names.map(async (name) => {
          const started = performance.now();
          await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name, annotations: { 'tke.cloud.tencent.com/networks': 'tke-route-eni', ...annotations } }, spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'] }] } } });
          for (const deadline = started + 120_000; performance.now() < deadline; await new Promise((r) => setTimeout(r, 25))) {
            const want = await expected(name).catch(() => undefined);
            if (!want) continue;
            const netns = (await lab.podNetns('default', name).catch(() => undefined))?.split('/').pop();
            if (netns && (await whoamiFrom(netns, 300).catch(() => '')) === want) return performance.now() - started;
          }
          const pod = await core.readNamespacedPod({ namespace: 'default', name }).catch(() => undefined);
          throw new Error(`${name}: its egress did not leave as expected within 120 s (pod ${pod?.status?.phase ?? 'unknown'} on ${pod?.spec?.nodeName ?? 'no node'}, expected ${await expected(name).catch(() => 'nothing')}, saw ${await lab.podNetns('default', name).then((n) => whoamiFrom(n.split('/').pop()!, 1000)).catch((err: Error) => err.message)})`);
        }),
      );
    };
    const nodePublicIp = async (name: string) => {
      const pod = await core.readNamespacedPod({ namespace: 'default', name });
      return lab.nodes.find((n) => n.name === pod.spec?.nodeName)?.publicIp;
    };
    const eipOf = async (name: string) => {
      const claim = (await custom.getNamespacedCustomObject({ group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'eipclaims', namespace: 'default', name })) as { status?: { phase?: string; publicIP?: string } };
      return claim.status?.phase === 'Bound' ? claim.status.publicIP : undefined;
    };

    const plain = await burst('plain', {}, nodePublicIp);
    const arrivals = lab.emulator.recordArrivals();
    const withEip = await burst('eip', { 'tke.cloud.tencent.com/eip-attributes': '{"Bandwidth":"100","ISP":"BGP"}' }, eipOf);
    const perSecond = new Map<string, number>();
    for (const a of arrivals.filter((x) => EIP_ACTIONS.includes(x.action))) {
      const key = `${a.action}@${Math.floor(a.at / 1000)}`;
      perSecond.set(key, (perSecond.get(key) ?? 0) + 1);
    }
    const peak = Math.max(0, ...perSecond.values());

    const stats = (s: number[]) => ({ p50: median(s), max: Math.max(...s) });
    const p = stats(plain);
    const e = stats(withEip);
    const f = (n: number) => n.toFixed(0).padStart(7);
    console.log(`\n${PODS} pods at once on 2 nodes, from creation to egress leaving with the right address (ms), cloud tasks ${TASK_MS} ms:`);
    console.log(`                          median      max`);
    console.log(`  without EIP (node IP)  ${f(p.p50)}  ${f(p.max)}`);
    console.log(`  with an EIP each       ${f(e.p50)}  ${f(e.max)}   ${(e.p50 / p.p50).toFixed(2)}x`);
    console.log(`  busiest second of one EIP action: ${peak} calls (Tencent allows 10)`);
    console.log(JSON.stringify({ pods: PODS, plain_egress_p50_ms: Math.round(p.p50), plain_egress_max_ms: Math.round(p.max), eip_egress_p50_ms: Math.round(e.p50), eip_egress_max_ms: Math.round(e.max), eip_calls_peak_per_s: peak }));
  } finally {
    await lab.down();
  }
}

main().catch((err: unknown) => {
  console.error(`bench:eip: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
