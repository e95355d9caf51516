// What a hostile runtime, client or file can do to a node, against the built binaries on a lab node: the
// plugin run as a runtime runs it, the agent in the node, the emulated cloud. Each case broke a node or a
// pod once: a name made anew under a stale index, a namespace that is none, an ADD into a namespace whose
// interface another container owns, DEL deleting the node's links, names that inject or escape, a request
// too large, idle connections piling up, an answer too large, a credentials file quoted in an error.
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, pings, type LabNode } from '../hack/lab/lab.ts';
import { AGENT_BINARY, PLUGIN_BINARY } from '../hack/lab/node-agent.ts';
import { childEnv, ip } from '../hack/lab/sh.ts';
import { hostIfName } from '../shared/names.ts';

let lab: Lab;
let node: LabNode;
let scratch: string;

beforeAll(async () => {
  lab = await Lab.up({ nodes: 1, taskMs: 30, agents: { minWarm: 3, maxWarm: 6 } });
  node = lab.nodes[0]!;
  scratch = mkdtempSync(`${tmpdir()}/eni-cni-hostile-`);
});

afterAll(async () => {
  await lab?.down();
  rmSync(scratch, { recursive: true, force: true });
});

const env = (ns: string, containerId: string, ifName = 'eth0') => ({ containerId, netns: `/var/run/netns/${ns}`, ifName });
const addressOf = (r: { result?: Record<string, unknown> | undefined }) => (r.result!.ips as Array<{ address: string }>)[0]!.address.split('/')[0]!;
/** The pod subnets of the lab are /24s: their gateway is .1 (reached through the pod's own ENI). */
const gatewayOf = (address: string) => address.replace(/\.\d+$/, '.1');
const held = () => node.agent!.allocations().map((a) => a.containerId);
const nodeLinks = async () => (await ip(node.ns, '-o', 'link', 'show')).split('\n').map((l) => l.split(':')[1]!.trim().split('@')[0]!);

describe('names made anew', () => {
  it('serves a second ADD of a container after its DEL (the same veth name, a new link)', async () => {
    const ns = await lab.addPod('again');
    for (let round = 0; round < 3; round++) {
      const added = await node.agent!.cni('ADD', env(ns, 'again'));
      expect(added.code, added.stdout).toBe(0);
      expect(await pings(ns, gatewayOf(addressOf(added))), `round ${round}`).toBe(true);
      expect((await node.agent!.cni('DEL', env(ns, 'again'))).code).toBe(0);
    }
  });

  it('repairs a pod whose veth was deleted under it, when the runtime ADDs it again', async () => {
    const ns = await lab.addPod('repair');
    const first = await node.agent!.cni('ADD', env(ns, 'repair'));
    expect(first.code, first.stdout).toBe(0);
    await ip(node.ns, 'link', 'del', hostIfName('repair', 'eth0'));
    const again = await node.agent!.cni('ADD', env(ns, 'repair'));
    expect(again.code, again.stdout).toBe(0);
    expect(addressOf(again)).toBe(addressOf(first));
    expect(await pings(ns, gatewayOf(addressOf(again)))).toBe(true);
  });
});

describe('namespaces that are not a pod\'s', () => {
  it('refuses a stale namespace file and /dev/null with code 4, takes no address, and stays up', async () => {
    const stale = `/var/run/netns/${lab.prefix}-stale`;
    writeFileSync(stale, '');
    try {
      for (const netns of [stale, '/dev/null', stale, '/dev/null']) {
        const r = await node.agent!.cni('ADD', { containerId: 'nowhere', netns, ifName: 'eth0' });
        expect(r.result, netns).toMatchObject({ code: 4, msg: expect.stringContaining('not a network namespace') });
      }
    } finally {
      rmSync(stale, { force: true });
    }
    expect((await node.agent!.cni('STATUS', {})).code).toBe(0);
    expect(held()).not.toContain('nowhere');
  });

  it('refuses the node\'s own namespace, and leaves the node\'s eth0 alone', async () => {
    const r = await node.agent!.cni('ADD', { containerId: 'intruder', netns: `/var/run/netns/${node.ns}`, ifName: 'eth0' });
    expect(r.result).toMatchObject({ code: 4, msg: expect.stringContaining("the node's own network namespace") });
    expect(await nodeLinks()).toContain('eth0');
    expect(held()).not.toContain('intruder');
  });

  it('a second ADD into a namespace whose eth0 another container owns fails, and that eth0 stays', async () => {
    const ns = await lab.addPod('owned');
    const owner = await node.agent!.cni('ADD', env(ns, 'owner'));
    expect(owner.code, owner.stdout).toBe(0);
    const second = await node.agent!.cni('ADD', env(ns, 'squatter'));
    expect(second.code).toBe(1);
    expect(await ip(ns, '-o', 'address', 'show', 'dev', 'eth0')).toContain(`${addressOf(owner)}/32`);
    const check = await node.agent!.cni('CHECK', env(ns, 'owner'), { ...node.agent!.netConf(), prevResult: owner.result });
    expect(check.code, check.stdout).toBe(0);
    expect(held()).not.toContain('squatter');
    expect(await nodeLinks()).not.toContain(hostIfName('squatter', 'eth0'));
  });
});

describe('the agent\'s socket', () => {
  it('refuses a 10 MB ADD and does not carry it out when the client half-closes', async () => {
    const ns = await lab.addPod('huge');
    const request = JSON.stringify({ v: 1, body: { op: 'add', containerId: 'huge', netns: `/var/run/netns/${ns}`, ifName: 'eth0', pad: 'x'.repeat(10 * 1024 * 1024) } });
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(node.agent!.socket);
      let text = '';
      socket.on('connect', () => socket.end(request));
      socket.on('data', (d) => (text += d.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    });
    expect(answer).toContain('longer than');
    await new Promise((r) => setTimeout(r, 300));
    expect(held()).not.toContain('huge');
    expect(await ip(ns, '-o', 'link', 'show')).not.toContain('eth0');
  });

  it('keeps serving ADDs with 500 idle connections open, cutting off those waiting longest', async () => {
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 500; i++) {
        sockets.push(
          await new Promise<Socket>((resolve, reject) => {
            const socket = connect(node.agent!.socket, () => resolve(socket));
            socket.on('error', (err) => (sockets.includes(socket) ? undefined : reject(err)));
          }),
        );
      }
      const ns = await lab.addPod('crowded');
      const r = await node.agent!.cni('ADD', env(ns, 'crowded'));
      expect(r.code, r.stdout).toBe(0);
      await new Promise((res) => setTimeout(res, 200));
      // At most 32 wait for their request at once: the other 468 were cut off, long before any timeout.
      expect(sockets.filter((s) => s.destroyed || s.readableEnded).length).toBeGreaterThanOrEqual(500 - 32);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});

describe('the plugin against bad input', () => {
  it('refuses names that would inject or escape with code 4', async () => {
    const ns = await lab.addPod('names');
    const inject = await node.agent!.cni('ADD', env(ns, 'names', 'eth0\nlink del lo'));
    expect(inject.result).toMatchObject({ code: 4, msg: expect.stringContaining('CNI_IFNAME') });
    const escape = await node.agent!.cni('ADD', env(ns, '../../x'));
    expect(escape.result).toMatchObject({ code: 4, msg: expect.stringContaining('CNI_CONTAINERID') });
    expect(held()).not.toContain('names');
  });

  it('refuses an agentSocket that is a regular file with code 7 and writes nothing beside it', async () => {
    const dir = `${scratch}/regular`;
    mkdirSync(dir);
    writeFileSync(`${dir}/agent.sock`, '');
    const r = await node.agent!.cni('DEL', env('x', 'c1'), { ...node.agent!.netConf(), agentSocket: `${dir}/agent.sock` });
    expect(r.result).toMatchObject({ code: 7 });
    expect(readdirSync(dir)).toEqual(['agent.sock']);
  });

  it('refuses an addTimeoutMs a timer cannot wait with code 7', async () => {
    const r = await node.agent!.cni('ADD', env('x', 'c1'), { ...node.agent!.netConf(), addTimeoutMs: 2 ** 32 });
    expect(r.result).toMatchObject({ code: 7, msg: expect.stringContaining('addTimeoutMs') });
  });

  it('answers a socket that sends hundreds of megabytes with a CNI error, not a crash', async () => {
    const path = `${scratch}/flood.sock`;
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    const server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.write('{"v":1,"ok":true,"pad":"');
      let sent = 0;
      const pump = () => {
        while (sent < 300 && !socket.destroyed) {
          sent++;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
        socket.end();
      };
      pump();
    });
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const r = await execa(PLUGIN_BINARY, [], {
        input: JSON.stringify({ cniVersion: '1.1.0', name: 'eni-cni', type: 'eni-cni', agentSocket: path }),
        env: { ...childEnv(), CNI_COMMAND: 'STATUS' },
        extendEnv: false,
        reject: false,
      });
      expect(r.exitCode).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ code: 50, msg: expect.stringContaining('longer than') });
      expect(r.stderr).toBe('');
    } finally {
      server.close();
    }
  });
});

describe('DEL with the agent away', () => {
  it('deletes only its own veth, never a node link that prevResult names, and ignores names it could never have made', async () => {
    const ns = await lab.addPod('away');
    const added = await node.agent!.cni('ADD', env(ns, 'away'));
    expect(added.code, added.stdout).toBe(0);
    await node.agent!.stop('SIGTERM');
    try {
      const prevResult = { ...added.result, interfaces: [{ name: 'eth0' }, { name: 'lo' }, ...(added.result!.interfaces as object[])] };
      const del = await node.agent!.cni('DEL', env(ns, 'away'), { ...node.agent!.netConf(), prevResult });
      expect(del.code, del.stdout).toBe(0);
      const links = await nodeLinks();
      expect(links).toContain('eth0');
      expect(links).not.toContain(hostIfName('away', 'eth0'));

      // Nothing written for names it could never have made: not in the notes, not in any folder above them.
      const notes = `${node.agent!.socket.replace(/\/[^/]+$/, '')}/pending-del`;
      const around = () => [notes, dirname(notes), dirname(dirname(notes)), dirname(dirname(dirname(notes)))].map((d) => readdirSync(d).sort());
      const before = around();
      for (const bad of [env(ns, 'away', 'a/b'), env(ns, '../../x'), env(ns, '../x'), env(ns, 'away', '..')]) {
        const r = await node.agent!.cni('DEL', bad);
        expect(r.code, r.stdout).toBe(0);
      }
      expect(around()).toEqual(before);
    } finally {
      await node.agent!.start();
    }
    expect(held()).not.toContain('away');
  });
});

describe('the agent\'s credentials file', () => {
  it('never quotes the file in its error', async () => {
    const file = `${scratch}/credentials.json`;
    const secret = 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE';
    for (const content of [`${secret} is not JSON`, `{"secretId": "${secret}", "secretKey": `, `["${secret}"]`]) {
      writeFileSync(file, content);
      const r = await execa(AGENT_BINARY, ['--credentials-file', file], { env: childEnv(), extendEnv: false, reject: false });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(file);
      for (let i = 0; i + 6 <= secret.length; i++) expect(r.stderr).not.toContain(secret.slice(i, i + 6));
    }
  });
});
