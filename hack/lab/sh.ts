// Running the host's network tools. Every failure names the command and what it printed.
import { execa } from 'execa';

/** The environment for child processes: without NODE_EXTRA_CA_CERTS, as kubelet and containerd run plugins. */
export function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

export async function run(cmd: string, args: string[], options: { input?: string; allowFailure?: boolean } = {}): Promise<string> {
  const result = await execa(cmd, args, { input: options.input, reject: false, env: childEnv(), extendEnv: false });
  if (result.exitCode !== 0 && !options.allowFailure) {
    const said = `${result.stderr}${result.stdout}`.trim();
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${result.exitCode}): ${said}`);
  }
  return result.stdout;
}

/** `ip [-n ns] args…` */
export function ip(ns: string | undefined, ...args: string[]): Promise<string> {
  return run('ip', ns ? ['-n', ns, ...args] : args);
}

/** Several `ip` commands in one process (`ip -batch`), stopping at the first failure. */
export async function ipBatch(ns: string | undefined, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  await run('ip', [...(ns ? ['-n', ns] : []), '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

/** A command inside a network namespace. */
export function inNs(ns: string, cmd: string, args: string[], options: { allowFailure?: boolean } = {}): Promise<string> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], options);
}

/** Prints the body; exits 0 on a 2xx answer, 1 on another, 2 when nothing answers (or in time). */
const GET_SCRIPT = 'fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).then(async (r) => { process.stdout.write(await r.text()); process.exitCode = r.ok ? 0 : 1; }, () => { process.exitCode = 2; })';

/**
 * An HTTP GET from inside a network namespace (a node's health port on its 127.0.0.1), as kubelet's probes
 * and Prometheus reach it there; by Node itself, since busybox's wget crashes on a refused connection.
 */
export async function httpGetIn(ns: string, url: string): Promise<{ ok: boolean; body: string }> {
  const result = await execa('ip', ['netns', 'exec', ns, process.execPath, '-e', GET_SCRIPT, url], { reject: false, env: childEnv(), extendEnv: false });
  return { ok: result.exitCode === 0, body: result.stdout };
}

export async function sysctl(ns: string, settings: Record<string, string | number>): Promise<void> {
  await inNs(ns, 'sysctl', ['-q', '-w', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
}

export async function listNamespaces(): Promise<string[]> {
  const out = await run('ip', ['netns', 'list']);
  return out
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter(Boolean);
}
