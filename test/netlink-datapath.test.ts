// The pod datapath over netlink in real namespaces: a pod plumbed, checked, broken and found out, its host
// side mended, and taken down leaving nothing. This test process plays the agent inside a namespace of its
// own ("the node"), entered with the agent's own addon, so that no rule or route touches the machine's.
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostDrift } from '../agent/datapath/drift.ts';
import { LinuxDatapath, type PodTarget } from '../agent/datapath/linux.ts';
import { loadNative } from '../agent/datapath/native/load.ts';
import { NetlinkDatapath } from '../agent/datapath/netlink.ts';
import { ip, run } from '../hack/lab/sh.ts';

const REPO = new URL('..', import.meta.url).pathname;
const NODE = `tn-node-${process.pid}`;
const POD = `tn-pod-${process.pid}`;
const { setns } = loadNative('netns') as { setns: (fd: number) => void };
let own: number;
let datapath: LinuxDatapath;
let netlink: NetlinkDatapath;

const pod: PodTarget = { containerId: 'c0ffee01', ifName: 'eth0', hostIf: `tnv${process.pid % 100000}`, address: '10.0.16.5', table: 2003, netns: `/var/run/netns/${POD}` };
/** `ip` in the node's namespace (the test's own now) and in the pod's. */
const onNode = (...args: string[]) => run('ip', args);
const inPod = (...args: string[]) => run('ip', ['-n', POD, ...args]);

beforeAll(async () => {
  own = openSync('/proc/thread-self/ns/net', 'r');
  await ip(undefined, 'netns', 'add', NODE);
  await ip(undefined, 'netns', 'add', POD);
  const node = openSync(`/var/run/netns/${NODE}`, 'r');
  setns(node);
  closeSync(node);
  const loaded = await NetlinkDatapath.load();
  if (loaded instanceof Error) throw loaded;
  netlink = loaded;
  datapath = new LinuxDatapath(netlink);
});

afterAll(async () => {
  datapath?.close();
  setns(own);
  closeSync(own);
  await ip(undefined, 'netns', 'del', POD).catch(() => undefined);
  await ip(undefined, 'netns', 'del', NODE).catch(() => undefined);
});

describe('a pod plumbed over netlink', () => {
  it('gets the veth, its address, the gateway and the default route inside, and the route and rules on the node', async () => {
    // A rule from the address that an earlier holder's lost DEL left behind: it would be looked at first.
    await onNode('rule', 'add', 'from', '10.0.16.5/32', 'lookup', '4242', 'pref', '1536');
    await datapath.addPod(pod);
    expect(await onNode('rule', 'show')).not.toContain('4242');
    expect(await inPod('-br', 'address', 'show', 'dev', 'eth0')).toMatch(/^eth0@\S+\s+UP\s+10\.0\.16\.5\/32/);
    expect(await inPod('route', 'show')).toContain('default via 169.254.1.1 dev eth0');
    expect(await inPod('neigh', 'show')).toContain('169.254.1.1 dev eth0 lladdr ee:ee:ee:ee:ee:ee PERMANENT');
    expect(await onNode('route', 'show', '10.0.16.5')).toContain(`dev ${pod.hostIf} scope link`);
    const rules = await onNode('rule', 'show');
    expect(rules).toContain('512:\tfrom all to 10.0.16.5 lookup main');
    expect(rules).toContain('1536:\tfrom 10.0.16.5 lookup 2003');
    expect(await datapath.checkPod(pod)).toBeUndefined();
  });

  it('fails CHECK naming what is missing or wrong, inside the pod and on the node', async () => {
    await inPod('route', 'del', 'default');
    expect(await datapath.checkPod(pod)).toMatch(/missing: route default via 169\.254\.1\.1 dev eth0 in \/var\/run\/netns\//);
    await inPod('route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0');
    expect(await datapath.checkPod(pod)).toBeUndefined();
    await onNode('rule', 'del', 'from', '10.0.16.5/32', 'pref', '1536');
    await onNode('rule', 'add', 'from', '10.0.16.5/32', 'lookup', '4242', 'pref', '1536');
    expect(await datapath.checkPod(pod)).toMatch(/missing: rule from 10\.0\.16\.5\/32 lookup 2003 pref 1536 on the node; wrong: rule from 10\.0\.16\.5\/32 lookup 4242 pref 1536 on the node/);
  });

  it("mends the node's side: the wrong rule out, the planned one and a deleted route back", async () => {
    await onNode('route', 'del', '10.0.16.5/32');
    const drifts = hostDrift([pod], await datapath.hostFacts());
    expect(drifts).toHaveLength(1);
    await datapath.mendHost(drifts[0]!.mend, 'the test');
    const rules = await onNode('rule', 'show');
    expect(rules).toContain('1536:\tfrom 10.0.16.5 lookup 2003');
    expect(rules).not.toContain('4242');
    expect(await onNode('route', 'show', '10.0.16.5')).toContain(`dev ${pod.hostIf}`);
    expect(hostDrift([pod], await datapath.hostFacts())).toEqual([]);
    expect(await datapath.checkPod(pod)).toBeUndefined();
  });

  it('removes a route whatever protocol made it', async () => {
    await onNode('link', 'set', 'lo', 'up');
    await onNode('route', 'add', '10.9.9.9/32', 'dev', 'lo', 'proto', 'static');
    await netlink.node.remove([{ kind: 'route', table: 254, dst: '10.9.9.9', prefix: 32, dev: 'lo' }], 'the test');
    expect(await onNode('route', 'show', '10.9.9.9')).toBe('');
  });

  it('refuses a second pod whose veth name is taken, leaving the link that has it alone', async () => {
    await expect(datapath.addPod({ ...pod, address: '10.0.16.6' })).rejects.toThrow(new RegExp(`creating the veth ${pod.hostIf} / eth0 .*10\\.0\\.16\\.6.*EEXIST`));
    expect(await onNode('link', 'show', 'dev', pod.hostIf)).toContain(pod.hostIf);
    expect(await onNode('rule', 'show')).not.toContain('10.0.16.6');
  });

  it("applies a pod's side as one batch, reporting the first request the kernel refused by what it was", async () => {
    await expect(
      netlink.applyIn(pod.netns, [
        { kind: 'address', dev: 'eth0', local: '10.0.16.5', prefix: 32 },
        { kind: 'route', table: 254, dst: '10.9.0.0', prefix: 16, dev: 'eth0', via: '10.77.77.77' },
        { kind: 'route', table: 254, dst: '10.8.0.0', prefix: 16, dev: 'eth0' },
      ], 'the test'),
    ).rejects.toThrow(`adding route 10.9.0.0/16 via 10.77.77.77 dev eth0 in ${pod.netns} (the test): ENETUNREACH`);
    // The kernel went on with the rest, as it does with requests sent one by one.
    expect(await inPod('route', 'show', '10.8.0.0/16')).toContain('dev eth0');
    await inPod('route', 'del', '10.8.0.0/16');
    await expect(netlink.applyIn(pod.netns, [{ kind: 'up', dev: 'eth9' }], 'the test')).rejects.toThrow(`finding eth9 in ${pod.netns} (the test): not there`);
    // Names are looked up whole: one cut short by a NUL or by the kernel's 15-byte limit is no link's.
    const { indexOf } = loadNative('netns') as { indexOf: (name: string) => number };
    expect(indexOf('lo')).toBe(1);
    for (const name of ['lo\0', 'lo\0x', `lo${'o'.repeat(13)}€`, 'x'.repeat(16)]) expect(indexOf(name)).toBe(0);
    // The addon takes whole netlink messages only.
    const { request, socket } = loadNative('netns') as { request: (fd: number, m: Buffer) => Promise<number[]>; socket: () => number };
    const fd = socket();
    try {
      for (const garbage of [Buffer.alloc(0), Buffer.from('not netlink'), Buffer.alloc(40, 0xff)]) expect(() => request(fd, garbage)).toThrow(TypeError);
    } finally {
      closeSync(fd);
    }
  });

  it('takes it down leaving no link, route or rule, and finds nothing to do a second time', async () => {
    const { linkGone } = await datapath.removePod(pod);
    expect(await onNode('rule', 'show')).not.toContain('10.0.16.5');
    expect(await onNode('route', 'show', '10.0.16.5')).toBe('');
    await linkGone;
    expect(await onNode('-br', 'link', 'show')).not.toContain(pod.hostIf);
    expect(await inPod('-br', 'link', 'show')).not.toContain('eth0');
    await (await datapath.removePod(pod)).linkGone;
    expect(await datapath.checkPod(pod)).toBe(`the host interface ${pod.hostIf} of 10.0.16.5 is missing`);
  });
});

describe('a burst of pods', () => {
  // 110 pods at once (a node filling up, or kubelet retrying every pod after an agent restart) send more
  // requests on the node's socket than its receive buffer holds answers for; the netlink package aborts the
  // process on that overrun, so the agent bounds what is in flight.
  const N = 110;
  const pods = Array.from({ length: N }, (_, i): PodTarget => ({ containerId: `b0057${i}`, ifName: 'eth0', hostIf: `tnb${process.pid % 10000}x${i}`, address: `10.0.17.${i + 1}`, table: 2003, netns: `/var/run/netns/tn-burst-${process.pid}-${i}` }));

  afterAll(async () => {
    await Promise.all(pods.map((p) => ip(undefined, 'netns', 'del', p.netns.split('/').pop()!).catch(() => undefined)));
    await Promise.all(pods.map((p) => onNode('link', 'del', p.hostIf).catch(() => undefined)));
  });

  it('plumbs 110 at once and takes them all down again', async () => {
    for (const p of pods) await ip(undefined, 'netns', 'add', p.netns.split('/').pop()!);
    const added = await Promise.allSettled(pods.map((p) => datapath.addPod(p)));
    expect(added.filter((a) => a.status === 'rejected')).toEqual([]);
    const rules = await onNode('rule', 'show');
    for (const p of pods) expect(rules).toContain(`from ${p.address} lookup 2003`);
    const removed = await Promise.all(pods.map((p) => datapath.removePod(p)));
    await Promise.all(removed.map((r) => r.linkGone));
    expect(await onNode('rule', 'show')).not.toContain('10.0.17.');
    expect(await onNode('-br', 'link', 'show')).not.toContain(`tnb${process.pid % 10000}x`);
  }, 60_000);
});

describe('an agent without its natives', () => {
  it('refuses to start, before it asks the cloud anything, naming where it looked', async () => {
    const home = mkdtempSync(`${tmpdir()}/eni-agent-bare-`);
    try {
      mkdirSync(`${home}/bin`);
      copyFileSync(`${REPO}dist/bin/eni-agent`, `${home}/bin/eni-agent`);
      const r = await execa(`${home}/bin/eni-agent`, ['--socket', `${home}/agent.sock`, '--state-dir', `${home}/state`, '--metadata-url', 'http://127.0.0.1:1'], { cwd: home, reject: false, timeout: 20_000 });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain('pods cannot be plumbed: the netlink datapath cannot be had');
      expect(r.stderr).toContain(`${home}/native/netns.node`);
      expect(existsSync(`${home}/agent.sock`)).toBe(false);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
