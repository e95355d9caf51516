// The plugin's native request to the agent (cni-plugin/native/agent-call.c, one of the agent's natives)
// put beside the agent's socket, named by its SHA-256, where the plugin built with it loads it from
// (cni-plugin/agent-call.ts): written only when what is there differs, atomically, so that a plugin
// starting meanwhile finds the old file or the new. The files of earlier versions go.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { AGENT_CALL_PREFIX, agentCallFile } from '../../shared/protocol.ts';
import { nativePaths } from '../datapath/native/load.ts';

/** Puts the addon beside `socketPath`; returns why it could not (the plugin then uses Node's socket). */
export function offerAgentCall(socketPath: string): string | undefined {
  const from = nativePaths('agent-call').find((candidate) => existsSync(candidate));
  if (!from) return `the plugin's agent-call.node is in none of ${nativePaths('agent-call').join(', ')}; the plugin will use Node's socket`;
  let file = `${dirname(socketPath)}/${AGENT_CALL_PREFIX}<digest>.node`;
  try {
    const bytes = readFileSync(from);
    file = agentCallFile(socketPath, createHash('sha256').update(bytes).digest('hex'));
    for (const old of readdirSync(dirname(file))) {
      // Earlier versions' files (agents before digests named it without one), and the temporary file of
      // an agent that died writing one; only files: anything else of such a name is not an agent's.
      const earlier = old === 'eni-cni-agent-call.node' || (old.startsWith(AGENT_CALL_PREFIX) && /\.node(\.\d+\.tmp)?$/.test(old));
      if (!earlier || old === basename(file)) continue;
      const path = `${dirname(file)}/${old}`;
      try {
        if (lstatSync(path).isFile()) rmSync(path, { force: true });
      } catch {
        // Gone meanwhile, or not ours to remove: it is in no plugin's way (the plugin loads only its own name).
      }
    }
    const there = existsSync(file) ? readFileSync(file) : undefined;
    // As the plugin will take it only: these bytes, and writable by root alone.
    if (there?.equals(bytes) && (statSync(file).mode & 0o777) === 0o644) return undefined;
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, bytes, { mode: 0o644 });
    renameSync(temp, file);
    return undefined;
  } catch (err) {
    return `cannot put the plugin's agent-call.node at ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the plugin will use Node's socket`;
  }
}
