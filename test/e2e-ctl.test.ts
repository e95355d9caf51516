// eni-cnictl on a lab node, as an engineer would run it there: the pool and its pods, and a CHECK of
// every pod that finds the one that is broken.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabNode } from '../hack/lab/lab.ts';
import { REPO } from '../hack/lab/node-agent.ts';
import { ip } from '../hack/lab/sh.ts';

let lab: Lab;
let node: LabNode;
const ctl = (...args: string[]) => execa('ip', ['netns', 'exec', node.ns, `${REPO}dist/bin/eni-cnictl`, '--socket', node.agent!.socket, ...args], { reject: false });

beforeAll(async () => {
  lab = await Lab.up({ nodes: 1, taskMs: 30, agents: { minWarm: 2, maxWarm: 4 } });
  node = lab.nodes[0]!;
  for (const name of ['web-0', 'web-1']) {
    const ns = await lab.addPod(name);
    const r = await node.agent!.cni('ADD', { containerId: `ctl-${name}`, netns: `/var/run/netns/${ns}`, ifName: 'eth0', args: `K8S_POD_NAMESPACE=shop;K8S_POD_NAME=${name}` });
    expect(r.code, r.stdout).toBe(0);
  }
});
afterAll(async () => lab?.down());

describe('eni-cnictl', () => {
  it('shows the pool with the pods holding its addresses', async () => {
    const r = await ctl('status');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`node ${node.instanceId}`);
    expect(r.stdout).toMatch(/shop\/web-0 +container ctl-web-0/);
    expect(r.stdout).toMatch(/shop\/web-1 +container ctl-web-1/);
    expect(JSON.parse((await ctl('status', '--json')).stdout).allocations).toHaveLength(2);
  });

  it('checks every pod, and names the broken one', async () => {
    const ok = await ctl('check');
    expect(ok.exitCode, ok.stdout).toBe(0);
    expect(ok.stdout).toContain('2 of 2 pods are as planned');
    const broken = JSON.parse((await ctl('status', '--json')).stdout).allocations.find((a: { pod: { name: string } }) => a.pod.name === 'web-1');
    await ip(node.ns, 'link', 'del', broken.hostIf);
    const bad = await ctl('check');
    expect(bad.exitCode).toBe(1);
    expect(bad.stdout).toMatch(new RegExp(`BROKEN +${broken.address.replace(/\./g, '\\.')} +shop/web-1: .*${broken.hostIf}`));
    expect(bad.stdout).toContain('1 of 2 pods are as planned');
  });

  it('says where it looked when the agent is not there', async () => {
    const r = await execa(`${REPO}dist/bin/eni-cnictl`, ['--health-address', '127.0.0.1:1', 'status'], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('127.0.0.1:1/status');
  });
});
