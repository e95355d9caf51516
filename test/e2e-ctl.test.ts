// eni-cnictl on a lab node, as an engineer would run it there: the pool and its pods, a CHECK of every
// pod that finds the one that is broken, and doctor naming the link broken on purpose, one pod at a time.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabNode } from '../hack/lab/lab.ts';
import { REPO } from '../hack/lab/node-agent.ts';
import { ip } from '../hack/lab/sh.ts';
import { vpcClient, waitTask } from '../hack/emulator/testing.ts';

let lab: Lab;
let node: LabNode;
const ctl = (...args: string[]) => execa('ip', ['netns', 'exec', node.ns, `${REPO}dist/bin/eni-cnictl`, '--socket', node.agent!.socket, ...args], { reject: false });

beforeAll(async () => {
  lab = await Lab.up({ nodes: 1, taskMs: 30, agents: { minWarm: 2, maxWarm: 4, noMend: true } });
  node = lab.nodes[0]!;
  for (const name of ['web-0', 'web-1', 'web-2', 'web-3', 'web-4']) {
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
    expect(JSON.parse((await ctl('status', '--json')).stdout).allocations).toHaveLength(5);
  });

  it('checks every pod, and names the broken one', async () => {
    const ok = await ctl('check');
    expect(ok.exitCode, ok.stdout).toBe(0);
    expect(ok.stdout).toContain('5 of 5 pods are as planned');
    const broken = JSON.parse((await ctl('status', '--json')).stdout).allocations.find((a: { pod: { name: string } }) => a.pod.name === 'web-1');
    await ip(node.ns, 'link', 'del', broken.hostIf);
    const bad = await ctl('check');
    expect(bad.exitCode).toBe(1);
    expect(bad.stdout).toMatch(new RegExp(`BROKEN +${broken.address.replace(/\./g, '\\.')} +shop/web-1: .*${broken.hostIf}`));
    expect(bad.stdout).toContain('4 of 5 pods are as planned');
  });

  type Allocation = { address: string; eniId: string; table: number; pod: { name: string } };
  const allocationOf = async (name: string): Promise<Allocation> => JSON.parse((await ctl('status', '--json')).stdout).allocations.find((a: Allocation) => a.pod.name === name);
  const doctor = async (pod: string) => {
    const r = await ctl('doctor', pod, '--json');
    return { exitCode: r.exitCode, report: JSON.parse(r.stdout) as { broken?: { check: string; says: string; command: string }; findings: Array<{ check: string; ok: boolean }> }, text: (await ctl('doctor', pod)).stdout };
  };

  it('doctor finds every link of a healthy pod as planned, the cloud included', async () => {
    const { exitCode, report, text } = await doctor('shop/web-0');
    expect(exitCode, JSON.stringify(report)).toBe(0);
    expect(report.broken).toBeUndefined();
    expect(report.findings.find((f) => f.check === 'cloud')?.ok).toBe(true);
    expect(text).toContain('every link of the path is as planned');
  });

  it('doctor names the broken link of each pod broken on purpose, and the command that shows it', async () => {
    const [web2, web3, web4] = await Promise.all(['web-2', 'web-3', 'web-4'].map(allocationOf));
    // web-1's veth was deleted above (its pod end went with it); web-2 loses its host route, web-3 its rule to its ENI's table, and
    // web-4's address is taken off its ENI in the cloud, behind the agent's back.
    await ip(node.ns, 'route', 'del', `${web2!.address}/32`);
    await ip(node.ns, 'rule', 'del', 'from', `${web3!.address}/32`, 'pref', '1536');
    const vpc = vpcClient(lab.emulator);
    const r = await vpc.UnassignPrivateIpAddresses({ NetworkInterfaceId: web4!.eniId, PrivateIpAddresses: [{ PrivateIpAddress: web4!.address }] });
    expect(await waitTask(vpc, r.RequestId)).toBe('SUCCESS');
    const expected: Array<[string, string, string]> = [
      ['shop/web-1', 'pod interface', 'address show dev eth0'],
      ['shop/web-2', 'host route', `ip route show ${web2!.address}`],
      ['shop/web-3', 'rule from the pod', `ip rule show from ${web3!.address}`],
      ['shop/web-4', 'cloud', 'DescribeNetworkInterfaces'],
    ];
    for (const [pod, check, command] of expected) {
      const { exitCode, report, text } = await doctor(pod);
      expect(exitCode, `${pod}: ${JSON.stringify(report)}`).toBe(1);
      expect(report.broken?.check, pod).toBe(check);
      expect(report.broken?.command, pod).toContain(command);
      expect(text).toContain(`first broken link: ${check}`);
    }
    // Every pod at once: the four broken ones named, the healthy one not.
    const all = await ctl('doctor');
    expect(all.exitCode).toBe(1);
    expect(all.stdout).toMatch(/ok +\S+ +shop\/web-0/);
    expect(all.stdout).toContain('1 of 5 pods have every link of their path as planned');
  });

  it('doctor names a downed ENI link for the pods on it', async () => {
    const web0 = await allocationOf('web-0');
    const eni = JSON.parse((await ctl('status', '--json')).stdout).enis.find((e: { id: string }) => e.id === web0.eniId);
    await ip(node.ns, 'link', 'set', eni.ifName, 'down');
    try {
      const { report } = await doctor('shop/web-0');
      expect(report.broken?.check).toBe('ENI link');
      expect(report.broken?.says).toContain(`${eni.ifName} is down`);
    } finally {
      await ip(node.ns, 'link', 'set', eni.ifName, 'up');
    }
  });

  it('says where it looked when the agent is not there', async () => {
    const r = await execa(`${REPO}dist/bin/eni-cnictl`, ['--health-address', '127.0.0.1:1', 'status'], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('127.0.0.1:1/status');
  });
});
