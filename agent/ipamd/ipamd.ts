// Wires tke-eni-ipamd together: the cloud behind the cluster's budget, the cluster's Nodes and NECs, the
// controller, and the election that lets one replica act at a time. Standby replicas keep their caches
// warm, so a new leader starts from what it already knows and reads the cloud before changing anything.
import type { Server } from 'node:http';
import { pino } from 'pino';
import { Metadata } from '../cloud/metadata.ts';
import { TENCENT_RATE_LIMITS } from '../cloud/ratelimit.ts';
import { TencentCloud } from '../cloud/tencent.ts';
import { serveHealth } from '../health.ts';
import { Budget } from './budget.ts';
import { ClaimsController } from './claims.ts';
import { Cluster } from './cluster.ts';
import { clusterIdentity } from './cluster-identity.ts';
import { EipController } from './eips.ts';
import type { IpamdConfig } from './config.ts';
import { Controller } from './controller.ts';
import { Events } from './events.ts';
import { LeaderElection } from './leader.ts';
import { IpamdMetrics } from './metrics.ts';
import { pendingReleases, type Nec } from '../k8s/nec.ts';
import { NodeIpam } from './node-ipam.ts';
import { PodWatch } from './pod-watch.ts';
import { SubnetBook } from './subnet-book.ts';

/** The cloud as ipamd reaches it: its region and keys given, or the CVM's (metadata, the role's keys). */
export async function cloudOf(config: IpamdConfig, limiter: Budget | undefined, log: (message: string) => void, observe?: (action: string, outcome: string, seconds: number) => void): Promise<{ cloud: TencentCloud; region: string }> {
  const metadata = new Metadata(config.metadataUrl);
  const region = config.region ?? (await metadata.instance()).region;
  const cloud = new TencentCloud({
    region,
    endpoint: { url: config.apiUrl, resolve: config.apiResolve },
    credential: config.credentials ?? metadata.roleCredential(),
    ...(limiter ? { limiter } : {}),
    ...(observe ? { observe } : {}),
    log,
  });
  return { cloud, region };
}

export interface RunningIpamd {
  /** where /healthz, /readyz, /status and /metrics answer */
  healthPort: number;
  stop(): Promise<void>;
}

/** Starts ipamd. `onLost` is told when this replica loses the lease (main exits: a replica that lost stops at once). */
export async function startIpamd(config: IpamdConfig, onLost: () => void): Promise<RunningIpamd> {
  const log = pino({ level: config.logLevel, base: undefined }, pino.destination(2));
  const say = (level: 'info' | 'warn' | 'error', message: string) => log[level](message);
  let election: LeaderElection | undefined;
  let controller: Controller | undefined;
  /** the cluster's NECs, once the cluster is loaded (a scrape may come before) */
  let necs: () => readonly Nec[] = () => [];
  const budget = new Budget({ clusterQps: config.cloudQps, actionQps: TENCENT_RATE_LIMITS });
  const metrics = new IpamdMetrics({ leader: () => election?.isLeader ?? !config.leaderElect, backlog: () => controller?.backlog ?? 0, callsWaiting: () => budget.waiting(), releases: () => pendingReleases(necs()) });
  const health: Server = await serveHealth(config.healthHost, config.healthPort, {
    metrics,
    // A standby replica is healthy and ready: it is waiting for its turn, as it should.
    ready: () => ({ ok: true }),
    status: () => ({
      identity: config.identity,
      leader: election?.isLeader ?? !config.leaderElect,
      backlog: controller?.backlog ?? 0,
      callsWaiting: budget.waiting(),
      calls: Object.fromEntries(budget.granted),
      peakCallsPerSecond: budget.peakPerSecond,
      memory: process.memoryUsage(),
    }),
  });
  const { cloud, region } = await cloudOf(config, budget, (message) => log.warn(message), (action, outcome, seconds) => metrics.called(action, outcome, seconds));
  const cluster = Cluster.load({ kubeconfig: config.kubeconfig, qps: config.kubeApiQps, burst: config.kubeApiBurst, log: say });
  necs = () => cluster.allNecs();
  const events = new Events({ create: (e) => cluster.createEvent(e), node: (n) => cluster.node(n), log: say });
  const subnets = new SubnetBook({ cloud, necs: () => cluster.allNecs() });
  const ipam = new NodeIpam({
    cloud,
    budget,
    necs: cluster,
    subnets,
    event: (node, reason, message) => events.warn(node, reason, message),
    resyncMs: config.resyncIntervalMs,
    heldForClaim: (node, address) => claims.holds(node, address),
    log: say,
  });
  const active = new Controller({
    cluster,
    ipam,
    cloud,
    budget,
    subnetIds: config.subnetIds,
    securityGroupIds: config.securityGroupIds,
    defaults: { ipMinWarmTarget: config.ipMinWarmTarget, ipMaxWarmTarget: config.ipMaxWarmTarget, eniMinWarmTarget: config.eniMinWarmTarget, eniMaxWarmTarget: config.eniMaxWarmTarget },
    resyncMs: config.resyncIntervalMs,
    workers: config.workers,
    event: (node, reason, message) => events.warn(node, reason, message),
    log: say,
  });
  const pods = new PodWatch(cluster.kubeConfig, say);
  const claims = new ClaimsController({
    kc: cluster.kubeConfig,
    pods,
    cloud,
    budget,
    nec: (node) => cluster.nec(node),
    subnetZone: (subnetId) => subnets.zoneOf(subnetId),
    nodeExists: (node) => cluster.node(node) !== undefined,
    nodeChanged: (node) => {
      ipam.doubt(node);
      active.changed(node);
    },
    needEni: (node, subnetId) => ipam.needEni(node, subnetId),
    expiryMs: config.claimExpiredMs,
    enableOwnerref: config.enableOwnerref,
    log: say,
  });
  let clusterId: Promise<string> | undefined;
  const identity = () => (clusterId ??= clusterIdentity(cluster.kubeConfig, config.clusterId).catch((err: Error) => {
    clusterId = undefined;
    throw err;
  }));
  const eips = new EipController({ kc: cluster.kubeConfig, pods, cloud, budget, clusterId: identity, expiryMs: config.claimExpiredMs, enableOwnerref: config.enableOwnerref, log: say });
  let leading = false;
  let stopping = false;
  await cluster.start({
    onNode: (name) => leading && active.changed(name),
    onNec: (name) => leading && active.changed(name),
  });
  const lead = () => {
    leading = true;
    controller = active;
    active.start();
    void claims.start().catch((err: Error) => log.error(`fixed IPs: cannot start: ${err.message}`));
    void eips.start().catch((err: Error) => log.error(`EIPs: cannot start: ${err.message}`));
  };
  if (config.leaderElect) {
    election = new LeaderElection({
      store: cluster.lease(config.leaseNamespace, config.leaseName),
      identity: config.identity,
      leaseDurationMs: config.leaseDurationMs,
      renewDeadlineMs: config.renewDeadlineMs,
      retryPeriodMs: config.retryPeriodMs,
      onStarted: lead,
      onStopped: () => {
        leading = false;
        budget.stop(`${config.identity} no longer holds the lease`);
        void active.stop();
        void claims.stop();
        void eips.stop();
        void pods.stop();
        if (stopping) return;
        log.error({ identity: config.identity }, 'lost the lease: stopping at once');
        onLost();
      },
      log: say,
    });
    void election.run();
  } else {
    lead();
  }
  log.info({ identity: config.identity, region, leaderElect: config.leaderElect, health: `${config.healthHost}:${config.healthPort}` }, 'tke-eni-ipamd started');
  return {
    healthPort: (health.address() as { port: number }).port,
    stop: async () => {
      stopping = true;
      // Stop acting before the lease can lapse: no call after this, whatever is under way.
      budget.stop(`${config.identity} is shutting down`);
      election?.stop();
      leading = false;
      await active.stop();
      await claims.stop();
      await eips.stop();
      await pods.stop();
      await cluster.stop();
      await new Promise<void>((resolve) => health.close(() => resolve()));
    },
  };
}
