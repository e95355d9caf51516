// The host side of a running pod mended when it drifts: a rule or the route deleted, or the rule from the
// pod pointed at another table, behind the agent's back, is put back by its periodic check, and the pod
// reaches the VPC again; a pod being deleted meanwhile gets nothing back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, pings, type LabNode } from '../hack/lab/lab.ts';
import { httpGetIn, ip, run } from '../hack/lab/sh.ts';
import { until } from './eventually.ts';

let lab: Lab;
let node: LabNode;

beforeAll(async () => {
  lab = await Lab.up({ nodes: 1, taskMs: 30, agents: { minWarm: 2, maxWarm: 4, gcInterval: '1s', gcGrace: '1s' } });
  node = lab.nodes[0]!;
}, 120_000);
afterAll(async () => lab?.down());

async function addPod(name: string): Promise<{ ns: string; address: string; containerId: string }> {
  const ns = await lab.addPod(name);
  const containerId = `ctr-${name}`;
  const r = await node.agent!.cni('ADD', { containerId, netns: `/var/run/netns/${ns}`, ifName: 'eth0' });
  expect(r.code, r.stdout).toBe(0);
  return { ns, containerId, address: (r.result!.ips as Array<{ address: string }>)[0]!.address.split('/')[0]! };
}

const rules = () => run('ip', ['-n', node.ns, 'rule', 'show']);

describe("a pod's host side, drifted", () => {
  it('is mended by the periodic check: the rule from the pod, the rule to it and its route', async () => {
    const pod = await addPod('drift1');
    const gateway = pod.address.replace(/\.\d+$/, '.1');
    expect(await pings(pod.ns, gateway)).toBe(true);
    const from = (await rules()).split('\n').find((l) => l.includes(`from ${pod.address} lookup`))!;
    const table = /lookup (\d+)/.exec(from)![1]!;
    await ip(node.ns, 'rule', 'del', 'from', `${pod.address}/32`, 'pref', '1536');
    await ip(node.ns, 'rule', 'del', 'to', `${pod.address}/32`, 'pref', '512');
    await ip(node.ns, 'route', 'del', `${pod.address}/32`);
    await until('the rules back', rules, (r) => r.includes(`from ${pod.address} lookup ${table}`) && r.includes(`to ${pod.address} lookup main`), 15_000);
    await until('the route back', () => run('ip', ['-n', node.ns, 'route', 'show', `${pod.address}/32`]), (r) => r.includes('dev eni'), 15_000);
    expect(await pings(pod.ns, gateway)).toBe(true);
    expect(node.agent!.log()).toContain('mended the host side of a pod');
    const { body } = await httpGetIn(node.ns, 'http://127.0.0.1:61678/metrics');
    expect(Number(/^eni_cni_datapath_mends_total (\d+)$/m.exec(body)?.[1])).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('points the rule from the pod back at its own ENI table', async () => {
    const pod = await addPod('drift2');
    const from = (await rules()).split('\n').find((l) => l.includes(`from ${pod.address} lookup`))!;
    const table = /lookup (\d+)/.exec(from)![1]!;
    await ip(node.ns, 'rule', 'del', 'from', `${pod.address}/32`, 'pref', '1536');
    await ip(node.ns, 'rule', 'add', 'from', `${pod.address}/32`, 'lookup', '4242', 'pref', '1536');
    await until('the rule from the pod on its table', rules, (r) => r.includes(`from ${pod.address} lookup ${table}`) && !r.includes('lookup 4242'), 15_000);
  }, 60_000);

  it('gives nothing back to a pod that was deleted', async () => {
    const pod = await addPod('drift3');
    expect((await node.agent!.cni('DEL', { containerId: pod.containerId, netns: `/var/run/netns/${pod.ns}`, ifName: 'eth0' })).code).toBe(0);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await rules()).not.toContain(pod.address);
  }, 30_000);
});
