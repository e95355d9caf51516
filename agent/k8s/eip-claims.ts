// The EIP contract (seeds 001–003), between the agents and tke-eni-ipamd, on one custom resource:
//
//   EIPClaim <ns>/<pod>  a pod's claim on an elastic public IP, made by the agent from the pod's annotations:
//                        spec   deletePolicy (Immediate or Never), bandwidth and isp for a new EIP, or eipId:
//                               the user's EIP chosen from eip-id-list (never released, only unbound)
//                        status privateIP, eniId, nodeName, podUID: where the agent wants the EIP bound, written
//                               at ADD and emptied at DEL; ipamd makes the cloud match and writes eipId,
//                               publicIP, boundIP (the address it bound the EIP to) and phase: Allocating,
//                               Binding, Bound, Unbinding, Released (the pod is gone, a Never EIP is kept),
//                               Failed (message says why: quota, the EIP taken by another pod, …)
//                        finalizer  ipamd's: it unbinds the EIP, and releases it when it made it, before the
//                               claim goes
//
// The EIPs ipamd allocates carry EIP_CLAIM_TAG = the claim's uid, so that an allocation whose answer was lost
// is found instead of made twice, and so that only what the cluster made is ever released.
import { CRD_GROUP, POD_ANNOTATIONS } from '../../shared/tke.ts';
import { deletePolicyOf, type ClaimMetadata, type DeletePolicy } from './claims.ts';

export const EIP_CLAIM_PLURAL = 'eipclaims';
export const EIP_CLAIM_FINALIZER = `${CRD_GROUP}/eip`;
/** on every EIP ipamd allocates: the uid of the claim it was made for */
export const EIP_CLAIM_TAG = 'eni-cni.eip-claim';
/** and the cluster that made it (--cluster-id), so that uninstalling releases what the cluster left */
export const EIP_CLUSTER_TAG = 'eni-cni.cluster';

export const ISPS = ['BGP', 'CMCC', 'CTCC', 'CUCC'] as const;
export type Isp = (typeof ISPS)[number];
/** Mbps a traffic-billed EIP may have (Tencent: TRAFFIC_POSTPAID_BY_HOUR, 1–100) */
export const MAX_BANDWIDTH = 100;

export interface EipClaimStatus {
  phase?: 'Pending' | 'Allocating' | 'Binding' | 'Bound' | 'Unbinding' | 'Released' | 'Failed';
  eipId?: string;
  publicIP?: string;
  privateIP?: string;
  boundIP?: string;
  eniId?: string;
  nodeName?: string;
  podUID?: string;
  releasedAt?: string;
  message?: string;
}

export interface EipClaim {
  apiVersion?: string;
  kind?: string;
  metadata: ClaimMetadata;
  spec: { deletePolicy: DeletePolicy; bandwidth?: number; isp?: Isp; eipId?: string };
  status?: EipClaimStatus;
}

/** What a pod's annotations ask for: no EIP, a new one, or one of the user's. */
export type EipRequest = { deletePolicy: DeletePolicy } & ({ kind: 'new'; bandwidth: number; isp: Isp } | { kind: 'listed'; eipId: string });

/**
 * The EIP a pod asks for, from its annotations and name; undefined when it asks for none; an Error naming
 * the annotation and what is wrong with it otherwise. From eip-id-list a pod takes the entry of the ordinal
 * at the end of its name (web-0 the first), or one at random when its name has none.
 */
export function eipRequestOf(podName: string, annotations: Record<string, string> | undefined, random: () => number = Math.random): EipRequest | Error | undefined {
  const attributes = annotations?.[POD_ANNOTATIONS.eipAttributes];
  const list = annotations?.[POD_ANNOTATIONS.eipIdList];
  if (attributes === undefined && list === undefined) return undefined;
  const policy = deletePolicyOf(annotations?.[POD_ANNOTATIONS.eipClaimDeletePolicy]);
  if (policy instanceof Error) return new Error(`${POD_ANNOTATIONS.eipClaimDeletePolicy}: ${policy.message}`);
  if (list !== undefined) {
    const ids = list.split(',').map((s) => s.trim()).filter(Boolean);
    if (ids.length === 0) return new Error(`${POD_ANNOTATIONS.eipIdList}: "${list}" names no EIP`);
    const bad = ids.find((id) => !/^eip-[0-9a-z]+$/.test(id));
    if (bad) return new Error(`${POD_ANNOTATIONS.eipIdList}: "${bad}" is not an EIP id (eip-xxxxxxxx)`);
    const ordinal = /-(\d+)$/.exec(podName);
    if (!ordinal) return { deletePolicy: policy, kind: 'listed', eipId: ids[Math.floor(random() * ids.length)]! };
    const n = Number(ordinal[1]);
    if (n >= ids.length) return new Error(`${POD_ANNOTATIONS.eipIdList}: pod ${podName} is ordinal ${n}, but the list names only ${ids.length} EIP${ids.length === 1 ? '' : 's'}`);
    return { deletePolicy: policy, kind: 'listed', eipId: ids[n]! };
  }
  let parsed: unknown = {};
  if (attributes!.trim() !== '') {
    try {
      parsed = JSON.parse(attributes!);
    } catch (err) {
      return new Error(`${POD_ANNOTATIONS.eipAttributes}: not JSON (${(err as Error).message}): ${attributes}`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return new Error(`${POD_ANNOTATIONS.eipAttributes}: must be a JSON object such as {"Bandwidth":"100","ISP":"BGP"}`);
  const { Bandwidth, ISP, ...rest } = parsed as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) return new Error(`${POD_ANNOTATIONS.eipAttributes}: ${unknown.join(', ')}: only Bandwidth and ISP may be set`);
  let bandwidth = 100;
  if (Bandwidth !== undefined && Bandwidth !== '') {
    bandwidth = typeof Bandwidth === 'number' ? Bandwidth : typeof Bandwidth === 'string' && /^\s*\d+\s*$/.test(Bandwidth) ? Number(Bandwidth) : NaN;
    if (!Number.isInteger(bandwidth) || bandwidth < 1 || bandwidth > MAX_BANDWIDTH) return new Error(`${POD_ANNOTATIONS.eipAttributes}: Bandwidth ${JSON.stringify(Bandwidth)} must be a whole number of Mbps from 1 to ${MAX_BANDWIDTH}`);
  }
  let isp: Isp = 'BGP';
  if (ISP !== undefined && ISP !== '') {
    if (!ISPS.includes(ISP as Isp)) return new Error(`${POD_ANNOTATIONS.eipAttributes}: ISP ${JSON.stringify(ISP)} is not one of ${ISPS.join(', ')}`);
    isp = ISP as Isp;
  }
  return { deletePolicy: policy, kind: 'new', bandwidth, isp };
}

/** The claim's spec for a request. */
export function eipClaimSpec(request: EipRequest): EipClaim['spec'] {
  return request.kind === 'new' ? { deletePolicy: request.deletePolicy, bandwidth: request.bandwidth, isp: request.isp } : { deletePolicy: request.deletePolicy, eipId: request.eipId };
}
