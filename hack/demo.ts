// `npm run demo`: the main job on the local cloud, as far as the project has come. Today that is the
// emulated Tencent Cloud walked through the real SDK as a node agent will use it: find the node, learn
// its quota, open an ENI, fill it with pod addresses, meet throttling, and give it all back.
// Exits non-zero if any check fails.
import { Emulator } from './emulator/emulator.ts';
import { codeOf, cvmClient, testWorld, vpcClient, waitTask } from './emulator/testing.ts';

let failures = 0;
function check(what: string, ok: boolean, detail = ''): void {
  console.log(`${ok ? '  ok  ' : '  FAIL'} ${what}${detail ? `: ${detail}` : ''}`);
  if (!ok) failures++;
}

const world = testWorld({ latencies: { taskMs: 100, apiMs: 0 }, rateLimits: { AssignPrivateIpAddresses: 5 } });
const emulator = await Emulator.start({ world });
try {
  const vpc = vpcClient(emulator);
  const cvm = cvmClient(emulator);
  console.log(`emulator at ${emulator.apiUrl}, metadata at ${emulator.metadataUrl}\n`);

  const instanceId = await (await fetch(`${emulator.metadataUrl}/instances/ins-node0001/latest/meta-data/instance-id`)).text();
  const zone = await (await fetch(`${emulator.metadataUrl}/instances/ins-node0001/latest/meta-data/placement/zone`)).text();
  const { InstanceSet } = await cvm.DescribeInstances({ InstanceIds: [instanceId] });
  const limit = await vpc.DescribeNetworkInterfaceLimit({ InstanceId: instanceId });
  check('metadata names the node', instanceId === 'ins-node0001', `${instanceId} in ${zone}, ${InstanceSet?.[0]?.InstanceType}`);
  check('quota by instance type', limit.EniQuantity === 4 && limit.EniPrivateIpAddressQuantity === 10, `${limit.EniQuantity} ENIs x ${limit.EniPrivateIpAddressQuantity} IPs`);

  const { SubnetSet } = await vpc.DescribeSubnets({ Filters: [{ Name: 'zone', Values: [zone] }] });
  const podSubnet = SubnetSet!.filter((s) => s.SubnetId!.startsWith('subnet-pod')).sort((a, b) => b.AvailableIpAddressCount! - a.AvailableIpAddressCount!)[0]!;
  const created = await vpc.CreateNetworkInterface({
    VpcId: world.vpc.id,
    SubnetId: podSubnet.SubnetId!,
    NetworkInterfaceName: `${instanceId}-pods`,
    SecurityGroupIds: world.securityGroups,
    ClientToken: 'demo-eni-1',
  });
  check('create ENI', (await waitTask(vpc, created.RequestId)) === 'SUCCESS', `${created.NetworkInterface!.NetworkInterfaceId} in ${podSubnet.SubnetId}`);
  const eniId = created.NetworkInterface!.NetworkInterfaceId!;
  const events: string[] = [];
  emulator.onEvent((e) => events.push(e.type));
  const attached = await vpc.AttachNetworkInterface({ NetworkInterfaceId: eniId, InstanceId: instanceId });
  const busy = await codeOf(vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: eniId, SecondaryPrivateIpAddressCount: 1 }));
  check('a busy ENI refuses a second change', busy === 'UnsupportedOperation.MutexOperationTaskRunning', busy);
  check('attach', (await waitTask(vpc, attached.RequestId)) === 'SUCCESS' && events.includes('eni-attached'));

  // Fill the ENI: 9 secondary addresses in one call, as the pool will batch them.
  const assigned = await vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: eniId, SecondaryPrivateIpAddressCount: 9 });
  await waitTask(vpc, assigned.RequestId);
  const addresses = assigned.PrivateIpAddressSet!.map((ip) => ip.PrivateIpAddress!);
  check('9 addresses in one call', addresses.length === 9, addresses.join(' '));
  const full = await codeOf(vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: eniId, SecondaryPrivateIpAddressCount: 1 }));
  check('the ENI is full at 10', full === 'LimitExceeded', full);

  // Throttling: AssignPrivateIpAddresses is limited to 5/s in this world.
  const burst = await Promise.all(Array.from({ length: 8 }, () => vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: 'eni-nothere', SecondaryPrivateIpAddressCount: 1 }).catch((e: { code: string }) => e.code)));
  check('rate limit answers RequestLimitExceeded', burst.includes('RequestLimitExceeded'), `${burst.filter((c) => c === 'RequestLimitExceeded').length} of 8 throttled`);

  console.log('\nnetwork interfaces of', instanceId);
  const { NetworkInterfaceSet } = await vpc.DescribeNetworkInterfaces({ Filters: [{ Name: 'attachment.instance-id', Values: [instanceId] }] });
  for (const eni of NetworkInterfaceSet!) {
    const ips = eni.PrivateIpAddressSet!.map((ip) => `${ip.PrivateIpAddress}${ip.Primary ? '*' : ''}`);
    console.log(`  ${eni.NetworkInterfaceId}  ${eni.MacAddress}  dev ${eni.Attachment?.DeviceIndex}  ${eni.SubnetId}  ${ips.join(' ')}`);
  }

  // Give everything back.
  const released = await vpc.UnassignPrivateIpAddresses({ NetworkInterfaceId: eniId, PrivateIpAddresses: addresses.map((a) => ({ PrivateIpAddress: a })) });
  await waitTask(vpc, released.RequestId);
  await waitTask(vpc, (await vpc.DetachNetworkInterface({ NetworkInterfaceId: eniId, InstanceId: instanceId })).RequestId);
  await waitTask(vpc, (await vpc.DeleteNetworkInterface({ NetworkInterfaceId: eniId })).RequestId);
  const after = (await vpc.DescribeSubnets({ SubnetIds: [podSubnet.SubnetId!] })).SubnetSet![0]!;
  check('every address returned to the subnet', after.AvailableIpAddressCount === podSubnet.AvailableIpAddressCount, `${after.AvailableIpAddressCount} free`);
} finally {
  await emulator.close();
}
console.log(failures === 0 ? '\ndemo: all checks passed' : `\ndemo: ${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
