// The native request to the agent (native/agent-call.c). The plugin's executable carries it as an SEA asset;
// a native addon loads only from a file, so the agent puts the same file beside its socket, and the plugin
// loads it from there once it has checked it byte for byte against its own asset (about 0.1 ms) and found
// the file and its directory writable by root alone (so that nothing can swap it between the check and the load).
// The plugin writes nothing. Anywhere it cannot be had (not an executable built by `npm run build`, an
// agent of another version, a directory others may write to), the plugin uses Node's own socket instead,
// which answers the same, about 4 ms later.
import { dirname } from 'node:path';
import { agentCallFile } from '../shared/protocol.ts';

export type AgentCall = (path: string, request: string, timeoutMs: number, maxBytes: number) => string;

export function loadAgentCall(socketPath: string): AgentCall | undefined {
  try {
    const sea = process.getBuiltinModule('node:sea');
    if (!sea.isSea()) return undefined;
    const fs = process.getBuiltinModule('node:fs');
    const dir = fs.statSync(dirname(socketPath));
    if (dir.uid !== process.geteuid?.() || (dir.mode & 0o022) !== 0) return undefined;
    const file = agentCallFile(socketPath);
    const own = fs.lstatSync(file);
    if (!own.isFile() || own.uid !== process.geteuid?.() || (own.mode & 0o022) !== 0) return undefined;
    if (!fs.readFileSync(file).equals(Buffer.from(sea.getAsset('agent-call.node')))) return undefined;
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
