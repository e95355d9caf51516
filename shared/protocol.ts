// The agent protocol: what the plugin asks the node agent over its unix socket, and what it answers.
// One JSON line each way per connection. Version 1; changes are additive only (new optional fields,
// new ops), so an older plugin keeps working with a newer agent during a rolling update, and the agent
// serves a request of any version as far as it knows it (a newer plugin against an older agent).
// Validated at both ends with zod/mini, which the plugin can afford on its start-up path (about 13 kB).
import * as z from 'zod/mini';
import { containerIdProblem, hostIfName, ifNameProblem } from './names.ts';

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

/** Named like the pod's host veth: a fixed, safe file name whatever the container id is. */
export function pendingDelFile(agentSocket: string, containerId: string, ifName: string): string {
  return `${pendingDelDir(agentSocket)}/${hostIfName(containerId, ifName)}`;
}

/** A name the CNI spec allows, refused with the spec's own reason otherwise. */
const name = (what: string, problem: (value: string) => string | undefined) =>
  z.string().check(z.refine((value) => problem(value) === undefined, { error: (issue) => `${what} "${String(issue.input)}" ${problem(String(issue.input)) ?? ''}` }));
const ContainerId = name('container id', containerIdProblem);
const IfName = name('interface name', ifNameProblem);

const Pod = z.object({ namespace: z.string(), name: z.string(), uid: z.optional(z.string()) });

export const AddRequest = z.object({
  op: z.literal('add'),
  containerId: ContainerId,
  netns: z.string().check(z.minLength(1)),
  ifName: IfName,
  pod: z.optional(Pod),
});

export const DelRequest = z.object({
  op: z.literal('del'),
  containerId: ContainerId,
  ifName: IfName,
  /** may be empty: a DEL can come after the namespace is gone */
  netns: z.optional(z.string()),
});

export const CheckRequest = z.object({
  op: z.literal('check'),
  containerId: ContainerId,
  ifName: IfName,
  netns: z.string(),
  /** the address the runtime believes the pod has (from prevResult) */
  address: z.optional(z.string()),
});

export const GcRequest = z.object({
  op: z.literal('gc'),
  valid: z.array(z.object({ containerId: z.string(), ifName: z.string() })),
});

export const StatusRequest = z.object({ op: z.literal('status') });

export const Request = z.object({
  v: z.number(),
  body: z.discriminatedUnion('op', [AddRequest, DelRequest, CheckRequest, GcRequest, StatusRequest]),
});

export type AddRequest = z.infer<typeof AddRequest>;
export type DelRequest = z.infer<typeof DelRequest>;
export type CheckRequest = z.infer<typeof CheckRequest>;
export type GcRequest = z.infer<typeof GcRequest>;
export type StatusRequest = z.infer<typeof StatusRequest>;
export type Request = z.infer<typeof Request>;
export type RequestBody = Request['body'];

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
  'internal',
] as const;
export type AgentErrorCode = (typeof AgentErrorCodes)[number];

export const Attachment = z.object({
  /** the pod's address, without prefix length: it is always a /32 */
  address: z.string(),
  /** the link-local next hop the pod routes through */
  gateway: z.string(),
  /** MAC of the pod's interface */
  mac: z.string(),
  /** name of the host end of the pod's veth */
  hostIf: z.string(),
  eniId: z.string(),
});
export type Attachment = z.infer<typeof Attachment>;

export const Response = z.object({
  v: z.number(),
  ok: z.boolean(),
  attachment: z.optional(Attachment),
  /** for status: whether ADDs can be served now */
  ready: z.optional(z.boolean()),
  /** for gc: how many attachments were released */
  released: z.optional(z.number()),
  // Any string: a newer agent may refuse for a reason this plugin does not know yet (it is then internal).
  error: z.optional(z.object({ code: z.string(), message: z.string() })),
});
export type Response = z.infer<typeof Response>;

export function ok(fields: Omit<Response, 'v' | 'ok'> = {}): Response {
  return { v: PROTOCOL_VERSION, ok: true, ...fields };
}

export function refuse(code: AgentErrorCode, message: string): Response {
  return { v: PROTOCOL_VERSION, ok: false, error: { code, message } };
}

/** Parses one line of JSON against a schema; the error names what was wrong and where. */
export function decode<T>(schema: z.ZodMiniType<T>, line: string, what: string): { ok: true; value: T } | { ok: false; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (err) {
    return { ok: false, message: `${what} is not JSON: ${(err as Error).message}` };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { ok: false, message: `${what} is invalid at ${issue.path.join('.') || '(top)'}: ${issue.message}` };
}
