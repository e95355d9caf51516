// eni-agent: the node daemon. Flags: `eni-agent --help`.
import { agentCommand } from './config.ts';
import { startAgent } from './daemon.ts';

function main(): void {
  const command = agentCommand(async (config) => {
    const agent = await startAgent(config);
    const stop = () => {
      void agent.stop().finally(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  command.parseAsync(process.argv).catch((err: unknown) => {
    process.stderr.write(`eni-agent: ${(err as Error).message}\n`);
    process.exit(1);
  });
}

main();
