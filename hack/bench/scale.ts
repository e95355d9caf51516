// `npm run bench:scale [-- --nodes 1000 --pods 10]`: many nodes join at once against one emulated cloud
// with Tencent's per-action rate limits, then each starts its pods. Measured side by side in one run:
//   ipamd       the nodes' agents (the real pool, links only named) ask tke-eni-ipamd (the built binary, one
//               replica) through their NECs on the API server stand-in; ipamd alone calls the cloud,
//               within one budget for the cluster;
//   standalone  every agent calls the cloud itself with its own limiter (the design before ipamd).
// Prints the time until every node can serve a pod (p50, p99, max), the peak calls per second (all
// actions together, and the busiest action), throttled answers, calls that failed for good, ipamd's
// peak RSS, and ends with one JSON line.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { crdModel } from '../apiserver/testing.ts';
import { Emulator } from '../emulator/emulator.ts';
import { parseWorld } from '../emulator/world.ts';
import { intToIp, ipToInt } from '../../shared/ip.ts';
import { IPAMD_BINARY, manifestArgs } from '../lab/ipamd.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const ZONE = 'ap-guangzhou-3';
const CLUSTER_QPS = 50;

interface Options {
  nodes: number;
  pods: number;
  warm: number;
  taskMs: number;
  modes: string[];
}

interface Result {
  mode: string;
  nodes: number;
  readyMs: number[];
  podsMs: number[];
  podsMissing: number;
  failedNodes: number;
  peakQps: number;
  peakAction: { action: string; qps: number };
  throttled: number;
  failed: number;
  calls: number;
  /** ipamd's own busiest second */
  sentPeakQps: number | undefined;
  ipamdRssMb: number | undefined;
  wallS: number;
}

function world(nodes: number, taskMs: number) {
  const base = ipToInt('10.0.0.10');
  return parseWorld({
    region: 'ap-guangzhou',
    vpc: { id: 'vpc-scale0001', cidr: '10.0.0.0/16' },
    subnets: [
      { id: 'subnet-nodes', zone: ZONE, cidr: '10.0.0.0/20' },
      { id: 'subnet-podsa', zone: ZONE, cidr: '10.0.64.0/18' },
      { id: 'subnet-podsb', zone: ZONE, cidr: '10.0.128.0/18' },
    ],
    securityGroups: ['sg-scale001'],
    instances: Array.from({ length: nodes }, (_, i) => ({
      id: `ins-s${String(i).padStart(6, '0')}`,
      name: `node-${i}`,
      type: 'S5.LARGE8',
      cpu: 4,
      memoryGb: 8,
      zone: ZONE,
      subnetId: 'subnet-nodes',
      privateIp: intToIp(base + i),
    })),
    credentials: [{ secretId: 'AKIDscale000000000000000000000001', secretKey: 'scale-secret-key-00000001' }],
    latencies: { taskMs, apiMs: 0 },
  });
}

/** Every call the cloud answered, and when: the busiest second, however cut, is found from them. */
class CallMeter {
  private readonly arrivals: Array<{ at: number; action: string }>;

  constructor(private readonly emulator: Emulator) {
    this.arrivals = emulator.recordArrivals();
  }

  stop() {
    const calls = this.emulator.calls();
    const peak = (action?: string) => {
      const times = this.arrivals.filter((a) => !action || a.action === action).map((a) => a.at);
      let most = 0;
      for (let i = 0, j = 0; i < times.length; i++) {
        while (times[i]! - times[j]! >= 1000) j++;
        most = Math.max(most, i - j + 1);
      }
      return most;
    };
    const busiest = Object.keys(calls)
      .map((action) => ({ action, qps: peak(action) }))
      .sort((a, b) => b.qps - a.qps)[0] ?? { action: '', qps: 0 };
    const sum = (k: 'ok' | 'throttled' | 'failed') => Object.values(calls).reduce((n, v) => n + v[k], 0);
    return { peakQps: peak(), peakAction: busiest, throttled: sum('throttled'), failed: sum('failed'), calls: this.arrivals.length };
  }
}

/** The API server stand-in in a process of its own, so that its work does not hold up the cloud's clock. */
async function startApiServerProcess(kubeconfig: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', `${REPO}hack/apiserver/main.ts`, '--listen', '127.0.0.1:0', '--kubeconfig', kubeconfig, '--history', '200000'], { stdio: ['ignore', 'ignore', 'inherit'], cwd: REPO });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the API server stand-in exited with ${child.exitCode}`);
    try {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(kubeconfig);
      await kc.makeApiClient(k8s.CoreV1Api).listNamespace();
      return child;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  child.kill('SIGKILL');
  throw new Error('the API server stand-in did not answer within 30 s');
}

function startWorker(plan: object): { child: ChildProcess; lines: AsyncIterableIterator<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', `${REPO}hack/bench/scale-nodes.ts`, JSON.stringify(plan)], { stdio: ['pipe', 'pipe', 'inherit'], cwd: REPO });
  return { child, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator]() };
}

async function runMode(mode: 'ipamd' | 'standalone', o: Options): Promise<Result> {
  const w = world(o.nodes, o.taskMs);
  const emulator = await Emulator.start({ world: w, host: '127.0.0.1', port: 0, metadataPort: 0 });
  const dir = mkdtempSync(`${tmpdir()}/eni-cni-scale-`);
  const nodes = w.instances.map((i) => ({ name: i.name, instanceId: i.id, zone: i.zone }));
  const apiUrl = `http://tencentcloudapi.com:${emulator.apiAddress.port}`;
  let ipamd: ChildProcess | undefined;
  let apiserver: ChildProcess | undefined;
  const kubeconfig = `${dir}/kubeconfig`;
  let healthPort = 0;
  const started = Date.now();
  try {
    let plan: object;
    if (mode === 'ipamd') {
      apiserver = await startApiServerProcess(kubeconfig);
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(kubeconfig);
      const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
      const crds = `${REPO}daemonset/crds`;
      for (const f of readdirSync(crds)) await ext.createCustomResourceDefinition({ body: crdModel(parseYaml(readFileSync(`${crds}/${f}`, 'utf8'))) });
      writeFileSync(`${dir}/keys.json`, JSON.stringify(w.credentials[0]));
      healthPort = await freePort();
      const args = [
        ...manifestArgs({ 'subnet-ids': 'subnet-podsa,subnet-podsb', 'security-group-ids': 'sg-scale001', 'ip-min-warm-target': String(o.warm), 'ip-max-warm-target': String(o.warm), 'log-level': 'warn' }),
        '--kubeconfig', kubeconfig,
        '--region', w.region,
        '--api-url', apiUrl,
        '--api-resolve', emulator.apiAddress.address,
        '--credentials-file', `${dir}/keys.json`,
        '--health-address', `127.0.0.1:${healthPort}`,
        '--cloud-qps', String(CLUSTER_QPS),
        '--resync-interval', '10m',
      ];
      ipamd = spawn(IPAMD_BINARY, args, { stdio: ['ignore', 'ignore', 'inherit'] });
      plan = { mode, nodes, pods: o.pods, warm: o.warm, kubeconfig };
    } else {
      plan = { mode, nodes, pods: o.pods, warm: o.warm, cloud: { url: apiUrl, resolve: emulator.apiAddress.address, region: w.region, credentials: w.credentials[0], subnetIds: ['subnet-podsa', 'subnet-podsb'], securityGroupIds: ['sg-scale001'] } };
    }
    const { child, lines } = startWorker(plan);
    const next = async () => JSON.parse((await lines.next()).value ?? '{}') as Record<string, unknown>;
    if (!(await next()).started) throw new Error('the simulated nodes did not start');
    const meter = new CallMeter(emulator);
    const t0 = Date.now();
    if (apiserver) {
      // Every node joins at once, as a cluster scaled up does.
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(kubeconfig);
      const core = kc.makeApiClient(k8s.CoreV1Api);
      for (let i = 0; i < nodes.length; i += 100) {
        await Promise.all(
          nodes.slice(i, i + 100).map((n) =>
            core.createNode({ body: { metadata: { name: n.name, labels: { 'topology.kubernetes.io/zone': n.zone, 'node.kubernetes.io/instance-type': 'S5.LARGE8' } }, spec: { providerID: `qcloud:///${n.zone}/${n.instanceId}` } } }),
          ),
        );
      }
    }
    const readyMs: number[] = [];
    const podsMs: number[] = [];
    let podsMissing = 0;
    let failedNodes = 0;
    let progress = Date.now();
    for (let waiting = nodes.length; waiting > 0; ) {
      const m = await next();
      if (m.fatal) throw new Error(`the simulated nodes failed: ${String(m.fatal)}`);
      if (m.failed) {
        failedNodes++;
        waiting--;
      }
      if (typeof m.readyMs === 'number') {
        readyMs.push(Number(m.readyMs));
        waiting--;
      }
      if (Date.now() - progress > 10_000) {
        progress = Date.now();
        process.stderr.write(`  ${mode}: ${readyMs.length}/${nodes.length} nodes ready after ${Math.round((Date.now() - t0) / 1000)} s\n`);
      }
    }
    child.stdin!.write('pods\n');
    for (;;) {
      const m = await next();
      if (m.done || m.fatal) break;
      if (typeof m.podsMs === 'number') {
        podsMs.push(m.podsMs);
        podsMissing += o.pods - Number(m.pods);
      }
    }
    const calls = meter.stop();
    const rss = ipamd?.pid ? rssPeakMb(ipamd.pid) : undefined;
    // ipamd's own count of the calls it let go, in its busiest second (the cloud's count above also holds
    // the bunching of the emulator's own pauses, which shares a process with this benchmark).
    const sent = healthPort ? ((await (await fetch(`http://127.0.0.1:${healthPort}/status`)).json()) as { peakCallsPerSecond: number }).peakCallsPerSecond : undefined;
    child.stdin!.write('stop\n');
    await new Promise((r) => child.once('exit', r));
    return { mode, nodes: nodes.length, readyMs, podsMs, podsMissing, failedNodes, ...calls, sentPeakQps: sent, ipamdRssMb: rss, wallS: (Date.now() - started) / 1000 };
  } finally {
    ipamd?.kill('SIGKILL');
    apiserver?.kill('SIGKILL');
    await emulator.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function rssPeakMb(pid: number): number | undefined {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : undefined;
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
};
const s = (ms: number) => Math.round(ms / 100) / 10;

function print(r: Result): void {
  console.log(`\n${r.mode}: ${r.nodes} nodes, ${r.wallS.toFixed(0)} s in all`);
  console.log(`  ready (a free address on the node): ${r.readyMs.length} of ${r.nodes} nodes; p50 ${s(quantile(r.readyMs, 0.5))} s, p99 ${s(quantile(r.readyMs, 0.99))} s, max ${s(Math.max(...r.readyMs))} s`);
  console.log(`  pods: ${r.podsMs.length} nodes' pods placed, p50 ${s(quantile(r.podsMs, 0.5))} s, max ${s(Math.max(...r.podsMs))} s; ${r.podsMissing} pods without an address; ${r.failedNodes} nodes failed to start`);
  console.log(`  cloud: ${r.calls} calls, peak ${r.peakQps}/s all actions as the cloud counted them (budget ${CLUSTER_QPS}/s), busiest ${r.peakAction.action} ${r.peakAction.qps}/s; ${r.throttled} throttled, ${r.failed} failed`);
  if (r.sentPeakQps !== undefined) console.log(`  ipamd's busiest second as it sent: ${r.sentPeakQps} calls`);
  if (r.ipamdRssMb !== undefined) console.log(`  ipamd peak RSS: ${r.ipamdRssMb} MB`);
}

async function main(o: Options): Promise<void> {
  console.log(`bench:scale: ${o.nodes} nodes join at once, then ${o.pods} pods each; warm ${o.warm}; tasks take ${o.taskMs} ms`);
  const results: Result[] = [];
  for (const mode of o.modes as Array<'ipamd' | 'standalone'>) {
    const r = await runMode(mode, o);
    print(r);
    results.push(r);
  }
  const json = (r: Result) => ({
    nodes: r.nodes,
    ready_nodes: r.readyMs.length,
    ready_p50_s: s(quantile(r.readyMs, 0.5)),
    ready_p99_s: s(quantile(r.readyMs, 0.99)),
    ready_max_s: s(Math.max(...r.readyMs)),
    peak_qps: r.peakQps,
    ...(r.sentPeakQps !== undefined ? { sent_peak_qps: r.sentPeakQps } : {}),
    budget_qps: CLUSTER_QPS,
    throttled: r.throttled,
    failed: r.failed + r.podsMissing + r.failedNodes,
    ipamd_rss_mb: r.ipamdRssMb ?? null,
  });
  const ipamd = results.find((r) => r.mode === 'ipamd');
  const standalone = results.find((r) => r.mode === 'standalone');
  console.log(JSON.stringify({ ...(ipamd ? json(ipamd) : {}), ...(standalone ? { standalone: json(standalone) } : {}) }));
}

new Command('bench:scale')
  .option('--nodes <n>', 'simulated nodes', (v) => Number(v), 1000)
  .option('--pods <n>', 'pods per node', (v) => Number(v), 10)
  .option('--warm <n>', 'warm addresses per node (min = max)', (v) => Number(v), 5)
  .option('--task-ms <ms>', 'how long the cloud takes over an asynchronous change', (v) => Number(v), 200)
  .option('--modes <list>', 'ipamd, standalone or both', (v) => v.split(','), ['ipamd', 'standalone'])
  .action((o: Options) => main(o))
  .parseAsync(process.argv)
  .catch((err: Error) => {
    console.error(`bench:scale: ${err.message}`);
    process.exit(1);
  });
