// eni-ipamd: tke-eni-ipamd, the cluster half. Flags: `eni-ipamd --help`.
import { ipamdCommand } from './config.ts';
import { startIpamd } from './ipamd.ts';

function main(): void {
  const command = ipamdCommand(async (config) => {
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
