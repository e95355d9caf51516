// The network configuration the runtime passes on stdin, and the CNI_* environment.
import { CniCode, CniError, isSupportedVersion, type CniResult, type CniVersion } from '../shared/cni.ts';
import { DEFAULT_AGENT_SOCKET } from '../shared/protocol.ts';

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /** the agent's unix socket */
  agentSocket: string;
  /** milliseconds to wait for the agent's answer to an ADD */
  addTimeoutMs: number;
  prevResult?: CniResult;
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
  if (typeof timeout !== 'number' || !(timeout > 0)) throw new CniError(CniCode.InvalidConfig, 'the network configuration field "addTimeoutMs" must be a positive number');
  return {
    cniVersion: version,
    name: text('name'),
    type: text('type'),
    agentSocket: text('agentSocket', DEFAULT_AGENT_SOCKET),
    addTimeoutMs: timeout,
    prevResult: conf.prevResult as CniResult | undefined,
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
  const ifName = env.CNI_IFNAME ?? '';
  if (ifName.length > 15) throw new CniError(CniCode.InvalidEnvironment, `CNI_IFNAME "${ifName}" is longer than 15 characters`);
  return { command: env.CNI_COMMAND ?? '', containerId: env.CNI_CONTAINERID ?? '', netns: env.CNI_NETNS ?? '', ifName, args };
}
