// Events as kubelet's and the scheduler's recorders write them: one Event per object, reason and message,
// whose count and lastTimestamp grow when the same thing happens again (client-go's aggregation, simplified).
import * as k8s from '@kubernetes/client-node';
import type { Log } from './watch.ts';

export interface Involved {
  apiVersion?: string;
  kind?: string;
  metadata?: k8s.V1ObjectMeta;
}

export class EventRecorder {
  private readonly seen = new Map<string, { name: string; count: number }>();

  constructor(
    private readonly core: k8s.CoreV1Api,
    private readonly source: { component: string; host?: string },
    private readonly log: Log,
  ) {}

  async record(object: Involved, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const meta = object.metadata ?? {};
    const namespace = meta.namespace ?? 'default';
    const key = `${meta.uid}\n${reason}\n${message}`;
    const now = new Date();
    const before = this.seen.get(key);
    try {
      if (before) {
        before.count++;
        await this.core.patchNamespacedEvent(
          { name: before.name, namespace, body: { count: before.count, lastTimestamp: now.toISOString() } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        );
        return;
      }
      const name = `${meta.name}.${(now.getTime() * 1e6 + Math.floor(Math.random() * 1e6)).toString(16)}`;
      await this.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { name, namespace },
          involvedObject: { apiVersion: object.apiVersion ?? 'v1', kind: object.kind ?? 'Pod', name: meta.name, namespace, uid: meta.uid },
          type,
          reason,
          message,
          source: this.source,
          reportingComponent: this.source.component,
          reportingInstance: this.source.host ?? '',
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
      this.seen.set(key, { name, count: 1 });
    } catch (err) {
      // An event is for people; losing one must not stop the work it describes.
      this.log('warn', `event ${reason} for ${namespace}/${meta.name} not written: ${(err as Error).message}`);
      this.seen.delete(key);
    }
  }
}
