// Renders model objects in the shapes of the SDK's vpc_models.d.ts / cvm_models.d.ts.
import type { CloudModel, Eip, Eni, Instance } from './model.ts';

export function renderEni(model: CloudModel, eni: Eni) {
  const eipOf = (address: string) => [...model.eips.values()].find((e) => e.eniId === eni.id && e.privateIp === address);
  return {
    NetworkInterfaceId: eni.id,
    NetworkInterfaceName: eni.name,
    NetworkInterfaceDescription: eni.description,
    SubnetId: eni.subnetId,
    VpcId: model.world.vpc.id,
    GroupSet: eni.groups,
    Primary: eni.primary,
    MacAddress: eni.mac,
    State: eni.state,
    NetworkInterfaceState: eni.attachment && eni.state === 'AVAILABLE' ? 'INUSE' : eni.state,
    PrivateIpAddressSet: eni.ips.map((ip) => {
      const eip = eipOf(ip.address);
      return {
        PrivateIpAddress: ip.address,
        Primary: ip.primary,
        PublicIpAddress: eip && eip.status === 'BIND' ? eip.ip : '',
        AddressId: eip && eip.status === 'BIND' ? eip.id : '',
        Description: ip.description,
        IsWanIpBlocked: false,
        State: ip.state,
        QosLevel: 'DEFAULT',
      };
    }),
    Attachment: eni.attachment
      ? {
          InstanceId: eni.attachment.instanceId,
          DeviceIndex: eni.attachment.deviceIndex,
          InstanceAccountId: model.world.appId,
          AttachTime: eni.attachment.attachTime,
        }
      : null,
    Zone: eni.zone,
    CreatedTime: eni.createdTime,
    Ipv6AddressSet: [],
    TagSet: eni.tags,
    EniType: 0,
    Business: 'cvm',
    CdcId: '',
    AttachType: 0,
    ResourceId: '',
    QosLevel: 'DEFAULT',
  };
}

export function renderEip(eip: Eip) {
  return {
    AddressId: eip.id,
    AddressName: eip.name,
    AddressStatus: eip.status,
    AddressIp: eip.ip,
    InstanceId: null,
    CreatedTime: eip.createdTime,
    NetworkInterfaceId: eip.eniId ?? null,
    PrivateAddressIp: eip.privateIp ?? null,
    IsArrears: false,
    IsBlocked: false,
    IsEipDirectConnection: false,
    AddressType: 'EIP',
    CascadeRelease: false,
    InternetServiceProvider: eip.isp,
    LocalBgp: false,
    Bandwidth: eip.bandwidth,
    InternetChargeType: eip.chargeType,
    TagSet: eip.tags,
    InstanceType: eip.eniId ? 'ENI' : null,
  };
}

export function renderInstance(model: CloudModel, instance: Instance) {
  const { spec } = instance;
  const primary = model.enis.get(instance.primaryEniId);
  return {
    InstanceId: spec.id,
    InstanceName: spec.name,
    InstanceType: spec.type,
    CPU: spec.cpu,
    Memory: spec.memoryGb,
    Placement: { Zone: spec.zone, ProjectId: 0 },
    PrivateIpAddresses: [spec.privateIp],
    PublicIpAddresses: spec.publicIp ? [spec.publicIp] : [],
    VirtualPrivateCloud: { VpcId: model.world.vpc.id, SubnetId: spec.subnetId, AsVpcGateway: false },
    SecurityGroupIds: primary?.groups ?? [],
    InstanceState: 'RUNNING',
    InstanceChargeType: 'POSTPAID_BY_HOUR',
    CamRoleName: spec.role ?? '',
    CreatedTime: instance.createdTime,
    RestrictState: 'NORMAL',
    Uuid: spec.id,
    Tags: [],
  };
}
