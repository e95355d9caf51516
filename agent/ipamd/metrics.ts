// tke-eni-ipamd's Prometheus metrics, served at /metrics on its health port:
//   eni_ipamd_cloud_calls_total{action, outcome}          cloud calls by action and outcome (ok, throttled, or Tencent's error code)
//   eni_ipamd_cloud_call_duration_seconds{action}         how long they took, the budget's wait aside
//   eni_ipamd_cloud_calls_waiting                         calls waiting for the cluster's budget
//   eni_ipamd_leader                                      1 while this replica holds the Lease
//   eni_ipamd_queue_depth                                 nodes waiting to be worked on
//   eni_ipamd_releases_pending{state}                     addresses and ENIs the agents gave back, not yet
//                                                         released in the cloud (offered, releasing)
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface IpamdView {
  leader(): boolean;
  backlog(): number;
  callsWaiting(): number;
  /** the NECs' release handshakes under way, counted by state */
  releases(): Record<string, number>;
}

export class IpamdMetrics {
  readonly registry = new Registry();
  private readonly calls = new Counter({ name: 'eni_ipamd_cloud_calls_total', help: 'Cloud calls by action and outcome (ok, throttled, or the error code)', labelNames: ['action', 'outcome'], registers: [this.registry] });
  private readonly durations = new Histogram({ name: 'eni_ipamd_cloud_call_duration_seconds', help: "Cloud calls' durations, the budget's wait aside", labelNames: ['action'], buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry] });

  constructor(view: IpamdView) {
    const registers = [this.registry];
    new Gauge({ name: 'eni_ipamd_leader', help: '1 while this replica holds the Lease and acts', registers, collect() { this.set(view.leader() ? 1 : 0); } });
    new Gauge({ name: 'eni_ipamd_queue_depth', help: 'Nodes waiting to be worked on', registers, collect() { this.set(view.backlog()); } });
    new Gauge({
      name: 'eni_ipamd_releases_pending',
      help: 'Addresses and ENIs given back by the agents and not yet released in the cloud, by state of the handshake',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const [state, count] of Object.entries({ offered: 0, releasing: 0, ...view.releases() })) this.set({ state }, count);
      },
    });
    new Gauge({ name: 'eni_ipamd_cloud_calls_waiting', help: "Cloud calls waiting for the cluster's budget", registers, collect() { this.set(view.callsWaiting()); } });
  }

  /** One cloud call's end. */
  called(action: string, outcome: string, seconds: number): void {
    this.calls.inc({ action, outcome });
    this.durations.observe({ action }, seconds);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
