// Watches: a 200 answer that stays open and carries one JSON line per event, {"type": ..., "object": ...}.
// - resourceVersion unset or "0", or sendInitialEvents=true: an ADDED event for each object there is now, then
//   changes as they happen (with sendInitialEvents and allowWatchBookmarks, a BOOKMARK annotated
//   k8s.io/initial-events-end after the initial events, as kube-apiserver sends);
// - resourceVersion=N: the kept changes after N, then changes as they happen; if the history no longer reaches
//   back to N (or N is newer than anything this server issued) an ERROR event carrying a 410 Expired Status,
//   and the end of the stream, after which a client lists again;
// - with selectors, an object that stops matching is DELETED for this watcher and one that starts is ADDED;
// - allowWatchBookmarks=true: a BOOKMARK with the newest resourceVersion every `bookmarkIntervalMs`;
// - timeoutSeconds ends the stream (default 30 minutes, kube-apiserver's minimum request timeout).
import type { ServerResponse } from 'node:http';
import type { Context } from './context.ts';
import { badRequest, expired } from './errors.ts';
import { selection } from './reads.ts';
import { apiVersionOf, type ResourceType, served } from './resources.ts';
import type { Change, KubeObject } from './store.ts';

export interface WatchSettings {
  bookmarkIntervalMs: number;
  /** how an object goes on the wire: itself, or a Table row for `kubectl get --watch` */
  render?: (object: KubeObject) => unknown;
}

const DEFAULT_TIMEOUT_SECONDS = 1800;

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** Starts a watch on `res`; returns a function that ends it (the server calls it when it stops). */
export function serveWatch(
  ctx: Context,
  res: ServerResponse,
  scope: { type: ResourceType; namespace: string | undefined },
  query: URLSearchParams,
  settings: WatchSettings,
): () => void {
  const { type, namespace } = scope;
  const matches = selection(type, query); // throws 400 before anything is written
  const inScope = (o: KubeObject) => (namespace === undefined || o.metadata.namespace === namespace) && matches(o);
  const rv = query.get('resourceVersion') ?? '';
  const initialEvents = query.get('sendInitialEvents') === 'true' || rv === '' || rv === '0';
  const bookmarks = query.get('allowWatchBookmarks') === 'true';

  if (rv !== '' && !/^\d+$/.test(rv)) throw badRequest(`resourceVersion: Invalid value: "${rv}": must be a non-negative integer`);
  const timeoutSeconds = Number(query.get('timeoutSeconds') ?? DEFAULT_TIMEOUT_SECONDS);
  if (!(timeoutSeconds >= 0)) throw badRequest(`timeoutSeconds: Invalid value: "${query.get('timeoutSeconds')}": must be a non-negative integer`);

  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private' });
  res.flushHeaders();
  const send = (eventType: EventType, object: unknown) => res.write(`${JSON.stringify({ type: eventType, object })}\n`);
  const render = settings.render ?? ((o: KubeObject) => o);
  const bookmark = (annotations?: Record<string, string>) =>
    send('BOOKMARK', { kind: type.kind, apiVersion: apiVersionOf(type), metadata: { resourceVersion: String(ctx.store.resourceVersion), ...(annotations ? { annotations } : {}) } });

  let backlog: Change[] = [];
  if (!initialEvents) {
    const from = Number(rv);
    const current = ctx.store.resourceVersion;
    const problem =
      from < ctx.store.oldestResumable
        ? `too old resource version: ${rv} (${ctx.store.oldestResumable})`
        : from > current
          ? `too old resource version: ${rv} (newer than this server's ${current}: issued before a restart without the store?)`
          : undefined;
    if (problem) {
      send('ERROR', expired(problem).toStatus());
      res.end();
      return () => {};
    }
    backlog = ctx.store.changesSince(from);
  }

  const deliver = (change: Change) => {
    if (change.key !== type.storageKey) return;
    const was = change.previous !== undefined && inScope(change.previous);
    const is = inScope(change.object);
    let eventType: EventType | undefined;
    if (change.type === 'DELETED') eventType = was || is ? 'DELETED' : undefined;
    else if (is) eventType = was ? 'MODIFIED' : 'ADDED';
    else if (was) eventType = 'DELETED';
    if (eventType) send(eventType, render(served(change.object, type)));
  };

  // Replay and subscribe in the same tick: no change can fall between them.
  if (initialEvents) {
    for (const object of ctx.store.list(type.storageKey, namespace).filter(matches)) send('ADDED', render(served(object, type)));
    if (bookmarks && query.get('sendInitialEvents') === 'true') bookmark({ 'k8s.io/initial-events-end': 'true' });
  }
  backlog.forEach(deliver);
  const unsubscribe = ctx.store.subscribe(deliver);

  const timers: NodeJS.Timeout[] = [];
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    unsubscribe();
    timers.forEach((t) => clearTimeout(t));
    res.end();
  };
  timers.push(setTimeout(end, timeoutSeconds * 1000));
  if (bookmarks) timers.push(setInterval(() => bookmark(), settings.bookmarkIntervalMs));
  res.on('close', end);
  return end;
}
