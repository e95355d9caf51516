import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileCheckpoint } from './checkpoint.ts';
import { replaceNatively, replaceWithFs } from './replace-file.ts';
import type { Allocation } from './store.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(`${tmpdir()}/eni-checkpoint-`);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const allocation = (n: number) => ({ containerId: `c${n}`, ifName: 'eth0', address: `10.0.16.${n}`, eniId: 'eni-1', hostIf: `eni${n}`, netns: `/var/run/netns/p${n}`, allocatedAt: n, table: 2003 }) as Allocation;
const state = (n: number) => ({ allocations: Array.from({ length: n }, (_, i) => allocation(i + 1)), cooling: { '10.0.16.99': 1000 + n } });

describe.each([
  ['node:fs', replaceWithFs],
  ["the agent's addon", replaceNatively],
])('the checkpoint, written with %s', (_, replace) => {
  it('gives back what was saved, and nothing for a file not there yet', async () => {
    const file = `${dir}/state/checkpoint.json`;
    const checkpoint = new FileCheckpoint(file, { replace });
    expect(checkpoint.load()).toEqual({ allocations: [], cooling: {} });
    await checkpoint.save(state(2));
    expect(new FileCheckpoint(file, { replace }).load()).toEqual(state(2));
    // Readable by root alone, and no temporary file left beside it.
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(`${dir}/state`)).toEqual(['checkpoint.json']);
  });

  it('takes the state when save is called, and folds saves made during a write into the next one', async () => {
    let writes = 0;
    const checkpoint = new FileCheckpoint(`${dir}/checkpoint.json`, { onWritten: () => writes++, replace });
    const live = state(1);
    const first = checkpoint.save(live);
    // Changed after the call: what is written is the state as it was when save was called.
    live.allocations.push(allocation(50));
    const later = [2, 3, 4, 5].map((n) => checkpoint.save(state(n)));
    await Promise.all([first, ...later]);
    expect(writes).toBe(2);
    expect(checkpoint.load()).toEqual(state(5));
    // A save once all is written starts a write of its own.
    await checkpoint.save(state(6));
    expect(writes).toBe(3);
    expect(checkpoint.load()).toEqual(state(6));
    await checkpoint.settled();
  });

  it('rejects, naming the file, when it cannot be written, and writes again once it can', async () => {
    const file = `${dir}/state/checkpoint.json`;
    const checkpoint = new FileCheckpoint(file, { replace });
    await checkpoint.save(state(1));
    rmSync(`${dir}/state`, { recursive: true });
    await expect(checkpoint.save(state(2))).rejects.toThrow(`writing the checkpoint ${file}: ENOENT`);
    mkdirSync(`${dir}/state`);
    await checkpoint.save(state(3));
    expect(JSON.parse(readFileSync(file, 'utf8')).allocations).toHaveLength(3);
  });

  it('leaves no temporary file when the file cannot be replaced', async () => {
    // A directory with something in it where the file should be: the rename fails.
    const file = `${dir}/checkpoint.json`;
    mkdirSync(`${file}/in-the-way`, { recursive: true });
    await expect(new FileCheckpoint(file, { replace }).save(state(1))).rejects.toThrow(`writing the checkpoint ${file}`);
    expect(readdirSync(dir)).toEqual(['checkpoint.json']);
  });

  it('refuses a file of another format, naming it', () => {
    const file = `${dir}/checkpoint.json`;
    writeFileSync(file, JSON.stringify({ format: 9, allocations: [] }));
    expect(() => new FileCheckpoint(file, { replace }).load()).toThrow(`checkpoint ${file} is not in format 1 or 2`);
  });
});
