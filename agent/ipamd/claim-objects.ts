// The writes ipamd makes to a kind of pod claim (VpcIPClaim, EIPClaim): conditional status patches, the
// first look (stamped, and with --enable-ownerref owned by the pod's workload), deletion, its finalizer.
import * as k8s from '@kubernetes/client-node';
import { CRD_GROUP, CRD_VERSION } from '../../shared/tke.ts';
import { CLAIM_SEEN_ANNOTATION } from '../k8s/claims.ts';

export interface ClaimObject {
  metadata: { name: string; namespace: string; uid?: string; resourceVersion?: string; finalizers?: string[]; annotations?: Record<string, string> };
}

const MERGE = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

export class ClaimObjects<T extends ClaimObject> {
  private readonly api: { group: string; version: string; plural: string };

  constructor(
    private readonly custom: k8s.CustomObjectsApi,
    plural: string,
    /** the kind, as log lines name it */
    readonly kind: string,
    private readonly log: (level: 'info' | 'warn' | 'error', message: string) => void,
  ) {
    this.api = { group: CRD_GROUP, version: CRD_VERSION, plural };
  }

  /** A merge patch of the claim, conditional on the version it was read at (a 409 has it read again). */
  async patch(claim: T, body: { metadata?: Record<string, unknown> }): Promise<T> {
    const { namespace, name, resourceVersion } = claim.metadata;
    return (await this.custom.patchNamespacedCustomObject({ ...this.api, namespace, name, body: { ...body, metadata: { ...body.metadata, resourceVersion } } }, MERGE)) as T;
  }

  /** The claim as the API server has it now; undefined once it is gone. */
  async get(claim: T): Promise<T | undefined> {
    const { namespace, name } = claim.metadata;
    return (await this.custom.getNamespacedCustomObject({ ...this.api, namespace, name }).catch((err: { code?: number }) => {
      if (err.code === 404) return undefined;
      throw err;
    })) as T | undefined;
  }

  /** A conditional write of the claim's status; answers the claim as written. */
  async patchStatus(claim: T, status: Record<string, unknown>): Promise<T> {
    const { namespace, name, resourceVersion } = claim.metadata;
    return (await this.custom.patchNamespacedCustomObjectStatus({ ...this.api, namespace, name, body: { metadata: { resourceVersion }, status } }, MERGE)) as T;
  }

  /** The first look at a claim: stamped as seen, and with `owner` (--enable-ownerref) owned by the pod's workload. */
  async firstSight(claim: T, owner: k8s.V1OwnerReference | undefined): Promise<void> {
    const metadata: Record<string, unknown> = { annotations: { [CLAIM_SEEN_ANNOTATION]: new Date().toISOString() } };
    if (owner) metadata.ownerReferences = [{ apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid: owner.uid }];
    const { namespace, name } = claim.metadata;
    await this.custom.patchNamespacedCustomObject({ ...this.api, namespace, name, body: { metadata } }, MERGE);
    if (owner) this.log('info', `${this.kind} ${namespace}/${name} is owned by ${owner.kind} ${owner.name} (--enable-ownerref)`);
  }

  async delete(claim: T, why: string): Promise<void> {
    const { namespace, name, uid } = claim.metadata;
    this.log('info', `${this.kind} ${namespace}/${name} deleted: ${why}`);
    await this.custom.deleteNamespacedCustomObject({ ...this.api, namespace, name, body: { preconditions: { uid } } }).catch((err: { code?: number }) => {
      if (err.code !== 404 && err.code !== 409) throw err;
    });
  }

  async removeFinalizer(claim: T, finalizer: string): Promise<void> {
    const list = claim.metadata.finalizers ?? [];
    if (!list.includes(finalizer)) return;
    const patch = [
      { op: 'test', path: '/metadata/finalizers', value: list },
      { op: 'replace', path: '/metadata/finalizers', value: list.filter((f) => f !== finalizer) },
    ];
    const { namespace, name } = claim.metadata;
    await this.custom.patchNamespacedCustomObject({ ...this.api, namespace, name, body: patch }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch));
  }
}
