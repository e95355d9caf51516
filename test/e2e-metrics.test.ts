// The agent's /metrics on a lab node, scraped as Prometheus would (from inside the node): after a few pods,
// the request counters and histograms moved by exactly what was asked, refusals are counted by reason and
// CNI code, and the pool's gauges say what the agent's checkpoint says.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cniCodeOf } from '../shared/cni-codes.ts';
import { Lab, type LabNode } from '../hack/lab/lab.ts';
import { httpGetIn } from '../hack/lab/sh.ts';
import { parsePrometheus, sample as get, type Samples } from './prom-text.ts';

let lab: Lab;
let node: LabNode;

beforeAll(async () => {
  lab = await Lab.up({ nodes: 1, taskMs: 20, agents: { minWarm: 4, maxWarm: 6 } });
  node = lab.nodes[0]!;
}, 60_000);
afterAll(async () => lab?.down());

async function scrape(): Promise<Samples> {
  const { ok, body } = await httpGetIn(node.ns, 'http://127.0.0.1:61678/metrics');
  if (!ok) throw new Error(`the agent's /metrics did not answer: ${body}`);
  return parsePrometheus(body);
}

const env = (ns: string, containerId: string) => ({ containerId, netns: `/var/run/netns/${ns}`, ifName: 'eth0' });

describe("the agent's metrics", () => {
  it('count and time every answer, by command and reason, and show the pool as it is', async () => {
    const agent = node.agent!;
    const before = await scrape();
    const pods = await Promise.all(['m0', 'm1', 'm2'].map((n) => lab.addPod(n)));
    for (const [i, ns] of pods.entries()) expect((await agent.cni('ADD', env(ns, `m${i}`))).code).toBe(0);
    expect((await agent.cni('ADD', { containerId: 'nowhere', netns: '/var/run/netns/no-such-namespace', ifName: 'eth0' })).code).not.toBe(0);

    const during = await scrape();
    const addOk = 'eni_cni_requests_total{cni_code="0",command="add",result="ok"}';
    const badNetns = `eni_cni_requests_total{cni_code="${cniCodeOf('bad-netns')}",command="add",result="bad-netns"}`;
    expect(get(during, addOk) - get(before, addOk)).toBe(3);
    expect(get(during, badNetns) - get(before, badNetns)).toBe(1);
    const addCount = 'eni_cni_request_duration_seconds_count{command="add"}';
    expect(get(during, addCount) - get(before, addCount)).toBe(4);
    expect(get(during, 'eni_cni_request_duration_seconds_bucket{command="add",le="+Inf"}')).toBe(get(during, addCount));
    expect(get(during, 'eni_cni_request_duration_seconds_sum{command="add"}')).toBeGreaterThan(get(before, 'eni_cni_request_duration_seconds_sum{command="add"}'));
    // The two halves of the three successful ADDs (not the refused one), each within the whole answer.
    for (const phase of ['allocate', 'plumb']) {
      const count = `eni_cni_add_phase_seconds_count{phase="${phase}"}`;
      expect(get(during, count) - get(before, count), phase).toBe(3);
    }
    const halves = ['allocate', 'plumb'].map((p) => get(during, `eni_cni_add_phase_seconds_sum{phase="${p}"}`) - get(before, `eni_cni_add_phase_seconds_sum{phase="${p}"}`));
    expect(halves[0]! + halves[1]!).toBeLessThanOrEqual(get(during, 'eni_cni_request_duration_seconds_sum{command="add"}') - get(before, 'eni_cni_request_duration_seconds_sum{command="add"}'));
    expect(halves[1]).toBeGreaterThan(0);
    expect(get(during, 'eni_cni_pool_addresses{state="in_use"}')).toBe(agent.allocations().length);
    expect(get(during, 'eni_cni_pool_addresses{state="in_use"}')).toBe(3);
    expect(get(during, 'eni_cni_pool_warm_target{bound="min"}')).toBe(4);
    expect(get(during, 'eni_cni_pool_warm_target{bound="max"}')).toBe(6);
    expect(get(during, 'eni_cni_pool_enis{}')).toBeGreaterThanOrEqual(1);
    expect(get(during, 'eni_cni_checkpoint_writes_total{}') - get(before, 'eni_cni_checkpoint_writes_total{}')).toBeGreaterThanOrEqual(3);

    for (const [i, ns] of pods.entries()) expect((await agent.cni('DEL', env(ns, `m${i}`))).code).toBe(0);
    const after = await scrape();
    const delOk = 'eni_cni_requests_total{cni_code="0",command="del",result="ok"}';
    expect(get(after, delOk) - get(during, delOk)).toBe(3);
    expect(get(after, 'eni_cni_pool_addresses{state="in_use"}')).toBe(0);
    expect(get(after, 'eni_cni_pool_addresses{state="bound"}')).toBe(get(after, 'eni_cni_pool_addresses{state="free"}') + get(after, 'eni_cni_pool_addresses{state="cooling"}'));
  }, 60_000);
});
