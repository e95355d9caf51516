// Which supply a node's agent uses: in a cluster, tke-eni-ipamd through the node's NEC (no credentials);
// standalone (no API server, or --standalone), the cloud itself, with the node's CVM role or a key file,
// the node's own subnet and the security groups of its primary ENI unless told others.
import type { AgentConfig } from '../config.ts';
import type { Metadata } from '../cloud/metadata.ts';
import type { NodeNec } from '../k8s/node-nec.ts';
import { CloudSupply } from './cloud-supply.ts';
import { NecSupply } from './nec-supply.ts';
import type { Supply } from './supply.ts';

type Log = (level: 'info' | 'warn' | 'error', message: string) => void;

export interface NodeFacts {
  instanceId: string;
  region: string;
  zone: string;
  mac: string;
}

export async function supplyFor(o: {
  config: AgentConfig;
  node: NodeFacts;
  metadata: Metadata;
  /** the node's NEC, in a cluster */
  nec: NodeNec | undefined;
  inForce: () => { maxEnis: number; maxIpsPerEni: number };
  log: Log;
}): Promise<{ supply: Supply; subnetIds: string[]; securityGroupIds: string[] }> {
  const { config, node, metadata, log } = o;
  if (o.nec) {
    return { supply: new NecSupply({ nec: o.nec, nodeName: config.nodeName!, inForce: o.inForce, log }), subnetIds: config.subnetIds, securityGroupIds: config.securityGroupIds };
  }
  // Loaded only here: a cluster's agent never calls the cloud, so it never evaluates the SDK.
  const { TencentCloud } = await import('../cloud/tencent.ts');
  const cloud = new TencentCloud({
    region: node.region,
    endpoint: { url: config.apiUrl, resolve: config.apiResolve },
    credential: config.credentials ?? metadata.roleCredential(),
    log: (message) => log('warn', message),
  });
  const subnetIds = config.subnetIds.length > 0 ? config.subnetIds : [await metadata.get(`network/interfaces/macs/${node.mac}/subnet-id`)];
  const securityGroupIds = config.securityGroupIds.length > 0 ? config.securityGroupIds : ((await cloud.enisOf(node.instanceId)).find((e) => e.primary)?.securityGroupIds ?? []);
  return { supply: new CloudSupply({ cloud, instanceId: node.instanceId, zone: node.zone, subnetIds, securityGroupIds, log }), subnetIds, securityGroupIds };
}
