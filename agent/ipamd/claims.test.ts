// ipamd's fixed-IP controller against the API server stand-in, with a fake of its narrow cloud port (the
// adapter itself is tested through the SDK against the emulator): a move whose call returns while the
// cloud does not show the address on the destination must not tell the waiting pod it has arrived.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startApiServer, type ApiServer } from '../../hack/apiserver/server.ts';
import { crdModel } from '../../hack/apiserver/testing.ts';
import { TENCENT_RATE_LIMITS } from '../cloud/ratelimit.ts';
import { OWNER_TAG, type Cloud, type Eni } from '../cloud/cloud.ts';
import { CLAIM_SEEN_ANNOTATION, type VpcIpClaim } from '../k8s/claims.ts';
import type { Nec } from '../k8s/nec.ts';
import { Budget } from './budget.ts';
import { ClaimsController } from './claims.ts';
import { PodWatch } from './pod-watch.ts';

const CRDS = ['vpcipclaims', 'vpcips'].map((n) => fileURLToPath(new URL(`../../daemonset/crds/${n}.yaml`, import.meta.url)));
const API = { group: 'networking.tke.cloud.tencent.com', version: 'v1', plural: 'vpcipclaims', namespace: 'default' };
const ADDRESS = '10.0.16.20';

let apiserver: ApiServer;
let kc: k8s.KubeConfig;
let controller: ClaimsController | undefined;
let pods: PodWatch | undefined;

beforeEach(async () => {
  apiserver = await startApiServer();
  kc = new k8s.KubeConfig();
  kc.loadFromString(apiserver.kubeconfig());
  for (const file of CRDS) await kc.makeApiClient(k8s.ApiextensionsV1Api).createCustomResourceDefinition({ body: crdModel(parseYaml(readFileSync(file, 'utf8'))) });
});
afterEach(async () => {
  await controller?.stop();
  await pods?.stop();
  await apiserver.close();
});

const eni = (id: string, instance: string): Eni => ({ id, mac: '', subnetId: 'subnet-pod3a', primaryIp: '', secondaryIps: [], primary: false, state: 'AVAILABLE', settling: false, attachedTo: instance, securityGroupIds: [], tags: { [OWNER_TAG]: instance } });
const nec = (node: string, instance: string, eniId: string): Nec => ({
  metadata: { name: node },
  spec: { instanceId: instance, zone: 'ap-guangzhou-3', quota: { enis: 4, ipsPerEni: 10 } },
  status: { ipamd: { enis: [{ eniId, mac: '', primaryIP: '', subnetId: 'subnet-pod3a', subnetCIDR: '10.0.16.0/24', ips: [] }] } },
});

type CloudPort = Pick<Cloud, 'migrateIp' | 'findAddress' | 'assignAddress'>;
const custom = () => kc.makeApiClient(k8s.CustomObjectsApi);
const claim = async () => (await custom().getNamespacedCustomObject({ ...API, name: 'web-0' })) as VpcIpClaim;
const patchClaimStatus = (status: Record<string, unknown>) => custom().patchNamespacedCustomObjectStatus({ ...API, name: 'web-0', body: { status } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
const eventually = async (what: () => Promise<boolean> | boolean, ms: number) => {
  const deadline = Date.now() + ms;
  while (!(await what()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
};

/** A Never claim of web-0 (its pod on `podNode`) with `status`, and the controller running on `cloud`; answers its warnings. */
async function running(cloud: CloudPort, podNode: string, status: Record<string, unknown>): Promise<string[]> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'web-0' }, spec: { nodeName: podNode, containers: [{ name: 'c', image: 'busybox' }] } } });
  await custom().createNamespacedCustomObject({
    ...API,
    body: { apiVersion: 'networking.tke.cloud.tencent.com/v1', kind: 'VpcIPClaim', metadata: { name: 'web-0', annotations: { [CLAIM_SEEN_ANNOTATION]: new Date().toISOString() } }, spec: { deletePolicy: 'Never', ip: ADDRESS, subnetId: 'subnet-pod3a' } },
  });
  await patchClaimStatus({ ip: ADDRESS, subnetId: 'subnet-pod3a', ...status });
  const necs: Record<string, Nec> = { 'node-1': nec('node-1', 'ins-1', 'eni-one'), 'node-2': nec('node-2', 'ins-2', 'eni-two') };
  const warnings: string[] = [];
  pods = new PodWatch(kc, () => undefined);
  controller = new ClaimsController({
    kc,
    pods,
    cloud: {
      migrateEni: async () => {
        throw new Error('not expected: a shared-ENI claim');
      },
      ...cloud,
    },
    budget: new Budget({ clusterQps: 50, actionQps: TENCENT_RATE_LIMITS }),
    nec: (node) => necs[node],
    subnetZone: async () => 'ap-guangzhou-3',
    nodeExists: () => true,
    nodeChanged: () => undefined,
    needEni: () => undefined,
    expiryMs: 0,
    enableOwnerref: false,
    log: (level, message) => level !== 'info' && warnings.push(message),
  });
  await controller.start();
  return warnings;
}

describe("ipamd's fixed-IP moves", () => {
  it('says the address has arrived only once the cloud shows it on the destination ENI', async () => {
    // The cloud: the address on node-1's ENI; a move "succeeds" without moving it, until told to land.
    let holder = eni('eni-one', 'ins-1');
    let land = false;
    let migrations = 0;
    const cloud: CloudPort = {
      migrateIp: async () => {
        migrations++;
        if (land) holder = eni('eni-two', 'ins-2');
      },
      findAddress: async () => ({ eni: holder, ready: true }),
      assignAddress: async () => {
        throw new Error('not expected: the address is on an ENI');
      },
    };
    await running(cloud, 'node-2', { phase: 'Released', nodeName: 'node-1', eniId: 'eni-one', podUID: 'uid-0', targetNode: 'node-2', targetPodUID: 'uid-1' });
    await eventually(() => migrations > 0, 1500);
    expect(migrations).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 300));
    expect((await claim()).status).toMatchObject({ nodeName: 'node-1', targetNode: 'node-2' });

    land = true;
    await eventually(async () => (await claim()).status?.nodeName === 'node-2', 5000);
    expect((await claim()).status).toMatchObject({ nodeName: 'node-2', eniId: 'eni-two', phase: 'Released' });
    expect((await claim()).status?.targetNode ?? null).toBeNull();
  });

  it("records a move's arrival though a pod elsewhere asked for the address meanwhile, then brings it there", async () => {
    // The move to node-2 is under way when the claim's pod, deleted there, comes back on node-1 — whose
    // agent writes the claim's target while the cloud call runs; the arrival, written after, must not be lost.
    let holder = eni('eni-one', 'ins-1');
    const moves: string[] = [];
    const cloud: CloudPort = {
      migrateIp: async (from, to) => {
        moves.push(`${from}->${to}`);
        if (moves.length === 1) await patchClaimStatus({ targetNode: 'node-1', targetPodUID: 'uid-2', message: 'wanted on node-1' });
        holder = to === 'eni-two' ? eni('eni-two', 'ins-2') : eni('eni-one', 'ins-1');
      },
      findAddress: async () => ({ eni: holder, ready: true }),
      assignAddress: async () => {
        throw new Error('not expected: the address is on an ENI');
      },
    };
    const warnings = await running(cloud, 'node-1', { phase: 'Released', nodeName: 'node-1', eniId: 'eni-one', podUID: 'uid-0', targetNode: 'node-2', targetPodUID: 'uid-1' });
    await eventually(async () => moves.length === 2 && (await claim()).status?.nodeName === 'node-1', 5000);
    expect(moves).toEqual(['eni-one->eni-two', 'eni-two->eni-one']);
    expect(warnings).toEqual([]);
    expect((await claim()).status).toMatchObject({ nodeName: 'node-1', eniId: 'eni-one', phase: 'Released' });
    expect((await claim()).status?.targetNode ?? null).toBeNull();
  });

  it('leaves a claim alone whose arrival was recorded and whose pod holds the address meanwhile (a stale look)', async () => {
    // ipamd looks at a claim that still asks for node-2 while, at the API server, the arrival was recorded
    // and the pod there bound it: its look is stale, and must not turn Bound back into Released.
    let looked = 0;
    const cloud: CloudPort = {
      migrateIp: async () => {
        throw new Error('not expected: the address is on node-2 already');
      },
      findAddress: async () => {
        if (looked++ === 0) await patchClaimStatus({ phase: 'Bound', nodeName: 'node-2', eniId: 'eni-two', podUID: 'uid-1', targetNode: null, targetPodUID: null, message: '' });
        return { eni: eni('eni-two', 'ins-2'), ready: true };
      },
      assignAddress: async () => {
        throw new Error('not expected');
      },
    };
    const warnings = await running(cloud, 'node-2', { phase: 'Released', nodeName: 'node-1', eniId: 'eni-one', podUID: 'uid-0', targetNode: 'node-2', targetPodUID: 'uid-1' });
    await eventually(() => looked > 0, 3000);
    await new Promise((r) => setTimeout(r, 800));
    expect((await claim()).status).toMatchObject({ phase: 'Bound', nodeName: 'node-2' });
    expect(warnings).toEqual([]);
  });
});
