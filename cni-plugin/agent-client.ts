// Asking the node agent over its unix socket: one request line, one answer line. Made by the native call
// (agent-call.ts) where the executable carries it, else by Node's own socket; either way the answer is
// decoded and checked here, and a missing, silent or foreign listener is the same clear CNI error.
import { CniCode, CniError } from '../shared/cni.ts';
import { PROTOCOL_VERSION, readResponse, type Response } from '../shared/protocol.ts';
import type { RequestBody } from '../shared/requests.ts';
import { loadAgentCall, type AgentCall } from './agent-call.ts';

/** Longest answer read: a real one is a few hundred bytes; anything near this is not an agent talking. */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** How an exchange ended: the answer's text, or why there is none. */
type Exchange = { answer: string } | { failed: 'timeout' } | { failed: 'too-long' } | { failed: 'unreachable'; code: string };

/**
 * Sends a request and returns the agent's answer; a missing or silent agent is "try again later". `call`:
 * the native request, when there is one (undefined: Node's socket).
 */
export async function askAgent(socketPath: string, body: RequestBody, timeoutMs: number, call: AgentCall | undefined = loadAgentCall(socketPath)): Promise<Response> {
  const about = 'containerId' in body ? ` for container ${body.containerId}` : '';
  const request = `${JSON.stringify({ v: PROTOCOL_VERSION, body })}\n`;
  const ended = call ? natively(call, socketPath, request, timeoutMs) : await overNet(socketPath, request, timeoutMs);
  // The runtime shows only the message, not the code: say what the code means.
  const later = (message: string) => new CniError(CniCode.TryAgainLater, `${message}; try again later`);
  if ('answer' in ended) {
    const decoded = readResponse(ended.answer.trim(), `the agent's answer to ${body.op}${about}`);
    if (decoded.ok) return decoded.value;
    throw later(decoded.message);
  }
  switch (ended.failed) {
    case 'timeout':
      throw later(`the agent at ${socketPath} did not answer ${body.op}${about} within ${timeoutMs} ms`);
    case 'too-long':
      // Something else listens there: the configuration names the wrong socket.
      throw new CniError(CniCode.InvalidConfig, `the answer at ${socketPath} to ${body.op}${about} is longer than ${MAX_ANSWER_BYTES} bytes: not the agent's; check agentSocket in the network configuration`);
    case 'unreachable': {
      const notSocket = notASocket(socketPath);
      if (notSocket) throw new CniError(CniCode.InvalidConfig, notSocket);
      throw later(`cannot reach the agent at ${socketPath} to ${body.op}${about}: ${ended.code}`);
    }
  }
}

function natively(call: AgentCall, socketPath: string, request: string, timeoutMs: number): Exchange {
  try {
    return { answer: call(socketPath, request, timeoutMs, MAX_ANSWER_BYTES) };
  } catch (err) {
    const errno = (err as { errno?: number }).errno;
    const code = typeof errno === 'number' ? process.getBuiltinModule('node:util').getSystemErrorName(-errno) : (err as Error).message;
    if (code === 'ETIMEDOUT') return { failed: 'timeout' };
    if (code === 'EMSGSIZE') return { failed: 'too-long' };
    return { failed: 'unreachable', code };
  }
}

function overNet(socketPath: string, request: string, timeoutMs: number): Promise<Exchange> {
  const { connect } = process.getBuiltinModule('node:net');
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    let answer = '';
    let settled = false;
    const settle = (outcome: Exchange) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => settle({ failed: 'timeout' }), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.end(request));
    socket.on('data', (chunk: string) => {
      answer += chunk;
      // One line: done at its end, as natively (native/agent-call.c), without waiting for the agent to close.
      const end = answer.indexOf('\n');
      if (end >= 0) settle({ answer: answer.slice(0, end + 1) });
      else if (answer.length > MAX_ANSWER_BYTES) settle({ failed: 'too-long' });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => settle({ failed: 'unreachable', code: err.code ?? err.message }));
    socket.on('close', () => settle({ answer }));
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
