// Asking the node agent over its unix socket: one request line, one answer line.
import { connect } from 'node:net';
import { CniCode, CniError } from '../shared/cni.ts';
import { decode, PROTOCOL_VERSION, Response, type RequestBody } from '../shared/protocol.ts';

/** Sends a request and returns the agent's answer; a missing or silent agent is "try again later". */
export function askAgent(socketPath: string, body: RequestBody, timeoutMs: number): Promise<Response> {
  const about = 'containerId' in body ? ` for container ${body.containerId}` : '';
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new CniError(CniCode.TryAgainLater, `the agent at ${socketPath} did not answer ${body.op}${about} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.end(`${JSON.stringify({ v: PROTOCOL_VERSION, body })}\n`));
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new CniError(CniCode.TryAgainLater, `cannot reach the agent at ${socketPath} to ${body.op}${about}: ${err.code ?? err.message}`));
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const decoded = decode(Response, answer.trim(), `the agent's answer to ${body.op}${about}`);
      if (decoded.ok) resolve(decoded.value);
      else reject(new CniError(CniCode.TryAgainLater, decoded.message));
    });
  });
}
