// ipamd's EIP controller against the API server stand-in and the emulated cloud (through the real adapter),
// where a real ipamd cannot be made to see the API server late: a pod cache that lags behind the API server
// must not make ipamd take a running pod for gone, and so release its EIP.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startApiServer, type ApiServer } from '../../hack/apiserver/server.ts';
import { crdModel } from '../../hack/apiserver/testing.ts';
import type { Emulator } from '../../hack/emulator/emulator.ts';
import { startTestEmulator, testWorld } from '../../hack/emulator/testing.ts';
import { TENCENT_RATE_LIMITS } from '../cloud/ratelimit.ts';
import { TencentCloud } from '../cloud/tencent.ts';
import { CLAIM_SEEN_ANNOTATION } from '../k8s/claims.ts';
import { EIP_CLAIM_FINALIZER, EIP_CLAIM_TAG } from '../k8s/eip-claims.ts';
import { Budget } from './budget.ts';
import { EipController } from './eips.ts';
import { PodWatch } from './pod-watch.ts';

const CRD = fileURLToPath(new URL('../../daemonset/crds/eipclaims.yaml', import.meta.url));
const API = { group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'eipclaims', namespace: 'default' };

/** A pod cache that has not caught up: it knows no pod at all. */
class LaggingPods extends PodWatch {
  override get(): k8s.V1Pod | undefined {
    return undefined;
  }
}

let emulator: Emulator;
let apiserver: ApiServer;
let kc: k8s.KubeConfig;
let controller: EipController | undefined;
let pods: PodWatch | undefined;

beforeEach(async () => {
  emulator = await startTestEmulator({ world: testWorld({ latencies: { taskMs: 10, apiMs: 0 } }) });
  apiserver = await startApiServer();
  kc = new k8s.KubeConfig();
  kc.loadFromString(apiserver.kubeconfig());
  await kc.makeApiClient(k8s.ApiextensionsV1Api).createCustomResourceDefinition({ body: crdModel(parseYaml(readFileSync(CRD, 'utf8'))) });
});
afterEach(async () => {
  await controller?.stop();
  await pods?.stop();
  await apiserver.close();
  await emulator.close();
});

describe("ipamd's EIP controller", () => {
  it("keeps a running pod's EIP when its pod cache lags behind the API server", async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const cloud = new TencentCloud({
      region: emulator.world.region,
      endpoint: { url: `http://tencentcloudapi.com:${emulator.apiAddress.port}`, resolve: emulator.apiAddress.address },
      credential: emulator.world.credentials[0]!,
    });
    await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'web-0' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } });
    const claim = (await custom.createNamespacedCustomObject({
      ...API,
      body: { apiVersion: 'networking.tke.cloud.tencent.com/v1', kind: 'EIPClaim', metadata: { name: 'web-0', finalizers: [EIP_CLAIM_FINALIZER], annotations: { [CLAIM_SEEN_ANNOTATION]: new Date().toISOString() } }, spec: { deletePolicy: 'Immediate' } },
    })) as { metadata: { uid: string; resourceVersion: string } };
    const eip = await cloud.allocateEip({ bandwidth: 10, isp: 'BGP', name: 'default/web-0', tags: { [EIP_CLAIM_TAG]: claim.metadata.uid }, clientToken: claim.metadata.uid });
    await custom.patchNamespacedCustomObjectStatus({ ...API, name: 'web-0', body: { status: { phase: 'Pending', eipId: eip.id, publicIP: eip.address, podUID: 'uid-1' } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));

    pods = new LaggingPods(kc, () => undefined);
    controller = new EipController({ kc, pods, cloud, budget: new Budget({ clusterQps: 50, actionQps: TENCENT_RATE_LIMITS }), clusterId: async () => 'cls-test', expiryMs: 0, enableOwnerref: false, log: () => undefined });
    await controller.start();
    await new Promise((r) => setTimeout(r, 1500));
    const still = (await custom.getNamespacedCustomObject({ ...API, name: 'web-0' })) as { metadata: { deletionTimestamp?: string } };
    expect(still.metadata.deletionTimestamp).toBeUndefined();
    expect(emulator.state().addresses.map((a) => a.AddressId)).toEqual([eip.id]);

    // And once the pod is really gone, the claim goes and the EIP it made is released.
    await core.deleteNamespacedPod({ namespace: 'default', name: 'web-0', gracePeriodSeconds: 0 });
    const deadline = Date.now() + 10_000;
    while (emulator.state().addresses.length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(emulator.state().addresses).toEqual([]);
  });
});
