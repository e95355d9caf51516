import { afterEach, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveHealth } from './health.ts';

let server: Server | undefined;
afterEach(async () => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

describe('health endpoint', () => {
  it('is live from the start, ready only when the agent says so, and shows its status', async () => {
    let ready = false;
    server = await serveHealth('127.0.0.1', 0, { ready: () => (ready ? { ok: true } : { ok: false, why: 'learning the node' }), status: () => ({ counts: { free: 3 } }) });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toContain('learning the node');
    ready = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${base}/status`)).json()).toEqual({ counts: { free: 3 } });
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
  });

  it('names the address it cannot listen on', async () => {
    server = await serveHealth('127.0.0.1', 0, { ready: () => ({ ok: true }), status: () => ({}) });
    const { port } = server.address() as AddressInfo;
    await expect(serveHealth('127.0.0.1', port, { ready: () => ({ ok: true }), status: () => ({}) })).rejects.toThrow(`127.0.0.1:${port}`);
  });
});
