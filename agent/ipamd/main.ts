// eni-ipamd: tke-eni-ipamd, the cluster half. Flags: `eni-ipamd --help`.
import * as k8s from '@kubernetes/client-node';
import { clusterIdentity } from './cluster-identity.ts';
import { ipamdCommand, type IpamdConfig } from './config.ts';
import { cloudOf, startIpamd } from './ipamd.ts';
import { releaseClusterEips } from './uninstall.ts';

/** The uninstall step: the cluster's unbound EIPs released, each printed. */
async function releaseEips(config: IpamdConfig): Promise<void> {
  const kc = new k8s.KubeConfig();
  if (config.kubeconfig) kc.loadFromFile(config.kubeconfig);
  else kc.loadFromCluster();
  const { cloud } = await cloudOf(config, undefined, (message) => process.stderr.write(`${message}\n`));
  await releaseClusterEips(cloud, await clusterIdentity(kc, config.clusterId), (line) => process.stdout.write(`${line}\n`));
}

function main(): void {
  const command = ipamdCommand(async (config) => {
    if (config.releaseClusterEips) return releaseEips(config);
    // A replica that lost the lease exits: whatever it had begun stops with it, and its Deployment starts it again as a candidate.
    const ipamd = await startIpamd(config, () => process.exit(1));
    const stop = () => {
      void ipamd.stop().finally(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  command.parseAsync(process.argv).catch((err: unknown) => {
    process.stderr.write(`eni-ipamd: ${(err as Error).message}\n`);
    process.exit(1);
  });
}

main();
