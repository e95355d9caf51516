// The eni-cni agent of one lab node: started inside the node's namespace from the built binary, talking
// to the lab's cloud through the fabric (metadata at its well-known address, keys from the node's role),
// with the plugin's network config and bin dir laid out as a runtime expects them.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { childEnv } from './sh.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const PLUGIN_BINARY = `${REPO}dist/bin/eni-cni`;
export const AGENT_BINARY = `${REPO}dist/bin/eni-agent`;

export interface AgentSettings {
  minWarm?: number;
  maxWarm?: number;
  gcInterval?: string;
  gcGrace?: string;
  addWait?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  cooldown?: string;
  quickRelease?: boolean;
  /** leave drifted host rules and routes alone (--mend-datapath=false), for tests that break them on purpose */
  noMend?: boolean;
  /** serve whole-ENI pods (--enable-direct-eni) */
  directEni?: boolean;
  releasePeriod?: string;
  poolCheckInterval?: string;
  poolResyncInterval?: string;
}

export interface NodeAgentOptions {
  ns: string;
  /** the node's own directory for sockets, state, config and logs */
  dir: string;
  apiPort: number;
  apiAddress: string;
  subnetIds: string[];
  settings: AgentSettings;
  /** the lab's Kubernetes API, when it has one */
  kubeconfig?: string;
  nodeName?: string;
}

export class NodeAgent {
  readonly socket: string;
  readonly confDir: string;
  readonly binDir: string;
  readonly logFile: string;
  readonly masqConfig: string;
  private process?: ChildProcess;

  constructor(private readonly o: NodeAgentOptions) {
    this.socket = `${o.dir}/run/agent.sock`;
    this.confDir = `${o.dir}/net.d`;
    this.binDir = `${o.dir}/bin`;
    this.logFile = `${o.dir}/agent.log`;
    this.masqConfig = `${o.dir}/ip-masq-agent`;
    for (const dir of [this.confDir, this.binDir, `${o.dir}/run`]) mkdirSync(dir, { recursive: true });
    if (!existsSync(PLUGIN_BINARY) || !existsSync(AGENT_BINARY)) throw new Error(`build the binaries first (npm run build): ${PLUGIN_BINARY} or ${AGENT_BINARY} is missing`);
    copyFileSync(PLUGIN_BINARY, `${this.binDir}/eni-cni`);
    for (const plugin of ['loopback', 'portmap', 'bandwidth']) {
      if (existsSync(`/usr/lib/cni/${plugin}`)) copyFileSync(`/usr/lib/cni/${plugin}`, `${this.binDir}/${plugin}`);
    }
    writeFileSync(`${this.confDir}/10-eni-cni.conflist`, JSON.stringify(this.conflist(), null, 2));
  }

  /**
   * The network config a runtime reads: our plugin first, as TKE's is. Runtimes that know CNI 1.1 pick the
   * highest of `cniVersions`; older ones (containerd 1.6) read `cniVersion`, which must be one they know.
   */
  conflist() {
    // portmap and bandwidth chained after ours, as the DaemonSet installs it: they read our result.
    const chained = [
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'bandwidth', capabilities: { bandwidth: true } },
    ].filter((p) => existsSync(`${this.binDir}/${p.type}`));
    return { cniVersion: '1.0.0', cniVersions: ['1.0.0', '1.1.0'], name: 'eni-cni', plugins: [{ type: 'eni-cni', agentSocket: this.socket }, ...chained] };
  }

  netConf(cniVersion = '1.1.0') {
    return { cniVersion, name: 'eni-cni', type: 'eni-cni', agentSocket: this.socket };
  }

  /** Starts the agent and waits until it answers STATUS as ready. */
  async start(): Promise<void> {
    const s = this.o.settings;
    const args = [
      'netns', 'exec', this.o.ns, AGENT_BINARY,
      '--socket', this.socket,
      '--state-dir', `${this.o.dir}/state`,
      '--metadata-url', 'http://169.254.0.23/latest/meta-data',
      '--api-url', `http://tencentcloudapi.com:${this.o.apiPort}`,
      '--api-resolve', this.o.apiAddress,
      '--masq-config', this.masqConfig,
      // In a cluster the subnets and warm targets are ipamd's (each node's NEC); standalone, the agent's.
      ...(this.o.kubeconfig ? [] : ['--subnet-ids', this.o.subnetIds.join(','), '--ip-min-warm-target', String(s.minWarm ?? 5), '--ip-max-warm-target', String(s.maxWarm ?? 5)]),
      '--gc-interval', s.gcInterval ?? '60s',
      '--gc-grace', s.gcGrace ?? '30s',
      '--add-wait', s.addWait ?? '30s',
      '--log-level', s.logLevel ?? 'info',
      '--ip-cooldown', s.cooldown ?? '5s',
      ...(s.quickRelease ? ['--enable-quick-release'] : []),
      ...(s.directEni ? ['--enable-direct-eni'] : []),
      ...(s.noMend ? ['--mend-datapath=false'] : []),
      ...(s.releasePeriod ? ['--release-period', s.releasePeriod] : []),
      ...(s.poolCheckInterval ? ['--pool-check-interval', s.poolCheckInterval] : []),
      ...(s.poolResyncInterval ? ['--pool-resync-interval', s.poolResyncInterval] : []),
      ...(this.o.kubeconfig ? ['--kubeconfig', this.o.kubeconfig, '--node-name', this.o.nodeName ?? ''] : []),
    ];
    const log = openSync(this.logFile, 'a');
    // setpriv's parent-death signal: a lab whose process is killed leaves no agent running.
    this.process = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'ip', ...args], { env: childEnv(), stdio: ['ignore', log, log] });
    closeSync(log);
    const started = Date.now();
    while (Date.now() - started < 45_000) {
      if (this.process.exitCode !== null) throw new Error(`the agent of ${this.o.ns} exited with ${this.process.exitCode}:\n${this.log().slice(-2000)}`);
      const status = await this.cni('STATUS', {});
      if (status.code === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the agent of ${this.o.ns} did not become ready within 45 s:\n${this.log().slice(-2000)}`);
  }

  /** Stops the agent: SIGTERM as a DaemonSet rollout does, or SIGKILL as a crash does. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    // `ip netns exec` replaces itself with the agent, so the pid is the agent's.
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** What the agent's checkpoint says is allocated: its view of which pod holds which address. */
  allocations(): Array<{ containerId: string; ifName: string; address: string; hostIf: string; pod?: { namespace: string; name: string }; reserved?: boolean; direct?: { mac: string } }> {
    const file = `${this.o.dir}/state/checkpoint.json`;
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { allocations: [] }).allocations : [];
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** Runs the plugin in the node's namespace as a runtime does: CNI_* variables and the config on stdin. */
  async cni(
    command: 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION',
    env: { containerId?: string; netns?: string; ifName?: string; args?: string },
    conf: object = this.netConf(),
  ): Promise<{ code: number; result: Record<string, unknown> | undefined; stdout: string }> {
    const r = await execa('ip', ['netns', 'exec', this.o.ns, `${this.binDir}/eni-cni`], {
      input: JSON.stringify(conf),
      reject: false,
      extendEnv: false,
      env: {
        PATH: process.env.PATH,
        CNI_COMMAND: command,
        CNI_PATH: this.binDir,
        ...(env.containerId ? { CNI_CONTAINERID: env.containerId } : {}),
        ...(env.netns !== undefined ? { CNI_NETNS: env.netns } : {}),
        ...(env.ifName ? { CNI_IFNAME: env.ifName } : {}),
        ...(env.args ? { CNI_ARGS: env.args } : {}),
      },
    });
    let result: Record<string, unknown> | undefined;
    try {
      result = r.stdout ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined;
    } catch {
      result = undefined;
    }
    return { code: r.exitCode ?? -1, result, stdout: r.stdout };
  }
}
