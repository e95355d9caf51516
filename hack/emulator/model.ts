// The emulator's state: what exists in the emulated region, and the bookkeeping every action shares
// (ids, subnet address pools, the per-resource lock of a running task, events).
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { cidrContains, cidrSize, intToIp, ipToInt, nthAddress, parseCidr, type Cidr } from '../../shared/ip.ts';
import { fail } from './errors.ts';
import { quotaForCpu, type InstanceSpec, type World } from './world.ts';

export type EniState = 'PENDING' | 'AVAILABLE' | 'ATTACHING' | 'DETACHING' | 'DELETING';
export type IpState = 'PENDING' | 'AVAILABLE' | 'MIGRATING' | 'DELETING';
export type EipStatus = 'CREATING' | 'BINDING' | 'BIND' | 'UNBINDING' | 'UNBIND' | 'OFFLINING';

export interface Tag {
  Key: string;
  Value?: string | undefined;
}

export interface PrivateIp {
  address: string;
  primary: boolean;
  state: IpState;
  description: string;
}

export interface Eni {
  id: string;
  name: string;
  description: string;
  subnetId: string;
  zone: string;
  mac: string;
  primary: boolean;
  groups: string[];
  state: EniState;
  attachment?: { instanceId: string; deviceIndex: number; attachTime: string } | undefined;
  ips: PrivateIp[];
  tags: Tag[];
  createdTime: string;
  /** id of the task that holds this ENI; a second change while it runs is refused */
  busyWith?: string | undefined;
}

export interface Instance {
  spec: InstanceSpec;
  enis: number;
  ipsPerEni: number;
  primaryEniId: string;
  createdTime: string;
}

export interface Eip {
  id: string;
  ip: string;
  name: string;
  status: EipStatus;
  isp: string;
  chargeType: string;
  bandwidth: number;
  eniId?: string | undefined;
  privateIp?: string | undefined;
  tags: Tag[];
  createdTime: string;
  busyWith?: string | undefined;
}

export interface Task {
  /** the RequestId of the call that started it (what DescribeVpcTaskResult takes) */
  id: string;
  /** numeric id for EIP tasks (what DescribeTaskResult takes) */
  numericId: number;
  status: 'RUNNING' | 'SUCCESS' | 'FAILED';
  output: string;
}

/** What subscribers (the lab) hear when the emulated network changes. Emitted when a change takes effect. */
export type CloudEvent =
  | { type: 'eni-attached'; eniId: string; instanceId: string; mac: string; deviceIndex: number; subnetId: string }
  | { type: 'eni-detached'; eniId: string; instanceId: string; mac: string }
  | { type: 'ip-assigned'; eniId: string; address: string }
  | { type: 'ip-released'; eniId: string; address: string }
  | { type: 'ip-moved'; fromEniId: string; toEniId: string; address: string }
  | { type: 'eip-associated'; eipId: string; publicIp: string; eniId: string; privateIp: string }
  | { type: 'eip-disassociated'; eipId: string; publicIp: string; eniId: string; privateIp: string };

export interface Clock {
  now(): number;
}

export class CloudModel {
  readonly vpcCidr: Cidr;
  readonly subnets = new Map<string, { spec: World['subnets'][number]; cidr: Cidr; used: Set<string> }>();
  readonly instances = new Map<string, Instance>();
  readonly enis = new Map<string, Eni>();
  readonly eips = new Map<string, Eip>();
  readonly tasks = new Map<string, Task>();
  readonly tasksByNumber = new Map<number, Task>();
  readonly events = new EventEmitter<{ event: [CloudEvent] }>();
  private readonly publicPool: { cidr: Cidr; used: Set<string> };
  private nextTaskNumber = 1000;
  eipAllocationsToday = 0;

  constructor(
    readonly world: World,
    readonly clock: Clock,
  ) {
    this.vpcCidr = parseCidr(world.vpc.cidr);
    for (const spec of world.subnets) this.subnets.set(spec.id, { spec, cidr: parseCidr(spec.cidr), used: new Set() });
    this.publicPool = { cidr: parseCidr(world.publicIpPool), used: new Set() };
    for (const spec of world.instances) this.addInstance(spec);
    for (const id of world.eips) {
      const eip: Eip = { id, ip: this.takePublicIp(), name: '', status: 'UNBIND', isp: 'BGP', chargeType: 'TRAFFIC_POSTPAID_BY_HOUR', bandwidth: 100, tags: [], createdTime: this.isoNow() };
      this.eips.set(id, eip);
    }
  }

  /** Adds a CVM with its primary ENI (the lab adds nodes this way). */
  addInstance(spec: InstanceSpec): Instance {
    if (this.instances.has(spec.id)) throw fail('InvalidParameterValue', `instance ${spec.id} already exists`);
    const subnet = this.subnet(spec.subnetId);
    if (subnet.spec.zone !== spec.zone) throw fail('InvalidParameterValue', `instance ${spec.id}: subnet ${spec.subnetId} is not in ${spec.zone}`);
    this.takeAddress(subnet.spec.id, spec.privateIp);
    if (spec.publicIp) this.publicPool.used.add(spec.publicIp);
    const quota = quotaForCpu(spec.cpu);
    const now = this.isoNow();
    const eni: Eni = {
      id: this.newId('eni'),
      name: `${spec.id}-primary`,
      description: '',
      subnetId: spec.subnetId,
      zone: spec.zone,
      mac: spec.mac ?? this.newMac(),
      primary: true,
      groups: [...this.world.securityGroups.slice(0, 1)],
      state: 'AVAILABLE',
      attachment: { instanceId: spec.id, deviceIndex: 0, attachTime: now },
      ips: [{ address: spec.privateIp, primary: true, state: 'AVAILABLE', description: '' }],
      tags: [],
      createdTime: now,
    };
    this.enis.set(eni.id, eni);
    const instance: Instance = {
      spec,
      enis: spec.eniQuota ?? quota.enis,
      ipsPerEni: spec.ipsPerEni ?? quota.ipsPerEni,
      primaryEniId: eni.id,
      createdTime: now,
    };
    this.instances.set(spec.id, instance);
    return instance;
  }

  subnet(id: string) {
    checkIdFormat(id, 'subnet');
    const subnet = this.subnets.get(id);
    if (!subnet) throw fail('ResourceNotFound', `subnet ${id} does not exist`);
    return subnet;
  }

  instance(id: string): Instance {
    checkIdFormat(id, 'ins');
    const instance = this.instances.get(id);
    if (!instance) throw fail('InvalidInstanceId.NotFound', `instance ${id} does not exist`);
    return instance;
  }

  eni(id: string): Eni {
    checkIdFormat(id, 'eni');
    const eni = this.enis.get(id);
    if (!eni) throw fail('ResourceNotFound', `network interface ${id} does not exist`);
    return eni;
  }

  eip(id: string): Eip {
    checkIdFormat(id, 'eip');
    const eip = this.eips.get(id);
    if (!eip) throw fail('InvalidAddressId.NotFound', `EIP ${id} does not exist`);
    return eip;
  }

  enisOf(instanceId: string): Eni[] {
    return [...this.enis.values()].filter((e) => e.attachment?.instanceId === instanceId);
  }

  /** Refuses a change to a resource while another task on it runs, as the real service does. */
  assertIdle(resource: { id: string; busyWith?: string | undefined }): void {
    if (resource.busyWith) {
      const code = resource.id.startsWith('eip-') ? 'OperationDenied.MutexTaskRunning' : 'UnsupportedOperation.MutexOperationTaskRunning';
      throw fail(code, `${resource.id} is busy with task ${resource.busyWith}; retry when it ends`);
    }
  }

  // ---- subnet address pools. A subnet reserves its network address, its gateway (.1) and its broadcast address.

  gateway(subnetId: string): string {
    return nthAddress(this.subnet(subnetId).cidr, 1);
  }

  totalAddresses(subnetId: string): number {
    return cidrSize(this.subnet(subnetId).cidr) - 3;
  }

  availableAddresses(subnetId: string): number {
    return this.totalAddresses(subnetId) - this.subnet(subnetId).used.size;
  }

  takeAddress(subnetId: string, address: string): void {
    const subnet = this.subnet(subnetId);
    if (!cidrContains(subnet.cidr, address)) {
      throw fail('UnsupportedOperation.ResourceMismatch', `address ${address} is not in subnet ${subnetId} (${subnet.spec.cidr})`);
    }
    const offset = ipToInt(address) - subnet.cidr.base;
    if (offset <= 1 || offset === cidrSize(subnet.cidr) - 1) {
      throw fail('InvalidParameterValue.Reserved', `address ${address} is reserved in subnet ${subnetId}`);
    }
    if (subnet.used.has(address)) throw fail('ResourceInUse', `address ${address} is already in use in subnet ${subnetId}`);
    subnet.used.add(address);
  }

  /** Takes `count` free addresses of a subnet, lowest first, or none at all. */
  takeFreeAddresses(subnetId: string, count: number): string[] {
    const subnet = this.subnet(subnetId);
    if (this.availableAddresses(subnetId) < count) {
      throw fail('ResourceInsufficient.Subnet', `subnet ${subnetId} has ${this.availableAddresses(subnetId)} free addresses, ${count} asked`);
    }
    const taken: string[] = [];
    for (let offset = 2; taken.length < count && offset < cidrSize(subnet.cidr) - 1; offset++) {
      const address = intToIp((subnet.cidr.base + offset) >>> 0);
      if (!subnet.used.has(address)) taken.push(address);
    }
    for (const address of taken) subnet.used.add(address);
    return taken;
  }

  releaseAddress(subnetId: string, address: string): void {
    this.subnet(subnetId).used.delete(address);
  }

  takePublicIp(): string {
    const { cidr, used } = this.publicPool;
    for (let offset = 1; offset < cidrSize(cidr) - 1; offset++) {
      const ip = intToIp((cidr.base + offset) >>> 0);
      if (!used.has(ip)) {
        used.add(ip);
        return ip;
      }
    }
    throw fail('ResourceInsufficient', 'the public address pool is exhausted');
  }

  releasePublicIp(ip: string): void {
    this.publicPool.used.delete(ip);
  }

  // ---- ids, tasks, events

  newId(prefix: string): string {
    return `${prefix}-${randomBytes(4).toString('hex')}`;
  }

  newMac(): string {
    // 20:90:6f is the prefix Tencent Cloud's ENIs carry; the rest is random.
    return ['20', '90', '6f', ...[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
  }

  newTask(requestId: string): Task {
    const task: Task = { id: requestId, numericId: this.nextTaskNumber++, status: 'RUNNING', output: '' };
    this.tasks.set(task.id, task);
    this.tasksByNumber.set(task.numericId, task);
    return task;
  }

  emit(event: CloudEvent): void {
    this.events.emit('event', event);
  }

  isoNow(): string {
    return new Date(this.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
}

function checkIdFormat(id: string, prefix: string): void {
  if (!new RegExp(`^${prefix}-[0-9a-z]+$`).test(id)) {
    throw fail('InvalidParameterValue.Malformed', `"${id}" is not a well-formed ${prefix}- id`);
  }
}
