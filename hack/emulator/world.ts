// The world the emulator starts from: region, VPC, subnets, security groups, instances, key pairs,
// rate limits and latencies. Read from a JSON file (format documented in README.md beside this file);
// `worlds/default.json` ships as the default.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { cidrContains, cidrWithin, isCidr, isIPv4, parseCidr } from '../../shared/ip.ts';

const cidr = z.string().refine(isCidr, 'must be an IPv4 CIDR such as 10.0.0.0/16');
const ipv4 = z.string().refine(isIPv4, 'must be an IPv4 address');
const mac = z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'must be a lower-case MAC such as 52:54:00:12:34:56');

const SubnetSpec = z.strictObject({
  id: z.string().regex(/^subnet-[0-9a-z]+$/),
  name: z.string().default(''),
  zone: z.string(),
  cidr,
});

const InstanceSpec = z.strictObject({
  id: z.string().regex(/^ins-[0-9a-z]+$/),
  name: z.string().default(''),
  /** e.g. S5.MEDIUM4; the CPU count decides the ENI quota unless eniQuota/ipsPerEni are given */
  type: z.string(),
  cpu: z.number().int().positive(),
  memoryGb: z.number().positive(),
  zone: z.string(),
  subnetId: z.string(),
  privateIp: ipv4,
  publicIp: ipv4.optional(),
  /** MAC of the primary ENI; generated when absent */
  mac: mac.optional(),
  /** CAM role bound to the instance; its temporary keys are served by the metadata service */
  role: z.string().optional(),
  eniQuota: z.number().int().positive().optional(),
  ipsPerEni: z.number().int().positive().optional(),
});

export const WorldSchema = z.strictObject({
  region: z.string(),
  /** the account's app id, shown in ENI attachments */
  appId: z.string().default('1250000000'),
  vpc: z.strictObject({ id: z.string().regex(/^vpc-[0-9a-z]+$/), name: z.string().default(''), cidr }),
  subnets: z.array(SubnetSpec).min(1),
  securityGroups: z.array(z.string().regex(/^sg-[0-9a-z]+$/)).default([]),
  instances: z.array(InstanceSpec).default([]),
  /** long-lived key pairs the API accepts */
  credentials: z.array(z.strictObject({ secretId: z.string().min(1), secretKey: z.string().min(1) })).min(1),
  /** addresses handed out as EIPs and instance public IPs */
  publicIpPool: cidr.default('198.51.100.0/24'),
  eipQuota: z.number().int().nonnegative().default(20),
  /** EIPs the account holds already (a user's own, unbound), by id */
  eips: z.array(z.string().regex(/^eip-[0-9a-z]+$/)).default([]),
  /** requests per second, per action; `default` applies to actions not named */
  rateLimits: z.record(z.string(), z.number().positive()).default({}),
  latencies: z
    .strictObject({
      /** how long an asynchronous ENI/IP/EIP operation stays RUNNING */
      taskMs: z.number().nonnegative().default(200),
      /** added before every API answer */
      apiMs: z.number().nonnegative().default(0),
    })
    .prefault({}),
  /** lifetime of temporary keys from the metadata service */
  tempCredentialTtlSec: z.number().int().positive().default(3600),
  /** how far a request's X-TC-Timestamp may be from the emulator's clock */
  maxClockSkewSec: z.number().int().positive().default(300),
});

export type World = z.infer<typeof WorldSchema>;
export type InstanceSpec = z.infer<typeof InstanceSpec>;
export type WorldInput = z.input<typeof WorldSchema>;

/**
 * Rate limits of the real service (requests per second) where they differ from the default of 100: the
 * lower (mainland) figure where Tencent's pages give two.
 */
export const DEFAULT_RATE_LIMITS: Readonly<Record<string, number>> = {
  default: 100,
  AttachNetworkInterface: 50,
  DetachNetworkInterface: 50,
  MigratePrivateIpAddress: 50,
  CreateAndAttachNetworkInterface: 20,
  DescribeNetworkInterfaceLimit: 20,
  DescribeVpcLimits: 20,
  DescribeVpcTaskResult: 20,
  DescribeTaskResult: 20,
  AllocateAddresses: 10,
  AssociateAddress: 10,
  DisassociateAddress: 10,
  ReleaseAddresses: 10,
  DescribeAddresses: 20,
  DescribeAddressQuota: 10,
};

/** ENIs per instance and IPs per ENI (primary IP included) by CPU count, standard instance families. */
export function quotaForCpu(cpu: number): { enis: number; ipsPerEni: number } {
  if (cpu <= 1) return { enis: 2, ipsPerEni: 6 };
  if (cpu <= 6) return { enis: 4, ipsPerEni: 10 };
  if (cpu <= 11) return { enis: 6, ipsPerEni: 20 };
  return { enis: 8, ipsPerEni: 30 };
}

export function parseWorld(input: unknown, source = 'world'): World {
  const parsed = WorldSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new Error(`${source} is not a valid world:\n  ${problems.join('\n  ')}`);
  }
  checkConsistency(parsed.data, source);
  return parsed.data;
}

export function loadWorld(file: string): World {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read world file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`world file ${file} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseWorld(json, file);
}

export const DEFAULT_WORLD_FILE = fileURLToPath(new URL('./worlds/default.json', import.meta.url));

export function defaultWorld(): World {
  return loadWorld(DEFAULT_WORLD_FILE);
}

function checkConsistency(world: World, source: string): void {
  const problems: string[] = [];
  const vpc = parseCidr(world.vpc.cidr);
  const subnets = new Map(world.subnets.map((s) => [s.id, s]));
  if (subnets.size !== world.subnets.length) problems.push('subnet ids must be unique');
  for (const s of world.subnets) {
    if (!cidrWithin(parseCidr(s.cidr), vpc)) problems.push(`subnet ${s.id} (${s.cidr}) is outside the VPC ${world.vpc.cidr}`);
  }
  const ids = new Set<string>();
  for (const ins of world.instances) {
    if (ids.has(ins.id)) problems.push(`instance id ${ins.id} is used twice`);
    ids.add(ins.id);
    const subnet = subnets.get(ins.subnetId);
    if (!subnet) {
      problems.push(`instance ${ins.id} names unknown subnet ${ins.subnetId}`);
      continue;
    }
    if (subnet.zone !== ins.zone) problems.push(`instance ${ins.id} is in ${ins.zone} but its subnet ${subnet.id} is in ${subnet.zone}`);
    if (!cidrContains(parseCidr(subnet.cidr), ins.privateIp)) {
      problems.push(`instance ${ins.id} address ${ins.privateIp} is outside its subnet ${subnet.id} (${subnet.cidr})`);
    }
  }
  if (problems.length > 0) throw new Error(`${source} is not a valid world:\n  ${problems.join('\n  ')}`);
}
