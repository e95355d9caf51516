// The agent's unix socket: one request line in, one answer line out, per connection. Anything that is
// not a valid request of a known protocol version is answered with a refusal naming what was wrong, and
// nothing refused is ever carried out. A client that connects and says nothing is cut off, and idle
// connections cannot pile up, so that ADDs (and the health endpoint, which shares the fd limit) keep working.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { decode, PROTOCOL_VERSION, refuse, Request, type RequestBody, type Response } from '../../shared/protocol.ts';

export interface SocketLimits {
  /** Longest request line accepted. The largest real one is a GC listing every attachment of a node (about 100 bytes each). */
  maxRequestBytes: number;
  /** How long a connection may take to send its request. */
  requestTimeoutMs: number;
  /** Connections still sending their request, at most; past this the one waiting longest is cut off. */
  maxPending: number;
}

export const DEFAULT_SOCKET_LIMITS: SocketLimits = { maxRequestBytes: 4 * 1024 * 1024, requestTimeoutMs: 10_000, maxPending: 128 };

export type Handler = (body: RequestBody) => Promise<Response>;

export async function serveSocket(
  path: string,
  handle: Handler,
  onError: (err: Error, body: RequestBody) => void,
  limits: SocketLimits = DEFAULT_SOCKET_LIMITS,
): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true });
  rmSync(path, { force: true });
  /** connections that have not sent a whole request yet, oldest first */
  const pending = new Set<Socket>();
  // allowHalfOpen: the plugin ends its side after the request and still reads the answer.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    if (pending.size >= limits.maxPending) pending.values().next().value?.destroy();
    pending.add(socket);
    let buffer = '';
    /** set once the request is taken (to serve or to refuse): nothing read after that counts */
    let taken = false;
    const answer = (response: Response): void => {
      socket.end(`${JSON.stringify(response)}\n`);
    };
    const take = () => {
      taken = true;
      pending.delete(socket);
      socket.setTimeout(0);
    };
    socket.setEncoding('utf8');
    socket.setTimeout(limits.requestTimeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => pending.delete(socket));
    socket.on('data', (chunk: string) => {
      if (taken) return;
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline >= 0) return void respond(buffer.slice(0, newline));
      if (buffer.length > limits.maxRequestBytes) {
        take();
        answer(refuse('bad-request', `request longer than ${limits.maxRequestBytes} bytes`));
        socket.resume();
      }
    });
    socket.on('end', () => {
      if (taken) return;
      if (buffer.trim()) void respond(buffer);
      else {
        take();
        answer(refuse('bad-request', 'empty request'));
      }
    });
    const respond = async (line: string) => {
      take();
      if (line.length > limits.maxRequestBytes) return answer(refuse('bad-request', `request longer than ${limits.maxRequestBytes} bytes`));
      const decoded = decode(Request, line, 'request');
      if (!decoded.ok) return answer(refuse('bad-request', decoded.message));
      if (decoded.value.v !== PROTOCOL_VERSION) {
        return answer(refuse('unsupported-version', `protocol version ${decoded.value.v} is not served; this agent speaks ${PROTOCOL_VERSION}`));
      }
      try {
        answer(await handle(decoded.value.body));
      } catch (err) {
        onError(err as Error, decoded.value.body);
        answer(refuse('internal', (err as Error).message));
      }
    };
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return server;
}
