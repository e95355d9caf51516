// Elastic public IPs: allocate, bind to an ENI's private address, unbind, release, and their tasks.
import { z } from 'zod';
import { fail } from '../errors.ts';
import type { Eip } from '../model.ts';
import { renderEip } from '../render.ts';
import { action, ClientToken, Filters, Limit, Offset, page, Tags } from './action.ts';

const ISPS = ['BGP', 'CMCC', 'CTCC', 'CUCC'];
const CHARGE_TYPES = ['TRAFFIC_POSTPAID_BY_HOUR', 'BANDWIDTH_POSTPAID_BY_HOUR', 'BANDWIDTH_PACKAGE', 'BANDWIDTH_PREPAID_BY_MONTH'];
/** Most Mbps a traffic-billed EIP may have; bandwidth-billed ones go higher. */
const MAX_BANDWIDTH = { TRAFFIC_POSTPAID_BY_HOUR: 100, other: 1000 } as const;

export const AllocateAddresses = action({
  service: 'vpc',
  clientToken: true,
  params: z.looseObject({
    AddressCount: z.number().int().optional(),
    InternetServiceProvider: z.string().optional(),
    InternetChargeType: z.string().optional(),
    InternetMaxBandwidthOut: z.number().int().optional(),
    AddressType: z.string().optional(),
    AddressName: z.string().max(128).optional(),
    Tags,
    ClientToken,
  }),
  run({ model, runAsync }, p) {
    const count = p.AddressCount ?? 1;
    const isp = p.InternetServiceProvider ?? 'BGP';
    const chargeType = p.InternetChargeType ?? 'TRAFFIC_POSTPAID_BY_HOUR';
    const bandwidth = p.InternetMaxBandwidthOut ?? 1;
    if (count < 1 || count > 100) throw fail('InvalidParameterValue.Range', `AddressCount ${count} is not within 1..100`);
    if (!ISPS.includes(isp)) {
      throw fail('InvalidParameterValue', `InternetServiceProvider "${isp}" is not one of ${ISPS.join(', ')}`);
    }
    if (!CHARGE_TYPES.includes(chargeType)) throw fail('InvalidParameterValue', `InternetChargeType "${chargeType}" is not one of ${CHARGE_TYPES.join(', ')}`);
    const maxBandwidth = chargeType === 'TRAFFIC_POSTPAID_BY_HOUR' ? MAX_BANDWIDTH.TRAFFIC_POSTPAID_BY_HOUR : MAX_BANDWIDTH.other;
    if (bandwidth < 1 || bandwidth > maxBandwidth) {
      throw fail('InvalidParameterValue.BandwidthOutOfRange', `InternetMaxBandwidthOut ${bandwidth} is not within 1..${maxBandwidth} Mbps for ${chargeType}`);
    }
    if (model.eips.size + count > model.world.eipQuota) {
      throw fail('AddressQuotaLimitExceeded', `the account holds ${model.eips.size} of its ${model.world.eipQuota} EIPs; ${count} more asked`);
    }
    if (model.eipAllocationsToday + count > 2 * model.world.eipQuota) {
      throw fail('AddressQuotaLimitExceeded.DailyAllocate', `${model.eipAllocationsToday} EIPs were allocated today; the daily limit is ${2 * model.world.eipQuota}`);
    }
    model.eipAllocationsToday += count;
    const created: Eip[] = [];
    for (let i = 0; i < count; i++) {
      const eip: Eip = {
        id: model.newId('eip'),
        ip: model.takePublicIp(),
        name: p.AddressName ?? '',
        status: 'CREATING',
        isp,
        chargeType,
        bandwidth,
        tags: p.Tags ?? [],
        createdTime: model.isoNow(),
      };
      model.eips.set(eip.id, eip);
      created.push(eip);
    }
    const task = runAsync(created, () => {
      for (const eip of created) eip.status = 'UNBIND';
    });
    return { AddressSet: created.map((e) => e.id), TaskId: String(task.numericId) };
  },
});

export const AssociateAddress = action({
  service: 'vpc',
  params: z.strictObject({
    AddressId: z.string(),
    InstanceId: z.string().optional(),
    NetworkInterfaceId: z.string().optional(),
    PrivateIpAddress: z.string().optional(),
    EipDirectConnection: z.boolean().optional(),
    InstanceRegion: z.string().optional(),
  }),
  run({ model, runAsync }, p) {
    const eip = model.eip(p.AddressId);
    if ((p.NetworkInterfaceId === undefined) !== (p.PrivateIpAddress === undefined)) {
      throw fail('InvalidParameterConflict', 'NetworkInterfaceId and PrivateIpAddress must be given together');
    }
    if (p.InstanceId === undefined && p.NetworkInterfaceId === undefined) {
      throw fail('InvalidParameterValue.MissingAssociateEntity', `give InstanceId, or NetworkInterfaceId with PrivateIpAddress, to bind ${p.AddressId}`);
    }
    if (p.InstanceId !== undefined && p.NetworkInterfaceId !== undefined) {
      throw fail('InvalidParameterConflict', 'InstanceId and NetworkInterfaceId cannot be given together');
    }
    let eniId: string;
    let privateIp: string;
    if (p.InstanceId !== undefined) {
      const instance = model.instance(p.InstanceId);
      eniId = instance.primaryEniId;
      privateIp = instance.spec.privateIp;
    } else {
      eniId = p.NetworkInterfaceId!;
      privateIp = p.PrivateIpAddress!;
    }
    const eni = model.enis.get(eniId);
    if (!eni) throw fail('InvalidNetworkInterfaceId.NotFound', `network interface ${eniId} does not exist`);
    model.assertIdle(eip);
    if (eip.status !== 'UNBIND') throw fail('UnsupportedOperation.AddressStatusNotPermit', `EIP ${eip.id} is ${eip.status}; only an UNBIND EIP can be bound`);
    const ip = eni.ips.find((i) => i.address === privateIp);
    if (!ip) throw fail('InvalidParameterValue', `address ${privateIp} is not on ${eni.id}`);
    const holder = [...model.eips.values()].find((e) => e.eniId === eni.id && e.privateIp === privateIp);
    if (holder) throw fail('InvalidPrivateIpAddress.AlreadyBindEip', `address ${privateIp} on ${eni.id} already has EIP ${holder.id}`);
    eip.status = 'BINDING';
    eip.eniId = eni.id;
    eip.privateIp = privateIp;
    const task = runAsync([eip], () => {
      eip.status = 'BIND';
      model.emit({ type: 'eip-associated', eipId: eip.id, publicIp: eip.ip, eniId: eni.id, privateIp });
    });
    return { TaskId: String(task.numericId) };
  },
});

export const DisassociateAddress = action({
  service: 'vpc',
  params: z.strictObject({ AddressId: z.string(), ReallocateNormalPublicIp: z.boolean().optional() }),
  run({ model, runAsync }, p) {
    const eip = model.eip(p.AddressId);
    model.assertIdle(eip);
    if (eip.status !== 'BIND') throw fail('UnsupportedOperation.AddressStatusNotPermit', `EIP ${eip.id} is ${eip.status}, not BIND`);
    const { eniId, privateIp } = eip;
    eip.status = 'UNBINDING';
    const task = runAsync([eip], () => {
      eip.status = 'UNBIND';
      eip.eniId = undefined;
      eip.privateIp = undefined;
      model.emit({ type: 'eip-disassociated', eipId: eip.id, publicIp: eip.ip, eniId: eniId ?? '', privateIp: privateIp ?? '' });
    });
    return { TaskId: String(task.numericId) };
  },
});

export const ReleaseAddresses = action({
  service: 'vpc',
  params: z.strictObject({ AddressIds: z.array(z.string()).min(1).max(100) }),
  run({ model, runAsync }, p) {
    const eips = p.AddressIds.map((id) => model.eip(id));
    for (const eip of eips) {
      model.assertIdle(eip);
      if (eip.status !== 'UNBIND') throw fail('UnsupportedOperation.AddressStatusNotPermit', `EIP ${eip.id} is ${eip.status}; only an UNBIND EIP can be released`);
    }
    for (const eip of eips) eip.status = 'OFFLINING';
    const task = runAsync(eips, () => {
      for (const eip of eips) {
        model.eips.delete(eip.id);
        model.releasePublicIp(eip.ip);
      }
    });
    return { TaskId: String(task.numericId) };
  },
});

const EIP_FILTERS: Record<string, (eip: Eip, value: string) => boolean> = {
  'address-id': (e, v) => e.id === v,
  'address-name': (e, v) => e.name === v,
  'address-ip': (e, v) => e.ip === v,
  'address-status': (e, v) => e.status === v,
  'network-interface-id': (e, v) => e.eniId === v,
  'private-ip-address': (e, v) => e.privateIp === v,
  'address-isp': (e, v) => e.isp === v,
  'tag-key': (e, v) => e.tags.some((t) => t.Key === v),
};

export const DescribeAddresses = action({
  service: 'vpc',
  params: z.strictObject({ AddressIds: z.array(z.string()).max(100).optional(), Filters, Offset, Limit }),
  run({ model }, p) {
    if (p.AddressIds && p.Filters) throw fail('InvalidParameter.Coexist', 'AddressIds and Filters cannot be given together');
    let eips = [...model.eips.values()];
    if (p.AddressIds) eips = eips.filter((e) => p.AddressIds!.includes(e.id));
    for (const filter of p.Filters ?? []) {
      const tagKey = filter.Name.startsWith('tag:') ? filter.Name.slice(4) : undefined;
      const match = tagKey !== undefined ? (e: Eip, v: string) => e.tags.some((t) => t.Key === tagKey && t.Value === v) : EIP_FILTERS[filter.Name];
      if (!match) throw fail('InvalidParameter.FilterInvalidKey', `filter "${filter.Name}" is not supported by DescribeAddresses`);
      eips = eips.filter((e) => filter.Values.some((v) => match(e, v)));
    }
    return { TotalCount: eips.length, AddressSet: page(eips, p.Offset, p.Limit).map(renderEip) };
  },
});

export const DescribeAddressQuota = action({
  service: 'vpc',
  params: z.strictObject({}),
  run({ model }) {
    const quota = model.world.eipQuota;
    return {
      QuotaSet: [
        { QuotaId: 'TOTAL_EIP_QUOTA', QuotaCurrent: model.eips.size, QuotaLimit: quota },
        { QuotaId: 'DAILY_EIP_APPLY', QuotaCurrent: model.eipAllocationsToday, QuotaLimit: 2 * quota },
        { QuotaId: 'DAILY_PUBLIC_IP_ASSIGN', QuotaCurrent: 0, QuotaLimit: 2 * quota },
      ],
    };
  },
});

export const DescribeTaskResult = action({
  service: 'vpc',
  params: z.strictObject({ TaskId: z.number().int().optional(), DealName: z.string().optional() }),
  run({ model }, p) {
    if (p.TaskId === undefined) throw fail('MissingParameter', 'TaskId is required');
    const task = model.tasksByNumber.get(p.TaskId);
    if (!task) throw fail('InvalidParameterValue', `task ${p.TaskId} does not exist`);
    return { TaskId: task.numericId, Result: task.status };
  },
});
