// The agent's configuration: read once from flags (and the files they name), checked, frozen.
// Nothing else in the agent reads process.env or argv.
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_AGENT_SOCKET } from '../shared/protocol.ts';
import { DEFAULT_METADATA_URL } from './cloud/metadata.ts';
import { parseGoDuration } from './go-duration.ts';
import { readCredentials } from './cloud/credentials.ts';

export interface AgentConfig {
  socket: string;
  stateDir: string;
  metadataUrl: string;
  apiUrl: string;
  apiResolve?: string | undefined;
  credentials?: { secretId: string; secretKey: string } | undefined;
  subnetIds: string[];
  securityGroupIds: string[];
  ipMinWarmTarget: number;
  ipMaxWarmTarget: number;
  addWaitMs: number;
  gcIntervalMs: number;
  /** whether the periodic check mends a pod's host side that drifted (a rule or route deleted behind its back) */
  mendDatapath: boolean;
  gcGraceMs: number;
  cooldownMs: number;
  quickRelease: boolean;
  /** serve whole-ENI (tke-direct-eni) pods, keeping spare whole ENIs attached (with tke-eni-ipamd only) */
  directEni: boolean;
  releasePeriodMs: number;
  poolCheckIntervalMs: number;
  poolResyncIntervalMs: number;
  masqConfig: string;
  /** the conflist to install into the node's CNI config dir once the agent serves its socket (both, or neither) */
  cniConf?: { source: string; dir: string } | undefined;
  healthHost: string;
  healthPort: number;
  /** the Kubernetes API: a kubeconfig file, or the in-cluster service account; neither runs standalone */
  kubeconfig?: string | undefined;
  inCluster: boolean;
  /** call the cloud from the agent even with an API server (the design without tke-eni-ipamd) */
  standalone: boolean;
  nodeName?: string | undefined;
  kubeApiQps: number;
  kubeApiBurst: number;
  logLevel: string;
}

const count = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number ≥ 0, not "${v}"`);
  return n;
};
/** Go-style switches: `--flag`, `--flag=true`, `--flag=false`, so a ConfigMap can turn one off. */
const bool = (name: string) => (v: string) => {
  if (/^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  throw new InvalidArgumentError(`${name} takes true or false, not "${v}"`);
};
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
/** Go-style durations, as TKE's flags are written: 500ms, 30s, 2m, 1h, 1m30s. */
const duration = (name: string) => (v: string) => {
  const ms = parseGoDuration(v);
  if (ms === undefined) throw new InvalidArgumentError(`${name} must be a duration such as 500ms, 30s, 2m or 1h, not "${v}"`);
  return ms;
};

/**
 * Flags TKE's documentation puts on the cluster half (`kubectl edit deploy tke-eni-ipamd -n kube-system`).
 * Put on the node agent by mistake, they are refused with a message naming the right component, not with
 * commander's bare "unknown option".
 */
const IPAMD_FLAGS = ['eni-min-warm-target', 'eni-max-warm-target', 'claim-expired-duration', 'enable-ownerref'];

export function agentCommand(run: (config: AgentConfig) => Promise<void>): Command {
  const command = new Command('eni-agent');
  for (const flag of IPAMD_FLAGS) command.addOption(new Option(`--${flag} [value]`).hideHelp());
  return command
    .description('eni-cni node agent: keeps the node\'s pool of ENI addresses and plumbs pods for the eni-cni plugin')
    .option('--socket <path>', 'unix socket the plugin talks to', DEFAULT_AGENT_SOCKET)
    .option('--state-dir <dir>', 'where the checkpoint of allocations lives (survives agent restarts)', '/run/eni-cni')
    .option('--metadata-url <url>', 'CVM metadata service', DEFAULT_METADATA_URL)
    .option('--api-url <url>', 'Tencent Cloud API domain (the service name is prefixed)', 'https://tencentcloudapi.com')
    .option('--api-resolve <address>', 'connect to this address for every API name (local clouds)')
    .option('--credentials-file <file>', 'JSON {"secretId", "secretKey"}; without it the CVM role\'s temporary keys are used')
    .option('--subnet-ids <ids>', 'pod subnets, comma-separated (default: the node\'s own subnet)', list, [])
    .option('--security-group-ids <ids>', 'security groups of new ENIs (default: those of the node\'s primary ENI)', list, [])
    .option('--ip-min-warm-target <n>', 'standalone: free addresses kept ready at least (in a cluster, tke-eni-ipamd\'s)', count('--ip-min-warm-target'), 5)
    .option('--ip-max-warm-target <n>', 'standalone: free addresses kept at most (in a cluster, tke-eni-ipamd\'s)', count('--ip-max-warm-target'), 5)
    .option('--add-wait <duration>', 'how long an ADD waits for a free address', duration('--add-wait'), 30_000)
    .option('--mend-datapath [bool]', "mend a pod's host rules and route at each gc interval when they drifted from the plan", bool('--mend-datapath'), true)
    .option('--gc-interval <duration>', 'how often addresses no pod holds are looked for', duration('--gc-interval'), 60_000)
    .option('--gc-grace <duration>', 'allocations younger than this are never cleaned up', duration('--gc-grace'), 30_000)
    .option('--ip-cooldown <duration>', 'how long an address freed by DEL rests before it is given out again', duration('--ip-cooldown'), 5_000)
    .option('--enable-direct-eni [bool]', 'serve whole-ENI (tke-direct-eni) pods: keep spare whole ENIs attached, between pods + min and pods + max (with tke-eni-ipamd only)', bool('--enable-direct-eni'), false)
    .option('--enable-quick-release [bool]', 'give back all the excess each release period instead of one address', bool('--enable-quick-release'), false)
    .option('--release-period <duration>', 'how often excess addresses are given back', duration('--release-period'), 120_000)
    .option('--pool-check-interval <duration>', 'how often the pool is looked at unasked', duration('--pool-check-interval'), 10_000)
    .option('--pool-resync-interval <duration>', 'how often the pool is compared with the cloud (also after any change that failed)', duration('--pool-resync-interval'), 60_000)
    .option('--masq-config <file>', 'ip-masq-agent config file (re-read when it changes)', '/etc/config/ip-masq-agent')
    .option('--cni-conf-source <file>', 'a CNI network configuration (conflist) to install once the agent serves pods (with --cni-conf-dir)')
    .option('--cni-conf-dir <dir>', 'the node\'s CNI network configuration directory, where the runtime reads --cni-conf-source once installed')
    .option('--kubeconfig <file>', 'the Kubernetes API to use; without it (and outside a cluster) the agent runs standalone')
    .option('--standalone', 'call the cloud from this agent, with its own credentials, even in a cluster (no tke-eni-ipamd)', false)
    .option('--node-name <name>', 'this node in Kubernetes (default: $NODE_NAME)', process.env.NODE_NAME)
    .option('--kube-api-qps <n>', 'requests per second to the Kubernetes API, sustained', count('--kube-api-qps'), 20)
    .option('--kube-api-burst <n>', 'requests to the Kubernetes API in a burst', count('--kube-api-burst'), 40)
    .option('--health-address <host:port>', 'where /healthz, /readyz and /status answer', '127.0.0.1:61678')
    .addOption(new Option('--log-level <level>', 'log level').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const config = toConfig(o, (key) => cmd.getOptionValueSource(key) === 'cli');
      await run(config);
    });
}

/** In a cluster the warm targets are tke-eni-ipamd's (its defaults on each new node's NEC); standalone, the agent's. */
const CLUSTER_IPAMD_FLAGS = { ipMinWarmTarget: '--ip-min-warm-target', ipMaxWarmTarget: '--ip-max-warm-target' };

function toConfig(o: Record<string, unknown>, given: (key: string) => boolean): AgentConfig {
  const misplaced = IPAMD_FLAGS.filter((flag) => o[flag.replace(/-(\w)/g, (_, c: string) => c.toUpperCase())] !== undefined);
  if (misplaced.length > 0) {
    const names = misplaced.map((f) => `--${f}`).join(', ');
    throw new InvalidArgumentError(`${names}: a flag of tke-eni-ipamd (kubectl edit deploy tke-eni-ipamd -n kube-system), not of the node agent tke-eni-agent`);
  }
  // In a cluster tke-eni-ipamd is the only holder of cloud keys: an agent given some would hold them for nothing.
  const inCluster = !o.kubeconfig && Boolean(process.env.KUBERNETES_SERVICE_HOST);
  const cluster = Boolean(o.kubeconfig || inCluster) && !o.standalone;
  const ipamds = Object.entries(CLUSTER_IPAMD_FLAGS).filter(([key]) => given(key)).map(([, flag]) => flag);
  if (cluster && ipamds.length > 0) {
    throw new InvalidArgumentError(`${ipamds.join(', ')}: in a cluster a flag of tke-eni-ipamd (kubectl edit deploy tke-eni-ipamd -n kube-system; it sets each new node's NEC), not of the node agent tke-eni-agent; a NEC's annotations change one node`);
  }
  if (o.credentialsFile && cluster) {
    throw new InvalidArgumentError('--credentials-file: in a cluster the cloud keys belong to tke-eni-ipamd alone (the agent works through its NodeENIConfig); add --standalone for an agent that calls the cloud itself');
  }
  const health = /^(.+):(\d{1,5})$/.exec(o.healthAddress as string);
  if (!health) throw new InvalidArgumentError(`--health-address "${String(o.healthAddress)}" is not HOST:PORT`);
  const min = o.ipMinWarmTarget as number;
  const max = o.ipMaxWarmTarget as number;
  if (min > max) throw new InvalidArgumentError(`--ip-min-warm-target (${min}) is above --ip-max-warm-target (${max})`);
  // An ADD may wait for a cooling address (the pool counts them as soon free): it must come back in time.
  if ((o.ipCooldown as number) >= (o.addWait as number)) {
    throw new InvalidArgumentError(`--ip-cooldown (${String(o.ipCooldown)} ms) must be shorter than --add-wait (${String(o.addWait)} ms)`);
  }
  if (Boolean(o.cniConfSource) !== Boolean(o.cniConfDir)) {
    throw new InvalidArgumentError('--cni-conf-source and --cni-conf-dir go together: the conflist to install, and where the runtime reads it');
  }
  return Object.freeze({
    socket: o.socket as string,
    stateDir: o.stateDir as string,
    metadataUrl: o.metadataUrl as string,
    apiUrl: o.apiUrl as string,
    apiResolve: o.apiResolve as string | undefined,
    credentials: o.credentialsFile ? readCredentials(o.credentialsFile as string) : undefined,
    subnetIds: o.subnetIds as string[],
    securityGroupIds: o.securityGroupIds as string[],
    ipMinWarmTarget: min,
    ipMaxWarmTarget: max,
    addWaitMs: o.addWait as number,
    gcIntervalMs: o.gcInterval as number,
    mendDatapath: o.mendDatapath as boolean,
    gcGraceMs: o.gcGrace as number,
    cooldownMs: o.ipCooldown as number,
    quickRelease: o.enableQuickRelease as boolean,
    directEni: o.enableDirectEni as boolean,
    releasePeriodMs: o.releasePeriod as number,
    poolCheckIntervalMs: o.poolCheckInterval as number,
    poolResyncIntervalMs: o.poolResyncInterval as number,
    masqConfig: o.masqConfig as string,
    cniConf: o.cniConfSource ? { source: o.cniConfSource as string, dir: o.cniConfDir as string } : undefined,
    healthHost: health[1]!,
    healthPort: Number(health[2]),
    kubeconfig: o.kubeconfig as string | undefined,
    // Inside a pod, Kubernetes tells every container where its API server is.
    inCluster,
    standalone: o.standalone as boolean,
    nodeName: o.nodeName as string | undefined,
    kubeApiQps: Math.max(1, o.kubeApiQps as number),
    kubeApiBurst: Math.max(1, o.kubeApiBurst as number),
    logLevel: o.logLevel as string,
  });
}
