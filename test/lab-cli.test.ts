// `npm run lab -- up | status | exec | down` as a person uses it, including clean-up after a crashed lab.
import { existsSync, readdirSync } from 'node:fs';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { CriClient } from '../hack/cri/cri-client.ts';
import { podNetns } from '../hack/lab/cluster/node-runner.ts';
import { listNamespaces } from '../hack/lab/sh.ts';
import { until } from './eventually.ts';

const lab = (...args: string[]) => execa('npx', ['tsx', 'hack/lab/main.ts', ...args], { reject: false });

describe('lab command', () => {
  it('brings a lab up, reports it, and removes it all after its process was killed', async () => {
    const up = await lab('up', '--nodes', '3', '--no-agents');
    let prefix = '';
    expect(up.exitCode, up.stderr).toBe(0);
    expect(up.stdout).toContain('node-3');
    try {
      const status = JSON.parse((await lab('status', '--json')).stdout) as { pid: number; prefix: string; nodes: Array<{ ns: string; instanceId: string }> };
      prefix = status.prefix;
      expect(status.nodes).toHaveLength(3);
      const namespaces = await listNamespaces();
      for (const node of status.nodes) expect(namespaces).toContain(node.ns);
      expect(namespaces).toContain(`${status.prefix}-vpc`);
      expect((await lab('up')).exitCode).toBe(1);

      // A crash: the lab's process dies without cleaning up.
      process.kill(status.pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      expect((await lab('status')).stdout).toContain('no lab is running');
      expect(await listNamespaces()).toContain(`${status.prefix}-vpc`);
    } finally {
      const down = await lab('down');
      expect(down.exitCode, down.stderr).toBe(0);
    }
    expect(prefix).not.toBe('');
    expect((await listNamespaces()).filter((ns) => ns.startsWith(`${prefix}-`))).toEqual([]);
  });

  it('runs a cluster that kubectl reaches, looks from inside a pod, and leaves nothing after a crash', async () => {
    const up = await lab('up', '--nodes', '1');
    expect(up.exitCode, up.stderr).toBe(0);
    let pid = 0;
    let prefix: string | undefined;
    let netns: string | undefined;
    try {
      const status = JSON.parse((await lab('status', '--json')).stdout) as {
        pid: number;
        prefix: string;
        kubeconfig: string;
        internet: { whoamiUrl: string };
        nodes: Array<{ name: string; publicIp: string; criSocket: string }>;
      };
      pid = status.pid;
      prefix = status.prefix;
      expect(up.stdout).toContain(status.kubeconfig);
      const kubectl = (args: string[], input?: string) => execa('kubectl', args, { env: { KUBECONFIG: status.kubeconfig }, reject: false, ...(input ? { input } : {}) });
      expect((await kubectl(['get', 'nodes'])).stdout).toMatch(/node-1\s+Ready/);
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'looker', namespace: 'default', annotations: { 'tke.cloud.tencent.com/networks': 'tke-route-eni' } },
        spec: { containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'], resources: { requests: { 'tke.cloud.tencent.com/eni-ip': '1' } } }] },
      };
      expect((await kubectl(['apply', '-f', '-'], JSON.stringify(pod))).exitCode).toBe(0);
      const podIp = await until(
        'looker running',
        async () => JSON.parse((await kubectl(['get', 'pod', 'looker', '-o', 'json'])).stdout) as { status?: { phase?: string; podIP?: string }; metadata: { uid: string } },
        (p) => p.status?.phase === 'Running' && Boolean(p.status.podIP),
        45_000,
      );
      const address = await lab('exec', 'default/looker', '--', 'ip', '-4', '-o', 'address', 'show', 'dev', 'eth0');
      expect(address.exitCode, address.stderr).toBe(0);
      expect(address.stdout).toContain(`${podIp.status!.podIP}/32`);
      const seen = await lab('exec', 'default/looker', '--', 'wget', '-qO-', status.internet.whoamiUrl);
      expect(seen.stdout.trim()).toBe(status.nodes[0]!.publicIp);
      // A command's own exit code comes back; a pod that does not exist is named.
      expect((await lab('exec', 'default/looker', '--', 'false')).exitCode).toBe(1);
      const missing = await lab('exec', 'default/nobody', '--', 'ip', 'addr');
      expect(missing.exitCode).toBe(1);
      expect(missing.stderr).toContain('default/nobody');

      const cri = new CriClient(status.nodes[0]!.criSocket);
      netns = await podNetns(cri, podIp.metadata.uid).finally(() => cri.close());
      expect(netns && existsSync(netns)).toBe(true);
      // A crash: the lab's process dies; its node's containerd, agent and ipamd die with it.
      process.kill(status.pid, 'SIGKILL');
      await until('the lab process gone', () => (existsSync(`/proc/${status.pid}`) ? 'alive' : 'gone'), (s) => s === 'gone');
    } finally {
      const down = await lab('down');
      expect(down.exitCode, down.stderr).toBe(0);
    }
    // Nothing of the lab's containerd is left: not its pod's netns, not its instance dir.
    expect(prefix).toBeDefined();
    expect(netns && existsSync(netns)).toBe(false);
    expect(readdirSync('/tmp').filter((d) => d.startsWith(`eni-cni-containerd-${pid}-`))).toEqual([]);
    const orphans = await execa('pgrep', ['-f', `/run/eni-cni-lab/${prefix!}/`], { reject: false });
    expect(orphans.stdout.trim(), 'no agent or ipamd of the lab outlives it').toBe('');
  }, 120_000);
});
