// Names TKE's VPC-CNI users already write: annotations, extended resources, the CRD group.
// They are the compatibility contract, so they live in one place.

export const CRD_GROUP = 'networking.tke.cloud.tencent.com';
export const CRD_VERSION = 'v1';

export const POD_ANNOTATIONS = {
  networks: 'tke.cloud.tencent.com/networks',
  vpcIpClaimDeletePolicy: 'tke.cloud.tencent.com/vpc-ip-claim-delete-policy',
  eipAttributes: 'tke.cloud.tencent.com/eip-attributes',
  eipIdList: 'tke.cloud.tencent.com/eip-id-list',
  eipClaimDeletePolicy: 'tke.cloud.tencent.com/eip-claim-delete-policy',
  eipPublicIp: 'tke.cloud.tencent.com/eip-public-ip',
} as const;

/** Per-node overrides, as annotations of the node's NodeENIConfig. */
export const NEC_ANNOTATIONS = {
  routeEniIpMinWarmTarget: 'tke.cloud.tencent.com/route-eni-ip-min-warm-target',
  routeEniIpMaxWarmTarget: 'tke.cloud.tencent.com/route-eni-ip-max-warm-target',
  directEniMinWarmTarget: 'tke.cloud.tencent.com/direct-eni-min-warm-target',
  directEniMaxWarmTarget: 'tke.cloud.tencent.com/direct-eni-max-warm-target',
  routeEniMaxAttach: 'tke.cloud.tencent.com/route-eni-max-attach',
  maxIpPerRouteEni: 'tke.cloud.tencent.com/max-ip-per-route-eni',
  directEniMaxAttach: 'tke.cloud.tencent.com/direct-eni-max-attach',
} as const;

export const EXTENDED_RESOURCES = {
  eniIp: 'tke.cloud.tencent.com/eni-ip',
  directEni: 'tke.cloud.tencent.com/direct-eni',
  eip: 'tke.cloud.tencent.com/eip',
} as const;

export const NETWORK_MODES = { sharedEni: 'tke-route-eni', directEni: 'tke-direct-eni' } as const;
