// The plugin's side of the socket when the agent is not there to answer: the runtime shows only the
// message of a CNI error, so each says what to do as well as what happened. Over Node's socket here (the
// listeners live in this process); test/plugin-agent-call.test.ts puts the native call through the same.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CniCode, type CniError } from '../shared/cni.ts';
import { askAgent } from './agent-client.ts';

let dir: string;
let server: Server | undefined;
const connections: Socket[] = [];
beforeEach(() => {
  dir = mkdtempSync(`${tmpdir()}/eni-cni-client-`);
});
afterEach(async () => {
  for (const c of connections.splice(0)) c.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const add = { op: 'add', containerId: 'c0ffee', netns: '/var/run/netns/cni-1', ifName: 'eth0', args: {} } as never;
const failure = (socket: string, timeoutMs = 1000) => askAgent(socket, add, timeoutMs, undefined).then(() => undefined, (e: CniError) => e);

describe('asking an agent that is not answering', () => {
  it('with no socket (the agent between two versions): try again later, naming the socket and the container', async () => {
    const e = await failure(`${dir}/agent.sock`);
    expect(e?.code).toBe(CniCode.TryAgainLater);
    expect(e?.message).toBe(`cannot reach the agent at ${dir}/agent.sock to add for container c0ffee: ENOENT; try again later`);
  });

  it('with a socket that hangs up without a word, or never answers: try again later', async () => {
    server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server!.listen(`${dir}/agent.sock`, r));
    const hungUp = await failure(`${dir}/agent.sock`);
    expect(hungUp?.code).toBe(CniCode.TryAgainLater);
    expect(hungUp?.message).toMatch(/add for container c0ffee.*; try again later$/);
    await new Promise<void>((r) => server!.close(() => r()));
    // Reads the request and keeps the connection open without a word.
    server = createServer({ allowHalfOpen: true }, (c) => connections.push(c.resume()));
    await new Promise<void>((r) => server!.listen(`${dir}/agent.sock`, r));
    const silent = await failure(`${dir}/agent.sock`, 200);
    expect(silent?.code).toBe(CniCode.TryAgainLater);
    expect(silent?.message).toBe(`the agent at ${dir}/agent.sock did not answer add for container c0ffee within 200 ms; try again later`);
  });

  it('with a file that is not a socket at the path: a configuration error, not a retry', async () => {
    writeFileSync(`${dir}/agent.sock`, 'not a socket');
    const e = await failure(`${dir}/agent.sock`);
    expect(e?.code).toBe(CniCode.InvalidConfig);
    expect(e?.message).toContain('is not a unix socket');
  });
});
