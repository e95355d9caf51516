// What the request handlers share: the store, the resources it serves, and the clock (injected, so tests can
// set the time that creationTimestamp and deletionTimestamp show).
import type { Registry } from './resources.ts';
import type { Store } from './store.ts';

export interface Clock {
  now(): Date;
}

export interface Context {
  store: Store;
  registry: Registry;
  clock: Clock;
}

/** The time as Kubernetes writes it in metadata: RFC 3339 in UTC, whole seconds. */
export function timestamp(clock: Clock): string {
  return formatTime(clock.now());
}

export function formatTime(time: Date): string {
  return time.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** What a handler answers: the HTTP code, the body, and warnings for `Warning:` headers. */
export interface Answer {
  code: number;
  body: unknown;
  warnings?: string[];
}
