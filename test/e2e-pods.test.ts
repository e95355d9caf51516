// Pods on the network, end to end: the plugin binary run as a runtime runs it, the agent on each lab
// node, the emulated cloud. Pods reach each other, the VPC gateway, other nodes and the internet, by
// the right ENI; DEL removes all it added.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, pings, whoamiFrom, type LabNode } from '../hack/lab/lab.ts';
import { ip } from '../hack/lab/sh.ts';

let lab: Lab;
let a: LabNode;
let b: LabNode;

interface Pod {
  name: string;
  ns: string;
  node: LabNode;
  containerId: string;
  address: string;
  result: Record<string, unknown>;
}

async function addPod(node: LabNode, name: string, cniVersion = '1.1.0'): Promise<Pod> {
  const ns = await lab.addPod(name);
  const containerId = `ctr-${name}`;
  const r = await node.agent!.cni('ADD', { containerId, netns: `/var/run/netns/${ns}`, ifName: 'eth0', args: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}` }, node.agent!.netConf(cniVersion));
  expect(r.code, r.stdout).toBe(0);
  const ips = r.result!.ips as Array<{ address: string }>;
  return { name, ns, node, containerId, address: ips[0]!.address.split('/')[0]!, result: r.result! };
}

async function snapshot(ns: string) {
  const [links, rules, routes] = await Promise.all([ip(ns, '-o', 'link', 'show'), ip(ns, 'rule', 'show'), ip(ns, 'route', 'show', 'table', 'all')]);
  return { links: links.split('\n').map((l) => l.split(':')[1]!.trim()).sort(), rules: rules.split('\n').sort(), routes: routes.split('\n').sort() };
}

beforeAll(async () => {
  lab = await Lab.up({ nodes: 2, taskMs: 30, agents: { minWarm: 3, maxWarm: 8, gcGrace: '2s', noMend: true } });
  [a, b] = lab.nodes as [LabNode, LabNode];
});

afterAll(async () => {
  await lab?.down();
});

describe('pods on two nodes', () => {
  let a1: Pod;
  let a2: Pod;
  let b1: Pod;

  beforeAll(async () => {
    [a1, a2, b1] = await Promise.all([addPod(a, 'a1'), addPod(a, 'a2'), addPod(b, 'b1')]);
  });

  it('gives each pod its own VPC address from an ENI of its node', () => {
    const addresses = [a1.address, a2.address, b1.address];
    expect(new Set(addresses).size).toBe(3);
    for (const address of addresses) expect(address).toMatch(/^10\.0\.1[67]\./);
    expect(a1.result).toMatchObject({ cniVersion: '1.1.0', routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }] });
    const owners = lab.emulator.state().networkInterfaces.filter((e) => e.PrivateIpAddressSet.some((ip) => ip.PrivateIpAddress === a1.address));
    expect(owners).toHaveLength(1);
    expect(owners[0]!.Attachment?.InstanceId).toBe(a.instanceId);
  });

  it('reaches the pod on the same node, the pod on the other node, the VPC gateway and the other node', async () => {
    expect(await pings(a1.ns, a2.address)).toBe(true);
    expect(await pings(a1.ns, b1.address)).toBe(true);
    expect(await pings(b1.ns, a1.address)).toBe(true);
    const gateway = a1.address.replace(/\.\d+$/, '.1');
    expect(await pings(a1.ns, gateway)).toBe(true);
    expect(await pings(a1.ns, b.privateIp)).toBe(true);
    expect(await pings(a.ns, a1.address)).toBe(true);
  });

  it('plumbs the pod side as planned: its MAC, its address, the neighbour and the routes', async () => {
    const mac = (await ip(a1.ns, '-j', 'link', 'show', 'dev', 'eth0')).match(/"address":"([0-9a-f:]+)"/)?.[1];
    const octets = a1.address.split('.').map((o) => Number(o).toString(16).padStart(2, '0'));
    expect(mac).toBe(['0a', '58', ...octets].join(':'));
    expect(await ip(a1.ns, '-4', '-o', 'address', 'show', 'dev', 'eth0')).toContain(`inet ${a1.address}/32`);
    expect(await ip(a1.ns, 'neigh', 'show', 'dev', 'eth0')).toContain('169.254.1.1 lladdr ee:ee:ee:ee:ee:ee PERMANENT');
    const routes = (await ip(a1.ns, 'route', 'show')).split('\n').map((l) => l.trim());
    expect(routes.sort()).toEqual(['169.254.1.1 dev eth0 scope link', 'default via 169.254.1.1 dev eth0']);
    // The host end is in the node's namespace, up, with the pods' shared gateway MAC.
    const host = await ip(a.ns, '-j', 'link', 'show', 'dev', a1.result.interfaces ? (a1.result.interfaces as Array<{ name: string; sandbox?: string }>).find((i) => !i.sandbox)!.name : '');
    expect(host).toContain('"address":"ee:ee:ee:ee:ee:ee"');
    expect(host).toContain('"operstate":"UP"');
  });

  it('sends pod traffic by its own ENI: without its rule, the VPC drops it', async () => {
    const rule = (await ip(a.ns, 'rule', 'show', 'from', `${a1.address}/32`)).trim();
    const table = /lookup (\d+)/.exec(rule)![1]!;
    await ip(a.ns, 'rule', 'del', 'from', `${a1.address}/32`, 'lookup', table, 'pref', '1536');
    try {
      expect(await pings(a1.ns, b.privateIp)).toBe(false);
    } finally {
      await ip(a.ns, 'rule', 'add', 'from', `${a1.address}/32`, 'lookup', table, 'pref', '1536');
    }
    expect(await pings(a1.ns, b.privateIp)).toBe(true);
  });

  it("reaches the internet with the node's public address", async () => {
    expect(await whoamiFrom(a1.ns)).toBe(a.publicIp);
    expect(await whoamiFrom(b1.ns)).toBe(b.publicIp);
  });

  it('passes CHECK with the result it was given, and fails it when the pod is broken', async () => {
    const conf = { ...a.agent!.netConf(), prevResult: a2.result };
    const env = { containerId: a2.containerId, netns: `/var/run/netns/${a2.ns}`, ifName: 'eth0' };
    expect((await a.agent!.cni('CHECK', env, conf)).code).toBe(0);
    await ip(a2.ns, 'address', 'del', `${a2.address}/32`, 'dev', 'eth0');
    const broken = await a.agent!.cni('CHECK', env, conf);
    expect(broken.code).toBe(1);
    expect(broken.result).toMatchObject({ code: 5 });
    expect(String(broken.result!.msg)).toContain(a2.address);
    await ip(a2.ns, 'address', 'add', `${a2.address}/32`, 'dev', 'eth0');
  });
});

describe('ADD and DEL', () => {
  it('removes every link, route and rule it added, and is idempotent', async () => {
    const before = await snapshot(a.ns);
    const pod = await addPod(a, 'gone');
    const during = await snapshot(a.ns);
    expect(during.links.length).toBe(before.links.length + 1);
    const env = { containerId: pod.containerId, netns: `/var/run/netns/${pod.ns}`, ifName: 'eth0' };
    expect((await a.agent!.cni('DEL', env)).code).toBe(0);
    // DEL answers once nothing routes to the pod; its veth goes a moment later.
    for (let i = 0; i < 50 && JSON.stringify(await snapshot(a.ns)) !== JSON.stringify(before); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await snapshot(a.ns)).toEqual(before);
    expect((await a.agent!.cni('DEL', env)).code).toBe(0);
    await lab.removePod(pod.ns);
    expect((await a.agent!.cni('DEL', env)).code).toBe(0);
    expect((await a.agent!.cni('DEL', { containerId: 'never-seen', netns: '', ifName: 'eth0' })).code).toBe(0);
  });

  it('answers the same ADD twice with the same address', async () => {
    const pod = await addPod(a, 'twice');
    const again = await a.agent!.cni('ADD', { containerId: pod.containerId, netns: `/var/run/netns/${pod.ns}`, ifName: 'eth0' });
    expect(again.code).toBe(0);
    expect((again.result!.ips as Array<{ address: string }>)[0]!.address).toBe(`${pod.address}/32`);
  });

  it.each(['0.3.0', '0.3.1', '0.4.0', '1.0.0'])('answers in the result format of %s', async (version) => {
    const pod = await addPod(b, `v${version.replace(/\./g, '')}`, version);
    expect(pod.result.cniVersion).toBe(version);
    const ips = pod.result.ips as Array<Record<string, unknown>>;
    if (version.startsWith('0.')) expect(ips[0]!.version).toBe('4');
    else expect(ips[0]!.version).toBeUndefined();
  });

  it('serves many ADDs at once with distinct addresses, refilling the pool', async () => {
    const pods = await Promise.all(Array.from({ length: 10 }, (_, i) => addPod(b, `burst${i}`)));
    expect(new Set(pods.map((p) => p.address)).size).toBe(10);
    expect(await pings(pods[0]!.ns, pods[9]!.address)).toBe(true);
  });
});

describe('errors a runtime sees', () => {
  it('names bad input with the spec codes', async () => {
    const agent = a.agent!;
    const env = { containerId: 'x', netns: '/var/run/netns/none', ifName: 'eth0' };
    expect((await agent.cni('ADD', env, { cniVersion: '9.9.9', name: 'eni-cni', type: 'eni-cni' })).result).toMatchObject({ code: 1 });
    expect((await agent.cni('ADD', env, { cniVersion: '1.1.0', type: 'eni-cni' })).result).toMatchObject({ code: 7 });
    expect((await agent.cni('ADD', { netns: '/x', ifName: 'eth0' })).result).toMatchObject({ code: 4 });
    const missingNetns = await agent.cni('ADD', env);
    expect(missingNetns.code).toBe(1);
    expect(String(missingNetns.result!.msg)).toContain('/var/run/netns/none');
    expect((await agent.cni('VERSION', {})).result).toMatchObject({ supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    expect((await agent.cni('STATUS', {})).code).toBe(0);
  });

  it('releases what GC does not list as valid, once past the grace period', async () => {
    const keep = await addPod(a, 'gckeep');
    const drop = await addPod(a, 'gcdrop');
    const conf = { ...a.agent!.netConf(), 'cni.dev/valid-attachments': [{ containerID: keep.containerId, ifname: 'eth0' }, ...validOthers(a, [keep, drop])] };
    expect((await a.agent!.cni('GC', {}, conf)).code).toBe(0);
    // Younger than the grace period (2 s in this lab): spared.
    expect(await pings(keep.ns, drop.address)).toBe(true);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await a.agent!.cni('GC', {}, conf)).code).toBe(0);
    expect(await pings(keep.ns, drop.address)).toBe(false);
    expect(allocated(a)).not.toContain(drop.address);
    expect(allocated(a)).toContain(keep.address);
  });
});


function allocated(node: LabNode): string[] {
  return node.agent!.allocations().map((x) => x.address);
}

/** Every attachment the agent holds except those named: what a runtime's GC would list as still valid. */
function validOthers(node: LabNode, except: Pod[]) {
  return node.agent!.allocations()
    .filter((x) => !except.some((p) => p.containerId === x.containerId))
    .map((x) => ({ containerID: x.containerId, ifname: x.ifName }));
}
