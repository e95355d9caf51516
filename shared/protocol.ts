// The agent protocol: what the plugin asks the node agent over its unix socket, and what it answers.
// One JSON line each way per connection. Version 1; changes are additive only (new optional fields,
// new ops), so an older plugin keeps working with a newer agent during a rolling update, and the agent
// serves a request of any version as far as it knows it (a newer plugin against an older agent).
// The agent checks requests with zod/mini (requests.ts); the plugin checks answers with the few lines of
// readResponse below, because zod/mini costs the plugin about 4 ms of start-up, on every pod's ADD.
import { hostIfName } from './names.ts';

export const PROTOCOL_VERSION = 1;
/** Where the agent listens unless the network config says otherwise. */
export const DEFAULT_AGENT_SOCKET = '/run/eni-cni/agent.sock';

/**
 * Where the plugin leaves a DEL it could not deliver (the agent was away), beside the agent's socket: one
 * file per container and interface, which the agent reads when it is back. The agent makes the directory;
 * the plugin never does (a socket path that points elsewhere must not grow directories there).
 */
export function pendingDelDir(agentSocket: string): string {
  const slash = agentSocket.lastIndexOf('/');
  return `${slash > 0 ? agentSocket.slice(0, slash) : '.'}/pending-del`;
}

/**
 * Where the agent puts the plugin's native request (cni-plugin/native/agent-call.c) for the plugin, beside
 * its socket: a native addon loads only from a file, and the plugin writes nothing of its own. Named by the
 * addon's SHA-256 (its first 16 hex digits): the plugin knows the digest of the addon it was built with, so
 * it finds the very same build by name alone, without reading the file, and an agent of another version
 * offers a file of another name, which that plugin never loads.
 */
export function agentCallFile(agentSocket: string, sha256: string): string {
  const slash = agentSocket.lastIndexOf('/');
  return `${slash > 0 ? agentSocket.slice(0, slash) : '.'}/${AGENT_CALL_PREFIX}${sha256.slice(0, 16)}.node`;
}

/** Every file the agent names so (agentCallFile) is its own, from this version or an earlier one. */
export const AGENT_CALL_PREFIX = 'eni-cni-agent-call-';

/** Named like the pod's host veth: a fixed, safe file name whatever the container id is. */
export function pendingDelFile(agentSocket: string, containerId: string, ifName: string): string {
  return `${pendingDelDir(agentSocket)}/${hostIfName(containerId, ifName)}`;
}

/** Why the agent refused; the plugin maps each to a CNI error code (see cni-plugin/errors.ts). */
export const AgentErrorCodes = [
  'bad-request',
  'unsupported-version',
  'not-ready',
  'no-address',
  'unknown-container',
  'unsupported-mode',
  /** the pod's network namespace is not one this agent may plumb (missing, not a namespace, the node's own) */
  'bad-netns',
  'datapath',
  /** a pod annotation the agent cannot follow (an unknown delete policy) */
  'bad-annotation',
  /** the pod's fixed address is not here yet (held elsewhere, on its way): the runtime tries again */
  'fixed-ip-pending',
  /** the pod's fixed address cannot come to this node (another zone, the claim being deleted) */
  'fixed-ip-unavailable',
  /** the pod's EIP is not bound yet (being allocated or bound, the claim changing): the runtime tries again */
  'eip-pending',
  /** the pod's EIP cannot be had (quota, taken by another pod, the claim being deleted) */
  'eip-failed',
  'internal',
] as const;
export type AgentErrorCode = (typeof AgentErrorCodes)[number];

export interface Attachment {
  /** the pod's address, without prefix length (see prefix) */
  address: string;
  /** the next hop the pod routes through: link-local for a veth, the subnet's gateway for a whole ENI */
  gateway: string;
  /** MAC of the pod's interface */
  mac: string;
  /** name of the host end of the pod's veth; empty for a whole ENI (nothing of the pod is on the node) */
  hostIf: string;
  eniId: string;
  /** the address's prefix length: 32 when absent; a whole ENI's is its subnet's */
  prefix?: number | undefined;
}

export interface Response {
  v: number;
  ok: boolean;
  attachment?: Attachment | undefined;
  /** for status: whether ADDs can be served now */
  ready?: boolean | undefined;
  /** for gc: how many attachments were released */
  released?: number | undefined;
  /** any code: a newer agent may refuse for a reason this plugin does not know yet (it is then internal) */
  error?: { code: string; message: string } | undefined;
}

export function ok(fields: Omit<Response, 'v' | 'ok'> = {}): Response {
  return { v: PROTOCOL_VERSION, ok: true, ...fields };
}

export function refuse(code: AgentErrorCode, message: string): Response {
  return { v: PROTOCOL_VERSION, ok: false, error: { code, message } };
}

/**
 * Reads the agent's answer line: the fields of Response, each of its type; unknown fields (a newer agent's)
 * are left out. The error names what was wrong and where, as a schema check would.
 */
export function readResponse(line: string, what: string): { ok: true; value: Response } | { ok: false; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (err) {
    return { ok: false, message: `${what} is not JSON: ${(err as Error).message}` };
  }
  const bad = (path: string, expected: string) => ({ ok: false as const, message: `${what} is invalid at ${path}: expected ${expected}` });
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(json)) return bad('(top)', 'an object');
  const { v, ok, attachment, ready, released, error } = json;
  if (typeof v !== 'number') return bad('v', 'a number');
  if (typeof ok !== 'boolean') return bad('ok', 'a boolean');
  const value: Response = { v, ok };
  if (attachment !== undefined) {
    if (!isObject(attachment)) return bad('attachment', 'an object');
    for (const key of ['address', 'gateway', 'mac', 'hostIf', 'eniId'] as const) {
      if (typeof attachment[key] !== 'string') return bad(`attachment.${key}`, 'a string');
    }
    const a = attachment as unknown as Attachment;
    if (a.prefix !== undefined && !(Number.isInteger(a.prefix) && a.prefix >= 0 && a.prefix <= 32)) return bad('attachment.prefix', 'a whole number from 0 to 32');
    value.attachment = { address: a.address, gateway: a.gateway, mac: a.mac, hostIf: a.hostIf, eniId: a.eniId, ...(a.prefix !== undefined ? { prefix: a.prefix } : {}) };
  }
  if (ready !== undefined) {
    if (typeof ready !== 'boolean') return bad('ready', 'a boolean');
    value.ready = ready;
  }
  if (released !== undefined) {
    if (typeof released !== 'number') return bad('released', 'a number');
    value.released = released;
  }
  if (error !== undefined) {
    if (!isObject(error)) return bad('error', 'an object');
    if (typeof error.code !== 'string') return bad('error.code', 'a string');
    if (typeof error.message !== 'string') return bad('error.message', 'a string');
    value.error = { code: error.code, message: error.message };
  }
  return { ok: true, value };
}
