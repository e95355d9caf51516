// The lab in real network namespaces: the fabric routes assigned addresses to their ENI, drops spoofed
// sources, hot-plugs ENIs into nodes, and maps public addresses towards the internet.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client as VpcClient } from 'tencentcloud-sdk-nodejs/tencentcloud/services/vpc/v20170312/vpc_client.js';
import { clientConfig } from '../hack/emulator/sdk.ts';
import { waitEipTask, waitTask as waitVpcTask } from '../hack/emulator/testing.ts';
import { Lab, pings, whoamiFrom, METADATA_ADDRESS } from '../hack/lab/lab.ts';
import { inNs, ip, ipBatch, listNamespaces, run } from '../hack/lab/sh.ts';

let lab: Lab;
let vpc: VpcClient;

/** Waits for a cloud task to end well, then for the fabric to have followed it. */
async function waitTask(requestId: string | undefined): Promise<void> {
  expect(await waitVpcTask(vpc, requestId)).toBe('SUCCESS');
  await lab.settled();
}

async function linkByMac(ns: string, mac: string): Promise<string | undefined> {
  const links = JSON.parse(await ip(ns, '-j', 'link', 'show')) as Array<{ ifname: string; address: string }>;
  return links.find((l) => l.address === mac)?.ifname;
}

beforeAll(async () => {
  lab = await Lab.up({ nodes: 2, taskMs: 20 });
  vpc = new VpcClient(clientConfig(lab.emulator.apiAddress, { service: 'vpc', region: lab.emulator.world.region, credential: lab.emulator.world.credentials[0]! }));
});

afterAll(async () => {
  await lab?.down();
  // Nothing is left behind (other suites may run labs of their own meanwhile).
  expect((await listNamespaces()).filter((ns) => ns.startsWith(`${lab.prefix}-`))).toEqual([]);
  expect(await ip(undefined, 'link', 'show')).not.toContain(`${lab.prefix}h`);
});

describe('lab', () => {
  it('brings up nodes whose primary ENIs reach the subnet gateway and each other', async () => {
    const [a, b] = lab.nodes;
    expect(await pings(a!.ns, '10.0.0.1')).toBe(true);
    expect(await pings(a!.ns, b!.privateIp)).toBe(true);
  });

  it('lets a node reach the metadata service at its well-known address, known by its own address', async () => {
    const [a, b] = lab.nodes;
    const url = `http://${METADATA_ADDRESS}/latest/meta-data/instance-id`;
    const probe = `fetch(${JSON.stringify(url)}).then(r => r.text()).then(t => process.stdout.write(t))`;
    expect(await inNs(a!.ns, process.execPath, ['-e', probe])).toBe(a!.instanceId);
    expect(await inNs(b!.ns, process.execPath, ['-e', probe])).toBe(b!.instanceId);
  });

  it('hot-plugs an attached ENI into the node by MAC, routes its addresses, and unplugs it on detach', async () => {
    const [a, b] = lab.nodes;
    const created = await vpc.CreateNetworkInterface({
      VpcId: 'vpc-lab00001',
      SubnetId: 'subnet-pod3a',
      NetworkInterfaceName: 'pods',
      SecurityGroupIds: ['sg-lab00001'],
      SecondaryPrivateIpAddressCount: 1,
    });
    await waitTask(created.RequestId);
    const eni = created.NetworkInterface!;
    const [primaryIp, secondIp] = eni.PrivateIpAddressSet!.map((x) => x.PrivateIpAddress!);
    expect(await linkByMac(a!.ns, eni.MacAddress!)).toBeUndefined();
    await waitTask((await vpc.AttachNetworkInterface({ NetworkInterfaceId: eni.NetworkInterfaceId!, InstanceId: a!.instanceId })).RequestId);
    const link = await linkByMac(a!.ns, eni.MacAddress!);
    expect(link).toBe('eth1');

    // Configure the ENI as an agent would: its primary address, a table of its own.
    await ipBatch(a!.ns, [
      `link set ${link} up`,
      `address add ${primaryIp}/24 dev ${link}`,
      `rule add from ${primaryIp} lookup 101`,
      `route add default via 10.0.16.1 dev ${link} table 101`,
    ]);
    expect(await pings(b!.ns, primaryIp!)).toBe(true);

    // An address assigned later is routed once its task ends; the ENI's own table carries it.
    const assigned = await vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: eni.NetworkInterfaceId!, SecondaryPrivateIpAddressCount: 1 });
    await waitTask(assigned.RequestId);
    const third = assigned.PrivateIpAddressSet![0]!.PrivateIpAddress!;
    await ipBatch(a!.ns, [`address add ${third}/32 dev ${link}`, `rule add from ${third} lookup 101`]);
    expect(await pings(b!.ns, third)).toBe(true);

    // Unassigned: the fabric forgets it.
    await waitTask((await vpc.UnassignPrivateIpAddresses({ NetworkInterfaceId: eni.NetworkInterfaceId!, PrivateIpAddresses: [{ PrivateIpAddress: third }] })).RequestId);
    expect(await pings(b!.ns, third)).toBe(false);
    expect(secondIp).toBeDefined();

    await waitTask((await vpc.DetachNetworkInterface({ NetworkInterfaceId: eni.NetworkInterfaceId!, InstanceId: a!.instanceId })).RequestId);
    expect(await linkByMac(a!.ns, eni.MacAddress!)).toBeUndefined();
    expect(await pings(b!.ns, primaryIp!)).toBe(false);
  });

  it('drops a packet whose source address is not assigned to the ENI it left by', async () => {
    const [a, b] = lab.nodes;
    // Node a claims node b's address as a source on its own eth0.
    await ip(a!.ns, 'address', 'add', `${b!.privateIp}/32`, 'dev', 'eth0');
    try {
      expect(await pings(a!.ns, '10.0.0.1', { from: b!.privateIp })).toBe(false);
      expect(await pings(a!.ns, '10.0.0.1', { from: a!.privateIp })).toBe(true);
    } finally {
      await ip(a!.ns, 'address', 'del', `${b!.privateIp}/32`, 'dev', 'eth0');
    }
  });

  it('shows the internet a node by its public address, and a bound EIP by its own', async () => {
    const [a] = lab.nodes;
    expect(await whoamiFrom(a!.ns)).toBe(a!.publicIp);

    const primary = (await vpc.DescribeNetworkInterfaces({ Filters: [{ Name: 'attachment.instance-id', Values: [a!.instanceId] }] })).NetworkInterfaceSet!.find((e) => e.Primary)!;
    const assigned = await vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: primary.NetworkInterfaceId!, SecondaryPrivateIpAddressCount: 1 });
    await waitTask(assigned.RequestId);
    const secondary = assigned.PrivateIpAddressSet![0]!.PrivateIpAddress!;
    const allocated = await vpc.AllocateAddresses({});
    const eipId = allocated.AddressSet![0]!;
    await waitEip(allocated.TaskId);
    await waitEip((await vpc.AssociateAddress({ AddressId: eipId, NetworkInterfaceId: primary.NetworkInterfaceId!, PrivateIpAddress: secondary })).TaskId);
    await lab.settled();
    const eip = (await vpc.DescribeAddresses({ AddressIds: [eipId] })).AddressSet![0]!.AddressIp!;

    // A pod-like namespace behind the node, owning the secondary address.
    const pod = await lab.addPod('eip');
    try {
      await ipBatch(undefined, [`link add ${lab.prefix}-pe type veth peer name eth0 netns ${pod}`, `link set ${lab.prefix}-pe netns ${a!.ns}`]);
      await ipBatch(a!.ns, [`link set ${lab.prefix}-pe up`, `route add ${secondary}/32 dev ${lab.prefix}-pe`]);
      // The node answers the pod's ARP for its link-local gateway (proxy ARP) and forwards for it.
      await run('ip', ['netns', 'exec', a!.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', `net.ipv4.conf.${lab.prefix}-pe.proxy_arp=1`]);
      await ipBatch(pod, ['link set eth0 up', `address add ${secondary}/32 dev eth0`, 'route add 169.254.1.1 dev eth0', 'route add default via 169.254.1.1 dev eth0']);
      expect(await whoamiFrom(pod)).toBe(eip);
    } finally {
      await lab.removePod(pod);
    }
  });
});

async function waitEip(taskId: string | undefined): Promise<void> {
  expect(await waitEipTask(vpc, taskId)).toBe('SUCCESS');
}
