// Events users see with `kubectl get event`: each about a node, recorded on its NodeENIConfig and on the
// Node, at most once per cause per minute.
import type { CoreV1Event, V1Node } from '@kubernetes/client-node';
import { CRD_GROUP, CRD_VERSION } from '../../shared/tke.ts';

const EVERY_MS = 60_000;

export class Events {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly o: {
      create(event: CoreV1Event): Promise<void>;
      node(name: string): V1Node | undefined;
      log: (level: 'warn', message: string) => void;
      clock?: { now(): number };
    },
  ) {}

  warn(node: string, reason: string, message: string): void {
    const now = (this.o.clock ?? Date).now();
    const cause = `${node}/${reason}/${message}`;
    if (now - (this.last.get(cause) ?? -Infinity) < EVERY_MS) return;
    this.last.set(cause, now);
    const at = new Date(now).toISOString() as unknown as Date;
    const uid = this.o.node(node)?.metadata?.uid;
    const objects = [
      { apiVersion: `${CRD_GROUP}/${CRD_VERSION}`, kind: 'NodeENIConfig', name: node },
      { apiVersion: 'v1', kind: 'Node', name: node, ...(uid ? { uid } : {}) },
    ];
    for (const involvedObject of objects) {
      const event: CoreV1Event = {
        metadata: { generateName: `${node}.`, namespace: 'default' },
        involvedObject,
        reason,
        message,
        type: 'Warning',
        count: 1,
        firstTimestamp: at,
        lastTimestamp: at,
        source: { component: 'tke-eni-ipamd' },
      };
      this.o.create(event).catch((err: Error) => this.o.log('warn', `kubernetes: cannot record event ${reason} for node ${node}: ${err.message}`));
    }
  }
}
