// `npm run lab -- up [--nodes N] [--no-agents] | status [--json] | exec NS/POD -- CMD… | down`
// `up` starts a lab in a background process and returns once it is ready: a cluster (API server, ipamd,
// an agent, containerd and a node runner per node, a scheduler, a StatefulSet controller) that kubectl
// reaches with the printed kubeconfig. `exec` runs a command in a pod's network namespace. `down` stops
// the lab and removes every lab namespace, link and rule, also those of an earlier run that crashed.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { Command, InvalidArgumentError } from 'commander';
import { build, TARGETS } from '../build/build.ts';
import { CriClient } from '../cri/cri-client.ts';
import { podNetns } from './cluster/node-runner.ts';
import { isAlive, Lab, removeStaleLabs } from './lab.ts';
import { AGENT_BINARY, PLUGIN_BINARY } from './node-agent.ts';

const STATE_DIR = '/run/eni-cni-lab';
const STATUS_FILE = `${STATE_DIR}/running.json`;
const LOG_FILE = `${STATE_DIR}/lab.log`;

type Status = ReturnType<Lab['describe']> & { pid: number };

function readStatus(): Status | undefined {
  if (!existsSync(STATUS_FILE)) return undefined;
  const status = JSON.parse(readFileSync(STATUS_FILE, 'utf8')) as Status;
  return isAlive(status.pid) ? status : undefined;
}

async function up(nodes: number, agents: boolean): Promise<void> {
  if (readStatus()) throw new Error('a lab is already running; `npm run lab -- down` first');
  mkdirSync(STATE_DIR, { recursive: true });
  rmSync(STATUS_FILE, { force: true });
  const log = openSync(LOG_FILE, 'w');
  if (agents && (!existsSync(PLUGIN_BINARY) || !existsSync(AGENT_BINARY))) {
    console.log('building the plugin and the agent first');
    await build(TARGETS.filter((t) => t.name === 'eni-cni' || t.name === 'eni-agent'));
  }
  const args = ['serve', '--nodes', String(nodes), ...(agents ? [] : ['--no-agents'])];
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...args], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  child.unref();
  for (let waited = 0; waited < 60_000; waited += 100) {
    const status = readStatus();
    if (status) return printStatus(status, false);
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the lab did not come up; see ${LOG_FILE}:\n${readFileSync(LOG_FILE, 'utf8')}`);
}

/** The background process: holds the lab until told to stop. */
async function serve(nodes: number, agents: boolean): Promise<void> {
  await removeStaleLabs();
  const lab = await Lab.up(agents ? { nodes, cluster: true, agents: {} } : { nodes, agents: false });
  writeFileSync(STATUS_FILE, JSON.stringify({ ...lab.describe(), pid: process.pid }, null, 2));
  console.log(`lab ${lab.prefix} is up`);
  const stop = () => {
    void lab.down().finally(() => {
      rmSync(STATUS_FILE, { force: true });
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function printStatus(status: Status | undefined, json: boolean): void {
  if (json) return console.log(JSON.stringify(status ?? null, null, 2));
  if (!status) return console.log('no lab is running');
  console.log(`lab ${status.prefix} (pid ${status.pid})`);
  console.log(`  cloud API  ${status.api}  (SDK endpoint ${status.sdkEndpoint})`);
  console.log(`  metadata   ${status.metadata}  (from nodes: http://169.254.0.23/latest/meta-data/)`);
  console.log(`  fabric     ip netns exec ${status.fabric} …;  internet ${status.internet.namespace} (whoami ${status.internet.whoamiUrl}, UDP ${status.internet.server}:${status.internet.whoamiPort})`);
  if (status.kubeconfig) console.log(`  kubeconfig ${status.kubeconfig}  (KUBECONFIG=${status.kubeconfig} kubectl get nodes,pods -o wide)`);
  for (const node of status.nodes) {
    console.log(`  ${node.name.padEnd(8)} ${node.instanceId}  ns ${node.ns}  ${node.privateIp}  public ${node.publicIp ?? '-'}  ${node.zone}`);
    if (node.agentSocket) console.log(`           agent ${node.agentSocket}  CNI conf ${node.cniConfDir}  bin ${node.cniBinDir}`);
    if (node.criSocket) console.log(`           containerd ${node.criSocket}  (crictl --runtime-endpoint unix://${node.criSocket} pods)`);
  }
}

/** Runs `command` in the network namespace of a running pod of the lab, with the host's busybox applets. */
async function exec(target: string, command: string[]): Promise<void> {
  const status = readStatus();
  if (!status?.kubeconfig) throw new Error('no cluster lab is running; `npm run lab -- up` first');
  const [namespace, name] = target.includes('/') ? target.split('/', 2) : ['default', target];
  if (!namespace || !name || command.length === 0) throw new Error('usage: lab exec <namespace>/<pod> -- <command> [args…]');
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(status.kubeconfig);
  const pod = await kc.makeApiClient(k8s.CoreV1Api).readNamespacedPod({ namespace, name }).catch((err: Error) => {
    throw new Error(`pod ${namespace}/${name}: ${err instanceof k8s.ApiException ? `${err.code} from the API server` : err.message}`);
  });
  const node = status.nodes.find((n) => n.name === pod.spec?.nodeName);
  if (!node?.criSocket) throw new Error(`pod ${namespace}/${name} is not on a lab node (node: ${pod.spec?.nodeName ?? 'not scheduled yet'})`);
  const cri = new CriClient(node.criSocket, { timeoutMs: 5000 });
  const netns = await podNetns(cri, pod.metadata!.uid!).finally(() => cri.close());
  if (!netns) throw new Error(`pod ${namespace}/${name} has no running sandbox on ${node.name}`);
  // busybox's applet when it has one (ip, ping, wget, sh…), so the same commands work on every host.
  const applets = (await new Promise<string>((resolve) => {
    let out = '';
    const list = spawn('/bin/busybox', ['--list']);
    list.stdout.on('data', (d: Buffer) => (out += d));
    list.on('close', () => resolve(out));
    list.on('error', () => resolve(''));
  })).split('\n');
  const argv = applets.includes(command[0]!) ? ['/bin/busybox', ...command] : command;
  const child = spawn('nsenter', [`--net=${netns}`, '--', ...argv], { stdio: 'inherit' });
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  process.exitCode = code;
}

async function down(): Promise<void> {
  const status = readStatus();
  if (status) {
    process.kill(status.pid, 'SIGTERM');
    for (let waited = 0; waited < 20_000 && readStatus(); waited += 100) await new Promise((r) => setTimeout(r, 100));
  }
  const removed = await removeStaleLabs();
  rmSync(STATUS_FILE, { force: true });
  console.log(status || removed.length > 0 ? `removed lab ${[status?.prefix, ...removed].filter(Boolean).join(', ')}` : 'no lab was running');
}

const nodesOption = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 50) throw new InvalidArgumentError(`"${v}" is not a node count from 1 to 50`);
  return n;
};

const program = new Command('lab').description('Simulated VPC, nodes and pods in network namespaces, on the emulated Tencent Cloud');
program
  .command('up')
  .description('bring up a lab cluster and leave it running: an eni-cni agent, containerd and a node runner on every node')
  .option('--nodes <n>', 'how many nodes', nodesOption, 2)
  .option('--no-agents', 'bare nodes: no agents, no cluster')
  .action((o: { nodes: number; agents: boolean }) => up(o.nodes, o.agents));
program.command('status').description('what is running, per node').option('--json', 'as JSON').action((o: { json?: boolean }) => printStatus(readStatus(), Boolean(o.json)));
program
  .command('exec <pod>')
  .description("run a command in a pod's network namespace, e.g. `lab exec default/web-0 -- ip addr`")
  .argument('<command...>', 'the command and its arguments, after --')
  .action((pod: string, command: string[]) => exec(pod, command));
program.command('down').description('stop the lab and remove everything labs made').action(down);
program
  .command('serve', { hidden: true })
  .option('--nodes <n>', '', nodesOption, 2)
  .option('--no-agents')
  .action((o: { nodes: number; agents: boolean }) => serve(o.nodes, o.agents));

program.parseAsync().catch((err: unknown) => {
  console.error(`lab: ${(err as Error).message}`);
  process.exit(1);
});
