// A whole ENI made a pod's interface and given back, in real namespaces, over netlink in this process. The "ENI" is one end of a veth whose other end stays in a
// namespace of its own (as the lab's fabric does); the agent's namespace is this process's.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DirectLinks, type DirectTarget } from '../agent/datapath/direct-link.ts';
import { NetlinkDatapath } from '../agent/datapath/netlink.ts';
import { ip, run } from '../hack/lab/sh.ts';

const ENI = `tde${process.pid % 100000}`;
const FAR = `tdf${process.pid % 100000}`;
const MAC = '20:90:6f:aa:bb:01';
const POD = `td-pod-${process.pid}`;
const WIRE = `td-wire-${process.pid}`;

let netlink: NetlinkDatapath;
beforeAll(async () => {
  const loaded = await NetlinkDatapath.load();
  if (loaded instanceof Error) throw loaded;
  netlink = loaded;
  return () => netlink.close();
});

afterEach(async () => {
  await ip(undefined, 'netns', 'del', POD).catch(() => undefined);
  await ip(undefined, 'netns', 'del', WIRE).catch(() => undefined);
  await ip(undefined, 'link', 'del', ENI).catch(() => undefined);
});

async function setup(): Promise<DirectTarget> {
  await ip(undefined, 'netns', 'add', POD);
  await ip(undefined, 'netns', 'add', WIRE);
  await ip(undefined, 'link', 'add', ENI, 'address', MAC, 'type', 'veth', 'peer', 'name', FAR, 'netns', WIRE);
  return { containerId: 'c0ffee', netns: `/var/run/netns/${POD}`, ifName: 'eth0', address: '10.0.16.9', eniId: 'eni-tdirect1', direct: { mac: MAC, prefix: 24, gateway: '10.0.16.1', hostName: '' } };
}

const podLinks = async () => JSON.parse(await run('ip', ['-n', POD, '-j', 'address', 'show'])) as Array<{ ifname: string; address: string; flags: string[]; addr_info: Array<{ local: string; prefixlen: number }> }>;

const make = () => new DirectLinks(netlink);

describe('a whole ENI as a pod interface', () => {
  it('moves the ENI in as eth0, addressed in its subnet and routed by the gateway, and back under its name', async () => {
    const t = await setup();
    const links = make();
    expect(await links.hasLink(MAC)).toBe(true);
    expect(await links.check(t)).toMatch(/not in/);
    const hostName = await links.attach(t);
    expect(hostName).toBe(ENI);
    expect(await links.hasLink(MAC)).toBe(false);
    const eth0 = (await podLinks()).find((l) => l.ifname === 'eth0')!;
    expect(eth0.address).toBe(MAC);
    expect(eth0.flags).toContain('UP');
    expect(eth0.addr_info).toContainEqual(expect.objectContaining({ local: '10.0.16.9', prefixlen: 24 }));
    expect(await run('ip', ['-n', POD, 'route', 'show', 'default'])).toContain('via 10.0.16.1 dev eth0');
    expect(await links.check(t)).toBeUndefined();
    await ip(POD, 'route', 'del', 'default');
    expect(await links.check(t)).toMatch(/eth0 \(eni-tdirect1\) in .* is not as planned: missing: route default via 10\.0\.16\.1 dev eth0/);
    // A repeated ADD finds it moved, and makes it whole.
    expect(await links.attach({ ...t, direct: { ...t.direct, hostName } })).toBe(hostName);
    expect(await links.check(t)).toBeUndefined();
    await links.detach({ ...t, direct: { ...t.direct, hostName } });
    expect((await podLinks()).some((l) => l.address === MAC)).toBe(false);
    const back = JSON.parse(await run('ip', ['-j', 'address', 'show', 'dev', ENI])) as Array<{ address: string; flags: string[]; addr_info: unknown[] }>;
    expect(back[0]).toMatchObject({ address: MAC, addr_info: [] });
    expect(back[0]!.flags).not.toContain('UP');
  });

  it('gives the ENI back under a name of its own when its old name is taken on the node, and finds nothing to do once the namespace is gone', async () => {
    const t = await setup();
    const links = make();
    await links.attach(t);
    await links.detach({ ...t, direct: { ...t.direct, hostName: 'lo' } });
    expect(await run('ip', ['-br', 'link', 'show', 'dev', 'dtdirect1'])).toContain('dtdirect1');
    await ip(undefined, 'link', 'set', 'dev', 'dtdirect1', 'name', ENI);
    await links.attach(t);
    await ip(undefined, 'netns', 'del', POD);
    await expect(links.detach(t)).resolves.toBeUndefined();
  });

  it("brings the ENI back when the pod's namespace has the interface name already", async () => {
    const t = await setup();
    await ip(POD, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
    await expect(make().attach(t)).rejects.toThrow(/moving .* into .* as eth0 .*EEXIST/);
    expect(await make().hasLink(MAC)).toBe(true);
    expect(await run('ip', ['-br', 'link', 'show', 'dev', ENI])).toContain(ENI);
  });

  it('says which ENI it waited for when its link never comes', async () => {
    const t = await setup();
    await expect(make().attach({ ...t, direct: { ...t.direct, mac: '20:90:6f:aa:bb:99' } }, 300)).rejects.toThrow(/eni-tdirect1 .*no link with the ENI's MAC/);
  });
});

describe('the netlink datapath under concurrent looks', () => {
  it('answers many lookups of the node\'s links at once (one dump at a time on its socket)', async () => {
    await setup();
    const found = await Promise.all(Array.from({ length: 20 }, () => netlink.node.linkByMac(MAC)));
    expect(found.every((l) => l?.name === ENI)).toBe(true);
  });
});
