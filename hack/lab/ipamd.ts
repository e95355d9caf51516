// tke-eni-ipamd in the lab: its replicas run on the host from the built binary, with the command and
// arguments of daemonset/ipamd.yaml (the ConfigMap's values put in as the kubelet would), plus what only
// the lab knows: its API server, its cloud's address and keys, and the pod subnets.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { parseAllDocuments } from 'yaml';
import { childEnv } from './sh.ts';
import { REPO } from './node-agent.ts';

export const IPAMD_BINARY = `${REPO}dist/bin/eni-ipamd`;

interface Container {
  command: string[];
  args: string[];
  env?: Array<{ name: string; valueFrom?: { configMapKeyRef?: { key: string } } }>;
}

/** The Deployment's args with $(VAR) filled from the ConfigMap, as the kubelet does. */
export function manifestArgs(overrides: Record<string, string> = {}): string[] {
  const docs = (file: string) => parseAllDocuments(readFileSync(`${REPO}daemonset/${file}`, 'utf8')).map((d) => d.toJS() as Record<string, never>);
  const deployment = docs('ipamd.yaml').find((o) => o.kind === 'Deployment') as unknown as { spec: { template: { spec: { containers: Container[] } } } };
  const settings = (docs('configmap.yaml')[0] as unknown as { data: Record<string, string> }).data;
  const container = deployment.spec.template.spec.containers[0]!;
  const env = new Map((container.env ?? []).flatMap((e) => (e.valueFrom?.configMapKeyRef ? [[e.name, overrides[e.valueFrom.configMapKeyRef.key] ?? settings[e.valueFrom.configMapKeyRef.key] ?? '']] : [])));
  return container.args.map((a) => a.replace(/\$\(([A-Z_]+)\)/g, (_m, name: string) => env.get(name) ?? ''));
}

export interface LabIpamdOptions {
  identity: string;
  dir: string;
  kubeconfig: string;
  apiUrl: string;
  apiAddress: string;
  region: string;
  credentials: { secretId: string; secretKey: string };
  subnetIds: string[];
  /** ConfigMap keys to set otherwise (ip-min-warm-target, …) */
  settings?: Record<string, string>;
  extraArgs?: string[];
}

export class LabIpamd {
  readonly logFile: string;
  private process?: ChildProcess;
  /** stopped on purpose: not started again */
  private stopped = false;

  constructor(private readonly o: LabIpamdOptions) {
    this.logFile = `${o.dir}/ipamd-${o.identity}.log`;
    if (!existsSync(IPAMD_BINARY)) throw new Error(`build the binaries first (npm run build): ${IPAMD_BINARY} is missing`);
  }

  /** What only the lab knows: its API server, its cloud's address and keys. */
  private labArgs(): string[] {
    const keys = `${this.o.dir}/ipamd-credentials.json`;
    writeFileSync(keys, JSON.stringify(this.o.credentials), { mode: 0o600 });
    return ['--kubeconfig', this.o.kubeconfig, '--region', this.o.region, '--api-url', this.o.apiUrl, '--api-resolve', this.o.apiAddress, '--credentials-file', keys];
  }

  /** Runs the binary once as an operator would (`kubectl exec` into the Deployment), with the lab's cloud and API server; answers its output. */
  async once(args: string[]): Promise<string> {
    return (await execa(IPAMD_BINARY, [...this.labArgs(), ...args], { env: childEnv() })).stdout;
  }

  /**
   * Starts the replica; it campaigns for the Lease on its own. Like its Deployment's pod, it is started
   * again a second after it exits on its own (a replica that lost the Lease exits); not after stop().
   */
  start(): void {
    this.stopped = false;
    const args = [
      ...manifestArgs({ 'subnet-ids': this.o.subnetIds.join(','), ...this.o.settings }),
      ...this.labArgs(),
      '--leader-elect-identity', this.o.identity,
      '--health-address', '127.0.0.1:0',
      ...(this.o.extraArgs ?? []),
    ];
    const log = openSync(this.logFile, 'a');
    // setpriv's parent-death signal: a lab whose process is killed leaves no ipamd running.
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', IPAMD_BINARY, ...args], { env: childEnv(), stdio: ['ignore', log, log] });
    this.process = child;
    closeSync(log);
    child.once('exit', () => {
      if (this.stopped || this.process !== child) return;
      setTimeout(() => {
        if (!this.stopped && this.process === child) this.start();
      }, 1000).unref();
    });
  }

  get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null && this.process.signalCode === null;
  }

  /** its name in the Lease */
  get identity(): string {
    return this.o.identity;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** SIGTERM as a rollout does, or SIGKILL as a crash does. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    this.stopped = true;
    const child = this.process;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (this.running) child.kill('SIGKILL');
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }
}
