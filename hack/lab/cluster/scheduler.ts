// The lab's scheduler: binds each pending pod to a node that fits it, as kube-scheduler's default filters
// do for what tests use — node readiness and cordon (spec.unschedulable), taints and tolerations,
// nodeSelector, required node affinity, and resource requests against allocatable (cpu, memory, pods and
// the extended resources the agents publish, such as tke.cloud.tencent.com/eni-ip). Among the nodes that
// fit, the one with the fewest pods wins (a spread, like the default scoring's balance). A pod no node fits
// stays Pending, with a FailedScheduling event and PodScheduled=False saying why, node by node counted.
import * as k8s from '@kubernetes/client-node';
import { quantityToScalar } from '@kubernetes/client-node/dist/util.js';
import { EventRecorder } from './events.ts';
import { PassLoop, type Log } from './watch.ts';

export const SCHEDULER_NAME = 'default-scheduler';

export class Scheduler {
  private readonly core: k8s.CoreV1Api;
  private readonly events: EventRecorder;
  private readonly loop: PassLoop;
  /** the last reason written per pod uid, so that an unchanged verdict is not written again */
  private readonly verdicts = new Map<string, string>();

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly log: Log,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.events = new EventRecorder(this.core, { component: SCHEDULER_NAME }, log);
    this.loop = new PassLoop('scheduler', () => this.pass(), log, 2000);
  }

  async start(): Promise<void> {
    await this.loop.start(this.kc, [
      { path: '/api/v1/pods', list: () => this.core.listPodForAllNamespaces() },
      { path: '/api/v1/nodes', list: () => this.core.listNode() },
    ]);
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  private async pass(): Promise<void> {
    const [nodes, pods] = await Promise.all([this.core.listNode(), this.core.listPodForAllNamespaces()]);
    const used = new Map<string, Map<string, number>>();
    for (const pod of pods.items) {
      const node = pod.spec?.nodeName;
      if (node && !terminal(pod)) add(used, node, requestsOf(pod));
    }
    const pending = pods.items
      .filter((p) => !p.spec?.nodeName && !p.metadata?.deletionTimestamp && (p.spec?.schedulerName ?? SCHEDULER_NAME) === SCHEDULER_NAME)
      .sort((a, b) => String(a.metadata?.creationTimestamp).localeCompare(String(b.metadata?.creationTimestamp)) || String(a.metadata?.name).localeCompare(String(b.metadata?.name)));
    for (const pod of pending) {
      const wants = requestsOf(pod);
      const misfits = new Map<string, number>();
      const fits: k8s.V1Node[] = [];
      for (const node of nodes.items) {
        const why = misfit(pod, node, wants, used.get(node.metadata!.name!) ?? new Map());
        if (why) misfits.set(why, (misfits.get(why) ?? 0) + 1);
        else fits.push(node);
      }
      const count = (node: k8s.V1Node) => used.get(node.metadata!.name!)?.get('pods') ?? 0;
      const chosen = fits.sort((a, b) => count(a) - count(b) || a.metadata!.name!.localeCompare(b.metadata!.name!))[0];
      if (chosen) await this.bind(pod, chosen.metadata!.name!, () => add(used, chosen.metadata!.name!, wants));
      else await this.unschedulable(pod, `0/${nodes.items.length} nodes are available: ${[...misfits].map(([why, n]) => `${n} ${why}`).sort().join(', ')}.`);
    }
  }

  private async bind(pod: k8s.V1Pod, node: string, booked: () => void): Promise<void> {
    const { name, namespace, uid } = pod.metadata!;
    try {
      await this.core.createNamespacedPodBinding({ name: name!, namespace: namespace!, body: { metadata: { name, namespace, uid }, target: { kind: 'Node', name: node } } });
    } catch (err) {
      // Bound meanwhile, or gone: the next pass sees which.
      this.log('warn', `scheduler: binding pod ${namespace}/${name} to ${node} failed: ${(err as Error).message}`);
      return;
    }
    booked();
    this.verdicts.delete(uid!);
    await this.events.record({ kind: 'Pod', metadata: pod.metadata! }, 'Normal', 'Scheduled', `Successfully assigned ${namespace}/${name} to ${node}`);
  }

  private async unschedulable(pod: k8s.V1Pod, message: string): Promise<void> {
    const { name, namespace, uid } = pod.metadata!;
    if (this.verdicts.get(uid!) === message) return;
    this.verdicts.set(uid!, message);
    this.log('info', `scheduler: pod ${namespace}/${name} stays Pending: ${message}`);
    await this.events.record({ kind: 'Pod', metadata: pod.metadata! }, 'Warning', 'FailedScheduling', message);
    const condition = { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: new Date() };
    const conditions = [...(pod.status?.conditions ?? []).filter((c) => c.type !== 'PodScheduled'), condition];
    await this.core
      .patchNamespacedPodStatus({ name: name!, namespace: namespace!, body: { status: { conditions } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch))
      .catch((err: Error) => this.log('warn', `scheduler: pod ${namespace}/${name}: writing PodScheduled=False failed: ${err.message}`));
  }
}

/** Why `node` cannot take `pod`, in kube-scheduler's words; undefined when it can. */
function misfit(pod: k8s.V1Pod, node: k8s.V1Node, wants: Map<string, number>, used: Map<string, number>): string | undefined {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  if (!ready) return 'node(s) were not ready';
  if (node.spec?.unschedulable && !tolerated(pod, { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' })) return 'node(s) were unschedulable';
  const taint = (node.spec?.taints ?? []).find((t) => (t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !tolerated(pod, t));
  if (taint) return `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`;
  if (!selects(pod, node)) return "node(s) didn't match Pod's node affinity/selector";
  const allocatable = node.status?.allocatable ?? {};
  for (const [resource, amount] of wants) {
    const has = allocatable[resource] === undefined ? 0 : scalar(allocatable[resource]);
    if ((used.get(resource) ?? 0) + amount > has) return resource === 'pods' ? 'Too many pods' : `Insufficient ${resource}`;
  }
  return undefined;
}

function tolerated(pod: k8s.V1Pod, taint: { key: string; value?: string; effect: string }): boolean {
  return (pod.spec?.tolerations ?? []).some(
    (t) =>
      (!t.effect || t.effect === taint.effect) &&
      (t.key === undefined || t.key === '' ? t.operator === 'Exists' : t.key === taint.key) &&
      (t.operator === 'Exists' || (t.value ?? '') === (taint.value ?? '')),
  );
}

/** nodeSelector, and required node affinity: any term whose expressions all hold. */
function selects(pod: k8s.V1Pod, node: k8s.V1Node): boolean {
  const labels = node.metadata?.labels ?? {};
  if (!Object.entries(pod.spec?.nodeSelector ?? {}).every(([k, v]) => labels[k] === v)) return false;
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (!terms?.length) return true;
  const holds = (r: k8s.V1NodeSelectorRequirement, value: string | undefined): boolean => {
    const values = r.values ?? [];
    switch (r.operator) {
      case 'In': return value !== undefined && values.includes(value);
      case 'NotIn': return value === undefined || !values.includes(value);
      case 'Exists': return value !== undefined;
      case 'DoesNotExist': return value === undefined;
      case 'Gt': return value !== undefined && Number(value) > Number(values[0]);
      case 'Lt': return value !== undefined && Number(value) < Number(values[0]);
      default: return false;
    }
  };
  return terms.some(
    (term) =>
      (term.matchExpressions?.length || term.matchFields?.length) &&
      (term.matchExpressions ?? []).every((r) => holds(r, labels[r.key])) &&
      (term.matchFields ?? []).every((r) => holds(r, r.key === 'metadata.name' ? node.metadata?.name : undefined)),
  );
}

/**
 * What a pod asks of its node: the sum of its containers' requests (a limit alone counts as the request,
 * as the API server defaults it), or an init container's when larger, and one of the node's pods.
 */
export function requestsOf(pod: k8s.V1Pod): Map<string, number> {
  const of = (c: k8s.V1Container) => new Map(Object.entries({ ...c.resources?.limits, ...c.resources?.requests }).map(([r, q]) => [r, scalar(q)]));
  const sum = new Map<string, number>([['pods', 1]]);
  for (const c of pod.spec?.containers ?? []) for (const [r, n] of of(c)) sum.set(r, (sum.get(r) ?? 0) + n);
  for (const c of pod.spec?.initContainers ?? []) for (const [r, n] of of(c)) sum.set(r, Math.max(sum.get(r) ?? 0, n));
  return sum;
}

function scalar(quantity: string | number): number {
  return Number(quantityToScalar(String(quantity)));
}

function terminal(pod: k8s.V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

function add(used: Map<string, Map<string, number>>, node: string, wants: Map<string, number>): void {
  const on = used.get(node) ?? new Map<string, number>();
  for (const [r, n] of wants) on.set(r, (on.get(r) ?? 0) + n);
  used.set(node, on);
}
