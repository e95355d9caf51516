// Secondary private addresses of an ENI: assign, unassign, and moving one address to another ENI.
import { z } from 'zod';
import { fail } from '../errors.ts';
import type { CloudModel, Eni, IpState } from '../model.ts';
import { action, ClientToken, PrivateIpSpecs } from './action.ts';
import { MAX_IPS_PER_CALL, takeAddresses, unbindEipOf } from './eni.ts';

/** Addresses an ENI may hold while it is attached to no instance. */
const IPS_PER_UNATTACHED_ENI = 30;

export const AssignPrivateIpAddresses = action({
  service: 'vpc',
  clientToken: true,
  params: z.strictObject({
    NetworkInterfaceId: z.string(),
    PrivateIpAddresses: PrivateIpSpecs.optional(),
    SecondaryPrivateIpAddressCount: z.number().int().positive().optional(),
    QosLevel: z.string().optional(),
    ClientToken,
  }),
  run({ model, runAsync }, p) {
    const eni = model.eni(p.NetworkInterfaceId);
    const named = (p.PrivateIpAddresses ?? []).map((ip) => ip.PrivateIpAddress);
    const count = p.SecondaryPrivateIpAddressCount ?? 0;
    if (named.length > 0 && count > 0) {
      throw fail('InvalidParameter.Coexist', 'PrivateIpAddresses and SecondaryPrivateIpAddressCount cannot be given together');
    }
    if (named.length === 0 && count === 0) {
      throw fail('MissingParameter', 'give PrivateIpAddresses or SecondaryPrivateIpAddressCount');
    }
    const wanted = named.length + count;
    if (wanted > MAX_IPS_PER_CALL) {
      throw fail('InvalidParameterValue.LimitExceeded', `${wanted} addresses asked for ${eni.id}; at most ${MAX_IPS_PER_CALL} a call`);
    }
    model.assertIdle(eni);
    if (eni.state !== 'AVAILABLE') throw fail('UnsupportedOperation.InvalidState', `${eni.id} is ${eni.state}, not AVAILABLE`);
    const limit = ipLimit(model, eni);
    if (eni.ips.length + wanted > limit) {
      throw fail(
        'LimitExceeded',
        `${eni.id} holds ${eni.ips.length} addresses; ${wanted} more would pass its limit of ${limit}`,
      );
    }
    const addresses = takeAddresses(model, eni.subnetId, named, count);
    const added = addresses.map((address) => ({ address, primary: false, state: 'PENDING' as IpState, description: '' }));
    eni.ips.push(...added);
    runAsync([eni], () => {
      for (const ip of added) {
        ip.state = 'AVAILABLE';
        model.emit({ type: 'ip-assigned', eniId: eni.id, address: ip.address });
      }
    });
    return {
      PrivateIpAddressSet: added.map((ip) => ({ PrivateIpAddress: ip.address, Primary: false, State: ip.state, QosLevel: 'DEFAULT' })),
    };
  },
});

export const UnassignPrivateIpAddresses = action({
  service: 'vpc',
  params: z.strictObject({
    NetworkInterfaceId: z.string(),
    PrivateIpAddresses: PrivateIpSpecs.min(1),
    InstanceId: z.string().optional(),
  }),
  run({ model, runAsync }, p) {
    const eni = model.eni(p.NetworkInterfaceId);
    if (p.PrivateIpAddresses.length > MAX_IPS_PER_CALL) {
      throw fail('InvalidParameterValue.LimitExceeded', `${p.PrivateIpAddresses.length} addresses named for ${eni.id}; at most ${MAX_IPS_PER_CALL} a call`);
    }
    if (p.InstanceId !== undefined && eni.attachment?.instanceId !== p.InstanceId) {
      throw fail('UnsupportedOperation.InvalidState', `${eni.id} is not attached to ${p.InstanceId}`);
    }
    model.assertIdle(eni);
    const leaving = p.PrivateIpAddresses.map(({ PrivateIpAddress: address }) => {
      const ip = eni.ips.find((i) => i.address === address);
      if (!ip) throw fail('UnsupportedOperation.AttachmentNotFound', `address ${address} is not on ${eni.id}`);
      if (ip.primary) throw fail('UnsupportedOperation', `address ${address} is the primary address of ${eni.id} and cannot be unassigned`);
      return ip;
    });
    for (const ip of leaving) ip.state = 'DELETING';
    runAsync([eni], () => {
      for (const ip of leaving) {
        unbindEipOf(model, eni.id, ip.address);
        eni.ips = eni.ips.filter((i) => i !== ip);
        model.releaseAddress(eni.subnetId, ip.address);
        model.emit({ type: 'ip-released', eniId: eni.id, address: ip.address });
      }
    });
    return {};
  },
});

export const MigratePrivateIpAddress = action({
  service: 'vpc',
  params: z.strictObject({
    SourceNetworkInterfaceId: z.string(),
    DestinationNetworkInterfaceId: z.string(),
    PrivateIpAddress: z.string(),
  }),
  run({ model, runAsync }, p) {
    const source = model.eni(p.SourceNetworkInterfaceId);
    const destination = model.eni(p.DestinationNetworkInterfaceId);
    const ip = source.ips.find((i) => i.address === p.PrivateIpAddress);
    if (!ip) throw fail('UnauthorizedOperation.AttachmentNotFound', `address ${p.PrivateIpAddress} is not on ${source.id}`);
    if (ip.primary) throw fail('UnsupportedOperation.PrimaryIp', `address ${ip.address} is the primary address of ${source.id} and cannot move`);
    if (source === destination) throw fail('InvalidParameterValue', `address ${ip.address} is already on ${source.id}`);
    if (source.subnetId !== destination.subnetId) {
      throw fail(
        'UnsupportedOperation',
        `address ${ip.address} cannot move from ${source.id} (${source.subnetId}) to ${destination.id} (${destination.subnetId}): not the same subnet`,
      );
    }
    model.assertIdle(source);
    model.assertIdle(destination);
    if (destination.state !== 'AVAILABLE') throw fail('UnsupportedOperation.InvalidState', `${destination.id} is ${destination.state}, not AVAILABLE`);
    const limit = ipLimit(model, destination);
    if (destination.ips.length + 1 > limit) {
      throw fail('LimitExceeded', `${destination.id} already holds its limit of ${limit} addresses`);
    }
    ip.state = 'MIGRATING';
    runAsync([source, destination], () => {
      source.ips = source.ips.filter((i) => i !== ip);
      destination.ips.push(ip);
      ip.state = 'AVAILABLE';
      for (const eip of model.eips.values()) {
        if (eip.eniId === source.id && eip.privateIp === ip.address) eip.eniId = destination.id;
      }
      model.emit({ type: 'ip-moved', fromEniId: source.id, toEniId: destination.id, address: ip.address });
    });
    return {};
  },
});

function ipLimit(model: CloudModel, eni: Eni): number {
  const instanceId = eni.attachment?.instanceId;
  return instanceId ? model.instance(instanceId).ipsPerEni : IPS_PER_UNATTACHED_ENI;
}
