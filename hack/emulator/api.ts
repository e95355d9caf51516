// Tencent Cloud API 3.0 over HTTP: POST / with X-TC-* headers, answered {"Response": {..., "RequestId"}}.
// Everything between the socket and an action happens here, in the order the real gateway does it:
// signature, action, version and region, rate limit, injected faults, parameters, ClientToken, the action.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { Action, ActionContext } from './actions/action.ts';
import { ACTIONS } from './actions/index.ts';
import type { KeyStore } from './auth.ts';
import { CloudError, fail } from './errors.ts';
import type { Faults, RateLimiter } from './faults.ts';
import type { CloudModel } from './model.ts';

export const API_VERSION = '2017-03-12';
const MAX_BODY_BYTES = 1024 * 1024;

export interface ApiDeps {
  model: CloudModel;
  keys: KeyStore;
  faults: Faults;
  limiter: RateLimiter;
  runAsync(requestId: string): ActionContext['runAsync'];
  sleep(ms: number): Promise<void>;
}

interface Remembered {
  params: string;
  answer: Record<string, unknown>;
  /** the first call's RequestId, which is also the id of the task it started */
  requestId: string;
}

export class ApiHandler {
  /** answers of calls that carried a ClientToken, by action and token */
  private readonly byClientToken = new Map<string, Remembered>();
  /** calls answered, by action: how many succeeded, were throttled, failed otherwise */
  readonly calls = new Map<string, { ok: number; throttled: number; failed: number }>();
  /** when each call was answered, by action, while someone listens (benchmarks that want exact seconds) */
  arrivals: Array<{ at: number; action: string }> | undefined;

  constructor(private readonly deps: ApiDeps) {}

  async handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    let requestId: string = randomUUID();
    const { model } = this.deps;
    let drop = false;
    let answer: Record<string, unknown>;
    try {
      const action = this.admit(req, body);
      const name = header(req, 'x-tc-action')!;
      let latency = model.world.latencies.apiMs;
      for (const effect of this.deps.faults.effectsFor(name)) {
        if (effect.kind === 'error') throw fail(effect.code, effect.message);
        if (effect.kind === 'latency') latency += effect.ms;
        if (effect.kind === 'drop') drop = true;
      }
      if (latency > 0) await this.deps.sleep(latency);
      ({ answer, requestId } = this.run(name, action, parseBody(body), requestId));
    } catch (err) {
      answer = { Error: toError(err, requestId) };
    }
    this.count(header(req, 'x-tc-action') ?? '(none)', (answer.Error as { Code?: string } | undefined)?.Code);
    if (drop) {
      // The call has happened; the client never learns it did.
      req.socket.destroy();
      return;
    }
    const text = JSON.stringify({ Response: { ...answer, RequestId: requestId } });
    res.writeHead(200, { 'content-type': 'application/json', 'x-tc-requestid': requestId });
    res.end(text);
  }

  private count(action: string, errorCode: string | undefined): void {
    this.arrivals?.push({ at: Date.now(), action });
    const entry = this.calls.get(action) ?? { ok: 0, throttled: 0, failed: 0 };
    if (!errorCode) entry.ok++;
    else if (errorCode.startsWith('RequestLimitExceeded')) entry.throttled++;
    else entry.failed++;
    this.calls.set(action, entry);
  }

  /** Checks everything about a call except its parameters; returns the action it names. */
  private admit(req: IncomingMessage, body: Buffer): Action {
    const { model, keys, limiter } = this.deps;
    if (req.method !== 'POST') throw fail('UnsupportedProtocol', `${req.method} is not supported; use POST`);
    if (body.length > MAX_BODY_BYTES) throw fail('RequestSizeLimitExceeded', `the request body is ${body.length} bytes; at most ${MAX_BODY_BYTES}`);
    const name = header(req, 'x-tc-action');
    if (!name) throw fail('MissingParameter', 'the X-TC-Action header is missing');
    const service = keys.verify(
      {
        authorization: header(req, 'authorization'),
        host: header(req, 'host'),
        contentType: header(req, 'content-type'),
        timestamp: header(req, 'x-tc-timestamp'),
        token: header(req, 'x-tc-token'),
        body,
      },
      model.world.maxClockSkewSec,
    );
    if (service !== 'vpc' && service !== 'cvm') {
      throw fail(
        'AuthFailure.SignatureFailure',
        `the request was signed for service "${service}"; sign for vpc or cvm (give the SDK the endpoint vpc.tencentcloudapi.com:PORT with an agent that resolves it to the emulator)`,
      );
    }
    const action = ACTIONS[name];
    if (!action || action.service !== service) throw fail('InvalidAction', `action ${name} does not exist in ${service} ${API_VERSION}`);
    const version = header(req, 'x-tc-version');
    if (version !== API_VERSION) throw fail('NoSuchVersion', `version "${version ?? ''}" of ${service} does not exist; use ${API_VERSION}`);
    const region = header(req, 'x-tc-region');
    if (region !== model.world.region) throw fail('UnsupportedRegion', `region "${region ?? ''}" is not served; this cloud is ${model.world.region}`);
    if (!limiter.admit(name, model.clock.now())) {
      throw fail('RequestLimitExceeded', `${name} is limited to ${limiter.limitOf(name)} requests a second`);
    }
    return action;
  }

  /** Runs the action, or answers a retry of a ClientToken call as the first time (same RequestId, so same task). */
  private run(name: string, action: Action, input: Record<string, unknown>, requestId: string): { answer: Record<string, unknown>; requestId: string } {
    const params = validate(name, action.params, input);
    const token = action.clientToken ? (params as { ClientToken?: string }).ClientToken : undefined;
    const key = `${name}:${token}`;
    const fingerprint = JSON.stringify({ ...input, ClientToken: undefined });
    if (token) {
      const earlier = this.byClientToken.get(key);
      if (earlier && earlier.params !== fingerprint) {
        throw fail('UnsupportedOperation.IdempotentParameterMismatch', `ClientToken ${token} was already used for ${name} with other parameters`);
      }
      if (earlier) return earlier;
    }
    const answer = action.run({ model: this.deps.model, requestId, runAsync: this.deps.runAsync(requestId) }, params);
    if (token) this.byClientToken.set(key, { params: fingerprint, answer, requestId });
    return { answer, requestId };
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function parseBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw fail('InvalidParameter', `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail('InvalidParameter', 'the request body must be a JSON object');
  return value as Record<string, unknown>;
}

/** Validates parameters, turning the first problem into the code Tencent uses for it. */
function validate(action: string, schema: z.ZodType, input: Record<string, unknown>): unknown {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (where ? `${where}.${k}` : k));
    throw fail('UnknownParameter', `${action} does not take the parameter(s) ${keys.join(', ')}`);
  }
  if (issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined) {
    throw fail('MissingParameter', `${action} needs the parameter ${where}`);
  }
  const code = issue.code === 'invalid_type' || issue.code === 'invalid_union' ? 'InvalidParameter' : 'InvalidParameterValue';
  throw fail(code, `${action}: parameter ${where || '(body)'} is invalid: ${issue.message}`);
}

function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let value = input;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function toError(err: unknown, requestId: string): { Code: string; Message: string } {
  if (err instanceof CloudError) return { Code: err.code, Message: err.message };
  console.error(`emulator: request ${requestId} failed inside the emulator:`, err);
  return { Code: 'InternalError', Message: `internal error: ${(err as Error).message}` };
}
