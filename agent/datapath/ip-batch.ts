// One `ip -batch` process for one set of commands, in the agent's namespace or a pod's.
import { spawn } from 'node:child_process';
import { basename, dirname } from 'node:path';

/**
 * Runs `args` (an `ip` command line, maybe behind nsenter) with `-batch -` and `lines` on stdin. A plain
 * spawn rather than execa: this is on every pod's ADD and DEL, and execa's conveniences cost about 1.5 ms a
 * call here. A process that exits before reading its input (nsenter refusing a namespace) is an error of
 * the batch, never of the agent: the broken pipe is caught.
 */
export function ipBatch(args: string[], lines: string[], what: string, options: { force?: boolean } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(args[0]!, [...args.slice(1), ...(options.force ? ['-force'] : []), '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.on('error', () => undefined);
    child.on('error', (err) => reject(new Error(`${what}: ${err.message}`)));
    child.on('close', (code) => (code === 0 || options.force ? resolve() : reject(new Error(`${what}: ${stderr.trim() || `ip exited with ${code}`}`))));
    child.stdin.end(`${lines.join('\n')}\n`);
  });
}

/** How to run `ip` inside a pod's namespace: by name when the runtime put it in /run/netns, else through nsenter. */
export function ipIn(netns: string): string[] {
  const dir = dirname(netns);
  if (dir === '/var/run/netns' || dir === '/run/netns') return ['ip', '-n', basename(netns)];
  return ['nsenter', `--net=${netns}`, 'ip'];
}
