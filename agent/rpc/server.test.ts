// The agent's socket against garbage: every malformed request gets a refusal naming what was wrong.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok } from '../../shared/protocol.ts';
import { serveSocket } from './server.ts';

let dir: string;
let server: Server;

beforeAll(async () => {
  dir = mkdtempSync(`${tmpdir()}/eni-cni-rpc-`);
  server = await serveSocket(`${dir}/agent.sock`, async (body) => {
    if (body.op === 'status') return ok({ ready: true });
    throw new Error(`cannot ${body.op} container ${'containerId' in body ? body.containerId : ''}`);
  }, () => {});
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

function send(raw: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = connect(`${dir}/agent.sock`);
    let answer = '';
    socket.on('connect', () => socket.end(raw));
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('close', () => resolve(JSON.parse(answer) as Record<string, unknown>));
    socket.on('error', reject);
  });
}

describe('agent socket', () => {
  it('is for root only', () => {
    expect(statSync(`${dir}/agent.sock`).mode & 0o777).toBe(0o600);
  });

  it('answers a valid request', async () => {
    expect(await send('{"v":1,"body":{"op":"status"}}\n')).toEqual({ v: 1, ok: true, ready: true });
  });

  it.each([
    ['not JSON', 'hello\n', 'not JSON'],
    ['an empty request', '', 'empty request'],
    ['an unknown op', '{"v":1,"body":{"op":"explode"}}\n', 'body.op'],
    ['a missing field', '{"v":1,"body":{"op":"add","containerId":"c1","ifName":"eth0"}}\n', 'body.netns'],
    ['a wrong type', '{"v":1,"body":{"op":"del","containerId":7,"ifName":"eth0"}}\n', 'body.containerId'],
  ])('refuses %s as bad-request, saying where', async (_what, raw, where) => {
    const answer = await send(raw);
    expect(answer).toMatchObject({ ok: false, error: { code: 'bad-request' } });
    expect((answer.error as { message: string }).message).toContain(where);
  });

  it('refuses a protocol version it does not speak', async () => {
    expect(await send('{"v":2,"body":{"op":"status"}}\n')).toMatchObject({ ok: false, error: { code: 'unsupported-version' } });
  });

  it('refuses a request too long', async () => {
    expect(await send(`{"v":1,"body":{"op":"status","pad":"${'x'.repeat(70_000)}"}}\n`)).toMatchObject({ error: { code: 'bad-request' } });
  });

  it('turns a handler failure into an internal refusal naming the container', async () => {
    const answer = await send('{"v":1,"body":{"op":"del","containerId":"c9","ifName":"eth0"}}\n');
    expect(answer).toMatchObject({ ok: false, error: { code: 'internal', message: 'cannot del container c9' } });
  });
});
