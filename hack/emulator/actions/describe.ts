// Read-only actions: VPCs, subnets, ENIs, an instance's ENI quota, task results, and CVM instances.
import { z } from 'zod';
import { fail } from '../errors.ts';
import type { Eni, Instance, Tag } from '../model.ts';
import { renderEni, renderInstance } from '../render.ts';
import { action, Filters, Limit, Offset, page } from './action.ts';

type Matcher<T> = (item: T, value: string) => boolean;

/** Applies Tencent-style filters: each filter must match (AND), any of its values may (OR). */
function applyFilters<T>(
  items: T[],
  filters: Array<{ Name: string; Values: string[] }> | undefined,
  known: Record<string, Matcher<T>>,
  action: string,
  tagsOf: (item: T) => Tag[] = () => [],
): T[] {
  let result = items;
  for (const filter of filters ?? []) {
    const tagKey = filter.Name.startsWith('tag:') ? filter.Name.slice(4) : undefined;
    const match: Matcher<T> | undefined =
      tagKey !== undefined ? (item, v) => tagsOf(item).some((t) => t.Key === tagKey && t.Value === v) : known[filter.Name];
    if (!match) throw fail('InvalidParameter.FilterInvalidKey', `filter "${filter.Name}" is not supported by ${action}`);
    result = result.filter((item) => filter.Values.some((v) => match(item, v)));
  }
  return result;
}

export const DescribeVpcs = action({
  service: 'vpc',
  params: z.strictObject({ VpcIds: z.array(z.string()).max(100).optional(), Filters, Offset, Limit }),
  run({ model }, p) {
    const { vpc } = model.world;
    const vpcs = applyFilters([{ id: vpc.id, name: vpc.name, cidr: vpc.cidr }], p.Filters, {
      'vpc-id': (v, value) => v.id === value,
      'vpc-name': (v, value) => v.name === value,
      'cidr-block': (v, value) => v.cidr === value,
    }, 'DescribeVpcs').filter((v) => !p.VpcIds || p.VpcIds.includes(v.id));
    return {
      TotalCount: vpcs.length,
      VpcSet: page(vpcs, p.Offset, p.Limit).map((v) => ({
        VpcId: v.id,
        VpcName: v.name,
        CidrBlock: v.cidr,
        IsDefault: false,
        EnableMulticast: false,
        CreatedTime: '2026-01-01 00:00:00',
        DnsServerSet: ['183.60.83.19', '183.60.82.98'],
        DomainName: '',
        EnableDhcp: true,
        TagSet: [],
        AssistantCidrSet: [],
      })),
    };
  },
});

export const DescribeSubnets = action({
  service: 'vpc',
  params: z.strictObject({
    SubnetIds: z.array(z.string()).max(100).optional(),
    Filters,
    Offset,
    Limit,
    MaxResults: z.number().int().optional(),
    NextToken: z.string().optional(),
  }),
  run({ model }, p) {
    let subnets = [...model.subnets.values()].map((s) => s.spec);
    if (p.SubnetIds) {
      for (const id of p.SubnetIds) model.subnet(id);
      subnets = subnets.filter((s) => p.SubnetIds!.includes(s.id));
    }
    subnets = applyFilters(subnets, p.Filters, {
      'subnet-id': (s, v) => s.id === v,
      'vpc-id': (_s, v) => model.world.vpc.id === v,
      'cidr-block': (s, v) => s.cidr === v,
      'subnet-name': (s, v) => s.name === v,
      zone: (s, v) => s.zone === v,
      'is-default': (_s, v) => v === 'false',
    }, 'DescribeSubnets');
    return {
      TotalCount: subnets.length,
      SubnetSet: page(subnets, p.Offset, p.Limit).map((s) => ({
        VpcId: model.world.vpc.id,
        SubnetId: s.id,
        SubnetName: s.name,
        CidrBlock: s.cidr,
        IsDefault: false,
        EnableBroadcast: false,
        Zone: s.zone,
        RouteTableId: 'rtb-lab00001',
        CreatedTime: '2026-01-01 00:00:00',
        AvailableIpAddressCount: model.availableAddresses(s.id),
        TotalIpAddressCount: model.totalAddresses(s.id),
        NetworkAclId: '',
        IsRemoteVpcSnat: false,
        TagSet: [],
        IsCdcSubnet: 0,
      })),
    };
  },
});

const ENI_FILTERS: Record<string, Matcher<Eni>> = {
  'vpc-id': () => true,
  'subnet-id': (e, v) => e.subnetId === v,
  'network-interface-id': (e, v) => e.id === v,
  'attachment.instance-id': (e, v) => e.attachment?.instanceId === v,
  'groups.security-group-id': (e, v) => e.groups.includes(v),
  'network-interface-name': (e, v) => e.name === v,
  'network-interface-description': (e, v) => e.description === v,
  'address-ip': (e, v) => e.ips.some((ip) => ip.address === v),
  'mac-address': (e, v) => e.mac === v,
  'tag-key': (e, v) => e.tags.some((t) => t.Key === v),
  'is-primary': (e, v) => String(e.primary) === v,
  'eni-type': (_e, v) => v === '0',
};

export const DescribeNetworkInterfaces = action({
  service: 'vpc',
  params: z.strictObject({ NetworkInterfaceIds: z.array(z.string()).max(100).optional(), Filters, Offset, Limit }),
  run({ model }, p) {
    if (p.NetworkInterfaceIds && p.Filters) throw fail('InvalidParameter.Coexist', 'NetworkInterfaceIds and Filters cannot be given together');
    let enis = [...model.enis.values()];
    if (p.NetworkInterfaceIds) enis = enis.filter((e) => p.NetworkInterfaceIds!.includes(e.id));
    for (const filter of p.Filters ?? []) {
      if (filter.Name === 'vpc-id' && !filter.Values.includes(model.world.vpc.id)) enis = [];
    }
    enis = applyFilters(enis, p.Filters, ENI_FILTERS, 'DescribeNetworkInterfaces', (e) => e.tags);
    return { TotalCount: enis.length, NetworkInterfaceSet: page(enis, p.Offset, p.Limit).map((e) => renderEni(model, e)) };
  },
});

export const DescribeNetworkInterfaceLimit = action({
  service: 'vpc',
  params: z.strictObject({ InstanceId: z.string() }),
  run({ model }, p) {
    const instance = model.instance(p.InstanceId);
    return {
      EniQuantity: instance.enis,
      EniPrivateIpAddressQuantity: instance.ipsPerEni,
      ExtendEniQuantity: 0,
      ExtendEniPrivateIpAddressQuantity: 0,
      SubEniQuantity: 0,
      SubEniPrivateIpAddressQuantity: 0,
    };
  },
});

export const DescribeVpcTaskResult = action({
  service: 'vpc',
  params: z.strictObject({ TaskId: z.string().min(1) }),
  run({ model }, p) {
    const task = model.tasks.get(p.TaskId);
    if (!task) throw fail('ResourceNotFound', `task ${p.TaskId} does not exist`);
    return { Status: task.status, Output: task.output, Result: [] };
  },
});

const INSTANCE_FILTERS: Record<string, Matcher<Instance>> = {
  'instance-id': (i, v) => i.spec.id === v,
  zone: (i, v) => i.spec.zone === v,
  'instance-name': (i, v) => i.spec.name === v,
  'private-ip-address': (i, v) => i.spec.privateIp === v,
  'vpc-id': (_i, v) => v !== '',
  'subnet-id': (i, v) => i.spec.subnetId === v,
  'instance-type': (i, v) => i.spec.type === v,
};

export const DescribeInstances = action({
  service: 'cvm',
  params: z.strictObject({ InstanceIds: z.array(z.string()).max(100).optional(), Filters, Offset, Limit }),
  run({ model }, p) {
    if (p.InstanceIds && p.Filters) throw fail('InvalidParameter.Coexist', 'InstanceIds and Filters cannot be given together');
    let instances = [...model.instances.values()];
    if (p.InstanceIds) instances = instances.filter((i) => p.InstanceIds!.includes(i.spec.id));
    instances = applyFilters(instances, p.Filters, INSTANCE_FILTERS, 'DescribeInstances');
    return { TotalCount: instances.length, InstanceSet: page(instances, p.Offset, p.Limit).map((i) => renderInstance(model, i)) };
  },
});
