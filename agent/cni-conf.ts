// The node's CNI network configuration, installed by the agent once it serves pods. A runtime reports the
// node's network ready as soon as a conflist is in its config dir, kubelet then marks the node Ready and the
// scheduler sends it pods: the conflist must not be there before the agent can answer their ADDs. It is
// left in place when the agent stops, so that during an upgrade the runtime still tears pods down through
// the plugin (whose DEL works without the agent) and new ADDs are told to try again later.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Checks the conflist at `source` and puts it into `dir` under the same name, by renaming: a runtime never reads half a file. Returns its path there. */
export function installCniConf(source: string, dir: string): string {
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    throw new Error(`the CNI network configuration ${source} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  const problem = conflistProblem(text);
  if (problem) throw new Error(`the CNI network configuration ${source} is not eni-cni's conflist: ${problem}`);
  const target = join(dir, basename(source));
  const temporary = `${target}.eni-cni-tmp`;
  try {
    writeFileSync(temporary, text, { mode: 0o644 });
    renameSync(temporary, target);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw new Error(`installing the CNI network configuration ${source} as ${target}: ${(err as Error).message}`, { cause: err });
  }
  return target;
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
