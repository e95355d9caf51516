// A real runtime: containerd's CRI runs pod sandboxes on a lab node through the installed eni-cni
// plugin and conflist; stopping and removing them frees their addresses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, type Containerd } from '../hack/cri/containerd.ts';
import type { CriClient } from '../hack/cri/cri-client.ts';
import { Lab, pings, whoamiFrom, type LabNode } from '../hack/lab/lab.ts';
import { run } from '../hack/lab/sh.ts';

let lab: Lab;
let node: LabNode;
let containerd: Containerd;
let cri: CriClient;


beforeAll(async () => {
  lab = await Lab.up({ nodes: 2, taskMs: 30, agents: { minWarm: 3, maxWarm: 6 } });
  node = lab.nodes[0]!;
  containerd = await startContainerd({ cniBinDir: node.agent!.binDir, cniConfDir: node.agent!.confDir, netnsMountsUnder: 'host', netns: node.ns });
  cri = containerd.client();
});

afterAll(async () => {
  await containerd?.stop();
  await lab?.down();
});

describe('containerd on a lab node', () => {
  it('runs pod sandboxes with VPC addresses that reach each other, the other node and the internet', async () => {
    // eni-cni first, portmap and bandwidth chained after it: containerd hands them our result.
    expect(node.agent!.conflist().plugins.map((p) => p.type)).toEqual(['eni-cni', 'portmap', 'bandwidth']);
    const ids = await Promise.all(['web-0', 'web-1', 'web-2'].map((name) => cri.runPodSandbox({ name, namespace: 'shop' })));
    const statuses = await Promise.all(ids.map((id) => cri.podSandboxStatus(id, { verbose: true })));
    for (const s of statuses) {
      expect(s.state).toBe('SANDBOX_READY');
      expect(s.ip).toMatch(/^10\.0\.1[67]\./);
    }
    expect(new Set(statuses.map((s) => s.ip)).size).toBe(3);
    expect(node.agent!.allocations().map((a) => a.pod?.name).sort()).toEqual(['web-0', 'web-1', 'web-2']);

    const netns = statuses[0]!.netnsPath!.split('/').pop()!;
    expect(await pings(netns, statuses[1]!.ip)).toBe(true);
    expect(await pings(netns, lab.nodes[1]!.privateIp)).toBe(true);
    expect(await whoamiFrom(netns)).toBe(node.publicIp);
    // The sandbox's own view: its eth0 carries the address the CRI reports.
    const inside = await run('nsenter', [`--net=${statuses[2]!.netnsPath}`, 'ip', '-4', '-o', 'address', 'show', 'dev', 'eth0']);
    expect(inside).toContain(`${statuses[2]!.ip}/32`);

    for (const id of ids) {
      await cri.stopPodSandbox(id);
      await cri.removePodSandbox(id);
    }
    expect(node.agent!.allocations()).toEqual([]);
  });
});
