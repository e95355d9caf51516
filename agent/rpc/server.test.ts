// The agent's socket against garbage: every malformed request gets a refusal naming what was wrong.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok } from '../../shared/protocol.ts';
import { serveSocket } from './server.ts';

let dir: string;
let server: Server;
/** every request the handler was given */
const handled: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(`${tmpdir()}/eni-cni-rpc-`);
  server = await serveSocket(`${dir}/agent.sock`, async (body) => {
    handled.push(body.op);
    if (body.op === 'status') return ok({ ready: true });
    if (body.op === 'gc') return ok({ released: body.valid.length });
    throw new Error(`cannot ${body.op} container ${'containerId' in body ? body.containerId : ''}`);
  }, () => {});
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

function send(raw: string, path = `${dir}/agent.sock`): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let answer = '';
    socket.on('connect', () => socket.end(raw));
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('close', () => resolve(JSON.parse(answer) as Record<string, unknown>));
    // A refused request may be cut off while it is still being sent: the answer came first.
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
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

  it('serves a newer protocol version as far as it knows it (versions only add), and refuses one that does not exist', async () => {
    expect(await send('{"v":2,"body":{"op":"status","newField":true}}\n')).toEqual({ v: 1, ok: true, ready: true });
    expect(await send('{"v":3,"body":{"op":"reticulate"}}\n')).toMatchObject({ ok: false, error: { code: 'bad-request' } });
    for (const v of [0, -1, 1.5]) expect(await send(`{"v":${v},"body":{"op":"status"}}\n`)).toMatchObject({ ok: false, error: { code: 'unsupported-version' } });
  });

  it('refuses a request too long, and does not carry it out when the client then half-closes', async () => {
    handled.length = 0;
    // No newline: the request only ends with the client's half-close, after the refusal.
    expect(await send(`{"v":1,"body":{"op":"status","pad":"${'x'.repeat(5 * 1024 * 1024)}"}}`)).toMatchObject({ error: { code: 'bad-request', message: expect.stringContaining('longer than') } });
    expect(await send(`{"v":1,"body":{"op":"status","pad":"${'x'.repeat(5 * 1024 * 1024)}"}}\n`)).toMatchObject({ error: { code: 'bad-request' } });
    expect(handled).toEqual([]);
  });

  it('serves the GC of a node with thousands of attachments', async () => {
    const valid = Array.from({ length: 5000 }, (_, i) => ({ containerId: `${'f'.repeat(56)}${String(i).padStart(8, '0')}`, ifName: 'eth0' }));
    expect(await send(`${JSON.stringify({ v: 1, body: { op: 'gc', valid } })}\n`)).toEqual({ v: 1, ok: true, released: 5000 });
  });

  it('refuses container ids and interface names the CNI spec does not allow', async () => {
    const del = (containerId: string, ifName: string) => send(`${JSON.stringify({ v: 1, body: { op: 'del', containerId, ifName } })}\n`);
    for (const [id, ifName, where] of [['c1', 'eth0\nlink del lo', 'interface name'], ['../../x', 'eth0', 'container id'], ['c1', '', 'interface name']]) {
      const answer = await del(id!, ifName!);
      expect(answer).toMatchObject({ ok: false, error: { code: 'bad-request' } });
      expect((answer.error as { message: string }).message).toContain(where);
    }
  });

  it('turns a handler failure into an internal refusal naming the container', async () => {
    const answer = await send('{"v":1,"body":{"op":"del","containerId":"c9","ifName":"eth0"}}\n');
    expect(answer).toMatchObject({ ok: false, error: { code: 'internal', message: 'cannot del container c9' } });
  });
});

describe('agent socket under abuse', () => {
  const servers: Server[] = [];
  const serve = async (name: string, limits: { requestTimeoutMs: number; maxPending: number }) => {
    servers.push(await serveSocket(`${dir}/${name}.sock`, async () => ok({ ready: true }), () => {}, { maxRequestBytes: 1024, maxConnections: 1000, ...limits }));
    return `${dir}/${name}.sock`;
  };
  afterAll(() => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))));

  const idle = (path: string) =>
    new Promise<Socket>((resolve, reject) => {
      const socket = connect(path);
      socket.on('connect', () => resolve(socket));
      socket.on('error', reject);
    });
  const closedWithin = (socket: Socket, ms: number) =>
    new Promise<boolean>((r) => {
      if (socket.destroyed) return r(true);
      const timer = setTimeout(() => r(false), ms);
      socket.once('close', () => (clearTimeout(timer), r(true)));
    });

  it('cuts off a connection that sends no request in time', async () => {
    const socket = await idle(await serve('slow', { requestTimeoutMs: 300, maxPending: 20 }));
    const started = Date.now();
    expect(await closedWithin(socket, 5000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('cuts off a client that has its answer and does not go', async () => {
    const socket = await idle(await serve('lingering', { requestTimeoutMs: 300, maxPending: 20 }));
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    socket.write('{"v":1,"body":{"op":"status"}}\n'); // and never ends its side
    expect(await closedWithin(socket, 5000)).toBe(true);
    expect(JSON.parse(answer)).toEqual({ v: 1, ok: true, ready: true });
  });

  it('cuts off a client trickling a byte at a time after its answer, at its deadline', async () => {
    const socket = await idle(await serve('trickle', { requestTimeoutMs: 500, maxPending: 20 }));
    socket.on('error', () => undefined);
    socket.write('{"v":1,"body":{"op":"status"}}\n');
    const trickle = setInterval(() => socket.writable && socket.write(' '), 100);
    try {
      expect(await closedWithin(socket, 3000)).toBe(true);
    } finally {
      clearInterval(trickle);
    }
  });

  it('closes a connection whose request is too long as soon as it is refused, however much more it sends', async () => {
    const socket = await idle(await serve('flooded', { requestTimeoutMs: 60_000, maxPending: 20 }));
    socket.on('error', () => undefined);
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    const pad = Buffer.alloc(64 * 1024, 'x');
    const pump = () => {
      while (!socket.destroyed && socket.write(pad));
      if (!socket.destroyed) socket.once('drain', pump);
    };
    pump();
    expect(await closedWithin(socket, 3000)).toBe(true);
    expect(answer).toContain('longer than 1024 bytes');
  });

  it('keeps answering with many idle connections open: those waiting longest are cut off', async () => {
    const path = await serve('crowded', { requestTimeoutMs: 60_000, maxPending: 20 });
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 100; i++) sockets.push(await idle(path));
      for (const s of sockets) s.on('error', () => undefined);
      expect(await send('{"v":1,"body":{"op":"status"}}\n', path)).toEqual({ v: 1, ok: true, ready: true });
      // Long before their own timeout: the cap, not the clock, closed them.
      const closed = await Promise.all(sockets.map((s) => closedWithin(s, 1000)));
      expect(closed.slice(0, 80).every(Boolean)).toBe(true);
      expect(closed.slice(-19).some(Boolean)).toBe(false);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});
