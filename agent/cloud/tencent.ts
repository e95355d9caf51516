// The Tencent Cloud adapter: the Cloud interface on tencentcloud-sdk-nodejs's VPC client.
// Every call is retried with backoff and jitter when the cloud says "later" (throttling, a busy ENI,
// an internal error, a lost answer); changes carry a ClientToken so that a retry of a call whose answer
// was lost does not act twice; asynchronous changes are waited for through DescribeVpcTaskResult.
import { randomUUID } from 'node:crypto';
import { Client as VpcClient } from 'tencentcloud-sdk-nodejs/tencentcloud/services/vpc/v20170312/vpc_client.js';
import type { Address, NetworkInterface } from 'tencentcloud-sdk-nodejs/tencentcloud/services/vpc/v20170312/vpc_models.js';
import { CloudError, EIP_BOUND, EIP_CHANGING, type AllocateEipOptions, type Cloud, type CreateEniOptions, type EipCloud, type Eni, type InstanceLimits, type PublicIp, type Subnet } from './cloud.ts';
import { httpProfile, type ApiEndpoint } from './endpoint.ts';
import { RateLimiter } from './ratelimit.ts';

type Credential = { secretId: string; secretKey: string; token?: string } | { getCredential(): Promise<{ secretId: string; secretKey: string; token?: string }> };

export interface TencentOptions {
  region: string;
  endpoint: ApiEndpoint;
  credential: Credential;
  /** how many times a call is tried before its error is given up to the caller */
  attempts?: number;
  /** longest wait for an asynchronous change */
  taskTimeoutMs?: number;
  /** requests per second by action (default: Tencent's limits) */
  rateLimits?: Record<string, number>;
  /** paces the calls instead (ipamd's cluster-wide budget); rateLimits is then unused */
  limiter?: { acquire(action: string): Promise<void> };
  sleep?: (ms: number) => Promise<void>;
  log?: (message: string) => void;
  /** told of every call's end: its action, "ok", "throttled" or the error code, and how long it took */
  observe?: (action: string, outcome: string, seconds: number) => void;
}

/** Codes that mean "not now": the same call may succeed later. */
function isRetryable(code: string): boolean {
  return (
    code === '' ||
    code.startsWith('RequestLimitExceeded') ||
    code.startsWith('InternalError') ||
    code === 'InternalServerError' ||
    code === 'UnsupportedOperation.MutexOperationTaskRunning' ||
    code === 'OperationDenied.MutexTaskRunning' ||
    code === 'FailedOperation.NetDetectTimeOut'
  );
}

export class TencentCloud implements Cloud, EipCloud {
  private readonly vpc: VpcClient;
  private readonly attempts: number;
  private readonly taskTimeoutMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly log: (message: string) => void;
  /** the VPC of each subnet, learnt once */
  private readonly vpcIds = new Map<string, string>();
  private readonly limiter: { acquire(action: string): Promise<void> };
  private readonly observe: (action: string, outcome: string, seconds: number) => void;

  constructor(options: TencentOptions) {
    this.vpc = new VpcClient({ credential: options.credential, region: options.region, profile: { httpProfile: httpProfile('vpc', options.endpoint) } });
    this.attempts = options.attempts ?? 8;
    this.taskTimeoutMs = options.taskTimeoutMs ?? 120_000;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.log = options.log ?? (() => undefined);
    this.observe = options.observe ?? (() => undefined);
    this.limiter = options.limiter ?? new RateLimiter(options.rateLimits, Date, this.sleep);
  }

  async limits(instanceId: string): Promise<InstanceLimits> {
    const r = await this.call(`DescribeNetworkInterfaceLimit of ${instanceId}`, () => this.vpc.DescribeNetworkInterfaceLimit({ InstanceId: instanceId }));
    return { enis: r.EniQuantity ?? 0, ipsPerEni: r.EniPrivateIpAddressQuantity ?? 0 };
  }

  async subnets(subnetIds: string[]): Promise<Subnet[]> {
    if (subnetIds.length === 0) return [];
    const r = await this.call(`DescribeSubnets ${subnetIds.join(',')}`, () => this.vpc.DescribeSubnets({ SubnetIds: subnetIds }));
    return (r.SubnetSet ?? []).map((s) => ({ id: s.SubnetId!, cidr: s.CidrBlock!, zone: s.Zone!, availableIps: s.AvailableIpAddressCount ?? 0, totalIps: s.TotalIpAddressCount ?? 0 }));
  }

  enisOf(instanceId: string): Promise<Eni[]> {
    return this.describeEnis(`of ${instanceId}`, { Name: 'attachment.instance-id', Values: [instanceId] });
  }

  enisTagged(key: string, value: string): Promise<Eni[]> {
    return this.describeEnis(`tagged ${key}=${value}`, { Name: `tag:${key}`, Values: [value] });
  }

  private async describeEnis(what: string, filter: { Name: string; Values: string[] }): Promise<Eni[]> {
    const enis: Eni[] = [];
    for (let offset = 0; ; offset += 100) {
      const r = await this.call(`DescribeNetworkInterfaces ${what}`, () => this.vpc.DescribeNetworkInterfaces({ Filters: [filter], Offset: offset, Limit: 100 }));
      enis.push(...(r.NetworkInterfaceSet ?? []).map(toEni));
      if (offset + 100 >= (r.TotalCount ?? 0)) return enis;
    }
  }

  async createEni(o: CreateEniOptions): Promise<Eni> {
    const vpcId = await this.vpcOf(o.subnetId);
    const token = randomUUID();
    const r = await this.call(`CreateNetworkInterface in ${o.subnetId}`, () =>
      this.vpc.CreateNetworkInterface({
        VpcId: vpcId,
        SubnetId: o.subnetId,
        NetworkInterfaceName: o.name,
        SecurityGroupIds: o.securityGroupIds,
        ...(o.secondaryIps > 0 ? { SecondaryPrivateIpAddressCount: o.secondaryIps } : {}),
        Tags: Object.entries(o.tags).map(([Key, Value]) => ({ Key, Value })),
        ClientToken: token,
      }),
    );
    const created = r.NetworkInterface;
    const eniId = created?.NetworkInterfaceId;
    if (!created || !eniId) throw new CloudError('InternalError', `CreateNetworkInterface in ${o.subnetId} answered without an ENI`, r.RequestId);
    await this.waitTask(r.RequestId!, `creating ${eniId}`);
    // The answer described the ENI; its task ending means the ENI and its addresses are ready (no describe needed).
    const eni = toEni(created);
    const secondaryIps = (created.PrivateIpAddressSet ?? []).filter((ip) => !ip.Primary).map((ip) => ip.PrivateIpAddress!);
    if (!eni.mac || !eni.primaryIp) return this.describeEni(eniId);
    return { ...eni, secondaryIps, state: 'AVAILABLE', settling: false };
  }

  async attachEni(eniId: string, instanceId: string): Promise<void> {
    const token = randomUUID();
    const r = await this.call(`AttachNetworkInterface ${eniId} to ${instanceId}`, () =>
      this.vpc.AttachNetworkInterface({ NetworkInterfaceId: eniId, InstanceId: instanceId, ClientToken: token }),
    );
    await this.waitTask(r.RequestId!, `attaching ${eniId} to ${instanceId}`);
  }

  async detachEni(eniId: string, instanceId: string): Promise<void> {
    const token = randomUUID();
    const r = await this.call(`DetachNetworkInterface ${eniId} from ${instanceId}`, () =>
      this.vpc.DetachNetworkInterface({ NetworkInterfaceId: eniId, InstanceId: instanceId, ClientToken: token }),
    );
    await this.waitTask(r.RequestId!, `detaching ${eniId} from ${instanceId}`);
  }

  async deleteEni(eniId: string): Promise<void> {
    // No ClientToken here: a retry of a delete whose answer was lost finds the ENI gone, which is success.
    const r = await this.call(`DeleteNetworkInterface ${eniId}`, () => this.vpc.DeleteNetworkInterface({ NetworkInterfaceId: eniId }), {
      doneIf: (code) => code === 'ResourceNotFound',
    });
    if (r) await this.waitTask(r.RequestId!, `deleting ${eniId}`);
  }

  async assignIps(eniId: string, count: number): Promise<string[]> {
    const token = randomUUID();
    const r = await this.call(`AssignPrivateIpAddresses ${count} to ${eniId}`, () =>
      this.vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: eniId, SecondaryPrivateIpAddressCount: count, ClientToken: token }),
    );
    await this.waitTask(r.RequestId!, `assigning ${count} addresses to ${eniId}`);
    return (r.PrivateIpAddressSet ?? []).map((ip) => ip.PrivateIpAddress!);
  }

  async unassignIps(eniId: string, addresses: string[]): Promise<void> {
    // A retry after a lost answer finds the addresses gone already: that is success.
    const r = await this.call(
      `UnassignPrivateIpAddresses ${addresses.join(',')} from ${eniId}`,
      () => this.vpc.UnassignPrivateIpAddresses({ NetworkInterfaceId: eniId, PrivateIpAddresses: addresses.map((a) => ({ PrivateIpAddress: a })) }),
      { doneIf: (code) => code === 'UnsupportedOperation.AttachmentNotFound' },
    );
    if (r) await this.waitTask(r.RequestId!, `unassigning ${addresses.join(',')} from ${eniId}`);
  }

  async migrateEni(eniId: string, fromInstance: string, toInstance: string): Promise<void> {
    // No ClientToken in this action: a retry after a lost answer finds the ENI on the destination (not
    // attached to the source any more), which the caller sees when it reads where the ENI is.
    const r = await this.call(
      `MigrateNetworkInterface ${eniId} from ${fromInstance} to ${toInstance}`,
      () => this.vpc.MigrateNetworkInterface({ NetworkInterfaceId: eniId, SourceInstanceId: fromInstance, DestinationInstanceId: toInstance }),
      { doneIf: (code) => code === 'UnsupportedOperation.AttachmentNotFound' },
    );
    if (r) await this.waitTask(r.RequestId!, `moving ${eniId} from ${fromInstance} to ${toInstance}`);
  }

  async migrateIp(fromEniId: string, toEniId: string, address: string): Promise<void> {
    // A retry after a lost answer finds the address gone from the source: the caller reads where it is.
    const r = await this.call(
      `MigratePrivateIpAddress ${address} from ${fromEniId} to ${toEniId}`,
      () => this.vpc.MigratePrivateIpAddress({ SourceNetworkInterfaceId: fromEniId, DestinationNetworkInterfaceId: toEniId, PrivateIpAddress: address }),
      { doneIf: (code) => code === 'UnauthorizedOperation.AttachmentNotFound' },
    );
    if (r) await this.waitTask(r.RequestId!, `moving ${address} from ${fromEniId} to ${toEniId}`);
  }

  async findAddress(subnetId: string, address: string): Promise<{ eni: Eni; ready: boolean } | undefined> {
    // The subnet pins the VPC: the same private address may exist in another VPC of the account.
    const r = await this.call(`DescribeNetworkInterfaces holding ${address} in ${subnetId}`, () =>
      this.vpc.DescribeNetworkInterfaces({ Filters: [{ Name: 'subnet-id', Values: [subnetId] }, { Name: 'address-ip', Values: [address] }] }),
    );
    for (const n of r.NetworkInterfaceSet ?? []) {
      const ip = (n.PrivateIpAddressSet ?? []).find((i) => i.PrivateIpAddress === address);
      if (ip) return { eni: toEni(n), ready: (ip.State ?? 'AVAILABLE') === 'AVAILABLE' };
    }
    return undefined;
  }

  async assignAddress(eniId: string, address: string): Promise<void> {
    const token = randomUUID();
    const r = await this.call(`AssignPrivateIpAddresses ${address} to ${eniId}`, () =>
      this.vpc.AssignPrivateIpAddresses({ NetworkInterfaceId: eniId, PrivateIpAddresses: [{ PrivateIpAddress: address }], ClientToken: token }),
    );
    await this.waitTask(r.RequestId!, `assigning ${address} to ${eniId}`);
  }

  async eip(eipId: string): Promise<PublicIp | undefined> {
    try {
      const r = await this.call(`DescribeAddresses ${eipId}`, () => this.vpc.DescribeAddresses({ AddressIds: [eipId] }));
      const found = r.AddressSet?.find((a) => a.AddressId === eipId);
      return found ? toPublicIp(found) : undefined;
    } catch (err) {
      if ((err as CloudError).code?.startsWith('InvalidAddressId')) return undefined;
      throw err;
    }
  }

  async eipsTagged(key: string, value: string): Promise<PublicIp[]> {
    const found: PublicIp[] = [];
    for (let offset = 0; ; offset += 100) {
      const r = await this.call(`DescribeAddresses tagged ${key}=${value}`, () => this.vpc.DescribeAddresses({ Filters: [{ Name: `tag:${key}`, Values: [value] }], Offset: offset, Limit: 100 }));
      const page = r.AddressSet ?? [];
      found.push(...page.map(toPublicIp));
      if (page.length < 100 || found.length >= (r.TotalCount ?? 0)) return found;
    }
  }

  async allocateEip(o: AllocateEipOptions): Promise<PublicIp> {
    const r = await this.call(`AllocateAddresses ${o.name}`, () =>
      this.vpc.AllocateAddresses({
        AddressCount: 1,
        InternetServiceProvider: o.isp,
        InternetChargeType: 'TRAFFIC_POSTPAID_BY_HOUR',
        InternetMaxBandwidthOut: o.bandwidth,
        AddressName: o.name,
        Tags: Object.entries(o.tags).map(([Key, Value]) => ({ Key, Value })),
        ClientToken: o.clientToken,
      }),
    );
    const eipId = r.AddressSet?.[0];
    if (!eipId) throw new CloudError('InternalError', `AllocateAddresses ${o.name} answered without an EIP`, r.RequestId);
    await this.waitEipTask(r.TaskId, `allocating ${eipId}`);
    return (await this.waitEip(eipId, (e) => e !== undefined && e.status !== 'CREATING', `allocating ${eipId}`))!;
  }

  async associateEip(eipId: string, eniId: string, privateIp: string): Promise<void> {
    // No ClientToken here: a retry of a bind whose answer was lost finds the EIP binding or bound, and the
    // EIP's own state says whether it is bound where it was asked.
    const what = `binding ${eipId} to ${privateIp} on ${eniId}`;
    const r = await this.call(`AssociateAddress ${eipId} to ${privateIp} on ${eniId}`, () => this.vpc.AssociateAddress({ AddressId: eipId, NetworkInterfaceId: eniId, PrivateIpAddress: privateIp }), {
      doneIf: (code) => code === 'UnsupportedOperation.AddressStatusNotPermit' || code === 'InvalidPrivateIpAddress.AlreadyBindEip',
    });
    if (r) await this.waitEipTask(r.TaskId, what);
    const eip = await this.waitEip(eipId, (e) => e === undefined || !EIP_CHANGING.includes(e.status), what);
    if (!eip || !EIP_BOUND.includes(eip.status) || eip.eniId !== eniId || eip.privateIp !== privateIp) {
      throw new CloudError('FailedOperation.AddressStatusNotPermit', `${what}: the EIP is ${eip ? `${eip.status}${eip.privateIp ? ` on ${eip.privateIp}` : ''}` : 'gone'}`);
    }
  }

  async disassociateEip(eipId: string): Promise<void> {
    const r = await this.call(`DisassociateAddress ${eipId}`, () => this.vpc.DisassociateAddress({ AddressId: eipId }), { doneIf: (code) => code === 'UnsupportedOperation.AddressStatusNotPermit' });
    if (r) await this.waitEipTask(r.TaskId, `unbinding ${eipId}`);
    await this.waitEip(eipId, (e) => e === undefined || e.status === 'UNBIND', `unbinding ${eipId}`);
  }

  async releaseEip(eipId: string): Promise<void> {
    const gone = (code: string) => code.startsWith('InvalidAddressId');
    try {
      const r = await this.call(`ReleaseAddresses ${eipId}`, () => this.vpc.ReleaseAddresses({ AddressIds: [eipId] }), { doneIf: gone });
      if (r) await this.waitEipTask(r.TaskId, `releasing ${eipId}`);
      await this.waitEip(eipId, (e) => e === undefined, `releasing ${eipId}`);
    } catch (err) {
      if (!gone((err as CloudError).code ?? '')) throw err;
    }
  }

  /** Waits for an EIP task by its TaskId (DescribeTaskResult: SUCCESS, FAILED or RUNNING), when the answer gave one. */
  private async waitEipTask(taskId: string | undefined, what: string): Promise<void> {
    if (!taskId || !/^\d+$/.test(taskId)) return;
    const deadline = Date.now() + this.taskTimeoutMs;
    for (let wait = 50; ; wait = Math.min(wait * 2, 1000)) {
      await this.sleep(wait);
      const r = await this.call(`DescribeTaskResult of ${what}`, () => this.vpc.DescribeTaskResult({ TaskId: Number(taskId) }));
      if (r.Result === 'SUCCESS') return;
      if (r.Result === 'FAILED') throw new CloudError('FailedOperation.TaskFailed', `${what} failed (task ${taskId})`, r.RequestId);
      if (Date.now() > deadline) throw new CloudError('FailedOperation.TaskTimeout', `${what} did not finish within ${this.taskTimeoutMs} ms (task ${taskId})`, r.RequestId);
    }
  }

  /** Polls an EIP until `done` says so (an answer lost, the EIP's own status is the truth). */
  private async waitEip(eipId: string, done: (e: PublicIp | undefined) => boolean, what: string): Promise<PublicIp | undefined> {
    const deadline = Date.now() + this.taskTimeoutMs;
    for (let wait = 0; ; wait = Math.min(Math.max(wait * 2, 50), 1000)) {
      if (wait > 0) await this.sleep(wait);
      const eip = await this.eip(eipId);
      if (done(eip)) return eip;
      if (Date.now() > deadline) throw new CloudError('FailedOperation.TaskTimeout', `${what} did not finish within ${this.taskTimeoutMs} ms (${eip?.status ?? 'gone'})`);
    }
  }

  private async describeEni(eniId: string): Promise<Eni> {
    const r = await this.call(`DescribeNetworkInterfaces ${eniId}`, () => this.vpc.DescribeNetworkInterfaces({ NetworkInterfaceIds: [eniId] }));
    const eni = r.NetworkInterfaceSet?.[0];
    if (!eni) throw new CloudError('ResourceNotFound', `network interface ${eniId} does not exist`, r.RequestId);
    return toEni(eni);
  }

  private async vpcOf(subnetId: string): Promise<string> {
    const known = this.vpcIds.get(subnetId);
    if (known) return known;
    const r = await this.call(`DescribeSubnets ${subnetId}`, () => this.vpc.DescribeSubnets({ SubnetIds: [subnetId] }));
    const vpcId = r.SubnetSet?.[0]?.VpcId;
    if (!vpcId) throw new CloudError('ResourceNotFound', `subnet ${subnetId} does not exist`, r.RequestId);
    this.vpcIds.set(subnetId, vpcId);
    return vpcId;
  }

  /**
   * Polls an asynchronous change until it has taken effect: after 100 ms, then doubling up to a second
   * (DescribeVpcTaskResult is allowed 20 a second: polls must not crowd out the changes).
   */
  private async waitTask(requestId: string, what: string): Promise<void> {
    const deadline = Date.now() + this.taskTimeoutMs;
    for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
      await this.sleep(wait);
      const r = await this.call(`DescribeVpcTaskResult of ${what}`, () => this.vpc.DescribeVpcTaskResult({ TaskId: requestId }));
      if (r.Status === 'SUCCESS') return;
      if (r.Status === 'FAILED') throw new CloudError('FailedOperation.TaskFailed', `${what} failed: ${r.Output ?? ''}`, requestId);
      if (Date.now() > deadline) throw new CloudError('FailedOperation.TaskTimeout', `${what} did not finish within ${this.taskTimeoutMs} ms`, requestId);
    }
  }

  /**
   * Calls the cloud (`what` starts with the action's name, for the rate limit), retrying what may succeed later. On a retry, `doneIf` may recognise the error that
   * means the first try already did the work; the call then returns undefined.
   */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T>;
  private async call<T>(what: string, fn: () => Promise<T>, options: { doneIf: (code: string) => boolean }): Promise<T | undefined>;
  private async call<T>(what: string, fn: () => Promise<T>, options?: { doneIf: (code: string) => boolean }): Promise<T | undefined> {
    const action = what.split(' ')[0]!;
    for (let attempt = 1; ; attempt++) {
      let started = 0;
      try {
        await this.limiter.acquire(action);
        started = performance.now();
        const answer = await fn();
        this.observe(action, 'ok', (performance.now() - started) / 1000);
        return answer;
      } catch (err) {
        const e = err as { code?: string; message?: string; requestId?: string };
        const code = e.code ?? '';
        if (started > 0) this.observe(action, code.startsWith('RequestLimitExceeded') ? 'throttled' : code || 'NetworkError', (performance.now() - started) / 1000);
        if (attempt > 1 && options?.doneIf(code)) return undefined;
        if (!isRetryable(code) || attempt >= this.attempts) {
          throw new CloudError(code || 'NetworkError', `${what}: ${code ? `${code}: ` : ''}${e.message ?? String(err)}`, e.requestId ?? '');
        }
        // Exponential backoff with full jitter, so that many agents do not retry in step.
        const delay = Math.random() * Math.min(5000, 100 * 2 ** attempt);
        this.log(`${what}: ${code || e.message} (try ${attempt} of ${this.attempts}); retrying in ${Math.round(delay)} ms`);
        await this.sleep(delay);
      }
    }
  }
}

function toPublicIp(a: Address): PublicIp {
  return {
    id: a.AddressId!,
    address: a.AddressIp ?? '',
    status: a.AddressStatus ?? '',
    eniId: a.NetworkInterfaceId || undefined,
    privateIp: a.PrivateAddressIp || undefined,
    tags: Object.fromEntries((a.TagSet ?? []).map((t) => [t.Key, t.Value ?? ''])),
  };
}

function toEni(n: NetworkInterface): Eni {
  const ips = n.PrivateIpAddressSet ?? [];
  return {
    id: n.NetworkInterfaceId!,
    mac: (n.MacAddress ?? '').toLowerCase(),
    subnetId: n.SubnetId!,
    primaryIp: ips.find((ip) => ip.Primary)?.PrivateIpAddress ?? '',
    secondaryIps: ips.filter((ip) => !ip.Primary && (ip.State ?? 'AVAILABLE') === 'AVAILABLE').map((ip) => ip.PrivateIpAddress!),
    primary: n.Primary ?? false,
    state: n.State ?? '',
    settling: (n.State ?? 'AVAILABLE') !== 'AVAILABLE' || ips.some((ip) => (ip.State ?? 'AVAILABLE') !== 'AVAILABLE'),
    attachedTo: n.Attachment?.InstanceId,
    deviceIndex: n.Attachment?.DeviceIndex,
    securityGroupIds: n.GroupSet ?? [],
    tags: Object.fromEntries((n.TagSet ?? []).map((t) => [t.Key, t.Value ?? ''])),
  };
}
