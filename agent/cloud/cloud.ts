// The agent's view of the cloud: the few ENI and address operations it needs, each returning when the
// change has taken effect. The real adapter is tencent.ts; tests of the pool use a fake.

export interface Eni {
  id: string;
  mac: string;
  subnetId: string;
  /** the ENI's own (primary) private address */
  primaryIp: string;
  /** secondary addresses that are ready to use */
  secondaryIps: string[];
  primary: boolean;
  /** PENDING while being created, AVAILABLE once usable, ATTACHING, DETACHING, DELETING */
  state: string;
  /** a change of it or of its addresses is still under way (an address not AVAILABLE yet, or the ENI itself) */
  settling: boolean;
  attachedTo?: string | undefined;
  deviceIndex?: number | undefined;
  securityGroupIds: string[];
  tags: Record<string, string>;
}

export interface Subnet {
  id: string;
  cidr: string;
  zone: string;
  availableIps: number;
  /** addresses the subnet holds in all, free or not */
  totalIps: number;
}

export interface InstanceLimits {
  /** ENIs the instance may hold, its primary ENI included */
  enis: number;
  /** addresses per ENI, the ENI's primary address included */
  ipsPerEni: number;
}

export interface CreateEniOptions {
  subnetId: string;
  name: string;
  securityGroupIds: string[];
  tags: Record<string, string>;
  /** secondary addresses to create the ENI with (at most 10) */
  secondaryIps: number;
}

export interface Cloud {
  limits(instanceId: string): Promise<InstanceLimits>;
  subnets(subnetIds: string[]): Promise<Subnet[]>;
  enisOf(instanceId: string): Promise<Eni[]>;
  /** every ENI carrying the tag `key` = `value`, attached or not */
  enisTagged(key: string, value: string): Promise<Eni[]>;
  createEni(options: CreateEniOptions): Promise<Eni>;
  attachEni(eniId: string, instanceId: string): Promise<void>;
  detachEni(eniId: string, instanceId: string): Promise<void>;
  deleteEni(eniId: string): Promise<void>;
  /** assigns `count` (at most 10) new secondary addresses; returns them */
  assignIps(eniId: string, count: number): Promise<string[]>;
  unassignIps(eniId: string, addresses: string[]): Promise<void>;
  /** moves a whole ENI, attached to `fromInstance`, to `toInstance` of the same zone (a whole-ENI pod's fixed IP following it) */
  migrateEni(eniId: string, fromInstance: string, toInstance: string): Promise<void>;
  /** moves a secondary address to another ENI of the same subnet (a fixed IP following its pod) */
  migrateIp(fromEniId: string, toEniId: string, address: string): Promise<void>;
  /** The ENI holding an address of a subnet, if any; `ready` false while the address is still changing there (moving, being assigned) */
  findAddress(subnetId: string, address: string): Promise<{ eni: Eni; ready: boolean } | undefined>;
  /** Assigns one named address, free in the ENI's subnet, to the ENI. */
  assignAddress(eniId: string, address: string): Promise<void>;
}

/** An elastic public IP, as the cloud describes it. */
export interface PublicIp {
  id: string;
  address: string;
  /** CREATING, BINDING, BIND, BIND_ENI, UNBINDING, UNBIND, OFFLINING */
  status: string;
  eniId?: string | undefined;
  privateIp?: string | undefined;
  tags: Record<string, string>;
}

/** EIP statuses: bound (BIND_ENI: to an ENI on no instance), and on their way somewhere. */
export const EIP_BOUND: readonly string[] = ['BIND', 'BIND_ENI'];
export const EIP_CHANGING: readonly string[] = ['CREATING', 'BINDING', 'UNBINDING', 'OFFLINING'];

export interface AllocateEipOptions {
  /** Mbps, billed by traffic per hour */
  bandwidth: number;
  isp: string;
  name: string;
  tags: Record<string, string>;
  /** the same token for a retried allocation, so that a lost answer does not make a second EIP */
  clientToken: string;
}

/** The EIP operations, each returning when the change has taken effect (ipamd's only). */
export interface EipCloud {
  /** the EIP of that id; undefined when there is none */
  eip(eipId: string): Promise<PublicIp | undefined>;
  /** every EIP carrying the tag `key` = `value` */
  eipsTagged(key: string, value: string): Promise<PublicIp[]>;
  allocateEip(options: AllocateEipOptions): Promise<PublicIp>;
  /** binds an UNBIND EIP to a private address of an ENI */
  associateEip(eipId: string, eniId: string, privateIp: string): Promise<void>;
  disassociateEip(eipId: string): Promise<void>;
  /** releases an UNBIND EIP; gone already is success */
  releaseEip(eipId: string): Promise<void>;
}

/** An error from the cloud, with Tencent's code, naming the operation and resource it concerns. */
export class CloudError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly requestId = '',
  ) {
    super(message);
    this.name = 'CloudError';
  }
}

/** The tag on every ENI made for a node, naming its instance: the ENIs eni-cni may fill, empty and delete. */
export const OWNER_TAG = 'eni-cni.node';

/** The tag on an ENI made whole for one pod (tke-direct-eni): its value is DIRECT_MODE. */
export const MODE_TAG = 'eni-cni.mode';
export const DIRECT_MODE = 'direct';
export const isDirectEni = (eni: Pick<Eni, 'tags'>): boolean => eni.tags[MODE_TAG] === DIRECT_MODE;

/** Most addresses one assign or create call may carry. */
export const MAX_IPS_PER_CALL = 10;
