// A lab: the emulator, the VPC fabric, an internet, and nodes as network namespaces, brought up and torn
// down as one; with `cluster`, also a small Kubernetes cluster on them (API server, ipamd, an agent, a
// containerd and a node runner per node, a scheduler and a StatefulSet controller), so that YAML applied
// with kubectl runs pods through the installed plugin. Tests use it directly; `npm run lab` (main.ts)
// keeps one running for people and runtimes.
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { startApiServer, type ApiServer } from '../apiserver/server.ts';
import { Emulator } from '../emulator/emulator.ts';
import type { InstanceSpec, World } from '../emulator/world.ts';
import { defaultWorld } from '../emulator/world.ts';
import { intToIp, ipToInt } from '../../shared/ip.ts';
import { CRD_GROUP, CRD_VERSION } from '../../shared/tke.ts';
import { NEC_PLURAL } from '../../agent/k8s/nec-status.ts';
import { Fabric, fabricNames, INTERNET } from './fabric.ts';
import { NodeRunner } from './cluster/node-runner.ts';
import { Scheduler } from './cluster/scheduler.ts';
import { StatefulSetController } from './cluster/statefulsets.ts';
import type { Log } from './cluster/watch.ts';
import { LabIpamd } from './ipamd.ts';
import { NodeAgent, type AgentSettings } from './node-agent.ts';
import { freeSlot, LAB_PREFIX, RECORDS, removeLab, removeNamespace, RULE_PREF, writeRecord, type LabRecord } from './records.ts';
import { childEnv, inNs, ip, ipBatch, run } from './sh.ts';

export { isAlive, LAB_PREFIX, removeStaleLabs } from './records.ts';

const CRD_DIR = fileURLToPath(new URL('../../daemonset/crds', import.meta.url));

/** The metadata service's well-known address, reached from nodes through the fabric. */
export const METADATA_ADDRESS = '169.254.0.23';
/** The UDP port of the internet's whoami service (it also answers HTTP on port 80). */
export const WHOAMI_PORT = 7777;
/** What `wget -qO-` from a pod fetches to see the address the internet sees. */
export const WHOAMI_URL = `http://${INTERNET.server}/`;

export interface LabOptions {
  nodes?: number;
  world?: World;
  /** how long the emulator's asynchronous operations run (default: the world's) */
  taskMs?: number;
  /** run an eni-cni agent on each node (needs `npm run build` first) */
  agents?: AgentSettings | false;
  /** run a Kubernetes API server stand-in with the project's CRDs and a Node per lab node; agents use it */
  kube?: boolean;
  /**
   * a cluster: the API server, and on each node a containerd and a node runner that register the Node and
   * run the pods bound to it; a scheduler and a StatefulSet controller. Needs agents (the default ones if
   * none are given).
   */
  cluster?: boolean;
  /** more flags for tke-eni-ipamd (without the leading --), e.g. { 'enable-ownerref': 'true' } */
  ipamdFlags?: Record<string, string>;
  /** the pod subnets of some nodes' agents, by node name (default: every pod subnet of the node's zone) */
  nodeSubnets?: Record<string, string[]>;
}

export interface LabNode {
  name: string;
  instanceId: string;
  /** the node's network namespace */
  ns: string;
  privateIp: string;
  publicIp: string | undefined;
  zone: string;
  agent?: NodeAgent | undefined;
  /** kubelet's part, in a cluster lab */
  runner?: NodeRunner | undefined;
}

export class Lab {
  readonly nodes: LabNode[] = [];
  private readonly pods = new Set<string>();
  private whoami?: ChildProcess;
  /** the Kubernetes API stand-in, when the lab has one */
  apiserver?: ApiServer;
  /** tke-eni-ipamd's replicas, when the lab has an API server and agents */
  readonly ipamds: LabIpamd[] = [];
  private controllers: Array<Scheduler | StatefulSetController> = [];
  private ipamdFlags: Record<string, string> = {};
  private nodeSubnets: Record<string, string[]> = {};

  private constructor(
    readonly prefix: string,
    readonly emulator: Emulator,
    readonly fabric: Fabric,
    private readonly record: LabRecord,
  ) {}

  /** Brings up a lab; on any failure, removes whatever it had made. */
  static async up(options: LabOptions = {}): Promise<Lab> {
    const world = structuredClone(options.world ?? defaultWorld());
    if (options.taskMs !== undefined) world.latencies.taskMs = options.taskMs;
    const nodeCount = options.nodes ?? 2;
    const slot = await freeSlot();
    const prefix = `${LAB_PREFIX}-${slot.toString(16).padStart(4, '0')}`;
    const base = ipToInt('100.127.0.0') + slot * 4;
    const record: LabRecord = { prefix, pid: process.pid, hostLink: `${prefix}h`, hostAddress: intToIp(base + 1), table: 100000 + slot };
    writeRecord(record);
    let emulator: Emulator | undefined;
    let lab: Lab | undefined;
    try {
      const names = fabricNames(prefix);
      await cloudLink(record, names.vpc, world.vpc.cidr, intToIp(base + 2));
      emulator = await Emulator.start({ world, host: record.hostAddress, port: 0, metadataPort: 0 });
      addInstances(emulator, nodeCount);
      const fabric = new Fabric(names, emulator.model);
      lab = new Lab(prefix, emulator, fabric, record);
      await fabric.create();
      await ipBatch(names.vpc, [`link set cloud0 up`, `address add ${intToIp(base + 2)}/30 dev cloud0`]);
      const { port: mdPort } = new URL(emulator.metadataUrl);
      await inNs(names.vpc, 'iptables', ['-w', '-t', 'nat', '-A', 'PREROUTING', '-d', `${METADATA_ADDRESS}/32`, '-p', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', `${record.hostAddress}:${mdPort}`]);
      emulator.onEvent((event) => fabric.follow(event));
      for (const instance of [...emulator.model.instances.values()].slice(0, nodeCount)) {
        const ns = await fabric.addNode(instance.spec.id);
        lab.nodes.push({
          name: instance.spec.name || instance.spec.id,
          instanceId: instance.spec.id,
          ns,
          privateIp: instance.spec.privateIp,
          publicIp: instance.spec.publicIp,
          zone: instance.spec.zone,
        });
      }
      await lab.startWhoami();
      if (options.kube || options.cluster) await lab.startKube(!options.cluster);
      lab.ipamdFlags = options.ipamdFlags ?? {};
      lab.nodeSubnets = options.nodeSubnets ?? {};
      if (options.cluster) await lab.startCluster(options.agents || {});
      else if (options.agents) await lab.startAgents(options.agents);
      return lab;
    } catch (err) {
      if (lab) await lab.down();
      else {
        await emulator?.close();
        await removeLab(record);
      }
      throw err;
    }
  }

  /** Creates an empty pod network namespace (the plugin will plumb it). */
  async addPod(name: string): Promise<string> {
    const ns = `${this.prefix}-pod-${name}`;
    await ip(undefined, 'netns', 'add', ns);
    await ip(ns, 'link', 'set', 'lo', 'up');
    this.pods.add(ns);
    return ns;
  }

  async removePod(ns: string): Promise<void> {
    this.pods.delete(ns);
    await removeNamespace(ns);
  }

  /** Waits until the fabric has followed every change the cloud has made so far. */
  settled(): Promise<void> {
    return this.fabric.settled();
  }

  /** What a person or a runtime needs to use the lab. */
  describe() {
    return {
      prefix: this.prefix,
      api: this.emulator.apiUrl,
      sdkEndpoint: `vpc.tencentcloudapi.com:${this.emulator.apiAddress.port}`,
      metadata: this.emulator.metadataUrl,
      fabric: this.fabric.names.vpc,
      internet: { namespace: this.fabric.names.inet, server: INTERNET.server, whoamiPort: WHOAMI_PORT, whoamiUrl: WHOAMI_URL },
      ...(this.apiserver ? { kubeconfig: this.kubeconfigFile('admin') } : {}),
      ...(this.controllers.length ? { clusterLog: this.clusterLog } : {}),
      nodes: this.nodes.map(({ agent, runner, ...node }) => ({
        ...node,
        ...(agent ? { agentSocket: agent.socket, cniConfDir: agent.confDir, cniBinDir: agent.binDir, agentLog: agent.logFile } : {}),
        ...(runner ? { criSocket: runner.containerd.socket, containerdLog: runner.containerd.logFile } : {}),
      })),
    };
  }

  /** Where the node runners, the scheduler and the StatefulSet controller log. */
  get clusterLog(): string {
    return `${RECORDS}/${this.prefix}/cluster.log`;
  }

  /** The network namespace path of a running pod's sandbox (cluster labs), to look from inside the pod. */
  async podNetns(namespace: string, name: string): Promise<string> {
    const { core } = kubeClients(this.kubeconfigFile('admin'));
    const pod = await core.readNamespacedPod({ namespace, name });
    const runner = this.nodes.find((n) => n.name === pod.spec?.nodeName)?.runner;
    if (!runner) throw new Error(`pod ${namespace}/${name} is not running on a lab node (node: ${pod.spec?.nodeName ?? 'none yet'})`);
    const netns = await runner.netnsOf(pod.metadata!.uid!);
    if (!netns) throw new Error(`pod ${namespace}/${name} has no running sandbox on ${runner.name}`);
    return netns;
  }

  /** A kubeconfig for the lab's API server, written for `who` (a node name, or "admin"). */
  kubeconfigFile(who: string): string {
    return `${RECORDS}/${this.prefix}/kubeconfig-${who}`;
  }

  /** The API server and the project's CRDs; Nodes too unless node runners will register them. */
  private async startKube(withNodes: boolean): Promise<void> {
    // On the lab's host address, so that agents in the nodes reach it through the fabric.
    this.apiserver = await startApiServer({ host: this.record.hostAddress, port: 0 });
    mkdirSync(`${RECORDS}/${this.prefix}`, { recursive: true });
    await this.apiserver.writeKubeconfig(this.kubeconfigFile('admin'));
    const { ext, core } = kubeClients(this.kubeconfigFile('admin'));
    for (const file of readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml'))) {
      await ext.createCustomResourceDefinition({ body: parseYaml(readFileSync(`${CRD_DIR}/${file}`, 'utf8')) });
    }
    for (const node of withNodes ? this.nodes : []) {
      const type = this.emulator.model.instance(node.instanceId).spec.type;
      await core.createNode({
        body: {
          // The labels a cloud's kubelet sets: ipamd asks an instance type's quota once.
          metadata: { name: node.name, labels: { 'kubernetes.io/hostname': node.name, 'topology.kubernetes.io/zone': node.zone, 'node.kubernetes.io/instance-type': type } },
          spec: { providerID: `qcloud:///${node.zone}/${node.instanceId}` },
        },
      });
    }
  }

  /** The subnets of the lab's nodes' zones that no node lives in: where pod ENIs come from. */
  private podSubnets(zone?: string): string[] {
    const nodeSubnets = new Set([...this.emulator.model.instances.values()].map((i) => i.spec.subnetId));
    const zones = new Set(this.nodes.map((n) => n.zone));
    return [...this.emulator.model.subnets.values()].filter((s) => (zone ? s.spec.zone === zone : zones.has(s.spec.zone)) && !nodeSubnets.has(s.spec.id)).map((s) => s.spec.id);
  }

  /**
   * Starts tke-eni-ipamd's two replicas as daemonset/ipamd.yaml runs them, with the agents' warm targets
   * as its defaults for the nodes, and waits until one leads.
   */
  async startIpamd(settings: AgentSettings = {}): Promise<void> {
    const { port } = this.emulator.apiAddress;
    for (const identity of ['tke-eni-ipamd-0', 'tke-eni-ipamd-1']) {
      const replica = new LabIpamd({
        identity,
        dir: `${RECORDS}/${this.prefix}`,
        kubeconfig: this.kubeconfigFile('admin'),
        apiUrl: `http://tencentcloudapi.com:${port}`,
        apiAddress: this.record.hostAddress,
        region: this.emulator.world.region,
        credentials: this.emulator.world.credentials[0]!,
        subnetIds: this.podSubnets(),
        settings: { 'ip-min-warm-target': String(settings.minWarm ?? 5), 'ip-max-warm-target': String(settings.maxWarm ?? 5), 'log-level': settings.logLevel ?? 'info' },
        extraArgs: Object.entries(this.ipamdFlags).map(([flag, value]) => `--${flag}=${value}`),
      });
      replica.start();
      this.ipamds.push(replica);
    }
    const { coordination } = kubeClients(this.kubeconfigFile('admin'));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const lease = await coordination.readNamespacedLease({ name: 'tke-eni-ipamd', namespace: 'kube-system' }).catch(() => undefined);
      if (lease?.spec?.holderIdentity) return;
      const dead = this.ipamds.find((r) => !r.running);
      if (dead || Date.now() > deadline) throw new Error(`tke-eni-ipamd did not start leading within 30 s:\n${this.ipamds.map((r) => r.log().slice(-1500)).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async startAgents(settings: AgentSettings): Promise<void> {
    this.makeAgents(settings);
    if (this.apiserver) await this.startIpamd(settings);
    await Promise.all(this.nodes.map((n) => n.agent!.start()));
  }

  /**
   * A cluster: each node's agent laid out (its plugin and conflist, where containerd reads them), the node
   * runners register their Nodes, ipamd joins them, the agents start, then the scheduler and controller.
   */
  private async startCluster(settings: AgentSettings): Promise<void> {
    this.makeAgents(settings);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(this.kubeconfigFile('admin'));
    const log = this.logTo(this.clusterLog);
    for (const node of this.nodes) {
      const spec = this.emulator.model.instance(node.instanceId).spec;
      node.runner = await NodeRunner.start({
        kc,
        node: { ...node, instanceType: spec.type, cpu: spec.cpu, memoryGb: spec.memoryGb },
        cniBinDir: node.agent!.binDir,
        cniConfDir: node.agent!.confDir,
        log: (level, message) => log(level, `node-runner ${node.name}: ${message}`),
      });
    }
    // Nodes given their own subnets get them as an operator gives them: a NodeENIConfig made before ipamd
    // makes its own (ipamd keeps the subnets a NEC already names).
    const { custom } = kubeClients(this.kubeconfigFile('admin'));
    for (const node of this.nodes.filter((n) => this.nodeSubnets[n.name])) {
      await custom.createClusterCustomObject({ group: CRD_GROUP, version: CRD_VERSION, plural: NEC_PLURAL, body: { apiVersion: `${CRD_GROUP}/${CRD_VERSION}`, kind: 'NodeENIConfig', metadata: { name: node.name }, spec: { instanceId: node.instanceId, zone: node.zone, subnetIds: this.nodeSubnets[node.name] } } });
    }
    await this.startIpamd(settings);
    await Promise.all(this.nodes.map((n) => n.agent!.start()));
    for (const controller of [new Scheduler(kc, log), new StatefulSetController(kc, log)]) {
      await controller.start();
      this.controllers.push(controller);
    }
  }

  private logTo(file: string): Log {
    mkdirSync(`${RECORDS}/${this.prefix}`, { recursive: true });
    return (level, message) => appendFileSync(file, `${new Date().toISOString()} ${level} ${message}\n`);
  }

  private makeAgents(settings: AgentSettings): void {
    const { port } = this.emulator.apiAddress;
    for (const node of this.nodes) {
      const podSubnets = this.nodeSubnets[node.name] ?? this.podSubnets(node.zone);
      node.agent = new NodeAgent({
        ns: node.ns,
        dir: `${RECORDS}/${this.prefix}/${node.name}`,
        apiPort: port,
        apiAddress: this.record.hostAddress,
        subnetIds: podSubnets,
        settings,
        ...(this.apiserver ? { kubeconfig: this.kubeconfigFile('admin'), nodeName: node.name } : {}),
      });
    }
  }

  async down(): Promise<void> {
    await Promise.all(this.controllers.map((c) => c.stop().catch(() => undefined)));
    // The runners first: containerd's stop removes each sandbox, whose CNI DEL the agent still answers.
    const stopped = await Promise.allSettled(this.nodes.map((n) => n.runner?.stop()));
    await Promise.all(this.nodes.map((n) => n.agent?.stop('SIGKILL')));
    await Promise.all(this.ipamds.map((r) => r.stop('SIGKILL')));
    await this.apiserver?.close();
    this.whoami?.kill('SIGKILL');
    await this.fabric.destroy().catch(() => undefined);
    await this.emulator.close();
    await removeLab(this.record);
    const failed = stopped.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw new Error(`lab ${this.prefix}: a node's containerd did not stop cleanly: ${(failed.reason as Error).message}`);
  }

  private async startWhoami(): Promise<void> {
    const script = fileURLToPath(new URL('./whoami.mjs', import.meta.url));
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'ip', 'netns', 'exec', this.fabric.names.inet, process.execPath, script, INTERNET.server, String(WHOAMI_PORT)], {
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.whoami = child;
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the internet's whoami service exited with ${code}`)));
    });
  }
}

/** Asks the internet's whoami service, from inside `ns`, which source address it sees. */
export async function whoamiFrom(ns: string, timeoutMs = 2000): Promise<string> {
  const script = fileURLToPath(new URL('./probe.mjs', import.meta.url));
  return (await inNs(ns, process.execPath, [script, INTERNET.server, String(WHOAMI_PORT), String(timeoutMs)])).trim();
}

/**
 * True when `ns` gets an answer to any of three pings of `address` (0.2 s apart, a second for the last):
 * a link that has just come up may lose the first.
 */
export async function pings(ns: string, address: string, options: { from?: string } = {}): Promise<boolean> {
  const args = ['-c', '3', '-i', '0.2', '-W', '1', ...(options.from ? ['-I', options.from] : []), address];
  const out = await run('ip', ['netns', 'exec', ns, 'ping', ...args], { allowFailure: true });
  return /\b[1-9]\d* received/.test(out);
}

function addInstances(emulator: Emulator, count: number): void {
  const existing = [...emulator.model.instances.values()];
  const template = existing[0]?.spec;
  if (!template) throw new Error('the lab needs a world with at least one instance to copy nodes from');
  for (let i = existing.length; i < count; i++) {
    const n = i + 1;
    const spec: InstanceSpec = {
      ...template,
      id: `ins-lab${String(n).padStart(5, '0')}`,
      name: `node-${n}`,
      privateIp: intToIp(ipToInt(template.privateIp) - (ipToInt(template.privateIp) % 256) + 100 + n),
      publicIp: template.publicIp ? intToIp(ipToInt(template.publicIp) - (ipToInt(template.publicIp) % 256) + 100 + n) : undefined,
      mac: undefined,
    };
    emulator.addInstance(spec);
  }
}

/** The link between the host (where the emulator listens) and the fabric, and the rule that routes replies. */
async function cloudLink(record: LabRecord, vpcNs: string, vpcCidr: string, vpcSide: string): Promise<void> {
  await ip(undefined, 'netns', 'add', vpcNs);
  await ipBatch(undefined, [
    `link add ${record.hostLink} type veth peer name cloud0 netns ${vpcNs}`,
    `address add ${record.hostAddress}/30 dev ${record.hostLink}`,
    `link set ${record.hostLink} up`,
    // Only what the emulator sends from the lab's own address goes back into the VPC.
    `rule add from ${record.hostAddress}/32 lookup ${record.table} pref ${RULE_PREF}`,
    `route add ${vpcCidr} via ${vpcSide} dev ${record.hostLink} table ${record.table}`,
  ]);
}

/** Clients for the lab's API server, as an administrator. */
export function kubeClients(kubeconfig: string) {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  return {
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
    ext: kc.makeApiClient(k8s.ApiextensionsV1Api),
    coordination: kc.makeApiClient(k8s.CoordinationV1Api),
  };
}
