// Masquerade, the ip-masq-agent way: pod traffic to destinations outside the non-masquerade CIDRs
// leaves by the node's primary ENI with the node's address. The config file has ip-masq-agent's format
// (YAML or JSON; keys in its camelCase or TKE's PascalCase) and is read again when it changes.
//
// Marking happens in mangle PREROUTING, before routing, so that the rule "fwmark 0x80 lookup main"
// sends the packet out of the primary ENI; a packet leaving by a pod's own ENI with the node's address
// would be dropped by the VPC.
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { isCidr } from '../../shared/ip.ts';
import { HOST_IF_PREFIX } from '../../shared/names.ts';
import { parseGoDuration } from '../go-duration.ts';
import { MASQ_MARK } from './plan.ts';

export const MARK_CHAIN = 'ENI-CNI-MASQ-MARK';
export const NAT_CHAIN = 'ENI-CNI-MASQ';
/** Host ends of pod veths, as iptables matches them (their names: shared/names.ts hostIfName). */
export const POD_IF_MATCH = `${HOST_IF_PREFIX}+`;


const cidrList = z.array(z.string().refine(isCidr, { message: 'must be an IPv4 CIDR' }));

const MasqConfigSchema = z.strictObject({
  nonMasqueradeCIDRs: cidrList.optional(),
  nonMasqueradeSrcCIDRs: cidrList.optional(),
  masqLinkLocal: z.boolean().optional(),
  /** TKE writes it; this agent does not do IPv6, so it is read and has no effect */
  masqLinkLocalIPv6: z.boolean().optional(),
  resyncInterval: z.string().refine((t) => parseGoDuration(t) !== undefined, { message: 'must be a duration such as 60s or 1m0s' }).optional(),
});

export interface MasqConfig {
  nonMasqueradeCIDRs: string[];
  nonMasqueradeSrcCIDRs: string[];
  masqLinkLocal: boolean;
  resyncIntervalMs: number;
}

/** Defaults when there is no config file: keep the VPC's own traffic, masquerade the rest. */
export function defaultMasqConfig(vpcCidr: string): MasqConfig {
  return { nonMasqueradeCIDRs: [vpcCidr], nonMasqueradeSrcCIDRs: [], masqLinkLocal: false, resyncIntervalMs: 60_000 };
}

export function parseMasqConfig(text: string, source: string, vpcCidr: string): MasqConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    throw new Error(`${source} is not YAML or JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${source} must hold a mapping of ip-masq-agent settings`);
  // TKE writes NonMasqueradeCIDRs; ip-masq-agent writes nonMasqueradeCIDRs.
  const normalised = Object.fromEntries(Object.entries(raw as object).map(([k, v]) => [k.charAt(0).toLowerCase() + k.slice(1), v]));
  const parsed = MasqConfigSchema.safeParse(normalised);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.');
    throw new Error(`${source}: ${where}: ${issue.message}`);
  }
  const c = parsed.data;
  const defaults = defaultMasqConfig(vpcCidr);
  return {
    nonMasqueradeCIDRs: c.nonMasqueradeCIDRs ?? defaults.nonMasqueradeCIDRs,
    nonMasqueradeSrcCIDRs: c.nonMasqueradeSrcCIDRs ?? [],
    masqLinkLocal: c.masqLinkLocal ?? false,
    resyncIntervalMs: c.resyncInterval ? parseGoDuration(c.resyncInterval)! : defaults.resyncIntervalMs,
  };
}

/** The iptables-restore input (used with --noflush) that makes the two chains say what `config` says. */
export function masqRestoreInput(config: MasqConfig): string {
  const keep = [
    '-m addrtype --dst-type LOCAL',
    ...config.nonMasqueradeSrcCIDRs.map((c) => `-s ${c}`),
    ...config.nonMasqueradeCIDRs.map((c) => `-d ${c}`),
    ...(config.masqLinkLocal ? [] : ['-d 169.254.0.0/16']),
  ];
  return [
    '*mangle',
    `:${MARK_CHAIN} - [0:0]`,
    ...keep.map((match) => `-A ${MARK_CHAIN} ${match} -j RETURN`),
    `-A ${MARK_CHAIN} -j MARK --set-xmark ${MASQ_MARK}/${MASQ_MARK}`,
    'COMMIT',
    '*nat',
    `:${NAT_CHAIN} - [0:0]`,
    `-A ${NAT_CHAIN} -m mark --mark ${MASQ_MARK}/${MASQ_MARK} -j MASQUERADE`,
    'COMMIT',
    '',
  ].join('\n');
}

/** The jumps into our chains from the built-in ones: checked with -C before adding, so never doubled. */
export const MASQ_JUMPS: ReadonlyArray<{ table: string; chain: string; rule: string[] }> = [
  { table: 'mangle', chain: 'PREROUTING', rule: ['-i', POD_IF_MATCH, '-j', MARK_CHAIN] },
  { table: 'nat', chain: 'POSTROUTING', rule: ['-j', NAT_CHAIN] },
];
