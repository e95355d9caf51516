// Which cluster this is, for the tags on what ipamd makes in the cloud: --cluster-id when given (TKE's
// cls-xxxxxxxx), else the uid of the kube-system namespace, which lives as long as the cluster does.
import * as k8s from '@kubernetes/client-node';

export async function clusterIdentity(kc: k8s.KubeConfig, flag: string): Promise<string> {
  if (flag) return flag;
  const ns = await kc.makeApiClient(k8s.CoreV1Api).readNamespace({ name: 'kube-system' });
  const uid = ns.metadata?.uid;
  if (!uid) throw new Error('the kube-system namespace has no uid to name the cluster by; give --cluster-id');
  return uid;
}
