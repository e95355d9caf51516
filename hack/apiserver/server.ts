// The API server in-process: `startApiServer()` for tests, main.ts for the command line.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Clock, Context } from './context.ts';
import { ApiHandler } from './http.ts';
import { kubeconfigYaml, writeKubeconfig } from './kubeconfig.ts';
import { createObject } from './objects.ts';
import { BUILTIN_TYPES, Registry } from './resources.ts';
import { Store } from './store.ts';
import { TEST_CERT, TEST_KEY } from './testcert.ts';

export { Store } from './store.ts';
export { kubeconfigYaml, writeKubeconfig } from './kubeconfig.ts';

export interface ApiServerOptions {
  /** default 127.0.0.1 */
  host?: string;
  /** default 0: any free port */
  port?: number;
  /** require `Authorization: Bearer <token>` (health checks excepted) */
  token?: string;
  /**
   * serve HTTPS with the test certificate of testcert.ts (default: when there is a token, since kubectl sends a
   * token only over TLS)
   */
  tls?: boolean;
  /** serve this store, for example the one of a server that was stopped: a restart that keeps etcd */
  store?: Store;
  /** how many changes a new store keeps for watches to resume from (default 1000) */
  historySize?: number;
  /** how often a watch with allowWatchBookmarks gets a BOOKMARK (default 60 s, about kube-apiserver's) */
  bookmarkIntervalMs?: number;
  clock?: Clock;
  /** called with one line per request */
  log?: (line: string) => void;
}

export interface ApiServer {
  /** `http://HOST:PORT`, or `https://…` with TLS */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly store: Store;
  /** a kubeconfig (YAML) for this server */
  kubeconfig(options?: { namespace?: string }): string;
  /** writes that kubeconfig to `path` and returns the path */
  writeKubeconfig(path: string, options?: { namespace?: string }): Promise<string>;
  /** stops listening, ends open watches and connections */
  close(): Promise<void>;
}

/** The namespaces every cluster starts with. */
const INITIAL_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export async function startApiServer(options: ApiServerOptions = {}): Promise<ApiServer> {
  const store = options.store ?? new Store(options.historySize);
  const ctx: Context = { store, registry: new Registry(store), clock: options.clock ?? { now: () => new Date() } };
  if (!options.store) {
    const namespaces = BUILTIN_TYPES.find((t) => t.plural === 'namespaces')!;
    for (const name of INITIAL_NAMESPACES) createObject(ctx, namespaces, undefined, { metadata: { name } }, {});
  }
  const handler = new ApiHandler(ctx, {
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? 60_000,
    ...(options.token ? { token: options.token } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  const tls = options.tls ?? Boolean(options.token);
  const listener = (req: IncomingMessage, res: ServerResponse) => void handler.handle(req, res);
  const server = tls ? createHttpsServer({ cert: TEST_CERT, key: TEST_KEY }, listener) : createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${tls ? 'https' : 'http'}://${host}:${address.port}`;
  const config = (o: { namespace?: string } = {}) => ({
    server: url,
    ...(tls ? { certificate: TEST_CERT } : {}),
    ...(options.token ? { token: options.token } : {}),
    ...o,
  });
  return {
    url,
    host: address.address,
    port: address.port,
    store,
    kubeconfig: (o) => kubeconfigYaml(config(o)),
    writeKubeconfig: (path, o) => writeKubeconfig(path, config(o)),
    close: () =>
      new Promise<void>((resolve) => {
        handler.endWatches();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
