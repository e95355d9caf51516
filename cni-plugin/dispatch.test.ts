// The plugin's verbs without a process: env, stdin and stdout handed to dispatch, a real unix socket
// served by the agent's own RPC server with a scripted handler.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serveSocket } from '../agent/rpc/server.ts';
import { hostIfName } from '../shared/names.ts';
import { ok, refuse, type Response } from '../shared/protocol.ts';
import type { RequestBody } from '../shared/requests.ts';
import { dispatch } from './dispatch.ts';

let dir: string;
let server: Server | undefined;
let seen: RequestBody[];

beforeEach(() => {
  dir = mkdtempSync(`${tmpdir()}/eni-cni-plugin-`);
  seen = [];
});
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function agent(answer: (body: RequestBody) => Response): Promise<void> {
  server = await serveSocket(`${dir}/agent.sock`, async (body) => {
    seen.push(body);
    return answer(body);
  }, () => {});
}

async function run(command: string, conf: object | string, env: Record<string, string> = {}) {
  let out = '';
  const code = await dispatch({
    env: { CNI_COMMAND: command, CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/p1', CNI_IFNAME: 'eth0', ...env },
    stdin: typeof conf === 'string' ? conf : JSON.stringify(conf),
    write: (t) => (out += t),
  });
  return { code, json: out ? (JSON.parse(out) as Record<string, unknown>) : undefined };
}

const conf = (extra: object = {}) => ({ cniVersion: '1.1.0', name: 'eni-cni', type: 'eni-cni', agentSocket: `${dir}/agent.sock`, ...extra });
const attachment = { address: '10.0.16.5', gateway: '169.254.1.1', mac: '0a:58:0a:00:10:05', hostIf: 'eni0123456789a', eniId: 'eni-1' };

describe('plugin dispatch', () => {
  it('asks the agent for ADD with the pod from CNI_ARGS and prints the result', async () => {
    await agent(() => ok({ attachment }));
    const r = await run('ADD', conf(), { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_UID=u1' });
    expect(r.code).toBe(0);
    expect(seen[0]).toEqual({ op: 'add', containerId: 'c1', netns: '/var/run/netns/p1', ifName: 'eth0', pod: { namespace: 'shop', name: 'web-0', uid: 'u1' } });
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      interfaces: [{ name: 'eni0123456789a' }, { name: 'eth0', mac: '0a:58:0a:00:10:05', sandbox: '/var/run/netns/p1' }],
      ips: [{ address: '10.0.16.5/32', gateway: '169.254.1.1', interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }],
      dns: {},
    });
  });

  it.each([
    ['no-address', 11],
    ['not-ready', 11],
    ['unknown-container', 3],
    ['datapath', 5],
    ['unsupported-mode', 100],
    ['internal', 999],
  ] as const)('turns the agent refusal %s into CNI code %i, keeping its message (saying to try again later for 11)', async (reason, code) => {
    await agent(() => refuse(reason, `because of ${reason} for c1`));
    const r = await run('ADD', conf());
    expect(r.code).toBe(1);
    // The runtime shows only the message: code 11's says what it means.
    expect(r.json).toEqual({ cniVersion: '1.1.0', code, msg: `because of ${reason} for c1${code === 11 ? '; try again later' : ''}` });
  });

  it('says try again later when the agent answers garbage or nothing', async () => {
    const r = await run('ADD', conf());
    expect(r.json).toMatchObject({ code: 11 });
    expect(String(r.json!.msg)).toContain(`${dir}/agent.sock`);
  });

  it.each([
    ['not json', '{', 6],
    ['an array', '[]', 6],
    ['no cniVersion', { name: 'x', type: 'eni-cni' }, 7],
    ['an unknown version', { cniVersion: '2.0.0', name: 'x', type: 'eni-cni' }, 1],
    ['a bad addTimeoutMs', { cniVersion: '1.0.0', name: 'x', type: 'eni-cni', addTimeoutMs: 'soon' }, 7],
  ])('refuses a config that is %s', async (_what, stdin, code) => {
    const r = await run('ADD', stdin);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code });
  });

  it('refuses missing or bad CNI variables with code 4', async () => {
    await agent(() => ok({ attachment }));
    expect((await run('ADD', conf(), { CNI_NETNS: '' })).json).toMatchObject({ code: 4, msg: expect.stringContaining('CNI_NETNS') });
    expect((await run('ADD', conf(), { CNI_IFNAME: 'an-interface-name-too-long' })).json).toMatchObject({ code: 4 });
    expect((await run('ADD', conf(), { CNI_ARGS: 'garbage' })).json).toMatchObject({ code: 4 });
    expect((await run('FROB', conf())).json).toMatchObject({ code: 4 });
  });

  it('answers VERSION without a config', async () => {
    expect((await run('VERSION', '')).json).toEqual({ cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });

  it('DEL succeeds with the agent away, and leaves a note for it where the agent reads them', async () => {
    mkdirSync(`${dir}/pending-del`); // the agent makes it when it starts
    const prevResult = { cniVersion: '1.1.0', interfaces: [{ name: 'enidoesnotexist' }, { name: 'eth0', sandbox: '/x' }], ips: [], routes: [], dns: {} };
    const r = await run('DEL', conf({ prevResult }));
    expect(r.code).toBe(0);
    const note = hostIfName('c1', 'eth0');
    expect(readdirSync(`${dir}/pending-del`)).toEqual([note]);
    expect(JSON.parse(readFileSync(`${dir}/pending-del/${note}`, 'utf8'))).toMatchObject({ containerId: 'c1', ifName: 'eth0' });
  });

  it('DEL with the agent away never makes the note directory (no agent ever ran there)', async () => {
    expect((await run('DEL', conf())).code).toBe(0);
    expect(existsSync(`${dir}/pending-del`)).toBe(false);
  });

  it('refuses an agentSocket that is not a socket with code 7, and writes nothing beside it', async () => {
    writeFileSync(`${dir}/not-a-socket`, '');
    for (const command of ['ADD', 'DEL']) {
      const r = await run(command, conf({ agentSocket: `${dir}/not-a-socket` }));
      expect(r.json, command).toMatchObject({ code: 7, msg: expect.stringContaining('not a unix socket') });
    }
    expect(readdirSync(dir)).toEqual(['not-a-socket']);
  });

  it.each([
    ['a newline in CNI_IFNAME', { CNI_IFNAME: 'eth0\nlink del lo' }, 'CNI_IFNAME'],
    ['a slash in CNI_IFNAME', { CNI_IFNAME: 'a/b' }, 'CNI_IFNAME'],
    ['".." as CNI_IFNAME', { CNI_IFNAME: '..' }, 'CNI_IFNAME'],
    ['a path in CNI_CONTAINERID', { CNI_CONTAINERID: '../../x' }, 'CNI_CONTAINERID'],
    ['a space in CNI_CONTAINERID', { CNI_CONTAINERID: 'a b' }, 'CNI_CONTAINERID'],
  ])('refuses %s with code 4 on ADD and CHECK; DEL succeeds without asking or writing', async (_what, env, name) => {
    await agent(() => ok({ attachment }));
    expect((await run('ADD', conf(), env)).json).toMatchObject({ code: 4, msg: expect.stringContaining(name) });
    expect((await run('CHECK', conf({ prevResult: {} }), env)).json).toMatchObject({ code: 4 });
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    mkdirSync(`${dir}/pending-del`);
    expect((await run('DEL', conf(), env)).code).toBe(0);
    expect(seen).toEqual([]);
    expect(readdirSync(`${dir}/pending-del`)).toEqual([]);
  });

  it.each([
    ['an addTimeoutMs past what a timer can wait', { addTimeoutMs: 2 ** 31 }],
    ['a relative agentSocket', { agentSocket: 'agent.sock' }],
  ])('refuses %s with code 7', async (_what, extra) => {
    expect((await run('ADD', conf(extra))).json).toMatchObject({ code: 7 });
  });

  it.each([
    ['a number', 5],
    ['ips that are not a list', { ips: 'x' }],
    ['an address that is not a string', { ips: [{ address: 5 }] }],
    ['an entry that is null', { ips: [null] }],
  ])('CHECK refuses a prevResult that is %s with code 7', async (_what, prevResult) => {
    await agent(() => ok());
    expect((await run('CHECK', conf({ prevResult }))).json).toMatchObject({ code: 7, msg: expect.stringContaining('prevResult') });
  });

  it('gives a clear error, not a crash, when the socket answers far too much', async () => {
    server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.write(`{"v":1,"ok":true,"pad":"${'x'.repeat(3 * 1024 * 1024)}`);
    });
    await new Promise<void>((r) => server!.listen(`${dir}/agent.sock`, r));
    const r = await run('ADD', conf());
    // Something other than the agent listens there: a configuration error, not a retry.
    expect(r.json).toMatchObject({ code: 7, msg: expect.stringContaining('longer than') });
  });

  it('maps a refusal it does not know (from a newer agent) to 999, keeping its message', async () => {
    await agent(() => ({ v: 1, ok: false, error: { code: 'from-the-future', message: 'c1: a new reason' } }));
    expect((await run('ADD', conf())).json).toMatchObject({ code: 999, msg: 'c1: a new reason' });
  });

  it('CHECK needs prevResult and sends its address', async () => {
    await agent(() => ok());
    expect((await run('CHECK', conf())).json).toMatchObject({ code: 7 });
    const prevResult = { cniVersion: '1.1.0', interfaces: [], ips: [{ address: '10.0.16.5/32' }], routes: [], dns: {} };
    expect((await run('CHECK', conf({ prevResult }))).code).toBe(0);
    expect(seen.at(-1)).toEqual({ op: 'check', containerId: 'c1', ifName: 'eth0', netns: '/var/run/netns/p1', address: '10.0.16.5' });
  });

  it('GC passes the valid attachments; STATUS says 50 when the agent cannot serve', async () => {
    await agent((body) => (body.op === 'status' ? ok({ ready: false }) : ok({ released: 2 })));
    const valid = [{ containerID: 'c2', ifname: 'eth0' }];
    expect((await run('GC', conf({ 'cni.dev/valid-attachments': valid }))).code).toBe(0);
    expect(seen.at(-1)).toEqual({ op: 'gc', valid: [{ containerId: 'c2', ifName: 'eth0' }] });
    expect((await run('GC', conf({ 'cni.dev/valid-attachments': [{ containerID: 3 }] }))).json).toMatchObject({ code: 7 });
    expect((await run('STATUS', conf())).json).toMatchObject({ code: 50 });
  });

  it('answers in the result shape of an older spec version', async () => {
    await agent(() => ok({ attachment }));
    const r = await run('ADD', conf({ cniVersion: '0.3.1' }));
    expect(r.json).toMatchObject({ cniVersion: '0.3.1', ips: [{ version: '4', address: '10.0.16.5/32' }] });
  });
});
