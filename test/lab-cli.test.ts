// `npm run lab -- up | status | down` as a person uses it, including clean-up after a crashed lab.
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { listNamespaces } from '../hack/lab/sh.ts';

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
});
