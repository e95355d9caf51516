// tke-eni-agent's Prometheus metrics, served at /metrics on its health port. Counters and histograms move
// as the agent answers; the pool's gauges are read from the pool when scraped, so they are never stale.
//   eni_cni_requests_total{command, result, cni_code}     the plugin's requests by answer (result: ok, or the refusal's reason)
//   eni_cni_request_duration_seconds{command}            how long the agent took to answer them
//   eni_cni_add_phase_seconds{phase}                     a successful ADD's halves: allocate (address and checkpoint), plumb (the datapath)
//   eni_cni_pool_addresses{state}                        the node's secondary addresses: bound, in_use, free, cooling, reserved
//   eni_cni_pool_warm_target{bound}                      the warm targets in force (min, max)
//   eni_cni_pool_enis                                    pod ENIs on the node
//   eni_cni_pool_capacity_addresses                      the most addresses the node can bind
//   eni_cni_checkpoint_writes_total                      checkpoint writes
//   eni_cni_eip_exemptions                               pods exempted from masquerade by their EIP
//   eni_cni_direct_enis{state}                           whole ENIs (--enable-direct-eni): in_use (a pod's interface), spare
//   eni_cni_direct_capacity_enis                         the most whole ENIs the node can attach for pods
//   eni_cni_datapath_mends_total                         pods' host sides mended after they drifted
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { cniCodeOf } from '../shared/cni-codes.ts';
import type { Response } from '../shared/protocol.ts';

export interface PoolView {
  counts(): { total: number; assigned: number; free: number; cooling: number };
  reserved(): number;
  warm(): { min: number; max: number };
  enis(): number;
  capacity(): number;
  exemptions(): number;
  /** whole ENIs, when the node serves whole-ENI pods */
  direct?(): { inUse: number; spare: number; capacity: number } | undefined;
}

/** Fast ADDs take a few ms; one that waits for a warm address or an EIP takes seconds. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'eni_cni_requests_total', help: "The plugin's requests the agent answered, by command and answer", labelNames: ['command', 'result', 'cni_code'], registers: [this.registry] });
  private readonly durations = new Histogram({ name: 'eni_cni_request_duration_seconds', help: "How long the agent took to answer the plugin's requests", labelNames: ['command'], buckets: BUCKETS, registers: [this.registry] });
  private readonly addPhases = new Histogram({ name: 'eni_cni_add_phase_seconds', help: "A successful ADD's two halves: allocate (an address taken and checkpointed), plumb (the pod's network made)", labelNames: ['phase'], buckets: BUCKETS, registers: [this.registry] });
  private readonly checkpointWrites = new Counter({ name: 'eni_cni_checkpoint_writes_total', help: 'Checkpoint writes', registers: [this.registry] });
  private readonly mends = new Counter({ name: 'eni_cni_datapath_mends_total', help: "Pods' host sides (route, rules) mended after they drifted from the plan", registers: [this.registry] });

  constructor(pool: PoolView) {
    const registers = [this.registry];
    new Gauge({
      name: 'eni_cni_pool_addresses',
      help: "The node's secondary addresses by state",
      labelNames: ['state'],
      registers,
      collect() {
        const c = pool.counts();
        const reserved = pool.reserved();
        this.set({ state: 'bound' }, c.total);
        this.set({ state: 'in_use' }, c.assigned - reserved);
        this.set({ state: 'reserved' }, reserved);
        this.set({ state: 'free' }, c.free);
        this.set({ state: 'cooling' }, c.cooling);
      },
    });
    new Gauge({
      name: 'eni_cni_pool_warm_target',
      help: 'The warm targets in force, in addresses',
      labelNames: ['bound'],
      registers,
      collect() {
        const w = pool.warm();
        this.set({ bound: 'min' }, w.min);
        this.set({ bound: 'max' }, w.max);
      },
    });
    new Gauge({ name: 'eni_cni_pool_enis', help: 'Pod ENIs on the node', registers, collect() { this.set(pool.enis()); } });
    new Gauge({ name: 'eni_cni_pool_capacity_addresses', help: 'The most addresses the node can bind (its quota, lowered by overrides)', registers, collect() { this.set(pool.capacity()); } });
    new Gauge({ name: 'eni_cni_eip_exemptions', help: 'Pods exempted from masquerade by their EIP', registers, collect() { this.set(pool.exemptions()); } });
    if (pool.direct) {
      const direct = pool.direct.bind(pool);
      new Gauge({
        name: 'eni_cni_direct_enis',
        help: "The node's whole ENIs (tke-direct-eni) by state",
        labelNames: ['state'],
        registers,
        collect() {
          const d = direct();
          this.set({ state: 'in_use' }, d?.inUse ?? 0);
          this.set({ state: 'spare' }, d?.spare ?? 0);
        },
      });
      new Gauge({ name: 'eni_cni_direct_capacity_enis', help: 'The most whole ENIs the node can attach for pods', registers, collect() { this.set(direct()?.capacity ?? 0); } });
    }
  }

  mended(): void {
    this.mends.inc();
  }

  /** Counts and times one answer to the plugin. */
  answered(command: string, seconds: number, answer: Response): void {
    const reason = answer.ok ? 'ok' : (answer.error?.code ?? 'internal');
    this.requests.inc({ command, result: reason, cni_code: answer.ok ? '0' : String(cniCodeOf(reason)) });
    this.durations.observe({ command }, seconds);
  }

  addPhased(allocateSeconds: number, plumbSeconds: number): void {
    this.addPhases.observe({ phase: 'allocate' }, allocateSeconds);
    this.addPhases.observe({ phase: 'plumb' }, plumbSeconds);
  }

  checkpointWritten(): void {
    this.checkpointWrites.inc();
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
