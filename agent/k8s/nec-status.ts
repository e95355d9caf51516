// The one write of a NEC's status both sides make: a merge patch, conditional on the version read when one is
// given (the release handshake); a 409 becomes a ConflictError, for the caller to read again and decide again.
import * as k8s from '@kubernetes/client-node';
import { CRD_GROUP, CRD_VERSION } from '../../shared/tke.ts';
import { ConflictError, type Nec } from './nec.ts';

export const NEC_PLURAL = 'nodeeniconfigs';

export async function patchNecStatus(custom: k8s.CustomObjectsApi, name: string, status: Record<string, unknown>, resourceVersion?: string): Promise<Nec> {
  const body = { ...(resourceVersion ? { metadata: { resourceVersion } } : {}), status };
  try {
    return (await custom.patchClusterCustomObjectStatus(
      { group: CRD_GROUP, version: CRD_VERSION, plural: NEC_PLURAL, name, body },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    )) as Nec;
  } catch (err) {
    if ((err as { code?: number }).code === 409) throw new ConflictError(`the NodeENIConfig ${name} changed since version ${resourceVersion}`);
    throw err;
  }
}
