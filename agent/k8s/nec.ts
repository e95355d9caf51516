// The contract between a node's agent and tke-eni-ipamd, written on the node's NodeENIConfig. Each side
// writes its own part of the status with merge patches, so neither overwrites the other:
//
//   spec            ipamd, at the node's join: the instance, zone, subnets, security groups, the instance's
//                   quota and ipamd's warm defaults then (its flags affect only new nodes, as TKE's do)
//   status.demand   the agent: how many secondary addresses it wants the node to hold (pods + warm, within
//                   the limits in force), whether a pod waits, and the limits in force (quota and overrides);
//                   and how many whole ENIs (tke-direct-eni) it wants attached, pods + warm
//   status.ipamd    ipamd: the node's pod ENIs and the addresses on each, as the cloud has them, its whole
//                   ENIs (directEnis: no secondary address, each for one pod), and why the demand cannot be
//                   met, if it cannot
//   status.release  both: the release handshake, keyed by address (or by ENI id for a whole ENI):
//                     the agent offers an idle address ("offered") and stops giving it to pods;
//                     ipamd takes it ("releasing") with a patch conditional on the NEC's resourceVersion,
//                     unassigns it, and removes the entry together with the address in status.ipamd;
//                     the agent may take an offer back, with a patch conditional the same way, until ipamd
//                     has taken it. Whichever conditional patch comes second fails and reads again, so an
//                     address is never unassigned while the agent may still give it to a pod.
import type { SuppliedEni } from '../supply/supply.ts';

export type ReleaseState = 'offered' | 'releasing';

export interface NecSpec {
  instanceId: string;
  zone?: string;
  subnetIds?: string[];
  securityGroupIds?: string[];
  /** the instance's quota: ENIs and addresses per ENI, the primary ones included */
  quota?: { enis: number; ipsPerEni: number };
  /** ipamd's defaults when the node joined; the annotations override them per node */
  defaults?: { ipMinWarmTarget: number; ipMaxWarmTarget: number; eniMinWarmTarget: number; eniMaxWarmTarget: number };
}

export interface NecDemand {
  /** secondary addresses the agent wants the node to hold, those offered for release not counted */
  addresses: number;
  /** a pod waits for an address: served before warm refills */
  urgent: boolean;
  /** the limits in force (quota lowered by overrides), for the pod ENIs */
  maxENI: number;
  maxIPPerENI: number;
  /** whole ENIs (tke-direct-eni) the agent wants attached to the node: its pods' and its spare ones */
  directENIs?: number;
  /** a pod waits for a whole ENI */
  directUrgent?: boolean;
}

export interface NecIpamdEni {
  eniId: string;
  mac: string;
  primaryIP: string;
  subnetId: string;
  subnetCIDR: string;
  ips: string[];
}

export interface NecIpamd {
  enis: NecIpamdEni[];
  /** the node's whole ENIs, each for one tke-direct-eni pod (ips is empty: the pod takes the primary address) */
  directEnis?: NecIpamdEni[];
  /** why the demand is not met, when it cannot be (quota, subnet, zone) */
  problem?: { reason: string; message: string } | null;
  updated?: string;
}

export interface Nec {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string>; uid?: string; ownerReferences?: unknown[] };
  spec?: NecSpec;
  status?: {
    demand?: NecDemand;
    ipamd?: NecIpamd;
    release?: Record<string, ReleaseState>;
    [key: string]: unknown;
  };
}

/** A conditional write that found the NEC changed since it was read: read again, decide again. */
export class ConflictError extends Error {
  readonly code = 'Conflict';
}

/** What the agent's pool may use: the ENIs ipamd gave, less what is offered or being released. */
export function suppliedEnis(nec: Nec | undefined): SuppliedEni[] {
  const release = nec?.status?.release ?? {};
  return (nec?.status?.ipamd?.enis ?? [])
    .filter((e) => !release[e.eniId])
    .map((e) => ({
      id: e.eniId,
      mac: e.mac,
      subnetId: e.subnetId,
      subnetCidr: e.subnetCIDR,
      primaryIp: e.primaryIP,
      secondaryIps: e.ips.filter((ip) => !release[ip]),
      primary: false,
      state: 'AVAILABLE',
      settling: false,
      attachedTo: nec?.spec?.instanceId,
      securityGroupIds: [],
      tags: {},
    }));
}

/** The node's whole ENIs that its agent may give to pods: those ipamd attached, less those offered back. */
export function directEnisOf(nec: Nec | undefined): NecIpamdEni[] {
  const release = nec?.status?.release ?? {};
  return (nec?.status?.ipamd?.directEnis ?? []).filter((e) => !release[e.eniId]);
}

/** Addresses on the node's ENIs that the pool may use. */
export function heldAddresses(nec: Nec | undefined): number {
  return suppliedEnis(nec).reduce((n, e) => n + e.secondaryIps.length, 0);
}

/** Entries of the release map in a state. */
export function releaseEntries(nec: Nec | undefined, state: ReleaseState): string[] {
  return Object.entries(nec?.status?.release ?? {})
    .filter(([, s]) => s === state)
    .map(([key]) => key);
}

/** The release handshakes under way across NECs, counted by state (for ipamd's metrics). */
export function pendingReleases(necs: readonly Nec[]): Record<ReleaseState, number> {
  const counts: Record<ReleaseState, number> = { offered: 0, releasing: 0 };
  for (const nec of necs) for (const state of Object.values(nec.status?.release ?? {})) counts[state]++;
  return counts;
}

/** ENI ids are keys of the release map as addresses are: an ENI's id starts with eni-. */
export const isEniKey = (key: string): boolean => key.startsWith('eni-');
