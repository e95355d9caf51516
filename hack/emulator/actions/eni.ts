// ENI lifecycle: create, attach, detach, delete, and moving a whole ENI to another instance.
import { z } from 'zod';
import { fail } from '../errors.ts';
import type { CloudModel, Eni, Instance } from '../model.ts';
import { renderEni } from '../render.ts';
import { action, ClientToken, PrivateIpSpecs, Tags } from './action.ts';

/** Most addresses one assign or create call may name or ask for. */
export const MAX_IPS_PER_CALL = 10;

export const CreateNetworkInterface = action({
  service: 'vpc',
  clientToken: true,
  params: z.strictObject({
    VpcId: z.string(),
    SubnetId: z.string(),
    NetworkInterfaceName: z.string().min(1),
    NetworkInterfaceDescription: z.string().max(60).optional(),
    SecondaryPrivateIpAddressCount: z.number().int().nonnegative().optional(),
    QosLevel: z.string().optional(),
    SecurityGroupIds: z.array(z.string()).max(5).optional(),
    PrivateIpAddresses: PrivateIpSpecs.optional(),
    Tags,
    TrunkingFlag: z.string().optional(),
    IsRdma: z.boolean().optional(),
    ClientToken,
  }),
  run({ model, runAsync }, p) {
    if (p.VpcId !== model.world.vpc.id) throw fail('ResourceNotFound', `VPC ${p.VpcId} does not exist`);
    if (Buffer.byteLength(p.NetworkInterfaceName) > 60) {
      throw fail('InvalidParameterValue.TooLong', `NetworkInterfaceName "${p.NetworkInterfaceName}" is longer than 60 bytes`);
    }
    const subnet = model.subnet(p.SubnetId);
    for (const group of p.SecurityGroupIds ?? []) {
      if (!model.world.securityGroups.includes(group)) throw fail('ResourceNotFound', `security group ${group} does not exist`);
    }
    const named = p.PrivateIpAddresses ?? [];
    const extra = p.SecondaryPrivateIpAddressCount ?? 0;
    if (named.length > MAX_IPS_PER_CALL || extra > MAX_IPS_PER_CALL) {
      throw fail('InvalidParameterValue.LimitExceeded', `at most ${MAX_IPS_PER_CALL} addresses may be named or asked for in one call`);
    }
    if (named.filter((ip) => ip.Primary).length > 1) throw fail('InvalidParameterValue', 'only one of PrivateIpAddresses may be Primary');
    const namedPrimary = named.find((ip) => ip.Primary)?.PrivateIpAddress;
    const addresses = takeAddresses(model, subnet.spec.id, named.map((ip) => ip.PrivateIpAddress), extra + (namedPrimary ? 0 : 1));
    // Without a named primary, the first address drawn from the subnet is the primary one.
    const primaryAddress = namedPrimary ?? addresses[named.length];
    const now = model.isoNow();
    const eni: Eni = {
      id: model.newId('eni'),
      name: p.NetworkInterfaceName,
      description: p.NetworkInterfaceDescription ?? '',
      subnetId: subnet.spec.id,
      zone: subnet.spec.zone,
      mac: model.newMac(),
      primary: false,
      groups: p.SecurityGroupIds ?? [],
      state: 'PENDING',
      ips: addresses.map((address) => ({ address, primary: address === primaryAddress, state: 'PENDING', description: '' })),
      tags: p.Tags ?? [],
      createdTime: now,
    };
    eni.ips.sort((a, b) => Number(b.primary) - Number(a.primary));
    model.enis.set(eni.id, eni);
    runAsync([eni], () => {
      eni.state = 'AVAILABLE';
      for (const ip of eni.ips) ip.state = 'AVAILABLE';
    });
    return { NetworkInterface: renderEni(model, eni) };
  },
});

export const AttachNetworkInterface = action({
  service: 'vpc',
  clientToken: true,
  params: z.strictObject({
    NetworkInterfaceId: z.string(),
    InstanceId: z.string(),
    AttachType: z.number().int().optional(),
    ClientToken,
  }),
  run({ model, runAsync }, p) {
    const eni = model.eni(p.NetworkInterfaceId);
    const instance = model.instance(p.InstanceId);
    model.assertIdle(eni);
    if (eni.attachment) {
      throw fail('UnsupportedOperation.AttachmentAlreadyExists', `${eni.id} is already attached to ${eni.attachment.instanceId}`);
    }
    if (eni.state !== 'AVAILABLE') throw fail('UnsupportedOperation.InvalidState', `${eni.id} is ${eni.state}, not AVAILABLE`);
    checkCanHold(model, instance, eni);
    const deviceIndex = freeDeviceIndex(model, instance);
    eni.state = 'ATTACHING';
    eni.attachment = { instanceId: instance.spec.id, deviceIndex, attachTime: model.isoNow() };
    runAsync([eni], () => {
      eni.state = 'AVAILABLE';
      model.emit({ type: 'eni-attached', eniId: eni.id, instanceId: instance.spec.id, mac: eni.mac, deviceIndex, subnetId: eni.subnetId });
    });
    return {};
  },
});

export const DetachNetworkInterface = action({
  service: 'vpc',
  clientToken: true,
  params: z.strictObject({ NetworkInterfaceId: z.string(), InstanceId: z.string(), ClientToken }),
  run({ model, runAsync }, p) {
    const eni = model.eni(p.NetworkInterfaceId);
    model.instance(p.InstanceId);
    model.assertIdle(eni);
    if (eni.primary) throw fail('UnsupportedOperation', `${eni.id} is the primary ENI of ${p.InstanceId} and cannot be detached`);
    if (eni.attachment?.instanceId !== p.InstanceId) {
      throw fail('UnsupportedOperation.InvalidState', `${eni.id} is not attached to ${p.InstanceId}`);
    }
    const instanceId = p.InstanceId;
    eni.state = 'DETACHING';
    runAsync([eni], () => {
      eni.state = 'AVAILABLE';
      eni.attachment = undefined;
      model.emit({ type: 'eni-detached', eniId: eni.id, instanceId, mac: eni.mac });
    });
    return {};
  },
});

export const DeleteNetworkInterface = action({
  service: 'vpc',
  params: z.strictObject({ NetworkInterfaceId: z.string() }),
  run({ model, runAsync }, p) {
    const eni = model.eni(p.NetworkInterfaceId);
    model.assertIdle(eni);
    if (eni.primary) throw fail('UnsupportedOperation', `${eni.id} is a primary ENI and cannot be deleted`);
    if (eni.attachment) {
      throw fail('ResourceInUse', `${eni.id} is attached to ${eni.attachment.instanceId}; detach it first`);
    }
    eni.state = 'DELETING';
    runAsync([eni], () => {
      for (const ip of eni.ips) {
        unbindEipOf(model, eni.id, ip.address);
        model.releaseAddress(eni.subnetId, ip.address);
      }
      model.enis.delete(eni.id);
    });
    return {};
  },
});

export const MigrateNetworkInterface = action({
  service: 'vpc',
  params: z.strictObject({
    NetworkInterfaceId: z.string(),
    SourceInstanceId: z.string(),
    DestinationInstanceId: z.string(),
    AttachType: z.number().int().optional(),
  }),
  run({ model, runAsync }, p) {
    const eni = model.eni(p.NetworkInterfaceId);
    model.instance(p.SourceInstanceId);
    const destination = model.instance(p.DestinationInstanceId);
    model.assertIdle(eni);
    if (eni.primary) throw fail('UnsupportedOperation', `${eni.id} is a primary ENI and cannot be migrated`);
    if (eni.attachment?.instanceId !== p.SourceInstanceId) {
      throw fail('UnsupportedOperation.AttachmentNotFound', `${eni.id} is not attached to ${p.SourceInstanceId}`);
    }
    if (p.SourceInstanceId === p.DestinationInstanceId) throw fail('InvalidParameterValue', 'source and destination instance are the same');
    checkCanHold(model, destination, eni);
    const deviceIndex = freeDeviceIndex(model, destination);
    const source = p.SourceInstanceId;
    eni.state = 'ATTACHING';
    runAsync([eni], () => {
      eni.state = 'AVAILABLE';
      eni.attachment = { instanceId: destination.spec.id, deviceIndex, attachTime: model.isoNow() };
      model.emit({ type: 'eni-detached', eniId: eni.id, instanceId: source, mac: eni.mac });
      model.emit({ type: 'eni-attached', eniId: eni.id, instanceId: destination.spec.id, mac: eni.mac, deviceIndex, subnetId: eni.subnetId });
    });
    return {};
  },
});

/** Reserves the named addresses and `count` more, all or nothing. */
export function takeAddresses(model: CloudModel, subnetId: string, named: string[], count: number): string[] {
  const taken: string[] = [];
  try {
    for (const address of named) {
      model.takeAddress(subnetId, address);
      taken.push(address);
    }
    taken.push(...model.takeFreeAddresses(subnetId, count));
    return taken;
  } catch (err) {
    for (const address of taken) model.releaseAddress(subnetId, address);
    throw err;
  }
}

export function unbindEipOf(model: CloudModel, eniId: string, address: string): void {
  for (const eip of model.eips.values()) {
    if (eip.eniId === eniId && eip.privateIp === address) {
      if (eip.status === 'BIND') model.emit({ type: 'eip-disassociated', eipId: eip.id, publicIp: eip.ip, eniId, privateIp: address });
      eip.status = 'UNBIND';
      eip.eniId = undefined;
      eip.privateIp = undefined;
    }
  }
}

function checkCanHold(model: CloudModel, instance: Instance, eni: Eni): void {
  if (eni.zone !== instance.spec.zone) {
    throw fail('UnsupportedOperation.ZoneMismatch', `${eni.id} is in ${eni.zone} but instance ${instance.spec.id} is in ${instance.spec.zone}`);
  }
  if (eni.groups.length === 0) {
    throw fail('UnsupportedOperation', `${eni.id} has no security group; an ENI needs one to be attached`);
  }
  const held = model.enisOf(instance.spec.id).length;
  if (held >= instance.enis) {
    throw fail('LimitExceeded', `instance ${instance.spec.id} (${instance.spec.type}) already has ${held} of its ${instance.enis} ENIs`);
  }
  if (eni.ips.length > instance.ipsPerEni) {
    throw fail('LimitExceeded', `${eni.id} holds ${eni.ips.length} addresses; instance ${instance.spec.id} allows ${instance.ipsPerEni} per ENI`);
  }
}

function freeDeviceIndex(model: CloudModel, instance: Instance): number {
  const used = new Set(model.enisOf(instance.spec.id).map((e) => e.attachment?.deviceIndex));
  let index = 1;
  while (used.has(index)) index++;
  return index;
}
