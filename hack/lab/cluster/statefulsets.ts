// The lab's StatefulSet controller: pods named <set>-<ordinal>, made from the template with the set as
// their controlling owner (the cascade reclaims of fixed IPs and EIPs follow ownerReferences), created in
// order and removed from the highest ordinal down. With the default OrderedReady policy, ordinal n is
// created only once 0..n-1 are Running and Ready, and one pod at a time is removed; Parallel does both
// at once. A pod deleted by hand comes back with the same name, once the old one is gone. Not done:
// rolling updates of a changed template, persistent volume claims, minReadySeconds, start ordinals.
import { createHash } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { EventRecorder } from './events.ts';
import { PassLoop, type Log } from './watch.ts';

const COMPONENT = 'statefulset-controller';

export class StatefulSetController {
  private readonly core: k8s.CoreV1Api;
  private readonly apps: k8s.AppsV1Api;
  private readonly events: EventRecorder;
  private readonly loop: PassLoop;

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly log: Log,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.apps = kc.makeApiClient(k8s.AppsV1Api);
    this.events = new EventRecorder(this.core, { component: COMPONENT }, log);
    this.loop = new PassLoop('statefulset-controller', () => this.pass(), log);
  }

  async start(): Promise<void> {
    await this.loop.start(this.kc, [
      { path: '/apis/apps/v1/statefulsets', list: () => this.apps.listStatefulSetForAllNamespaces() },
      { path: '/api/v1/pods', list: () => this.core.listPodForAllNamespaces() },
    ]);
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  private async pass(): Promise<void> {
    const [sets, pods] = await Promise.all([this.apps.listStatefulSetForAllNamespaces(), this.core.listPodForAllNamespaces()]);
    for (const set of sets.items) {
      if (set.metadata?.deletionTimestamp) continue;
      const owned = pods.items.filter((p) => p.metadata?.ownerReferences?.some((r) => r.controller && r.uid === set.metadata?.uid));
      await this.sync(set, owned);
    }
  }

  private async sync(set: k8s.V1StatefulSet, owned: k8s.V1Pod[]): Promise<void> {
    const name = set.metadata!.name!;
    const namespace = set.metadata!.namespace!;
    const replicas = set.spec?.replicas ?? 1;
    const ordered = (set.spec?.podManagementPolicy ?? 'OrderedReady') === 'OrderedReady';
    const byOrdinal = new Map<number, k8s.V1Pod>();
    for (const pod of owned) {
      const ordinal = ordinalOf(name, pod.metadata!.name!);
      if (ordinal !== undefined) byOrdinal.set(ordinal, pod);
    }
    const revision = `${name}-${templateHash(set)}`;

    // Up: the missing ordinals below replicas, in order.
    for (let i = 0; i < replicas; i++) {
      const pod = byOrdinal.get(i);
      if (!pod) {
        await this.create(set, i, revision);
        if (ordered) break;
        continue;
      }
      if (failed(pod) && !pod.metadata?.deletionTimestamp) {
        // A pod that ended is replaced: deleted now, made again once gone.
        await this.delete(set, pod, 'recreate');
        if (ordered) break;
        continue;
      }
      if (ordered && !(ready(pod) && !pod.metadata?.deletionTimestamp)) break;
    }

    // Down: ordinals at or above replicas, the highest first.
    const condemned = [...byOrdinal].filter(([i]) => i >= replicas).sort(([a], [b]) => b - a);
    const going = condemned.filter(([, p]) => p.metadata?.deletionTimestamp);
    for (const [, pod] of condemned) {
      if (pod.metadata?.deletionTimestamp) continue;
      if (ordered && going.length > 0) break;
      await this.delete(set, pod, 'scale down');
      if (ordered) break;
    }

    const live = owned.filter((p) => !p.metadata?.deletionTimestamp);
    const readyCount = live.filter(ready).length;
    const status: k8s.V1StatefulSetStatus = {
      observedGeneration: set.metadata?.generation ?? 0,
      replicas: live.length,
      readyReplicas: readyCount,
      availableReplicas: readyCount,
      currentReplicas: live.length,
      updatedReplicas: live.length,
      currentRevision: revision,
      updateRevision: revision,
      collisionCount: set.status?.collisionCount ?? 0,
    };
    const before: k8s.V1StatefulSetStatus = set.status ?? { replicas: 0 };
    if ((Object.keys(status) as Array<keyof k8s.V1StatefulSetStatus>).some((k) => before[k] !== status[k])) {
      await this.apps.patchNamespacedStatefulSetStatus({ name, namespace, body: { status } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    }
  }

  private async create(set: k8s.V1StatefulSet, ordinal: number, revision: string): Promise<void> {
    const setName = set.metadata!.name!;
    const namespace = set.metadata!.namespace!;
    const name = `${setName}-${ordinal}`;
    const template = set.spec?.template ?? {};
    const pod: k8s.V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace,
        labels: { ...template.metadata?.labels, 'statefulset.kubernetes.io/pod-name': name, 'apps.kubernetes.io/pod-index': String(ordinal), 'controller-revision-hash': revision },
        annotations: { ...template.metadata?.annotations },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: setName, uid: set.metadata!.uid!, controller: true, blockOwnerDeletion: true }],
      },
      spec: { ...structuredClone(template.spec!), hostname: name, ...(set.spec?.serviceName ? { subdomain: set.spec.serviceName } : {}) },
    };
    try {
      await this.core.createNamespacedPod({ namespace, body: pod });
    } catch (err) {
      // Most often the old pod of this name, still going: the next pass tries again.
      if (err instanceof k8s.ApiException && err.code === 409) return;
      await this.events.record({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: set.metadata! }, 'Warning', 'FailedCreate', `create Pod ${name} in StatefulSet ${setName} failed error: ${(err as Error).message}`);
      throw err;
    }
    await this.events.record({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: set.metadata! }, 'Normal', 'SuccessfulCreate', `create Pod ${name} in StatefulSet ${setName} successful`);
  }

  private async delete(set: k8s.V1StatefulSet, pod: k8s.V1Pod, why: string): Promise<void> {
    const { name, namespace, uid } = pod.metadata!;
    try {
      await this.core.deleteNamespacedPod({ name: name!, namespace: namespace!, body: { preconditions: { uid } } });
    } catch (err) {
      if (err instanceof k8s.ApiException && (err.code === 404 || err.code === 409)) return;
      throw err;
    }
    this.log('info', `statefulset-controller: deleted pod ${namespace}/${name} (${why})`);
    await this.events.record({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: set.metadata! }, 'Normal', 'SuccessfulDelete', `delete Pod ${name} in StatefulSet ${set.metadata!.name} successful`);
  }
}

/** The ordinal of a pod of `set` by its name (`web-3` → 3), or undefined when the name is not one. */
export function ordinalOf(set: string, pod: string): number | undefined {
  if (!pod.startsWith(`${set}-`)) return undefined;
  const rest = pod.slice(set.length + 1);
  return /^(0|[1-9]\d*)$/.test(rest) ? Number(rest) : undefined;
}

function ready(pod: k8s.V1Pod): boolean {
  return pod.status?.phase === 'Running' && pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}

function failed(pod: k8s.V1Pod): boolean {
  return pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded';
}

/** A short, stable hash of the pod template, as the set's revision names carry. */
function templateHash(set: k8s.V1StatefulSet): string {
  return createHash('sha256').update(JSON.stringify(set.spec?.template ?? {})).digest('hex').slice(0, 10);
}
