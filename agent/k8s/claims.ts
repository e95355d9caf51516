// The fixed-IP contract (seed 000), between the agents and tke-eni-ipamd, on two custom resources:
//
//   VpcIPClaim <ns>/<pod>  a pod's claim on its address, written by the agent of the node where the pod runs:
//                          spec   the policy (Immediate or Never), the network mode, and, once bound, the
//                                 address and its subnet (a fixed address never changes subnet)
//                          status phase Bound (a pod holds it) or Released (its pod went; a Never claim keeps
//                                 the address reserved on status.nodeName's ENI), the node, ENI and pod uid;
//                                 targetNode/targetPodUID: a pod of the claim waits on another node, for
//                                 ipamd to move the address there (MigratePrivateIpAddress), which it does
//                                 only once the claim is Released — never while a pod holds the address;
//                                 refusedPodUID: the waiting pod ipamd said no to (status.message says why)
//                          label  networking.tke.cloud.tencent.com/node: the node holding the address, so
//                                 each agent watches only its own claims
//                          finalizer  the holder's agent removes it once it has given the address back
//   VpcIP <address>        the ledger (`kubectl get vip`), written by ipamd from the claims
//
// For a pod without Never the claim is a ledger written after its ADD answers; ipamd deletes it, and its
// VpcIP, once the Pod object is gone. A Never claim stays and ends by expiry (--claim-expired-duration,
// from status.releasedAt), by `kubectl delete vipc`, or with the pod's workload (--enable-ownerref).
import { CRD_GROUP } from '../../shared/tke.ts';

export const CLAIM_PLURAL = 'vpcipclaims';
export const VPCIP_PLURAL = 'vpcips';
export const CLAIM_NODE_LABEL = `${CRD_GROUP}/node`;
export const CLAIM_FINALIZER = `${CRD_GROUP}/address`;
/** ipamd has looked at the claim once (and, with --enable-ownerref, given it its pod's workload as owner) */
export const CLAIM_SEEN_ANNOTATION = `${CRD_GROUP}/ipamd-seen`;

export type DeletePolicy = 'Immediate' | 'Never';
export const DELETE_POLICIES: readonly DeletePolicy[] = ['Immediate', 'Never'];

export interface ClaimStatus {
  phase?: 'Pending' | 'Bound' | 'Released' | 'Failed';
  ip?: string;
  subnetId?: string;
  nodeName?: string;
  eniId?: string;
  podUID?: string;
  releasedAt?: string;
  targetNode?: string;
  targetPodUID?: string;
  refusedPodUID?: string;
  message?: string;
}

/** The metadata of a pod's claim (VpcIPClaim, EIPClaim): named and namespaced after its pod. */
export interface ClaimMetadata {
  name: string;
  namespace: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string | Date;
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
  creationTimestamp?: string | Date;
}

export interface VpcIpClaim {
  apiVersion?: string;
  kind?: string;
  metadata: ClaimMetadata;
  spec: { deletePolicy: DeletePolicy; networkMode?: string; subnetId?: string; ip?: string };
  status?: ClaimStatus;
}
export interface VpcIp {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string> };
  spec: { ip: string; subnetId: string; vpcId?: string; claimRef?: { namespace: string; name: string; uid?: string } };
  status?: { phase?: 'Attaching' | 'Attached' | 'Detaching' | 'Detached' | 'Failed'; nodeName?: string; instanceId?: string; eniId?: string; message?: string };
}

/** The delete policy a pod's annotation asks for; an error naming the value when it is neither. */
export function deletePolicyOf(value: string | undefined): DeletePolicy | Error {
  if (value === undefined || value.trim() === '') return 'Immediate';
  const v = value.trim();
  return (DELETE_POLICIES as readonly string[]).includes(v) ? (v as DeletePolicy) : new Error(`"${value}" is not a delete policy (Immediate or Never)`);
}

/** A claim whose address is reserved on its node for a pod that went: the address moves only then. */
export function isReleased(claim: VpcIpClaim): boolean {
  return claim.status?.phase === 'Released';
}
