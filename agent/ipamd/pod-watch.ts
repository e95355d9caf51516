// The cluster's pods as ipamd's claim controllers see them: one informer for all of them (a pod's coming
// and going decides its claims' fate), and the events they record on a pod.
import * as k8s from '@kubernetes/client-node';

type Handler = (pod: k8s.V1Pod) => void;

export class PodWatch {
  private readonly core: k8s.CoreV1Api;
  private informer?: k8s.Informer<k8s.V1Pod> & k8s.ObjectCache<k8s.V1Pod>;
  private readonly handlers: Handler[] = [];
  private starting?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly log: (level: 'info' | 'warn' | 'error', message: string) => void,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  /** Hears every pod added, changed or deleted. */
  on(handler: Handler): void {
    this.handlers.push(handler);
  }

  /**
   * Starts the informer once, however many controllers ask; resolves once the first list is in, so that
   * a controller never takes a pod it has not seen yet for a pod that is gone.
   */
  start(): Promise<void> {
    this.stopped = false;
    this.starting ??= (async () => {
      const informer = k8s.makeInformer<k8s.V1Pod>(this.kc, '/api/v1/pods', () => this.core.listPodForAllNamespaces());
      for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, (p) => this.handlers.forEach((h) => h(p)));
      informer.on('error', (err: unknown) => {
        if (this.stopped) return;
        this.log('warn', `kubernetes: the pods informer failed (${(err as Error)?.message ?? err}); restarting in 2 s`);
        setTimeout(() => void informer.start().catch(() => undefined), 2000);
      });
      this.informer = informer;
      await informer.start();
    })().catch((err: unknown) => {
      this.starting = undefined;
      throw err;
    });
    return this.starting;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.starting = undefined;
    await this.informer?.stop();
  }

  get(namespace: string, name: string): k8s.V1Pod | undefined {
    return this.informer?.get(name, namespace);
  }

  /**
   * Whether a pod of that name exists, asked of the API server itself when the cache has none: a claim's
   * pod is taken for gone (and its address or EIP let go) only on the server's word, never on a cache
   * that may lag.
   */
  async exists(namespace: string, name: string): Promise<boolean> {
    if (this.get(namespace, name)) return true;
    try {
      await this.core.readNamespacedPod({ namespace, name });
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return false;
      throw err;
    }
  }

  /** A Warning event on a pod (by name: it may be gone, or not yet made again). */
  async event(namespace: string, name: string, reason: string, message: string): Promise<void> {
    const uid = this.get(namespace, name)?.metadata?.uid;
    const now = new Date();
    await this.core
      .createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${name}.`, namespace },
          involvedObject: { apiVersion: 'v1', kind: 'Pod', name, namespace, ...(uid ? { uid } : {}) },
          reason,
          message,
          type: 'Warning',
          count: 1,
          firstTimestamp: now,
          lastTimestamp: now,
          source: { component: 'tke-eni-ipamd' },
        },
      })
      .catch((err: Error) => this.log('warn', `cannot record event ${reason} for pod ${namespace}/${name}: ${err.message}`));
  }
}
