// `npm run apiserver -- --listen 127.0.0.1:PORT [--token T] [--kubeconfig FILE]`: the API server in the foreground.
import { Command, InvalidArgumentError } from 'commander';
import { startApiServer } from './server.ts';

function hostPort(value: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new InvalidArgumentError(`"${value}" is not HOST:PORT`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  return n;
}

interface Options {
  listen: { host: string; port: number };
  token?: string;
  tls?: boolean;
  kubeconfig?: string;
  history: number;
  bookmarkInterval: number;
  verbose?: boolean;
}

const program = new Command('apiserver')
  .description('A small in-memory Kubernetes API server over HTTP, for tests (see hack/apiserver/README.md)')
  .option('--listen <host:port>', 'address to listen on', hostPort, { host: '127.0.0.1', port: 8080 })
  .option('--token <token>', 'require this bearer token on every request (default: no authentication); implies --tls')
  .option('--tls', 'serve HTTPS with the built-in test certificate (kubectl sends a token only over TLS)')
  .option('--kubeconfig <file>', 'write a kubeconfig for this server to FILE')
  .option('--history <changes>', 'changes kept for watches to resume from', positive, 1000)
  .option('--bookmark-interval <ms>', 'how often watches with allowWatchBookmarks get a BOOKMARK', positive, 60_000)
  .option('--verbose', 'print one line per request')
  .action(async (opts: Options) => {
    const server = await startApiServer({
      host: opts.listen.host,
      port: opts.listen.port,
      historySize: opts.history,
      bookmarkIntervalMs: opts.bookmarkInterval,
      ...(opts.token ? { token: opts.token } : {}),
      ...(opts.tls ? { tls: true } : {}),
      ...(opts.verbose ? { log: (line: string) => console.log(`apiserver: ${line}`) } : {}),
    });
    console.log(`apiserver: serving ${server.url}${opts.token ? ' (bearer token required)' : ''}`);
    if (opts.kubeconfig) console.log(`apiserver: kubeconfig ${await server.writeKubeconfig(opts.kubeconfig)}  (kubectl --kubeconfig ${opts.kubeconfig} get ns)`);
    const stop = () => void server.close().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

program.parseAsync().catch((err: unknown) => {
  console.error(`apiserver: ${(err as Error).message}`);
  process.exit(1);
});
