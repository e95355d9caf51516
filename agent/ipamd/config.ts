// tke-eni-ipamd's configuration: read once from flags (and the files they name), checked, frozen. The flags
// TKE's documentation puts on this component (seeds 001, 002, 004: `kubectl edit deploy tke-eni-ipamd`)
// keep their names and forms; flags of the node agent given here are refused, naming tke-eni-agent.
import { hostname } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { DEFAULT_METADATA_URL } from '../cloud/metadata.ts';
import { parseGoDuration } from '../go-duration.ts';
import { readCredentials } from '../cloud/credentials.ts';

const count = z.coerce.number().int().min(0);
/** A Go duration; empty (a ConfigMap key left blank) is 0. */
const duration = z.string().transform((v, ctx) => {
  const ms = v === '' ? 0 : parseGoDuration(v);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `must be a duration such as 500ms, 30s, 2m or 1h, not "${v}"` });
    return z.NEVER;
  }
  return ms;
});
/** Go-style switches: `--flag`, `--flag=true`, `--flag=false`. */
const bool = z.union([z.boolean(), z.string().regex(/^(true|false|1|0|yes|no)$/i, 'takes true or false')]).transform((v) => (typeof v === 'boolean' ? v : /^(true|1|yes)$/i.test(v)));
const list = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));
const hostPort = z.string().regex(/^.+:\d{1,5}$/, 'must be HOST:PORT');

const Flags = z
  .object({
    kubeconfig: z.string().optional(),
    kubeApiQps: count.pipe(z.number().min(1)),
    kubeApiBurst: count.pipe(z.number().min(1)),
    metadataUrl: z.string(),
    region: z.string().optional(),
    apiUrl: z.string(),
    apiResolve: z.string().optional(),
    credentialsFile: z.string().optional(),
    cloudQps: count.pipe(z.number().min(1)),
    subnetIds: list,
    securityGroupIds: list,
    ipMinWarmTarget: count,
    ipMaxWarmTarget: count,
    eniMinWarmTarget: count,
    eniMaxWarmTarget: count,
    claimExpiredDuration: duration,
    claimExpiryFloor: duration,
    enableOwnerref: bool,
    clusterId: z.string(),
    releaseClusterEips: bool,
    leaderElect: bool,
    leaseName: z.string().min(1),
    leaseNamespace: z.string().min(1),
    identity: z.string().min(1),
    leaseDuration: duration,
    renewDeadline: duration,
    retryPeriod: duration,
    resyncInterval: duration,
    workers: count.pipe(z.number().min(1)),
    healthAddress: hostPort,
    logLevel: z.enum(['debug', 'info', 'warn', 'error']),
  })
  .superRefine((f, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (f.ipMinWarmTarget > f.ipMaxWarmTarget) issue('ipMinWarmTarget', `--ip-min-warm-target (${f.ipMinWarmTarget}) is above --ip-max-warm-target (${f.ipMaxWarmTarget})`);
    if (f.eniMinWarmTarget > f.eniMaxWarmTarget) issue('eniMinWarmTarget', `--eni-min-warm-target (${f.eniMinWarmTarget}) is above --eni-max-warm-target (${f.eniMaxWarmTarget})`);
    // Seed 002: "可填写不小于 5m 的任意值" (0, the default, never expires a claim).
    if (f.claimExpiredDuration !== 0 && f.claimExpiredDuration < f.claimExpiryFloor) issue('claimExpiredDuration', `--claim-expired-duration must be at least ${f.claimExpiryFloor === 300_000 ? '5m' : `${f.claimExpiryFloor / 1000}s`}`);
    if (!(f.renewDeadline < f.leaseDuration)) issue('renewDeadline', '--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration');
    if (!(f.retryPeriod < f.renewDeadline)) issue('retryPeriod', '--leader-elect-retry-period must be shorter than --leader-elect-renew-deadline');
  });

export type IpamdConfig = Readonly<
  Omit<z.infer<typeof Flags>, 'credentialsFile' | 'healthAddress' | 'leaseDuration' | 'renewDeadline' | 'retryPeriod' | 'resyncInterval' | 'claimExpiredDuration' | 'claimExpiryFloor'> & {
    credentials?: { secretId: string; secretKey: string } | undefined;
    healthHost: string;
    healthPort: number;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
    resyncIntervalMs: number;
    claimExpiredMs: number;
  }
>;

/** Flags of the node agent (`kubectl edit ds tke-eni-agent`), refused here with a message naming it. */
const AGENT_FLAGS = ['enable-quick-release', 'release-period', 'add-wait', 'ip-cooldown', 'gc-interval', 'gc-grace', 'socket', 'state-dir', 'masq-config', 'node-name', 'standalone'];

export function ipamdCommand(run: (config: IpamdConfig) => Promise<void>): Command {
  const command = new Command('eni-ipamd');
  for (const flag of AGENT_FLAGS) command.addOption(new Option(`--${flag} [value]`).hideHelp());
  return command
    .description("eni-cni's cluster half (tke-eni-ipamd): the only holder of cloud credentials; gives nodes their ENIs and addresses through their NodeENIConfigs")
    .option('--kubeconfig <file>', 'the Kubernetes API to use (default: the in-cluster service account)')
    .option('--kube-api-qps <n>', 'requests per second to the Kubernetes API, sustained', '50')
    .option('--kube-api-burst <n>', 'requests to the Kubernetes API in a burst', '100')
    .option('--metadata-url <url>', 'CVM metadata service (the region and the role\'s keys, when not given)', DEFAULT_METADATA_URL)
    .option('--region <region>', 'the cluster\'s region (default: the metadata service\'s)')
    .option('--api-url <url>', 'Tencent Cloud API domain (the service name is prefixed)', 'https://tencentcloudapi.com')
    .option('--api-resolve <address>', 'connect to this address for every API name (local clouds)')
    .option('--credentials-file <file>', 'JSON {"secretId", "secretKey"}; without it the CVM role\'s temporary keys (IPAMDofTKE_QCSRole)')
    .option('--cloud-qps <n>', 'cloud calls per second for the whole cluster, all actions together (each action also within its own documented limit)', '50')
    .option('--subnet-ids <ids>', 'subnets pod ENIs come from, comma-separated (each node uses those in its zone; default: the node\'s own subnet)', '')
    .option('--security-group-ids <ids>', 'security groups of new ENIs (default: those of each node\'s primary ENI)', '')
    .option('--ip-min-warm-target <n>', 'shared-ENI mode: free addresses a new node keeps at least', '5')
    .option('--ip-max-warm-target <n>', 'shared-ENI mode: free addresses a new node keeps at most', '5')
    .option('--eni-min-warm-target <n>', 'whole-ENI mode: free ENIs a new node keeps at least', '1')
    .option('--eni-max-warm-target <n>', 'whole-ENI mode: free ENIs a new node keeps at most', '1')
    .option('--claim-expired-duration <duration>', 'how long a fixed IP or EIP outlives its pod before it is reclaimed (at least 5m; 0 never)', '0')
    // Tests only: the floor of --claim-expired-duration, so that expiry can be seen in seconds. Never lowered by default.
    .addOption(new Option('--claim-expiry-floor <duration>').default('5m').hideHelp())
    .option('--enable-ownerref [bool]', 'claims owned by their workload, so deleting it reclaims them (seed 002)', false)
    .option('--cluster-id <id>', 'the cluster, as the tag on every EIP ipamd makes names it (default: the uid of the kube-system namespace)', '')
    .option('--release-cluster-eips [bool]', 'uninstall step: release every EIP this cluster made that is bound to nothing, print them, and exit', false)
    .option('--leader-elect [bool]', 'one active replica at a time, by a Lease', true)
    .option('--leader-elect-lease-name <name>', 'the Lease', 'tke-eni-ipamd')
    .option('--leader-elect-lease-namespace <ns>', 'the Lease\'s namespace', 'kube-system')
    .option('--leader-elect-identity <id>', 'this replica in the Lease (default: $POD_NAME, else host and pid)', process.env.POD_NAME ?? `${hostname()}_${process.pid}`)
    .option('--leader-elect-lease-duration <duration>', 'how long a Lease not renewed holds', '10s')
    .option('--leader-elect-renew-deadline <duration>', 'how long a leader tries to renew before it stops acting', '7s')
    .option('--leader-elect-retry-period <duration>', 'how often a candidate tries and a leader renews', '2s')
    .option('--resync-interval <duration>', 'how often every node is compared with the cloud unasked', '60s')
    .option('--workers <n>', 'nodes worked on at once', '64')
    .option('--health-address <host:port>', 'where /healthz, /readyz and /status answer', '0.0.0.0:61679')
    .addOption(new Option('--log-level <level>', 'log level').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .action(async (o: Record<string, unknown>) => run(toIpamdConfig(o)));
}

export function toIpamdConfig(o: Record<string, unknown>): IpamdConfig {
  const misplaced = AGENT_FLAGS.filter((flag) => o[flag.replace(/-(\w)/g, (_, c: string) => c.toUpperCase())] !== undefined);
  if (misplaced.length > 0) {
    const names = misplaced.map((f) => `--${f}`).join(', ');
    throw new InvalidArgumentError(`${names}: a flag of the node agent tke-eni-agent (kubectl edit ds tke-eni-agent -n kube-system), not of tke-eni-ipamd`);
  }
  const parsed = Flags.safeParse({
    ...o,
    leaseName: o.leaderElectLeaseName,
    leaseNamespace: o.leaderElectLeaseNamespace,
    identity: o.leaderElectIdentity,
    leaseDuration: o.leaderElectLeaseDuration,
    renewDeadline: o.leaderElectRenewDeadline,
    retryPeriod: o.leaderElectRetryPeriod,
  });
  if (!parsed.success) {
    const flag = (path: PropertyKey[]) => `--${String(path[0] ?? '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new InvalidArgumentError(parsed.error.issues.map((i) => (i.message.startsWith('--') ? i.message : `${flag(i.path)}: ${i.message}`)).join('; '));
  }
  const f = parsed.data;
  const [, host, port] = /^(.+):(\d{1,5})$/.exec(f.healthAddress)!;
  const { credentialsFile, healthAddress: _health, leaseDuration, renewDeadline, retryPeriod, resyncInterval, claimExpiredDuration, claimExpiryFloor: _floor, ...rest } = f;
  return Object.freeze({
    ...rest,
    credentials: credentialsFile ? readCredentials(credentialsFile) : undefined,
    healthHost: host!,
    healthPort: Number(port),
    leaseDurationMs: leaseDuration,
    renewDeadlineMs: renewDeadline,
    retryPeriodMs: retryPeriod,
    resyncIntervalMs: resyncInterval,
    claimExpiredMs: claimExpiredDuration,
  });
}

/** The configuration `args` give (as the Deployment's container args), or the error the program would exit with. */
export async function parseIpamdArgs(args: string[]): Promise<IpamdConfig> {
  let config: IpamdConfig | undefined;
  const command = ipamdCommand(async (c) => {
    config = c;
  });
  command.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  await command.parseAsync(args, { from: 'user' });
  return config!;
}
