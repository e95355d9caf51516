// The agent's writes of the EIP contract (eip-claims.ts): a pod's EIPClaim, its status, and the pod's
// eip-public-ip annotation; through the agent's paced Kubernetes client.
import * as k8s from '@kubernetes/client-node';
import { CRD_GROUP, CRD_VERSION, POD_ANNOTATIONS } from '../../shared/tke.ts';
import { EIP_CLAIM_PLURAL, type EipClaim, type EipClaimStatus } from './eip-claims.ts';
import type { Kube } from './kube.ts';
import { ConflictError } from './nec.ts';

const API = { group: CRD_GROUP, version: CRD_VERSION, plural: EIP_CLAIM_PLURAL };
const MERGE = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const code = (err: unknown) => (err as { code?: number }).code;

export class EipClaimsApi {
  constructor(private readonly kube: Pick<Kube, 'call' | 'custom' | 'core'>) {}

  async get(namespace: string, name: string): Promise<EipClaim | undefined> {
    try {
      return (await this.kube.call(() => this.kube.custom.getNamespacedCustomObject({ ...API, namespace, name }))) as EipClaim;
    } catch (err) {
      if (code(err) === 404) return undefined;
      throw err;
    }
  }

  /** Creates a claim, then writes its status; a ConflictError when one of that name exists. */
  async create(claim: EipClaim): Promise<EipClaim> {
    const { namespace, name } = claim.metadata;
    try {
      const made = (await this.kube.call(() => this.kube.custom.createNamespacedCustomObject({ ...API, namespace, body: { apiVersion: `${CRD_GROUP}/${CRD_VERSION}`, kind: 'EIPClaim', ...claim, status: undefined } }))) as EipClaim;
      return claim.status ? await this.patchStatus(made, claim.status) : made;
    } catch (err) {
      if (code(err) === 409) throw new ConflictError(`EIPClaim ${namespace}/${name} exists`);
      throw err;
    }
  }

  /** Merge-patches the claim's status, conditional on the version it was read at (a ConflictError when it changed). */
  async patchStatus(claim: EipClaim, status: EipClaimStatus | Record<string, unknown>): Promise<EipClaim> {
    const { namespace, name, resourceVersion } = claim.metadata;
    try {
      return (await this.kube.call(() => this.kube.custom.patchNamespacedCustomObjectStatus({ ...API, namespace, name, body: { metadata: { resourceVersion }, status } }, MERGE))) as EipClaim;
    } catch (err) {
      if (code(err) === 409) throw new ConflictError(`EIPClaim ${namespace}/${name} changed meanwhile`);
      throw err;
    }
  }

  /** Writes tke.cloud.tencent.com/eip-public-ip on the pod (what seed 003's Downward API file shows). */
  async annotatePod(namespace: string, name: string, publicIp: string | null): Promise<void> {
    await this.kube.call(() => this.kube.core.patchNamespacedPod({ namespace, name, body: { metadata: { annotations: { [POD_ANNOTATIONS.eipPublicIp]: publicIp } } } }, MERGE));
  }
}
