// The node's CNI network configuration, installed by the agent once it serves pods. A runtime reports the
// node's network ready as soon as a conflist is in its config dir, kubelet then marks the node Ready and the
// scheduler sends it pods: the conflist must not be there before the agent can answer their ADDs. It is
// left in place when the agent stops, so that during an upgrade the runtime still tears pods down through
// the plugin (whose DEL works without the agent) and new ADDs are told to try again later. While the agent
// runs it is kept: put back if deleted, rewritten if the ConfigMap's changed.
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Reads the conflist at `source` and checks it is eni-cni's; throws naming the file. Returns its text. */
export function readCniConf(source: string): string {
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    throw new Error(`the CNI network configuration ${source} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  const problem = conflistProblem(text);
  if (problem) throw new Error(`the CNI network configuration ${source} is not eni-cni's conflist: ${problem}`);
  return text;
}

/**
 * Puts the conflist at `source` into `dir` under the same name, unless it is there already as it is: a
 * copy synced and renamed over it, so that a runtime never reads half a file, nor an empty one after a
 * power cut. Returns the path there and whether it was written.
 */
export function installCniConf(source: string, dir: string): { path: string; written: boolean } {
  const text = readCniConf(source);
  const path = join(dir, basename(source));
  let current: string | undefined;
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    current = undefined; // not there (yet)
  }
  if (current === text) return { path, written: false };
  const temporary = `${path}.eni-cni-tmp`;
  try {
    // A copy left by a crash goes first: 'wx' then makes the file afresh, with this mode.
    rmSync(temporary, { force: true });
    const fd = openSync(temporary, 'wx', 0o644);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch (err) {
    rmSync(temporary, { force: true });
    throw new Error(`installing the CNI network configuration ${source} as ${path}: ${(err as Error).message}`, { cause: err });
  }
  return { path, written: true };
}

/**
 * The network configurations in `dir` that a runtime would read before `name` (it takes the first by name):
 * while one is there, the node's network is someone else's, whatever this agent does.
 */
export function shadowingConfs(dir: string, name: string): string[] {
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return [];
  }
  return files.filter((f) => /\.(conf|conflist|json)$/.test(f) && f < name).sort();
}

/**
 * Keeps the node's conflist installed: put back when deleted, rewritten when the ConfigMap's changed. A
 * failure is logged once and makes the agent not ready (its pod shows it, a rollout stops), and is tried
 * again at the next round; a configuration that would be read before ours is warned about when it appears.
 */
export class CniConfKeeper {
  private failure: string | undefined;
  private shadows = '';

  constructor(
    private readonly conf: { source: string; dir: string },
    private readonly log: (level: 'info' | 'warn' | 'error', message: string) => void,
  ) {}

  /** Why the conflist is not installed, or undefined when it is. */
  problem(): string | undefined {
    return this.failure;
  }

  keep(): void {
    const { source, dir } = this.conf;
    try {
      const { path, written } = installCniConf(source, dir);
      if (written) this.log('info', `installed the CNI network configuration ${path}`);
      this.failure = undefined;
      const before = shadowingConfs(dir, basename(path)).join(', ');
      if (before && before !== this.shadows) this.log('warn', `the runtime reads ${before} in ${dir} before eni-cni's conflist ${path}: pods get that network, not eni-cni's`);
      this.shadows = before;
    } catch (err) {
      const message = (err as Error).message;
      if (message !== this.failure) this.log('error', `${message}; not ready until it is installed`);
      this.failure = message;
    }
  }
}

/** Why `text` is not a conflist whose first plugin is eni-cni (what the runtime calls first), or undefined. */
function conflistProblem(text: string): string | undefined {
  let conf: unknown;
  try {
    conf = JSON.parse(text);
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  if (typeof conf !== 'object' || conf === null || Array.isArray(conf)) return 'not a JSON object';
  const { name, cniVersion, plugins } = conf as Record<string, unknown>;
  if (typeof name !== 'string' || name === '') return 'no "name"';
  if (typeof cniVersion !== 'string') return 'no "cniVersion"';
  if (!Array.isArray(plugins) || plugins.length === 0) return 'no "plugins" list';
  const first = plugins[0] as Record<string, unknown> | null;
  if (first?.type !== 'eni-cni') return `its first plugin is ${JSON.stringify(first?.type)}, not "eni-cni"`;
  return undefined;
}
