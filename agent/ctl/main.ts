// eni-cnictl: looking at a node's eni-cni from the node, for the engineer debugging it.
//   status   the pool: ENIs, their links and tables, addresses and the pods holding them, limits, last error
//   check    asks the agent to CHECK every pod it holds, as a runtime would, and says what is wrong
//   doctor   one pod's whole path, link by link (interface, routes, rules, ENI, masquerade, cloud, claims),
//            naming the first broken link and the command that shows it
// It reads the agent's /status and /doctor (--health-address) and talks to its socket (--socket); nothing else.
import { Command } from 'commander';
import { askAgent } from '../../cni-plugin/agent-client.ts';
import { DEFAULT_AGENT_SOCKET } from '../../shared/protocol.ts';
import { fetchDiagnoses, formatDiagnosis, formatSummary } from './doctor.ts';
import { fetchStatus, formatStatus } from './status.ts';

function main(): void {
  const program = new Command('eni-cnictl')
    .description("look at this node's eni-cni agent: its pool and its pods")
    .option('--health-address <host:port>', "the agent's --health-address", '127.0.0.1:61678')
    .option('--socket <path>', "the agent's socket", DEFAULT_AGENT_SOCKET);
  program
    .command('status')
    .description('the pool: ENIs, addresses and the pods holding them')
    .option('--json', 'as JSON')
    .action(async (o: { json?: boolean }) => {
      const status = await fetchStatus(program.opts<{ healthAddress: string }>().healthAddress);
      console.log(o.json ? JSON.stringify(status, null, 2) : formatStatus(status));
    });
  program
    .command('check')
    .description('CHECK every pod the agent holds, as a runtime would; exits 1 if any is broken')
    .action(async () => {
      const { healthAddress, socket } = program.opts<{ healthAddress: string; socket: string }>();
      const status = await fetchStatus(healthAddress);
      let broken = 0;
      for (const a of status.allocations) {
        const answer = await askAgent(socket, { op: 'check', containerId: a.containerId, ifName: a.ifName, netns: a.netns, address: a.address }, 10_000);
        const who = a.pod ? `${a.pod.namespace}/${a.pod.name}` : a.containerId.slice(0, 12);
        if (answer.ok) console.log(`ok      ${a.address.padEnd(15)} ${who}`);
        else {
          broken++;
          console.log(`BROKEN  ${a.address.padEnd(15)} ${who}: ${answer.error?.message ?? 'no reason given'}`);
        }
      }
      console.log(`${status.allocations.length - broken} of ${status.allocations.length} pods are as planned`);
      if (broken > 0) process.exitCode = 1;
    });
  program
    .command('doctor [pod]')
    .description("check a pod's whole path (namespace/name, a name in default, an address or a container id; every pod without one); exits 1 if a link is broken")
    .option('--json', 'as JSON')
    .action(async (pod: string | undefined, o: { json?: boolean }) => {
      const all = await fetchDiagnoses(program.opts<{ healthAddress: string }>().healthAddress, pod);
      if (o.json) console.log(JSON.stringify(pod ? all[0] : all, null, 2));
      else console.log(pod ? formatDiagnosis(all[0]!) : formatSummary(all));
      if (all.some((d) => d.broken)) process.exitCode = 1;
    });
  program.parseAsync(process.argv).catch((err: unknown) => {
    process.stderr.write(`eni-cnictl: ${(err as Error).message}\n`);
    process.exit(1);
  });
}

main();
