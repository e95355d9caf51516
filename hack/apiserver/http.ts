// The HTTP face of the server: authentication, the path as kube-apiserver reads it (k8s.io/apiserver's
// RequestInfo: /api/v1 or /apis/<group>/<version>, then [watch/][namespaces/<ns>/]<resource>[/<name>[/<subresource>]]),
// the verb from the method, bodies in and JSON out, and every error as a Status.
import type { IncomingMessage, ServerResponse } from 'node:http';
import YAML from 'yaml';
import type { Answer, Context } from './context.ts';
import { deleteCollection, deleteObject, deleteOptions } from './deletion.ts';
import { apiGroup, apiGroupList, apiResourceList, apiVersions, openApiV2, openApiV2Protobuf, VERSION_INFO } from './discovery.ts';
import { ApiError, badRequest } from './errors.ts';
import { createObject, patchObject, updateObject, type UpdateTarget, type WriteOptions } from './objects.ts';
import { getObject, listObjects, selection } from './reads.ts';
import type { ResourceType } from './resources.ts';
import type { KubeObject } from './store.ts';
import { bindPod, getScale, patchScale, updateScale } from './subresources.ts';
import { tableVersion, toTable, type TableRequest } from './table.ts';
import { serveWatch } from './watch.ts';

export interface HttpSettings {
  /** when set, every request but the health checks must carry `Authorization: Bearer <token>` */
  token?: string;
  bookmarkIntervalMs: number;
  /** one line per request, for --verbose */
  log?: (line: string) => void;
}

const MAX_BODY_BYTES = 3 * 1024 * 1024; // kube-apiserver's limit
const HEALTH = new Set(['/healthz', '/livez', '/readyz']);

interface ResourceRequest {
  type: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  subresource: Subresource | undefined;
  watchPath: boolean;
}

type Subresource = 'status' | 'scale' | 'binding';

/** Whether the resource serves this subresource (its ResourceType says). */
function serves(type: ResourceType, subresource: string): subresource is Subresource {
  return (subresource === 'status' && type.hasStatus) || (subresource === 'scale' && type.hasScale) || (subresource === 'binding' && type.hasBinding);
}

export class ApiHandler {
  /** ends of the open watches, so that closing the server ends them */
  private readonly watches = new Set<() => void>();

  constructor(
    private readonly ctx: Context,
    private readonly settings: HttpSettings,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://apiserver');
    try {
      if (this.settings.token && !HEALTH.has(url.pathname) && req.headers.authorization !== `Bearer ${this.settings.token}`) {
        throw new ApiError('Unauthorized', 'Unauthorized');
      }
      const raw = await readBody(req);
      this.route(req, res, url, raw);
    } catch (err) {
      if (res.headersSent) {
        res.end();
      } else {
        const failure = err instanceof ApiError ? err : new ApiError('InternalError', `Internal error occurred: ${(err as Error).stack ?? String(err)}`);
        send(res, { code: failure.code, body: failure.toStatus() });
      }
    }
    this.settings.log?.(`${req.method} ${url.pathname}${url.search} ${res.statusCode}`);
  }

  /** Ends every open watch (their clients see the stream end, as when kube-apiserver shuts down). */
  endWatches(): void {
    for (const end of [...this.watches]) end();
  }

  private route(req: IncomingMessage, res: ServerResponse, url: URL, raw: Buffer): void {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (HEALTH.has(path)) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    // Names travel percent-encoded (an RBAC name such as system:node arrives as system%3Anode).
    const parts = path.split('/').slice(1).map(decodeSegment);
    const api = parts[0] === 'api' && (parts.length === 1 || parts[1] === 'v1');
    const apis = parts[0] === 'apis';
    const discovery = ['/version', '/openapi/v2', '/api', '/apis', '/api/v1'].includes(path) || (apis && parts.length <= 3);
    if (discovery && req.method !== 'GET') throw new ApiError('MethodNotAllowed', 'the server does not allow this method on the requested resource');
    if (discovery) {
      this.discovery(req, res, path, parts);
      return;
    }
    if (!api && !apis) throw pathNotFound();
    checkAccept(req);
    const [group, version, rest] = api ? ['', 'v1', parts.slice(2)] : [parts[1]!, parts[2]!, parts.slice(3)];
    this.resource(req, res, url.searchParams, raw, parseResourcePath(this.ctx, group, version, rest));
  }

  private discovery(req: IncomingMessage, res: ServerResponse, path: string, parts: string[]): void {
    const types = this.ctx.registry.all();
    if (path === '/openapi/v2') {
      if ((req.headers.accept ?? '').includes('protobuf')) {
        res.writeHead(200, { 'content-type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf' }).end(openApiV2Protobuf());
      } else {
        send(res, { code: 200, body: openApiV2() });
      }
      return;
    }
    const body =
      path === '/version' ? VERSION_INFO
      : path === '/api' ? apiVersions(req.headers.host ?? '')
      : path === '/apis' ? apiGroupList(types)
      : path === '/api/v1' ? apiResourceList('', 'v1', types)
      : parts.length === 2 ? apiGroup(parts[1]!, types)
      : apiResourceList(parts[1]!, parts[2]!, types);
    if (!body) throw pathNotFound();
    send(res, { code: 200, body });
  }

  private resource(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, raw: Buffer, target: ResourceRequest): void {
    const { type, namespace, name, subresource } = target;
    const ctx = this.ctx;
    const options = writeOptions(query);
    const notAllowed = () => new ApiError('MethodNotAllowed', `the server does not allow this method on the requested resource (${req.method} ${type.plural}${name ? ` ${name}` : ''})`);
    // A namespaced resource without a namespace is the list of all namespaces' objects: read-only.
    const acrossNamespaces = type.namespaced && namespace === undefined;
    if (subresource === 'scale' || subresource === 'binding') {
      this.subresource(req, res, raw, subresource, { type, namespace, name: name! }, options, notAllowed);
      return;
    }
    switch (req.method) {
      case 'GET': {
        const table = tableRequest(req, query, ctx);
        if (target.watchPath || query.get('watch') === 'true' || query.get('watch') === '1') {
          if (name) query.set('fieldSelector', [query.get('fieldSelector'), `metadata.name=${name}`].filter(Boolean).join(','));
          const render = table && ((o: KubeObject) => toTable(type, [o], { resourceVersion: o.metadata.resourceVersion }, table));
          const end = serveWatch(ctx, res, { type, namespace }, query, { ...this.settings, ...(render ? { render } : {}) });
          this.watches.add(end);
          res.on('close', () => this.watches.delete(end));
          return;
        }
        if (name) {
          const object = getObject(ctx, type, namespace, name);
          send(res, { code: 200, body: table ? toTable(type, [object], { resourceVersion: object.metadata.resourceVersion }, table) : object });
        } else {
          const list = listObjects(ctx, type, namespace, query);
          send(res, { code: 200, body: table ? toTable(type, list.items as KubeObject[], list.metadata as Record<string, unknown>, table) : list });
        }
        return;
      }
      case 'POST':
        if (name || acrossNamespaces) throw notAllowed();
        send(res, createObject(ctx, type, namespace, decode(req, raw), options));
        return;
      case 'PUT':
        if (!name) throw notAllowed();
        send(res, updateObject(ctx, { type, namespace, name, ...(subresource ? { subresource } : {}) }, decode(req, raw), options));
        return;
      case 'PATCH':
        if (!name) throw notAllowed();
        send(res, patchObject(ctx, { type, namespace, name, ...(subresource ? { subresource } : {}) }, mediaType(req), decode(req, raw), options));
        return;
      case 'DELETE': {
        if (subresource || acrossNamespaces) throw notAllowed();
        const opts = deleteOptions(raw.length > 0 ? decode(req, raw) : undefined, query);
        if (name) {
          send(res, deleteObject(ctx, type, namespace, name, opts));
        } else {
          const matches = selection(type, query);
          send(res, deleteCollection(ctx, type, ctx.store.list(type.storageKey, namespace).filter(matches), opts));
        }
        return;
      }
      default:
        throw notAllowed();
    }
  }

  /** pods/binding takes a POST; a scale GET, PUT and PATCH. */
  private subresource(req: IncomingMessage, res: ServerResponse, raw: Buffer, subresource: 'scale' | 'binding', object: UpdateTarget, options: WriteOptions, notAllowed: () => ApiError): void {
    const ctx = this.ctx;
    const call = `${req.method} ${subresource}`;
    if (call === 'POST binding') send(res, bindPod(ctx, object, decode(req, raw), options));
    else if (call === 'GET scale') send(res, getScale(ctx, object));
    else if (call === 'PUT scale') send(res, updateScale(ctx, object, decode(req, raw), options));
    else if (call === 'PATCH scale') send(res, patchScale(ctx, object, mediaType(req), decode(req, raw), options));
    else throw notAllowed();
  }
}

function parseResourcePath(ctx: Context, group: string, version: string, parts: string[]): ResourceRequest {
  const watchPath = parts[0] === 'watch';
  let rest = watchPath ? parts.slice(1) : parts;
  let namespace: string | undefined;
  // namespaces/<ns>/<resource>...; but namespaces/<name> and namespaces/<name>/status are the namespace itself.
  if (rest[0] === 'namespaces' && rest.length > 2 && rest[2] !== 'status' && rest[2] !== 'finalize') {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural, name, subresource, ...extra] = rest;
  const type = plural ? ctx.registry.find(group, version, plural) : undefined;
  if (!type || extra.length > 0) throw pathNotFound();
  if (subresource !== undefined && !serves(type, subresource)) throw pathNotFound();
  if (type.namespaced ? namespace === undefined && name !== undefined : namespace !== undefined) throw pathNotFound();
  return { type, namespace, name, subresource, watchPath };
}

/** What `kubectl get` asks for: Table rows instead of objects. */
function tableRequest(req: IncomingMessage, query: URLSearchParams, ctx: Context): TableRequest | undefined {
  const version = tableVersion(req.headers.accept);
  if (!version) return undefined;
  const include = query.get('includeObject') ?? 'Metadata';
  if (include !== 'None' && include !== 'Metadata' && include !== 'Object') throw badRequest(`includeObject: Unsupported value: "${include}": supported values: "None", "Metadata", "Object"`);
  return { version, includeObject: include, now: ctx.clock.now() };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest(`the path segment "${segment}" is not valid percent-encoding`);
  }
}

function pathNotFound(): ApiError {
  return new ApiError('NotFound', 'the server could not find the requested resource', {});
}

function writeOptions(query: URLSearchParams): WriteOptions {
  const fieldValidation = query.get('fieldValidation') ?? undefined;
  if (fieldValidation !== undefined && !['Strict', 'Warn', 'Ignore'].includes(fieldValidation)) {
    throw badRequest(`fieldValidation: Unsupported value: "${fieldValidation}": supported values: "Ignore", "Strict", "Warn"`);
  }
  return { dryRun: query.getAll('dryRun').includes('All'), ...(fieldValidation ? { fieldValidation: fieldValidation as WriteOptions['fieldValidation'] } : {}) };
}

/** Only JSON is spoken: a client that will not take it (protobuf only) is told so. */
function checkAccept(req: IncomingMessage): void {
  const accept = req.headers.accept;
  if (accept && !accept.includes('json') && !accept.includes('*/*')) throw new ApiError('NotAcceptable', `only application/json is served; asked for ${accept}`);
}

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
}

function decode(req: IncomingMessage, raw: Buffer): unknown {
  const type = mediaType(req);
  if (type === 'application/apply-patch+yaml' || type === 'application/apply-patch+cbor') {
    throw new ApiError('UnsupportedMediaType', `server-side apply (${type}) is not supported by this API server; use client-side apply`);
  }
  if (type === 'application/vnd.kubernetes.protobuf') {
    throw new ApiError(
      'UnsupportedMediaType',
      'protobuf bodies are not supported by this API server (kubectl sends them from its imperative commands, such as `kubectl create namespace`); send JSON, as `kubectl create -f` and `kubectl apply -f` do',
    );
  }
  try {
    if (type === 'application/yaml') return YAML.parse(raw.toString());
    if (type === 'application/json' || type.endsWith('+json')) return raw.length === 0 ? undefined : JSON.parse(raw.toString());
  } catch (err) {
    throw badRequest(`the body of the request could not be decoded as ${type}: ${(err as Error).message}`);
  }
  throw new ApiError('UnsupportedMediaType', `the body of the request was in an unknown format (${type}) - accepted media types include: application/json, application/yaml`);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) reject(new ApiError('RequestEntityTooLarge', `the request body is larger than ${MAX_BODY_BYTES} bytes`));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, answer: Answer): void {
  const headers: Record<string, string | string[]> = { 'content-type': 'application/json' };
  if (answer.warnings?.length) headers.warning = answer.warnings.map((w) => `299 - ${JSON.stringify(w)}`);
  res.writeHead(answer.code, headers).end(JSON.stringify(answer.body));
}
