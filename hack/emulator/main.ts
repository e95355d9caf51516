// `npm run emulator -- --listen 127.0.0.1:PORT [--metadata-listen HOST:PORT] [--world FILE]`
import { Command, InvalidArgumentError } from 'commander';
import { Emulator } from './emulator.ts';
import { DEFAULT_WORLD_FILE, loadWorld } from './world.ts';

function hostPort(value: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new InvalidArgumentError(`"${value}" is not HOST:PORT`);
  return { host: m[1]!, port: Number(m[2]) };
}

const program = new Command('emulator')
  .description('A local Tencent Cloud: the VPC and CVM APIs (2017-03-12) and the CVM metadata service')
  .option('--listen <host:port>', 'address of the API and the /emulator/ inspection endpoints', hostPort, { host: '127.0.0.1', port: 9800 })
  .option('--metadata-listen <host:port>', 'address of the metadata service (default: the API port + 1)', hostPort)
  .option('--world <file>', 'the world to start from (see hack/emulator/README.md)', DEFAULT_WORLD_FILE)
  .option('--task-ms <ms>', 'how long asynchronous operations stay RUNNING (overrides the world)', (v) => {
    const ms = Number(v);
    if (!Number.isFinite(ms) || ms < 0) throw new InvalidArgumentError(`"${v}" is not a number of milliseconds`);
    return ms;
  })
  .action(async (opts: { listen: { host: string; port: number }; metadataListen?: { host: string; port: number }; world: string; taskMs?: number }) => {
    const world = loadWorld(opts.world);
    if (opts.taskMs !== undefined) world.latencies.taskMs = opts.taskMs;
    const metadata = opts.metadataListen ?? { host: opts.listen.host, port: opts.listen.port === 0 ? 0 : opts.listen.port + 1 };
    const emulator = await Emulator.start({ world, host: opts.listen.host, port: opts.listen.port, metadataHost: metadata.host, metadataPort: metadata.port });
    const { port } = emulator.apiAddress;
    console.log(`emulator: region ${world.region}, ${world.vpc.id} ${world.vpc.cidr}, ${world.instances.length} instances (world ${opts.world})`);
    console.log(`emulator: API       ${emulator.apiUrl}/  (SDK endpoint vpc.tencentcloudapi.com:${port} or cvm.tencentcloudapi.com:${port}, resolved to ${emulator.apiAddress.address})`);
    console.log(`emulator: metadata  ${emulator.metadataUrl}/instances/<instance-id>/latest/meta-data/`);
    console.log(`emulator: state     ${emulator.apiUrl}/emulator/state   events ${emulator.apiUrl}/emulator/events`);
    console.log(`emulator: SecretId  ${world.credentials[0]!.secretId}`);
    const stop = () => {
      void emulator.close().then(() => process.exit(0));
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

program.parseAsync().catch((err: unknown) => {
  console.error(`emulator: ${(err as Error).message}`);
  process.exit(1);
});
