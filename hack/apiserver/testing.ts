// Test helpers: the real @kubernetes/client-node pointed at a server, the Status of a failed call, watches
// that collect their events, kubectl run against a kubeconfig, and CRDs shaped like the project's.
import * as k8s from '@kubernetes/client-node';
import { execa } from 'execa';
import type { ApiServer } from './server.ts';

export function clientsFor(server: ApiServer) {
  const kc = new k8s.KubeConfig();
  kc.loadFromString(server.kubeconfig());
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
    crds: kc.makeApiClient(k8s.ApiextensionsV1Api),
  };
}

/** The HTTP code and Status of a call that must fail. */
export async function failure(call: Promise<unknown>): Promise<{ code: number; status: k8s.V1Status }> {
  try {
    await call;
  } catch (err) {
    // client-node drops the body of a 401; every other failure carries the server's Status.
    if (err instanceof k8s.ApiException) return { code: err.code, status: (err.code === 401 ? {} : JSON.parse(String(err.body))) as k8s.V1Status };
    throw err;
  }
  throw new Error('the call succeeded; an error was expected');
}

export async function until(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface WatchEvent {
  type: string;
  object: { kind?: string; code?: number; reason?: string; metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string> } };
}

export interface CollectedWatch {
  events: WatchEvent[];
  /** resolves when the stream ends, with the error if it failed */
  ended: Promise<unknown>;
  stop(): void;
}

/** A watch through client-node's Watch that keeps its events. */
export async function collectWatch(kc: k8s.KubeConfig, path: string, query: Record<string, string | number | boolean>): Promise<CollectedWatch> {
  const events: WatchEvent[] = [];
  let resolveEnded!: (err: unknown) => void;
  const ended = new Promise<unknown>((resolve) => (resolveEnded = resolve));
  const controller = await new k8s.Watch(kc).watch(path, query, (type, object) => events.push({ type, object: object as WatchEvent['object'] }), (err) => resolveEnded(err ?? null));
  return { events, ended, stop: () => controller.abort() };
}

export function summary(events: WatchEvent[]): string[] {
  return events.map((e) => `${e.type} ${e.object.metadata?.name ?? e.object.reason ?? ''}`.trim());
}

let kubectlFound: Promise<boolean> | undefined;

/**
 * Fails with a message saying how to get kubectl, rather than letting the kubectl tests skip. Call it in a
 * beforeEach (a failing beforeAll leaves its tests counted as skipped, not failed).
 */
export async function requireKubectl(): Promise<void> {
  kubectlFound ??= execa('kubectl', ['version', '--client'], { reject: false }).then((r) => !r.failed);
  if (!(await kubectlFound)) {
    throw new Error(
      'kubectl is not installed (not on PATH), and the kubectl tests need it: install kubectl, for example Debian\'s "kubernetes-client" ' +
        'package or kubectl from the Kubernetes or Google Cloud apt repository (what the development machines have)',
    );
  }
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** kubectl against one kubeconfig, with its own discovery cache; never throws on a non-zero exit. */
export function kubectlFor(kubeconfig: string, cacheDir: string): (args: string[]) => Promise<KubectlResult> {
  return async (args) => {
    const result = await execa('kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, ...args], { reject: false });
    return { stdout: String(result.stdout), stderr: String(result.stderr), exitCode: result.exitCode ?? -1 };
  };
}

/**
 * A CRD as client-node's typed API takes it. client-node serializes by its models' property names
 * (`x_kubernetes_preserve_unknown_fields`, `_default`), so a CRD written in wire form (as in YAML) would lose
 * those fields on the way out; loadYaml turns the wire form into the model.
 */
export function crdModel(wire: object): k8s.V1CustomResourceDefinition {
  return k8s.loadYaml<k8s.V1CustomResourceDefinition>(JSON.stringify(wire));
}

export const GROUP = 'networking.tke.cloud.tencent.com';

/** NodeENIConfig (nec): cluster-scoped, with the status subresource, a defaulted field and printer columns. */
export const NEC_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `nodeeniconfigs.${GROUP}` },
  spec: {
    group: GROUP,
    scope: 'Cluster',
    names: { plural: 'nodeeniconfigs', singular: 'nodeeniconfig', kind: 'NodeENIConfig', shortNames: ['nec'] },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { name: 'Subnet', type: 'string', jsonPath: '.spec.subnetId' },
          { name: 'ENIs', type: 'integer', jsonPath: '.status.enis' },
        ],
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: { type: 'object', properties: { subnetId: { type: 'string' }, maxEni: { type: 'integer', default: 4, minimum: 1 } } },
              status: { type: 'object', properties: { enis: { type: 'integer' } }, 'x-kubernetes-preserve-unknown-fields': true },
            },
          },
        },
      },
    ],
  },
};

/** VpcIPClaim (vipc): namespaced, without the status subresource. */
export const VIPC_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `vpcipclaims.${GROUP}` },
  spec: {
    group: GROUP,
    scope: 'Namespaced',
    names: { plural: 'vpcipclaims', singular: 'vpcipclaim', kind: 'VpcIPClaim', shortNames: ['vipc'] },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    ],
  },
};

export function pod(name: string, extra: { labels?: Record<string, string>; nodeName?: string; namespace?: string } = {}): k8s.V1Pod {
  return {
    metadata: { name, ...(extra.namespace ? { namespace: extra.namespace } : {}), ...(extra.labels ? { labels: extra.labels } : {}) },
    spec: { ...(extra.nodeName ? { nodeName: extra.nodeName } : {}), containers: [{ name: 'app', image: 'busybox' }] },
  };
}
