// The uninstall step for EIPs (TKE leaves a deleted cluster's EIPs behind, and they cost money unbound):
// `eni-ipamd --release-cluster-eips` releases every EIP tagged as this cluster's that is bound to nothing.
// A user's EIP (from eip-id-list) carries no such tag and is never touched; one still bound is named, not
// taken from its pod.
import type { EipCloud } from '../cloud/cloud.ts';
import { EIP_CLUSTER_TAG } from '../k8s/eip-claims.ts';

export interface ReleaseReport {
  released: string[];
  stillBound: string[];
}

export async function releaseClusterEips(cloud: EipCloud, clusterId: string, say: (line: string) => void): Promise<ReleaseReport> {
  const report: ReleaseReport = { released: [], stillBound: [] };
  for (const eip of await cloud.eipsTagged(EIP_CLUSTER_TAG, clusterId)) {
    if (eip.status !== 'UNBIND') {
      report.stillBound.push(eip.id);
      say(`${eip.id} (${eip.address}) is ${eip.status}${eip.privateIp ? ` to ${eip.privateIp}` : ''}: delete its pod first; left alone`);
      continue;
    }
    await cloud.releaseEip(eip.id);
    report.released.push(eip.id);
    say(`released ${eip.id} (${eip.address})`);
  }
  say(`cluster ${clusterId}: ${report.released.length} EIP${report.released.length === 1 ? '' : 's'} released, ${report.stillBound.length} still bound`);
  return report;
}
