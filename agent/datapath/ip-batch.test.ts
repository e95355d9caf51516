// ipBatch against processes that misbehave: the agent must survive them.
import { describe, expect, it } from 'vitest';
import { ipBatch } from './ip-batch.ts';

describe('ipBatch', () => {
  it('reports a process that exits without reading its input, without a broken pipe reaching the agent', async () => {
    // A megabyte cannot sit in the pipe: the write fails with EPIPE once `false` has exited.
    const lines = Array.from({ length: 20_000 }, (_, i) => `link show dev pad${i}${'x'.repeat(40)}`);
    await expect(ipBatch(['false'], lines, 'plumbing into a namespace that refuses')).rejects.toThrow('plumbing into a namespace that refuses');
    await expect(ipBatch(['true'], lines, 'a batch that is never read', { force: true })).resolves.toBeUndefined();
  });

  it('names the batch and what ip said when a command fails', async () => {
    await expect(ipBatch(['ip'], ['link show dev nosuchlink0'], 'looking at nosuchlink0')).rejects.toThrow(/looking at nosuchlink0: .*nosuchlink0/);
  });
});
