// The agent's unix socket: one request line in, one answer line out, per connection. Anything that is
// not a valid request of a known protocol version is answered with a refusal naming what was wrong.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { decode, PROTOCOL_VERSION, refuse, Request, type RequestBody, type Response } from '../../shared/protocol.ts';

/** Longest request line accepted; a real one is a few hundred bytes. */
const MAX_REQUEST_BYTES = 64 * 1024;

export type Handler = (body: RequestBody) => Promise<Response>;

export async function serveSocket(path: string, handle: Handler, onError: (err: Error, body: RequestBody) => void): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true });
  rmSync(path, { force: true });
  // allowHalfOpen: the plugin ends its side after the request and still reads the answer.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    let buffer = '';
    let started = false;
    let answered = false;
    const answer = (response: Response) => {
      if (answered) return;
      answered = true;
      socket.end(`${JSON.stringify(response)}\n`);
    };
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_REQUEST_BYTES) return answer(refuse('bad-request', `request longer than ${MAX_REQUEST_BYTES} bytes`));
      const newline = buffer.indexOf('\n');
      if (newline >= 0) void respond(buffer.slice(0, newline));
    });
    socket.on('end', () => {
      if (buffer.trim()) void respond(buffer);
      else answer(refuse('bad-request', 'empty request'));
    });
    const respond = async (line: string) => {
      if (started) return;
      started = true;
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
