// Watches for the lab's controllers: client-node's ListWatch (list, then watch, re-list when the watch
// ends), restarted when it fails, so that a controller keeps seeing the cluster across API hiccups.
import * as k8s from '@kubernetes/client-node';

export type Log = (level: 'info' | 'warn' | 'error', message: string) => void;

export interface WatchSpec<T extends k8s.KubernetesObject> {
  /** the collection's path, e.g. /api/v1/pods */
  path: string;
  list: () => Promise<k8s.KubernetesListObject<T>>;
  fieldSelector?: string;
}

/** Starts a ListWatch that calls `onChange` for every add, update and delete; returns its stop. */
export async function watchAll<T extends k8s.KubernetesObject>(
  kc: k8s.KubeConfig,
  spec: WatchSpec<T>,
  onChange: (type: 'add' | 'update' | 'delete', object: T) => void,
  log: Log,
): Promise<{ cache: k8s.ObjectCache<T>; stop: () => Promise<void> }> {
  const informer = new k8s.ListWatch<T>(spec.path, new k8s.Watch(kc), spec.list, false, undefined, spec.fieldSelector);
  let stopped = false;
  informer.on('add', (o) => onChange('add', o));
  informer.on('update', (o) => onChange('update', o));
  informer.on('delete', (o) => onChange('delete', o));
  informer.on('error', (err: unknown) => {
    if (stopped) return;
    log('warn', `watch of ${spec.path} failed (${(err as Error)?.message ?? String(err)}); again in 1 s`);
    setTimeout(() => {
      if (!stopped) void informer.start().catch(() => undefined);
    }, 1000);
  });
  await informer.start();
  return {
    cache: informer,
    stop: async () => {
      stopped = true;
      await informer.stop();
    },
  };
}

/**
 * A level-triggered controller loop: any change its watches see marks it dirty, and one pass at a time
 * reads what it needs fresh from the API and acts. Passes list everything, which suits a lab of a few
 * nodes and tens of pods, and keeps each controller free of cache bookkeeping.
 */
export class PassLoop {
  private dirty = false;
  private running?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private stops: Array<() => Promise<void>> = [];
  private stopped = false;

  constructor(
    private readonly name: string,
    private readonly pass: () => Promise<void>,
    private readonly log: Log,
    /** a pass at least this often, for what no watch announces (time passing) */
    private readonly resyncMs = 5000,
  ) {}

  async start(kc: k8s.KubeConfig, watches: Array<WatchSpec<k8s.KubernetesObject>>): Promise<void> {
    for (const spec of watches) this.stops.push((await watchAll(kc, spec, () => this.kick(), this.log)).stop);
    this.timer = setInterval(() => this.kick(), this.resyncMs);
    this.kick();
  }

  /** Asks for a pass soon; passes never overlap, and changes during one give exactly one more. */
  kick(): void {
    if (this.stopped) return;
    this.dirty = true;
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /** Resolves once no pass is running or due. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.all(this.stops.map((s) => s()));
    await this.running;
  }

  private async drain(): Promise<void> {
    // A short pause gathers a burst of events (a StatefulSet and its pods) into one pass.
    await new Promise((r) => setTimeout(r, 20));
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      try {
        await this.pass();
      } catch (err) {
        this.log('warn', `${this.name}: a pass failed: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
        this.dirty = true;
      }
    }
  }
}
