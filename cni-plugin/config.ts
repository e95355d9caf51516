// The network configuration the runtime passes on stdin, and the CNI_* environment.
import { CniCode, CniError, isSupportedVersion, type CniVersion } from '../shared/cni.ts';
import { containerIdProblem, ifNameProblem } from '../shared/names.ts';
import { DEFAULT_AGENT_SOCKET } from '../shared/protocol.ts';

/** setTimeout's limit: a longer wait would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /** the agent's unix socket */
  agentSocket: string;
  /** milliseconds to wait for the agent's answer to an ADD */
  addTimeoutMs: number;
  /** as the runtime sent it: only CHECK reads it, and checks what it reads */
  prevResult?: unknown;
  validAttachments?: Array<{ containerId: string; ifName: string }>;
}

export function parseNetConf(stdin: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CniCode.DecodingFailure, `the network configuration on stdin is not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniError(CniCode.DecodingFailure, 'the network configuration on stdin must be a JSON object');
  }
  const conf = raw as Record<string, unknown>;
  const version = conf.cniVersion;
  if (typeof version !== 'string') throw new CniError(CniCode.InvalidConfig, 'the network configuration has no cniVersion');
  if (!isSupportedVersion(version)) {
    throw new CniError(CniCode.IncompatibleVersion, `cniVersion ${version} is not supported`, 'supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0');
  }
  const text = (key: string, fallback?: string): string => {
    const value = conf[key] ?? fallback;
    if (typeof value !== 'string' || value === '') throw new CniError(CniCode.InvalidConfig, `the network configuration field "${key}" must be a non-empty string`);
    return value;
  };
  const timeout = conf.addTimeoutMs ?? 60_000;
  if (typeof timeout !== 'number' || !(timeout > 0) || timeout > MAX_TIMEOUT_MS) {
    throw new CniError(CniCode.InvalidConfig, `the network configuration field "addTimeoutMs" must be a number of milliseconds above 0 and at most ${MAX_TIMEOUT_MS}`);
  }
  const agentSocket = text('agentSocket', DEFAULT_AGENT_SOCKET);
  if (!agentSocket.startsWith('/')) throw new CniError(CniCode.InvalidConfig, `the network configuration field "agentSocket" must be an absolute path, not "${agentSocket}"`);
  return {
    cniVersion: version,
    name: text('name'),
    type: text('type'),
    agentSocket,
    addTimeoutMs: timeout,
    prevResult: conf.prevResult,
    validAttachments: parseValidAttachments(conf['cni.dev/valid-attachments']),
  };
}

function parseValidAttachments(value: unknown): NetConf['validAttachments'] {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new CniError(CniCode.InvalidConfig, '"cni.dev/valid-attachments" must be a list');
  return value.map((entry, i) => {
    const e = entry as { containerID?: unknown; ifname?: unknown };
    if (typeof e?.containerID !== 'string' || typeof e.ifname !== 'string') {
      throw new CniError(CniCode.InvalidConfig, `"cni.dev/valid-attachments"[${i}] needs string containerID and ifname`);
    }
    return { containerId: e.containerID, ifName: e.ifname };
  });
}

export interface CniEnv {
  command: string;
  containerId: string;
  netns: string;
  ifName: string;
  /** CNI_ARGS as key/value pairs (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID …) */
  args: Record<string, string>;
  /** what is wrong with CNI_CONTAINERID or CNI_IFNAME by the spec's rules (ADD and CHECK refuse; DEL has nothing to undo) */
  badName?: string | undefined;
}

/** Reads the CNI_* variables; `required` names those the command cannot do without. */
export function parseEnv(env: NodeJS.ProcessEnv, required: Array<'CNI_CONTAINERID' | 'CNI_NETNS' | 'CNI_IFNAME'>): CniEnv {
  for (const name of required) {
    if (!env[name]) throw new CniError(CniCode.InvalidEnvironment, `the environment variable ${name} is required for ${env.CNI_COMMAND}`);
  }
  const args: Record<string, string> = {};
  for (const pair of (env.CNI_ARGS ?? '').split(';').filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new CniError(CniCode.InvalidEnvironment, `CNI_ARGS entry "${pair}" is not KEY=VALUE`);
    args[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const containerId = env.CNI_CONTAINERID ?? '';
  const ifName = env.CNI_IFNAME ?? '';
  const idProblem = containerIdProblem(containerId);
  const ifProblem = ifNameProblem(ifName);
  const badName = idProblem ? `CNI_CONTAINERID ${JSON.stringify(containerId)} ${idProblem}` : ifProblem ? `CNI_IFNAME ${JSON.stringify(ifName)} ${ifProblem}` : undefined;
  return { command: env.CNI_COMMAND ?? '', containerId, netns: env.CNI_NETNS ?? '', ifName, args, badName };
}

/** Refuses, with code 4, a container id or interface name the spec does not allow. */
export function requireValidNames(cni: CniEnv): void {
  if (cni.badName) throw new CniError(CniCode.InvalidEnvironment, cni.badName);
}
