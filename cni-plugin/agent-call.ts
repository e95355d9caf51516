// The native request to the agent (native/agent-call.c). A native addon loads only from a file, and the
// plugin writes nothing, so the agent puts the addon beside its socket, named by its SHA-256; the build
// gives the plugin the digest of the addon it was built with (AGENT_CALL_SHA256), and the plugin loads the
// file of that name when the file and its directory are writable by root alone (so that nothing but root
// can have put it there, or swap it between the check and the load). Nothing is read to check it: a file
// of that name is that build's. Anywhere it cannot be had (run from source, an agent of another version,
// a directory others may write to, a file that does not load), the plugin uses Node's own socket instead,
// which answers the same, about 4 ms later.
import { dirname } from 'node:path';
import { agentCallFile } from '../shared/protocol.ts';

/** The addon's SHA-256, put here by the build (hack/build/build.ts); not defined when run from source. */
declare const AGENT_CALL_SHA256: string | undefined;

export type AgentCall = (path: string, request: string, timeoutMs: number, maxBytes: number) => string;

export function loadAgentCall(socketPath: string): AgentCall | undefined {
  if (typeof AGENT_CALL_SHA256 !== 'string') return undefined;
  try {
    const fs = process.getBuiltinModule('node:fs');
    const dir = fs.statSync(dirname(socketPath));
    if (dir.uid !== process.geteuid?.() || (dir.mode & 0o022) !== 0) return undefined;
    const file = agentCallFile(socketPath, AGENT_CALL_SHA256);
    const own = fs.lstatSync(file);
    if (!own.isFile() || own.uid !== process.geteuid?.() || (own.mode & 0o022) !== 0) return undefined;
    return fromFile(file);
  } catch {
    return undefined;
  }
}

/** Loads the addon at `file` (a path is what dlopen takes). */
export function fromFile(file: string): AgentCall {
  const module = { exports: {} as { call?: AgentCall } };
  process.dlopen(module, file);
  if (typeof module.exports.call !== 'function') throw new Error(`${file} is not the agent-call addon`);
  return module.exports.call;
}
