// The agent protocol's requests, as the agent checks them (zod/mini): what the plugin may ask over the
// socket. Only the agent loads this at run time; the plugin imports its types alone, which cost nothing on a
// pod's start-up path (the answers it reads are checked by hand, in protocol.ts).
import * as z from 'zod/mini';
import { containerIdProblem, ifNameProblem } from './names.ts';

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
