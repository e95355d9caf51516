// Wires the agent together and runs it: who the node is, the cloud, the pool, the datapath, the socket.
import type { Server } from 'node:net';
import { pino, type Logger } from 'pino';
import { Agent } from './agent.ts';
import { CniConfKeeper, readCniConf } from './cni-conf.ts';
import { Eips } from './eips.ts';
import { FixedIps } from './fixed-ips.ts';
import { EipClaimsApi } from './k8s/eip-claims-api.ts';
import type { VpcIpClaim } from './k8s/claims.ts';
import type { AgentConfig } from './config.ts';
import { Metadata } from './cloud/metadata.ts';
import { DirectLinks } from './datapath/direct-link.ts';
import { LinuxDatapath } from './datapath/linux.ts';
import { directPlaces, DirectPool } from './direct/pool.ts';
import { trimCHeap } from './memory.ts';
import { NetlinkDatapath } from './datapath/netlink.ts';
import { offerAgentCall } from './rpc/agent-call.ts';
import { Masquerade } from './datapath/masq-linux.ts';
import { FileCheckpoint } from './pool/checkpoint.ts';
import { replaceNatively } from './pool/replace-file.ts';
import { Pool } from './pool/pool.ts';
import { PoolStore } from './pool/store.ts';
import { serveSocket } from './rpc/server.ts';
import { supplyFor } from './supply/for-node.ts';
import { NodeNec } from './k8s/node-nec.ts';
import { serveHealth } from './health.ts';
import { diagnose, doctorTargets, type DoctorSources } from './doctor.ts';
import { IpProbe } from './datapath/probe.ts';
import { AgentMetrics } from './metrics.ts';
import { Kube } from './k8s/kube.ts';
import { NodeSync } from './k8s/node-sync.ts';
import { pendingDelDir } from '../shared/protocol.ts';
import { NETWORK_MODES } from '../shared/tke.ts';
import type { RequestBody } from '../shared/requests.ts';

function loadKube(config: AgentConfig, log: Logger): Kube {
  if (!config.nodeName) throw new Error('--node-name (or $NODE_NAME) is needed to use the Kubernetes API');
  return Kube.load({ kubeconfig: config.kubeconfig, nodeName: config.nodeName, qps: config.kubeApiQps, burst: config.kubeApiBurst, log: (level, message) => log[level](message) });
}

export interface RunningAgent {
  stop(): Promise<void>;
}

export async function startAgent(config: AgentConfig): Promise<RunningAgent> {
  const log = pino({ level: config.logLevel, base: undefined }, pino.destination(2));
  // A conflist the agent could never install, or natives it cannot load, stop it here, before it learns
  // anything, saying why.
  if (config.cniConf) readCniConf(config.cniConf.source);
  const netlink = await NetlinkDatapath.load();
  if (netlink instanceof Error) throw new Error(`pods cannot be plumbed: the netlink datapath cannot be had (${netlink.message})`);
  log.info('pods are plumbed over netlink');
  const cniConf = config.cniConf ? new CniConfKeeper(config.cniConf, (level, message) => log[level](message)) : undefined;
  // Health answers from the start: a slow cloud at start-up must not look like a dead agent to liveness.
  const live: { current?: { agent: Agent; status: () => unknown } } = {};
  // (The pool's view is read at each scrape, once the pool exists.)
  const metrics = new AgentMetrics({
    counts: () => store.counts(),
    reserved: () => store.allocations().filter((a) => a.reserved).length,
    warm: () => pool.currentLimits().warm,
    enis: () => store.enis.size,
    capacity: () => pool.capacity(),
    exemptions: () => masq.exempted().length,
    direct: () => (direct ? { inUse: store.allocations().filter((a) => a.direct && !a.reserved).length, spare: direct.pool.spare().length, capacity: direct.pool.capacity() } : undefined),
  });
  const health = await serveHealth(config.healthHost, config.healthPort, {
    ready: () => {
      if (!live.current?.agent.ready) return { ok: false, why: 'starting: learning the node, its ENIs and its pool' };
      const problem = cniConf?.problem();
      return problem ? { ok: false, why: problem } : { ok: true };
    },
    status: () => live.current?.status() ?? { starting: true },
    metrics: { text: () => (live.current ? metrics.text() : Promise.resolve('')), contentType: metrics.contentType },
    doctor: async (pod) => {
      if (!live.current) throw new Error('the agent is still starting');
      if (pod) return diagnose(doctorSources, pod);
      // One pod at a time: each spawns a handful of ip and iptables processes, and a full node has a hundred pods.
      const all = [];
      for (const p of doctorTargets(doctorSources)) all.push(await diagnose(doctorSources, p));
      return all;
    },
  });
  const metadata = new Metadata(config.metadataUrl);
  const node = await metadata.instance();
  const vpcCidr = await metadata.get(`network/interfaces/macs/${node.mac}/vpc-cidr-block`);
  log.info({ instance: node.instanceId, zone: node.zone }, 'starting');

  const datapath = new LinuxDatapath(netlink);
  const store = new PoolStore();
  const keepSysctls = () => {
    for (const problem of datapath.keepSysctls([...store.enis.values()].flatMap((e) => (e.ifName ? [e.ifName] : [])))) log.warn(problem);
  };
  keepSysctls();
  const masq = new Masquerade({ file: config.masqConfig, vpcCidr, log: (level, message) => log[level](message) });
  await masq.start();

  // In a cluster tke-eni-ipamd changes the cloud and the agent holds no credentials; standalone (no API
  // server, or --standalone) the agent calls the cloud itself.
  const kube = config.kubeconfig || config.inCluster ? loadKube(config, log) : undefined;
  const necMode = kube !== undefined && !config.standalone;
  // (The closures below run only once the pool exists: the NEC is read after it is made.)
  const nec = necMode
    ? new NodeNec(
        (status, rv) => kube.patchNecStatus(status, rv),
        () => {
          pool.supplyChanged();
          direct?.pool.changed();
        },
      )
    : undefined;
  const say = (level: 'info' | 'warn' | 'error', message: string) => log[level](message);
  const { supply, subnetIds, securityGroupIds } = await supplyFor({ config, node, metadata, nec, inForce: () => pool.currentLimits(), log: say });
  const pool = new Pool({
    supply,
    store,
    datapath,
    instanceId: node.instanceId,
    warm: { min: config.ipMinWarmTarget, max: config.ipMaxWarmTarget },
    quickRelease: config.quickRelease,
    releasePeriodMs: config.releasePeriodMs,
    checkIntervalMs: config.poolCheckIntervalMs,
    resyncIntervalMs: config.poolResyncIntervalMs,
    log: (level, message) => log[level](message),
    event: (event) => {
      log.warn({ reason: event.reason }, event.message);
      nodeSync?.event(event.reason, event.message);
    },
    onChange: () => nodeSync?.changed(),
  });
  // Whole-ENI pods (--enable-direct-eni): ipamd attaches their ENIs, so only in a cluster. ipamd's warm
  // defaults replace these.
  const directLinks = new DirectLinks(netlink);
  if (config.directEni && !nec) log.warn('--enable-direct-eni needs tke-eni-ipamd (a cluster, not --standalone): whole-ENI pods are refused');
  const directPool = nec && config.directEni
    ? new DirectPool({ nec, store, warm: { min: 1, max: 1 }, quickRelease: config.quickRelease, releasePeriodMs: config.releasePeriodMs, hasLink: (mac) => directLinks.hasLink(mac), log: say })
    : undefined;
  const direct = directPool
    ? {
        pool: directPool,
        links: directLinks,
        // A whole ENI let go by its claim is a spare one again: the pool's law gives back what is above max.
        fixedIps: new FixedIps({ kube: kube!, store, giveBack: async () => directPool.changed(), nodeName: config.nodeName!, save: () => agent.saveCheckpoint(), log, places: directPlaces(directPool, store) }),
      }
    : undefined;
  // With an API server the agent reads pods and its NEC, and publishes status, resources and events.
  const nodeSync = kube
    ? new NodeSync({ kube, pool, store, nodeName: config.nodeName!, instanceId: node.instanceId, zone: node.zone, subnetIds, securityGroupIds, ...(nec ? { nec } : {}), ...(direct ? { direct: direct.pool } : {}), log: (level, message) => log[level](message) })
    : undefined;
  if (!kube) log.info('no Kubernetes API configured: running standalone');
  // Fixed pod IPs need the claims, so an API server.
  const fixedIps = kube
    ? new FixedIps({ kube, store, giveBack: (address) => pool.giveBack(address), nodeName: config.nodeName!, save: () => agent.saveCheckpoint(), log })
    : undefined;
  const checkpoint = new FileCheckpoint(`${config.stateDir}/checkpoint.json`, { onWritten: () => metrics.checkpointWritten(), replace: replaceNatively });
  const eipApi = kube ? new EipClaimsApi(kube) : undefined;
  const eips = eipApi ? new Eips({ api: eipApi, masq, nodeName: config.nodeName!, log }) : undefined;
  const agent = new Agent({
    store,
    pool,
    checkpoint,
    datapath,
    log,
    pendingDelDir: pendingDelDir(config.socket),
    addWaitMs: config.addWaitMs,
    gcGraceMs: config.gcGraceMs,
    cooldownMs: config.cooldownMs,
    mendDatapath: config.mendDatapath,
    onMend: () => metrics.mended(),
    addPhases: (allocate, plumb) => metrics.addPhased(allocate, plumb),
    ...(kube
      ? {
          // An API server that does not answer must not hold an ADD: after 2 s the pod gets the default mode.
          podAnnotations: async (namespace: string, name: string) => {
            const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer about pod ${namespace}/${name} within 2 s`)), 2000).unref());
            return (await Promise.race([kube.pod(namespace, name), timeout]))?.metadata?.annotations;
          },
          podsOnNode: () => kube.podsOnNode(),
          onChange: () => nodeSync?.changed(),
          fixedIps,
          eips,
          ...(direct ? { direct } : {}),
        }
      : {}),
  });

  const doctorSources: DoctorSources = {
    allocations: () => store.allocations(),
    eni: (id) => store.enis.get(id),
    probe: new IpProbe(),
    netnsProblem: (netns) => datapath.netnsProblem(netns),
    exempted: () => masq.exempted(),
    cloudEni: (id) => supply.cloudEni(id),
    nodeName: config.nodeName,
    ...(kube && eipApi ? { claims: { vpcIpClaim: (ns, name) => kube.getClaim(ns, name), vpcIp: (address) => kube.getVpcIp(address), eipClaim: (ns, name) => eipApi.get(ns, name) } } : {}),
  };

  agent.restore();
  await eips?.restore(store.allocations().filter((a) => a.eip).map((a) => a.address));
  // Pods on this node must not wait for the API server: its part starts on the side, retrying until it
  // can. In a cluster the pool's addresses come through it, so the pool waits for its NEC.
  const startNodeSync = (): void => {
    nodeSync
      ?.start()
      .then(startClaimWatch)
      .catch((err: Error) => {
        log.warn(`kubernetes: cannot start (${err.message}); retrying in 5 s`);
        setTimeout(startNodeSync, 5000).unref();
      });
  };
  // The claims whose address this node holds; retried on its own, so that a failure here never starts the
  // node's informers twice.
  const startClaimWatch = (): void => {
    const onClaim = (type: 'add' | 'update' | 'delete', claim: VpcIpClaim) =>
      void (claim.spec?.networkMode === NETWORK_MODES.directEni && direct ? direct.fixedIps : fixedIps!).claimChanged(type, claim).catch((err: Error) => log.warn({ claim: `${claim.metadata.namespace}/${claim.metadata.name}`, err: err.message }, 'acting on a VpcIPClaim failed'));
    kube!.watchClaims(onClaim).catch((err: Error) => {
      log.warn(`kubernetes: cannot watch VpcIPClaims (${err.message}); retrying in 5 s`);
      setTimeout(startClaimWatch, 5000).unref();
    });
  };
  startNodeSync();
  await pool.start();
  agent.reportUnpooled();
  const handle = async (body: RequestBody) => {
    const started = performance.now();
    const answer = await dispatch(body);
    metrics.answered(body.op, (performance.now() - started) / 1000, answer);
    return answer;
  };
  const dispatch = (body: RequestBody) => {
    switch (body.op) {
      case 'add':
        return agent.add(body);
      case 'del':
        return agent.del(body);
      case 'check':
        return agent.check(body);
      case 'gc':
        return agent.gc(body);
      case 'status':
        return Promise.resolve(agent.status());
    }
  };
  const server: Server = await serveSocket(config.socket, handle, (err, body) => log.error({ request: body, err: err.message }, `${body.op} failed`));
  const noAgentCall = offerAgentCall(config.socket);
  if (noAgentCall) log.warn(noAgentCall);
  agent.ready = true;
  live.current = {
    agent,
    status: () => ({
      memory: process.memoryUsage(),
      instance: node.instanceId,
      zone: node.zone,
      counts: store.counts(),
      limits: pool.currentLimits(),
      lastError: pool.lastError,
      enis: [...store.enis.values()].map((e) => ({ ...e, addresses: [...e.addresses] })),
      ...(direct ? { directEnis: direct.pool.enis(), directLimits: direct.pool.currentLimits(), directCapacity: direct.pool.capacity() } : {}),
      allocations: store.allocations(),
    }),
  };
  log.info({ socket: config.socket, health: `${config.healthHost}:${config.healthPort}` }, 'serving');
  // Only now may the runtime take the node's network for ready.
  cniConf?.keep();
  void pool.kick();
  await agent.reconcile();
  // What start-up freed goes back to the kernel now, and what each round frees after it.
  trimCHeap();

  const timer = setInterval(() => {
    keepSysctls();
    cniConf?.keep();
    agent.reconcile().then(() => trimCHeap(), (err: Error) => log.error({ err: err.message }, 'reconcile failed'));
    void pool.kick();
    direct?.pool.changed();
  }, config.gcIntervalMs);

  return {
    stop: async () => {
      clearInterval(timer);
      await pool.stop();
      nodeSync?.stop();
      await kube?.stop();
      masq.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => health.close(() => resolve()));
      await checkpoint.settled();
      datapath.close();
    },
  };
}

