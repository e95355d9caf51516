// Crashes and races on a lab node: the agent killed mid-burst, DEL while the agent is away, ADD and DEL
// racing for one container. No address is lost or given twice. (GC racing an ADD in flight is forced in
// agent/agent.test.ts, where the ADD can be held at the right moment.)
import { afterEach, describe, expect, it } from 'vitest';
import { Lab, pings, type LabNode } from '../hack/lab/lab.ts';
import type { AgentSettings } from '../hack/lab/node-agent.ts';
import { ip } from '../hack/lab/sh.ts';
import { until } from './eventually.ts';

let lab: Lab | undefined;
afterEach(async () => {
  await lab?.down();
  lab = undefined;
});

async function upWith(settings: AgentSettings, taskMs = 30): Promise<LabNode> {
  lab = await Lab.up({ nodes: 1, taskMs, agents: settings });
  return lab.nodes[0]!;
}


/** Secondary addresses the cloud has put on the node's ENIs. */
function cloudAddresses(node: LabNode): string[] {
  return lab!.emulator
    .state()
    .networkInterfaces.filter((e) => e.Attachment?.InstanceId === node.instanceId && !e.Primary)
    .flatMap((e) => e.PrivateIpAddressSet.filter((ip) => !ip.Primary).map((ip) => ip.PrivateIpAddress));
}

const env = (ns: string, containerId: string) => ({ containerId, netns: `/var/run/netns/${ns}`, ifName: 'eth0' });
const addressOf = (r: { result?: Record<string, unknown> | undefined }) => (r.result!.ips as Array<{ address: string }>)[0]!.address.split('/')[0]!;

describe('crashes and races', () => {
  it('loses and duplicates no address when the agent is killed during a burst of ADDs', async () => {
    const node = await upWith({ minWarm: 2, maxWarm: 4 }, 60);
    const agent = node.agent!;
    const pods = await Promise.all(Array.from({ length: 12 }, (_, i) => lab!.addPod(`burst${i}`)));
    const burst = Promise.all(pods.map((ns, i) => agent.cni('ADD', env(ns, `c${i}`))));
    await new Promise((r) => setTimeout(r, 250));
    await agent.stop('SIGKILL');
    const first = await burst;
    // The kill must have cut some ADDs short, or this test proves nothing.
    expect(first.some((r) => r.code !== 0)).toBe(true);
    await agent.start();

    // As a runtime does: an ADD that failed is cleaned up with DEL and tried again.
    const final = await Promise.all(
      first.map(async (r, i) => {
        if (r.code === 0) return r;
        expect((await agent.cni('DEL', env(pods[i]!, `c${i}`))).code).toBe(0);
        return agent.cni('ADD', env(pods[i]!, `c${i}`));
      }),
    );
    for (const r of final) expect(r.code, r.stdout).toBe(0);
    const addresses = final.map(addressOf);
    expect(new Set(addresses).size).toBe(12);
    // The pods that had their address before the crash kept it.
    first.forEach((r, i) => {
      if (r.code === 0) expect(addresses[i]).toBe(addressOf(r));
    });
    expect(node.agent!.allocations().map((a) => a.address).sort()).toEqual([...addresses].sort());
    for (const address of addresses) expect(cloudAddresses(node)).toContain(address);
    for (const [i, ns] of pods.entries()) {
      const check = await agent.cni('CHECK', env(ns, `c${i}`), { ...agent.netConf(), prevResult: final[i]!.result });
      expect(check.code, check.stdout).toBe(0);
    }
    expect(await pings(pods[0]!, addresses[11]!)).toBe(true);

    // Every pod gone: nothing stays allocated, no rule or veth is left behind.
    const deleted = await Promise.all(pods.map((ns, i) => agent.cni('DEL', env(ns, `c${i}`))));
    for (const r of deleted) expect(r.code, r.stdout).toBe(0);
    expect(node.agent!.allocations()).toEqual([]);
    expect(await ip(node.ns, 'rule', 'show')).not.toMatch(/10\.0\.1[67]\./);
    // The veths go just after their DELs are answered (a veth's deletion waits for the kernel, which the
    // answer need not), a dozen at once through the agent's worker threads.
    await until('no pod veth left', () => ip(node.ns, '-o', 'link', 'show'), (links) => !/: eni[0-9a-f]{11}@/.test(links), 5_000);
  });

  it('tears a pod down with the agent away, and frees its address when the agent is back', async () => {
    const node = await upWith({ minWarm: 2, maxWarm: 4 });
    const agent = node.agent!;
    const ns = await lab!.addPod('orphan');
    const added = await agent.cni('ADD', env(ns, 'orphan'));
    expect(added.code).toBe(0);
    const hostIf = (added.result!.interfaces as Array<{ name: string }>)[0]!.name;
    await agent.stop('SIGTERM');

    const del = await agent.cni('DEL', env(ns, 'orphan'), { ...agent.netConf(), prevResult: added.result });
    expect(del.code, del.stdout).toBe(0);
    expect(await ip(node.ns, '-o', 'link', 'show')).not.toContain(hostIf);
    expect(node.agent!.allocations().map((a) => a.containerId)).toContain('orphan');

    await agent.start();
    expect(node.agent!.allocations().map((a) => a.containerId)).not.toContain('orphan');
  });

  it('ends consistent when ADD and DEL race for the same container', async () => {
    const node = await upWith({ minWarm: 4, maxWarm: 8 });
    const agent = node.agent!;
    const pods = await Promise.all(Array.from({ length: 6 }, (_, i) => lab!.addPod(`race${i}`)));
    await Promise.all(pods.map((ns, i) => Promise.all([agent.cni('ADD', env(ns, `r${i}`)), agent.cni('DEL', env(ns, `r${i}`))])));
    const links = await ip(node.ns, '-o', 'link', 'show');
    const held = node.agent!.allocations();
    for (const [i, ns] of pods.entries()) {
      const allocation = held.find((a) => a.containerId === `r${i}`);
      if (allocation) {
        expect(links).toContain(allocation.hostIf);
        const check = await agent.cni('CHECK', env(ns, `r${i}`), { ...agent.netConf(), prevResult: { cniVersion: '1.1.0', ips: [{ address: `${allocation.address}/32` }] } });
        expect(check.code, check.stdout).toBe(0);
      }
    }
    expect(new Set(held.map((a) => a.address)).size).toBe(held.length);
    expect(links.match(/: eni[0-9a-f]{11}@/g)?.length ?? 0).toBe(held.length);
  });
});
