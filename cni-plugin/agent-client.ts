// Asking the node agent over its unix socket: one request line, one answer line.
import { connect } from 'node:net';
import { CniCode, CniError } from '../shared/cni.ts';
import { PROTOCOL_VERSION, readResponse, type Response } from '../shared/protocol.ts';
import type { RequestBody } from '../shared/requests.ts';

/** Longest answer read: a real one is a few hundred bytes; anything near this is not an agent talking. */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** Sends a request and returns the agent's answer; a missing or silent agent is "try again later". */
export function askAgent(socketPath: string, body: RequestBody, timeoutMs: number): Promise<Response> {
  const about = 'containerId' in body ? ` for container ${body.containerId}` : '';
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let answer = '';
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      outcome();
    };
    // The runtime shows only the message, not the code: say what the code means.
    const later = (message: string) => settle(() => reject(new CniError(CniCode.TryAgainLater, `${message}; try again later`)));
    const timer = setTimeout(() => later(`the agent at ${socketPath} did not answer ${body.op}${about} within ${timeoutMs} ms`), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.end(`${JSON.stringify({ v: PROTOCOL_VERSION, body })}\n`));
    socket.on('data', (chunk: string) => {
      answer += chunk;
      // Something else listens there: the configuration names the wrong socket.
      if (answer.length > MAX_ANSWER_BYTES) settle(() => reject(new CniError(CniCode.InvalidConfig, `the answer at ${socketPath} to ${body.op}${about} is longer than ${MAX_ANSWER_BYTES} bytes: not the agent's; check agentSocket in the network configuration`)));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const notSocket = notASocket(socketPath);
      if (notSocket) settle(() => reject(new CniError(CniCode.InvalidConfig, notSocket)));
      else later(`cannot reach the agent at ${socketPath} to ${body.op}${about}: ${err.code ?? err.message}`);
    });
    socket.on('close', () => {
      const decoded = readResponse(answer.trim(), `the agent's answer to ${body.op}${about}`);
      if (decoded.ok) settle(() => resolve(decoded.value));
      else later(decoded.message);
    });
  });
}

/** Why `path` cannot be the agent's socket (something else is there), or undefined. Only on the error path. */
function notASocket(path: string): string | undefined {
  const { statSync } = process.getBuiltinModule('node:fs');
  let stat;
  try {
    stat = statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
  return stat && !stat.isSocket() ? `agentSocket ${path} is not a unix socket; check the network configuration` : undefined;
}
