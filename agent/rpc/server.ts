// The agent's unix socket: one request line in, one answer line out, per connection. Anything that is
// not a valid request of a known protocol version is answered with a refusal naming what was wrong, and
// nothing refused is ever carried out. What a client can hold is bounded: a connection that does not send
// its request in time, or does not go once answered, is cut off; connections still sending are few, and
// the oldest goes when a new one comes; all connections together are capped, well under the fd limit; so
// ADDs (and the health endpoint, which shares the fd limit and the memory) keep working under abuse.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { PROTOCOL_VERSION, refuse, type Response } from '../../shared/protocol.ts';
import { decode, Request, type RequestBody } from '../../shared/requests.ts';

export interface SocketLimits {
  /** Longest request line, in bytes. The largest real one is a GC listing every attachment of a node (about 100 bytes each). */
  maxRequestBytes: number;
  /** How long a connection may take to send its request, and to go once answered. */
  requestTimeoutMs: number;
  /** Connections still sending their request, at most: their buffers are the memory a client can pin. */
  maxPending: number;
  /** Connections at all, at most: ADDs in flight wait for the cloud, one connection each. */
  maxConnections: number;
}

/** At most 32 × 1 MiB held for requests being read: within the agent's memory budget. */
const DEFAULT_SOCKET_LIMITS: SocketLimits = { maxRequestBytes: 1024 * 1024, requestTimeoutMs: 10_000, maxPending: 32, maxConnections: 2048 };

export type Handler = (body: RequestBody) => Promise<Response>;

/**
 * Most pieces a request may arrive in: each costs about 200 bytes of heap besides its own, so a trickle
 * of 1-byte writes would pin far more than its length. A real request comes in one or a few.
 */
const MAX_CHUNKS = 4096;

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
    let chunks: Buffer[] = [];
    let bytes = 0;
    /** set once the request is taken (to serve or to refuse): nothing read after that counts */
    let taken = false;
    // Deadlines are absolute: a client trickling a byte now and then does not push them back.
    let deadline: NodeJS.Timeout | undefined = setTimeout(() => socket.destroy(), limits.requestTimeoutMs);
    const clearDeadline = () => {
      clearTimeout(deadline);
      deadline = undefined;
    };
    const take = (): string => {
      taken = true;
      pending.delete(socket);
      clearDeadline();
      const line = Buffer.concat(chunks).toString('utf8');
      chunks = [];
      return line;
    };
    /** Answers, then gives the client until the deadline to read it and go. */
    const answer = (response: Response): void => {
      deadline = setTimeout(() => socket.destroy(), limits.requestTimeoutMs);
      socket.end(`${JSON.stringify(response)}\n`);
    };
    const refuseAndClose = (response: Response): void => {
      socket.end(`${JSON.stringify(response)}\n`, () => socket.destroy());
    };
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      pending.delete(socket);
      clearDeadline();
    });
    socket.on('data', (chunk: Buffer) => {
      if (taken) return;
      const newline = chunk.indexOf(10);
      const kept = newline >= 0 ? chunk.subarray(0, newline) : chunk;
      bytes += kept.length;
      if (bytes > limits.maxRequestBytes || chunks.length >= MAX_CHUNKS) {
        take();
        return refuseAndClose(refuse('bad-request', `request longer than ${limits.maxRequestBytes} bytes, or in more than ${MAX_CHUNKS} pieces`));
      }
      chunks.push(kept);
      if (newline >= 0) void respond(take());
    });
    socket.on('end', () => {
      if (taken) return;
      const line = take();
      if (line.trim()) void respond(line);
      else answer(refuse('bad-request', 'empty request'));
    });
    // While the handler works (an ADD may wait for the cloud) there is no deadline: take() cleared it.
    const respond = async (line: string) => {
      const decoded = decode(Request, line, 'request');
      if (!decoded.ok) return answer(refuse('bad-request', decoded.message));
      // Versions only add (optional fields, ops): a newer plugin's request is served as far as this agent
      // knows it (an op it does not know is refused as a bad request), an older one's in full.
      if (!Number.isInteger(decoded.value.v) || decoded.value.v < 1) {
        return answer(refuse('unsupported-version', `protocol version ${decoded.value.v} does not exist; this agent speaks 1 to ${PROTOCOL_VERSION}`));
      }
      try {
        answer(await handle(decoded.value.body));
      } catch (err) {
        onError(err as Error, decoded.value.body);
        answer(refuse('internal', (err as Error).message));
      }
    };
  });
  server.maxConnections = limits.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return server;
}
