// The API server stand-in through real clients: @kubernetes/client-node 1.x (typed APIs, Watch, informers) and
// kubectl. Each test starts its own server on a free port and stops it, and removes its files, even on failure.
import * as k8s from '@kubernetes/client-node';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { type ApiServer, type ApiServerOptions, startApiServer } from '../hack/apiserver/server.ts';
import { TEST_CERT } from '../hack/apiserver/testcert.ts';
import { clientsFor, collectWatch, crdModel, failure, GROUP, kubectlFor, NEC_CRD, pod, requireKubectl, summary, until, VIPC_CRD } from '../hack/apiserver/testing.ts';

let server: ApiServer | undefined;
let dir: string;
const cleanups: (() => unknown)[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'apiserver-test-'));
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function serve(options: ApiServerOptions = {}) {
  server = await startApiServer({ bookmarkIntervalMs: 100, ...options });
  return clientsFor(server);
}

const ns = 'default';
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const strategicPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);
const nec = { group: GROUP, version: 'v1', plural: 'nodeeniconfigs' };
const vipc = { group: GROUP, version: 'v1', plural: 'vpcipclaims' };
/** A StatefulSet whose selector has both matchLabels and matchExpressions. */
function statefulSet(name: string, replicas?: number): k8s.V1StatefulSet {
  return {
    metadata: { name },
    spec: {
      ...(replicas === undefined ? {} : { replicas }),
      serviceName: name,
      selector: { matchLabels: { app: name }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }] },
      template: { metadata: { labels: { app: name, tier: 'front' } }, spec: { containers: [{ name: 'app', image: 'busybox' }] } },
    },
  };
}
type Custom = { metadata: { name: string; resourceVersion: string; generation?: number; deletionTimestamp?: string; ownerReferences?: unknown[] }; spec?: Record<string, unknown>; status?: Record<string, unknown> };

describe('discovery', () => {
  it('serves /version, /api, /apis and resource lists, with a CRD group and short names while the CRD exists', async () => {
    const { kc, crds } = await serve();
    expect(await kc.makeApiClient(k8s.VersionApi).getCode()).toMatchObject({ major: '1', minor: '32' });
    expect((await kc.makeApiClient(k8s.CoreApi).getAPIVersions()).versions).toEqual(['v1']);
    const core = await kc.makeApiClient(k8s.CoreV1Api).getAPIResources();
    expect(core.resources.find((r) => r.name === 'pods')).toMatchObject({ namespaced: true, kind: 'Pod', shortNames: ['po'] });
    expect(core.resources.map((r) => r.name)).toEqual(expect.arrayContaining(['namespaces', 'nodes', 'nodes/status', 'pods/status', 'events', 'configmaps']));

    await crds.createCustomResourceDefinition({ body: crdModel(NEC_CRD) });
    const groups = await kc.makeApiClient(k8s.ApisApi).getAPIVersions();
    expect(groups.groups.find((g) => g.name === GROUP)?.preferredVersion?.groupVersion).toBe(`${GROUP}/v1`);
    const custom = await kc.makeApiClient(k8s.CustomObjectsApi).getAPIResources({ group: GROUP, version: 'v1' });
    expect(custom.resources).toEqual([
      expect.objectContaining({ name: 'nodeeniconfigs', namespaced: false, kind: 'NodeENIConfig', shortNames: ['nec'], singularName: 'nodeeniconfig' }),
      expect.objectContaining({ name: 'nodeeniconfigs/status', verbs: ['get', 'patch', 'update'] }),
    ]);

    await crds.deleteCustomResourceDefinition({ name: NEC_CRD.metadata.name });
    expect((await failure(kc.makeApiClient(k8s.CustomObjectsApi).getAPIResources({ group: GROUP, version: 'v1' }))).code).toBe(404);
  });
});

describe('objects', () => {
  it('creates, reads, replaces and deletes a pod; the server owns uid, timestamps, versions and the initial status', async () => {
    const { core } = await serve();
    const created = await core.createNamespacedPod({ namespace: ns, body: { ...pod('web-0'), status: { phase: 'Running' } } });
    expect(created.metadata).toMatchObject({ name: 'web-0', namespace: ns, uid: expect.stringMatching(/^[0-9a-f-]{36}$/), resourceVersion: expect.stringMatching(/^\d+$/) });
    expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(created.status).toEqual({ phase: 'Pending' });

    const replaced = await core.replaceNamespacedPod({ name: 'web-0', namespace: ns, body: { ...created, metadata: { ...created.metadata, labels: { app: 'web' }, uid: undefined } } });
    expect(replaced.metadata?.labels).toEqual({ app: 'web' });
    expect(replaced.metadata?.uid).toBe(created.metadata?.uid);
    expect(Number(replaced.metadata?.resourceVersion)).toBeGreaterThan(Number(created.metadata?.resourceVersion));
    // The same object again changes nothing, so it gets no new version.
    const again = await core.replaceNamespacedPod({ name: 'web-0', namespace: ns, body: replaced });
    expect(again.metadata?.resourceVersion).toBe(replaced.metadata?.resourceVersion);

    const deleted = await core.deleteNamespacedPod({ name: 'web-0', namespace: ns });
    expect(deleted.metadata?.name).toBe('web-0');
    const { code, status } = await failure(core.readNamespacedPod({ name: 'web-0', namespace: ns }));
    expect(code).toBe(404);
    expect(status).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404, message: 'pods "web-0" not found', details: { name: 'web-0', kind: 'pods' } });
  });

  it('answers a duplicate, a stale update, a missing namespace and an invalid object with the Status kube-apiserver gives', async () => {
    const { core } = await serve();
    const first = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'cfg' }, data: { a: '1' } } });
    expect(await failure(core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'cfg' } } }))).toMatchObject({
      code: 409,
      status: { reason: 'AlreadyExists', message: 'configmaps "cfg" already exists', details: { name: 'cfg', kind: 'configmaps' } },
    });
    await core.replaceNamespacedConfigMap({ name: 'cfg', namespace: ns, body: { ...first, data: { a: '2' } } });
    expect(await failure(core.replaceNamespacedConfigMap({ name: 'cfg', namespace: ns, body: { ...first, data: { a: '3' } } }))).toMatchObject({
      code: 409,
      status: { reason: 'Conflict', message: expect.stringContaining('Operation cannot be fulfilled on configmaps "cfg": the object has been modified') },
    });
    expect(await failure(core.createNamespacedConfigMap({ namespace: 'nowhere', body: { metadata: { name: 'cfg' } } }))).toMatchObject({
      code: 404,
      status: { reason: 'NotFound', details: { name: 'nowhere', kind: 'namespaces' } },
    });
    const invalid = await failure(core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'Web_0', labels: { 'bad key': 'x' } }, spec: { containers: [] } } }));
    expect(invalid).toMatchObject({ code: 422, status: { reason: 'Invalid', details: { name: 'Web_0', kind: 'Pod' } } });
    expect(invalid.status.details?.causes?.map((c) => c.field)).toEqual(['metadata.name', 'metadata.labels', 'spec.containers']);
  });

  it('names an object from generateName, takes names that need escaping in a path, and keeps a dry run out of the store', async () => {
    const { kc, core } = await serve();
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createClusterRole({ body: { metadata: { name: 'system:eni-cni' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }] } });
    expect((await rbac.readClusterRole({ name: 'system:eni-cni' })).rules?.[0]?.verbs).toEqual(['get']);
    const made = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { generateName: 'cfg-' } } });
    expect(made.metadata?.name).toMatch(/^cfg-[a-z0-9]{5}$/);
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'dry' } }, dryRun: 'All' });
    expect((await failure(core.readNamespacedConfigMap({ name: 'dry', namespace: ns }))).code).toBe(404);
  });
});

describe('patches', () => {
  it('applies a JSON patch (client-node\'s default) and refuses one whose test fails with 422', async () => {
    const { core } = await serve();
    await core.createNamespacedPod({ namespace: ns, body: pod('p', { labels: { app: 'web' } }) });
    const patched = await core.patchNamespacedPod({
      name: 'p',
      namespace: ns,
      body: [
        { op: 'test', path: '/metadata/labels/app', value: 'web' },
        { op: 'add', path: '/metadata/labels/tier', value: 'front' },
        { op: 'replace', path: '/spec/containers/0/image', value: 'busybox:2' },
      ],
    });
    expect(patched.metadata?.labels).toEqual({ app: 'web', tier: 'front' });
    expect(patched.spec?.containers[0]?.image).toBe('busybox:2');
    expect(await failure(core.patchNamespacedPod({ name: 'p', namespace: ns, body: [{ op: 'test', path: '/metadata/labels/app', value: 'db' }] }))).toMatchObject({ code: 422, status: { reason: 'Invalid' } });
  });

  it('applies a merge patch, where null deletes, and refuses one carrying a stale resourceVersion', async () => {
    const { core } = await serve();
    const created = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'cfg', annotations: { a: '1', b: '2' } }, data: { k: 'v' } } });
    const patched = await core.patchNamespacedConfigMap({ name: 'cfg', namespace: ns, body: { metadata: { annotations: { a: null, c: '3' } }, data: { k2: 'v2' } } }, mergePatch);
    expect(patched.metadata?.annotations).toEqual({ b: '2', c: '3' });
    expect(patched.data).toEqual({ k: 'v', k2: 'v2' });
    const stale = { metadata: { resourceVersion: created.metadata?.resourceVersion }, data: { k: 'x' } };
    expect(await failure(core.patchNamespacedConfigMap({ name: 'cfg', namespace: ns, body: stale }, mergePatch))).toMatchObject({ code: 409, status: { reason: 'Conflict' } });
  });

  it('applies a strategic merge patch to a pod, merging containers by name; refuses one for a custom resource with 415', async () => {
    const { core, crds, custom } = await serve();
    const body = pod('p');
    body.spec!.containers = [
      { name: 'app', image: 'busybox', env: [{ name: 'X', value: '1' }] },
      { name: 'sidecar', image: 'envoy' },
    ];
    await core.createNamespacedPod({ namespace: ns, body });
    const patch = { spec: { '$setElementOrder/containers': [{ name: 'app' }, { name: 'sidecar' }], containers: [{ name: 'sidecar', image: 'envoy:2' }] } };
    const patched = await core.patchNamespacedPod({ name: 'p', namespace: ns, body: patch }, strategicPatch);
    expect(patched.spec?.containers).toEqual([
      { name: 'app', image: 'busybox', env: [{ name: 'X', value: '1' }] },
      { name: 'sidecar', image: 'envoy:2' },
    ]);

    await crds.createCustomResourceDefinition({ body: crdModel(NEC_CRD) });
    await custom.createClusterCustomObject({ ...nec, body: { apiVersion: `${GROUP}/v1`, kind: 'NodeENIConfig', metadata: { name: 'node-1' } } });
    expect(await failure(custom.patchClusterCustomObject({ ...nec, name: 'node-1', body: { spec: {} } }, strategicPatch))).toMatchObject({ code: 415, status: { reason: 'UnsupportedMediaType' } });
  });
});

describe('status subresource', () => {
  it('keeps a pod\'s status on writes to the pod, and all but the status on writes to pods/status; the same for nodes', async () => {
    const { core } = await serve();
    const created = await core.createNamespacedPod({ namespace: ns, body: pod('p') });
    const main = await core.replaceNamespacedPod({ name: 'p', namespace: ns, body: { ...created, metadata: { ...created.metadata, labels: { a: 'b' } }, status: { phase: 'Running' } } });
    expect(main.status?.phase).toBe('Pending');
    expect(main.metadata?.labels).toEqual({ a: 'b' });
    const status = await core.replaceNamespacedPodStatus({ name: 'p', namespace: ns, body: { ...main, metadata: { ...main.metadata, labels: {} }, status: { phase: 'Running', podIP: '10.0.0.5' } } });
    expect(status.status).toMatchObject({ phase: 'Running', podIP: '10.0.0.5' });
    expect(status.metadata?.labels).toEqual({ a: 'b' });
    expect((await core.readNamespacedPodStatus({ name: 'p', namespace: ns })).status?.podIP).toBe('10.0.0.5');

    await core.createNode({ body: { metadata: { name: 'node-1' }, status: { capacity: { cpu: '2' } } } });
    const node = await core.patchNodeStatus({ name: 'node-1', body: { status: { allocatable: { 'tke.cloud.tencent.com/eni-ip': '10' } }, spec: { unschedulable: true } } }, mergePatch);
    expect(node.status?.allocatable).toEqual({ 'tke.cloud.tencent.com/eni-ip': '10' });
    expect(node.status?.capacity).toEqual({ cpu: '2' });
    expect(node.spec?.unschedulable).toBeUndefined();
  });

  it('splits a custom resource the same way when its CRD has the subresource, and counts generation by spec changes', async () => {
    const { crds, custom } = await serve();
    await crds.createCustomResourceDefinition({ body: crdModel(NEC_CRD) });
    await crds.createCustomResourceDefinition({ body: crdModel(VIPC_CRD) });
    const created = (await custom.createClusterCustomObject({ ...nec, body: { apiVersion: `${GROUP}/v1`, kind: 'NodeENIConfig', metadata: { name: 'node-1' }, spec: { subnetId: 's1' }, status: { enis: 9 } } })) as Custom;
    expect(created.status).toBeUndefined();
    expect(created.metadata.generation).toBe(1);

    const main = (await custom.patchClusterCustomObject({ ...nec, name: 'node-1', body: { spec: { subnetId: 's2' }, status: { enis: 1 } } }, mergePatch)) as Custom;
    expect(main).toMatchObject({ spec: { subnetId: 's2' }, metadata: { generation: 2 } });
    expect(main.status).toBeUndefined();
    const status = (await custom.patchClusterCustomObjectStatus({ ...nec, name: 'node-1', body: { spec: { subnetId: 's3' }, status: { enis: 2 } } }, mergePatch)) as Custom;
    expect(status).toMatchObject({ spec: { subnetId: 's2' }, status: { enis: 2 }, metadata: { generation: 2 } });
    const replaced = (await custom.replaceClusterCustomObjectStatus({ ...nec, name: 'node-1', body: { ...status, status: { enis: 3 } } })) as Custom;
    expect(replaced.status).toEqual({ enis: 3 });
    // A label is metadata: no new generation.
    const labelled = (await custom.patchClusterCustomObject({ ...nec, name: 'node-1', body: { metadata: { labels: { a: 'b' } } } }, mergePatch)) as Custom;
    expect(labelled.metadata.generation).toBe(2);

    // Without the subresource, status is part of the object.
    const claim = (await custom.createNamespacedCustomObject({ ...vipc, namespace: ns, body: { apiVersion: `${GROUP}/v1`, kind: 'VpcIPClaim', metadata: { name: 'web-0' }, status: { ip: '10.0.0.5' } } })) as Custom;
    expect(claim.status).toEqual({ ip: '10.0.0.5' });
    const moved = (await custom.patchNamespacedCustomObject({ ...vipc, namespace: ns, name: 'web-0', body: { status: { ip: '10.0.0.6' } } }, mergePatch)) as Custom;
    expect(moved).toMatchObject({ status: { ip: '10.0.0.6' }, metadata: { generation: 2 } });
    expect((await failure(custom.getNamespacedCustomObjectStatus({ ...vipc, namespace: ns, name: 'web-0' }))).code).toBe(404);
  });
});

describe('selectors', () => {
  it('selects by every label selector operator and by the field selectors of pods and events', async () => {
    const { core } = await serve();
    await core.createNamespacedPod({ namespace: ns, body: pod('web-0', { labels: { app: 'web', tier: 'front' }, nodeName: 'node-1' }) });
    await core.createNamespacedPod({ namespace: ns, body: pod('web-1', { labels: { app: 'web' }, nodeName: 'node-2' }) });
    await core.createNamespacedPod({ namespace: ns, body: pod('db-0', { labels: { app: 'db', tier: 'back' }, nodeName: 'node-1' }) });
    await core.createNamespacedPod({ namespace: 'kube-system', body: pod('agent', { nodeName: 'node-1' }) });
    const names = async (query: { labelSelector?: string; fieldSelector?: string }) =>
      (await core.listPodForAllNamespaces(query)).items.map((p) => p.metadata!.name).sort();

    expect(await names({ labelSelector: 'app=web' })).toEqual(['web-0', 'web-1']);
    expect(await names({ labelSelector: 'app==db' })).toEqual(['db-0']);
    expect(await names({ labelSelector: 'app!=web' })).toEqual(['agent', 'db-0']);
    expect(await names({ labelSelector: 'tier in (front,back)' })).toEqual(['db-0', 'web-0']);
    expect(await names({ labelSelector: 'app notin (web)' })).toEqual(['agent', 'db-0']);
    expect(await names({ labelSelector: 'tier' })).toEqual(['db-0', 'web-0']);
    expect(await names({ labelSelector: '!tier' })).toEqual(['agent', 'web-1']);
    expect(await names({ labelSelector: 'app=web,!tier' })).toEqual(['web-1']);
    expect(await names({ fieldSelector: 'spec.nodeName=node-1' })).toEqual(['agent', 'db-0', 'web-0']);
    expect(await names({ fieldSelector: 'spec.nodeName=node-1,metadata.namespace!=kube-system' })).toEqual(['db-0', 'web-0']);
    expect(await names({ fieldSelector: 'metadata.name=web-1' })).toEqual(['web-1']);

    await core.createNamespacedEvent({ namespace: ns, body: { metadata: { name: 'e1' }, involvedObject: { kind: 'Pod', name: 'web-0', namespace: ns }, reason: 'ENILimit', type: 'Warning' } });
    await core.createNamespacedEvent({ namespace: ns, body: { metadata: { name: 'e2' }, involvedObject: { kind: 'Pod', name: 'web-1', namespace: ns }, reason: 'Scheduled', type: 'Normal' } });
    const events = await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=web-0,reason=ENILimit' });
    expect(events.items.map((e) => e.metadata.name)).toEqual(['e1']);

    expect(await failure(core.listNamespacedPod({ namespace: ns, fieldSelector: 'spec.image=busybox' }))).toMatchObject({ code: 400, status: { reason: 'BadRequest', message: expect.stringContaining('field label not supported: spec.image') } });
    expect(await failure(core.listNamespacedPod({ namespace: ns, labelSelector: 'app in web' }))).toMatchObject({ code: 400, status: { reason: 'BadRequest' } });
  });
});

describe('lists', () => {
  it('reports the newest resourceVersion, pages with limit and continue, and refuses versions it cannot serve with 410', async () => {
    const { core } = await serve();
    for (const name of ['a', 'b', 'c', 'd', 'e']) await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name } } });
    const all = await core.listNamespacedConfigMap({ namespace: ns });
    expect(all.items.map((c) => c.metadata?.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
    const rv = all.metadata?.resourceVersion;

    const first = await core.listNamespacedConfigMap({ namespace: ns, limit: 2 });
    expect(first.items.map((c) => c.metadata?.name)).toEqual(['a', 'b']);
    expect(first.metadata?.remainingItemCount).toBe(3);
    const second = await core.listNamespacedConfigMap({ namespace: ns, limit: 2, _continue: first.metadata!._continue! });
    expect(second.items.map((c) => c.metadata?.name)).toEqual(['c', 'd']);
    const third = await core.listNamespacedConfigMap({ namespace: ns, limit: 2, _continue: second.metadata!._continue! });
    expect(third.items.map((c) => c.metadata?.name)).toEqual(['e']);
    expect(third.metadata?._continue).toBeUndefined();
    expect(third.metadata?.resourceVersion).toBe(rv);

    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'f' } } });
    expect((await core.listNamespacedConfigMap({ namespace: ns, resourceVersion: rv, resourceVersionMatch: 'NotOlderThan' })).items).toHaveLength(6);
    expect(await failure(core.listNamespacedConfigMap({ namespace: ns, resourceVersion: rv, resourceVersionMatch: 'Exact' }))).toMatchObject({ code: 410, status: { reason: 'Expired' } });
    expect(await failure(core.listNamespacedConfigMap({ namespace: ns, resourceVersion: '999999' }))).toMatchObject({ code: 410, status: { reason: 'Expired' } });
  });
});

describe('watch', () => {
  it('streams ADDED, MODIFIED and DELETED; an object leaving the selector is DELETED for that watch', async () => {
    const { kc, core } = await serve();
    const all = await collectWatch(kc, `/api/v1/namespaces/${ns}/configmaps`, {});
    const selected = await collectWatch(kc, `/api/v1/namespaces/${ns}/configmaps`, { labelSelector: 'watched=yes' });
    cleanups.push(all.stop, selected.stop);
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'a', labels: { watched: 'yes' } } } });
    await core.patchNamespacedConfigMap({ name: 'a', namespace: ns, body: { data: { k: 'v' } } }, mergePatch);
    await core.patchNamespacedConfigMap({ name: 'a', namespace: ns, body: { metadata: { labels: { watched: 'no' } } } }, mergePatch);
    await core.patchNamespacedConfigMap({ name: 'a', namespace: ns, body: { metadata: { labels: { watched: 'yes' } } } }, mergePatch);
    await core.deleteNamespacedConfigMap({ name: 'a', namespace: ns });
    await until('5 events on the unfiltered watch', () => all.events.length === 5);
    expect(summary(all.events)).toEqual(['ADDED a', 'MODIFIED a', 'MODIFIED a', 'MODIFIED a', 'DELETED a']);
    await until('5 events on the filtered watch', () => selected.events.length === 5);
    expect(summary(selected.events)).toEqual(['ADDED a', 'MODIFIED a', 'DELETED a', 'ADDED a', 'DELETED a']);
    const versions = all.events.map((e) => Number(e.object.metadata?.resourceVersion));
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
  });

  it('starts with the objects there are, or resumes from a resourceVersion by replaying what followed it', async () => {
    const { kc, core } = await serve();
    const a = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'a' } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'b' } } });
    await core.patchNamespacedConfigMap({ name: 'b', namespace: ns, body: { data: { k: 'v' } } }, mergePatch);
    await core.deleteNamespacedConfigMap({ name: 'a', namespace: ns });

    const fresh = await collectWatch(kc, `/api/v1/namespaces/${ns}/configmaps`, {});
    const resumed = await collectWatch(kc, `/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: a.metadata!.resourceVersion! });
    cleanups.push(fresh.stop, resumed.stop);
    await until('the current state', () => fresh.events.length === 1);
    expect(summary(fresh.events)).toEqual(['ADDED b']);
    await until('the replay', () => resumed.events.length === 3);
    expect(summary(resumed.events)).toEqual(['ADDED b', 'MODIFIED b', 'DELETED a']);
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'c' } } });
    await until('the live event after the replay', () => resumed.events.length === 4);
    expect(summary(resumed.events).at(-1)).toBe('ADDED c');
  });

  it('answers a watch from before the kept history with an ERROR event carrying 410 Expired, and ends it', async () => {
    const { kc, core } = await serve({ historySize: 3 });
    const first = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'a' } } });
    for (const name of ['b', 'c', 'd', 'e']) await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name } } });
    const watch = await collectWatch(kc, `/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: first.metadata!.resourceVersion! });
    cleanups.push(watch.stop);
    expect(await watch.ended).toBeNull();
    expect(watch.events).toEqual([{ type: 'ERROR', object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired', message: expect.stringContaining('too old resource version') }) }]);
  });

  it('sends BOOKMARKs with the newest resourceVersion when allowed, and ends at timeoutSeconds', async () => {
    const { kc, core } = await serve({ bookmarkIntervalMs: 50 });
    const made = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'a' } } });
    const started = Date.now();
    const watch = await collectWatch(kc, `/api/v1/namespaces/${ns}/configmaps`, { allowWatchBookmarks: true, timeoutSeconds: 1, resourceVersion: made.metadata!.resourceVersion! });
    cleanups.push(watch.stop);
    await until('a bookmark', () => watch.events.some((e) => e.type === 'BOOKMARK'));
    expect(watch.events.find((e) => e.type === 'BOOKMARK')?.object).toMatchObject({ kind: 'ConfigMap', metadata: { resourceVersion: made.metadata!.resourceVersion } });
    expect(await watch.ended).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(3000);

    const initial = await collectWatch(kc, `/api/v1/namespaces/${ns}/configmaps`, { allowWatchBookmarks: true, sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan' });
    cleanups.push(initial.stop);
    await until('the end of the initial events', () => initial.events.length >= 2);
    expect(initial.events[0]?.type).toBe('ADDED');
    expect(initial.events[1]?.object.metadata?.annotations).toEqual({ 'k8s.io/initial-events-end': 'true' });
  });
});

describe('informers', () => {
  it('list and watch, and carry on when the server stops and starts again on the same port with its store', async () => {
    const { kc, core } = await serve();
    await core.createNamespacedPod({ namespace: ns, body: pod('a') });
    const informer = k8s.makeInformer(kc, `/api/v1/namespaces/${ns}/pods`, () => core.listNamespacedPod({ namespace: ns }));
    const seen: string[] = [];
    let errors = 0;
    informer.on('add', (p) => seen.push(`add ${p.metadata?.name}`));
    informer.on('update', (p) => seen.push(`update ${p.metadata?.name}`));
    informer.on('delete', (p) => seen.push(`delete ${p.metadata?.name}`));
    // client-node's informer stops on an error; restarting it from the handler is the documented pattern.
    informer.on('error', () => {
      errors++;
      setTimeout(() => void informer.start().catch(() => undefined), 50);
    });
    cleanups.push(() => informer.stop());
    await informer.start();
    await until('the listed pod', () => seen.includes('add a'));

    const { port, store } = server!;
    await server!.close();
    await until('the informer noticing', () => errors > 0);
    server = await startApiServer({ port, store });
    await core.createNamespacedPod({ namespace: ns, body: pod('b') });
    await core.patchNamespacedPod({ name: 'a', namespace: ns, body: { metadata: { labels: { x: 'y' } } } }, mergePatch);
    await core.deleteNamespacedPod({ name: 'b', namespace: ns });
    await until('the changes after the restart', () => seen.includes('delete b'));
    expect(seen).toEqual(['add a', 'add b', 'update a', 'delete b']);
    expect(informer.list(ns).map((p) => p.metadata?.labels)).toEqual([{ x: 'y' }]);
  });

  it('list again after a 410 and catch up with what changed while they were stopped', async () => {
    const { kc, core } = await serve({ historySize: 2 });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'a' } } });
    const informer = k8s.makeInformer(kc, `/api/v1/namespaces/${ns}/configmaps`, () => core.listNamespacedConfigMap({ namespace: ns }));
    const seen: string[] = [];
    informer.on('add', (c) => seen.push(`add ${c.metadata?.name}`));
    informer.on('delete', (c) => seen.push(`delete ${c.metadata?.name}`));
    cleanups.push(() => informer.stop());
    await informer.start();
    await until('the listed configmap', () => seen.includes('add a'));
    await informer.stop();
    await core.deleteNamespacedConfigMap({ name: 'a', namespace: ns });
    for (const name of ['b', 'c', 'd']) await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name } } });
    await informer.start();
    await until('the relisted state', () => seen.includes('add d'));
    expect(seen).toEqual(['add a', 'delete a', 'add b', 'add c', 'add d']);
  });
});

describe('custom resources', () => {
  it('serves namespaced and cluster-scoped custom resources as their CRDs say, established at once', async () => {
    const { crds, custom } = await serve();
    const crd = await crds.createCustomResourceDefinition({ body: crdModel(NEC_CRD) });
    expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
    expect(crd.status?.acceptedNames).toMatchObject({ kind: 'NodeENIConfig', listKind: 'NodeENIConfigList', shortNames: ['nec'] });
    await crds.createCustomResourceDefinition({ body: crdModel(VIPC_CRD) });

    const node = (await custom.createClusterCustomObject({ ...nec, body: { apiVersion: `${GROUP}/v1`, kind: 'NodeENIConfig', metadata: { name: 'node-1' }, spec: { subnetId: 's1' } } })) as Custom;
    expect(node.spec).toEqual({ subnetId: 's1', maxEni: 4 });
    await custom.createNamespacedCustomObject({ ...vipc, namespace: ns, body: { apiVersion: `${GROUP}/v1`, kind: 'VpcIPClaim', metadata: { name: 'web-0' }, spec: { subnetId: 's1' } } });
    await custom.createNamespacedCustomObject({ ...vipc, namespace: 'kube-system', body: { apiVersion: `${GROUP}/v1`, kind: 'VpcIPClaim', metadata: { name: 'web-0' } } });
    const claims = (await custom.listClusterCustomObject({ ...vipc })) as { kind: string; items: Custom[] };
    expect(claims.kind).toBe('VpcIPClaimList');
    expect(claims.items).toHaveLength(2);
    expect((await custom.listNamespacedCustomObject({ ...vipc, namespace: ns })).items).toHaveLength(1);
    expect((await failure(custom.getNamespacedCustomObject({ ...nec, namespace: ns, name: 'node-1' }))).code).toBe(404);

    // A PUT must carry the resourceVersion it read (custom resources allow no unconditional update).
    const { resourceVersion: _, ...withoutVersion } = node.metadata;
    expect(await failure(custom.replaceClusterCustomObject({ ...nec, name: 'node-1', body: { ...node, metadata: withoutVersion } }))).toMatchObject({ code: 422, status: { reason: 'Invalid' } });
    expect(await failure(custom.replaceClusterCustomObject({ ...nec, name: 'node-1', body: { ...node, spec: { maxEni: 0 } } }))).toMatchObject({
      code: 422,
      status: { details: { causes: [expect.objectContaining({ field: 'spec.maxEni' })] } },
    });
  });

  it('prunes fields the schema does not know, or refuses them with fieldValidation=Strict; refuses an invalid CRD', async () => {
    const { crds, custom } = await serve();
    await crds.createCustomResourceDefinition({ body: crdModel(NEC_CRD) });
    const body = { apiVersion: `${GROUP}/v1`, kind: 'NodeENIConfig', metadata: { name: 'node-1' }, spec: { subnetId: 's1', bogus: true } };
    expect(await failure(custom.createClusterCustomObject({ ...nec, body, fieldValidation: 'Strict' }))).toMatchObject({ code: 400, status: { message: expect.stringContaining('unknown field "spec.bogus"') } });
    const pruned = (await custom.createClusterCustomObject({ ...nec, body })) as Custom;
    expect(pruned.spec).toEqual({ subnetId: 's1', maxEni: 4 });

    const wrongName = { ...VIPC_CRD, metadata: { name: 'claims.example.com' } };
    const invalid = await failure(crds.createCustomResourceDefinition({ body: crdModel(wrongName) }));
    expect(invalid).toMatchObject({ code: 422, status: { reason: 'Invalid', details: { kind: 'CustomResourceDefinition', group: 'apiextensions.k8s.io' } } });
    expect(invalid.status.message).toContain('must be spec.names.plural+"."+spec.group');
  });

  it('takes its custom resources with it when the CRD is deleted, and stops serving them', async () => {
    const { crds, custom } = await serve();
    await crds.createCustomResourceDefinition({ body: crdModel(NEC_CRD) });
    await custom.createClusterCustomObject({ ...nec, body: { apiVersion: `${GROUP}/v1`, kind: 'NodeENIConfig', metadata: { name: 'node-1' } } });
    await crds.deleteCustomResourceDefinition({ name: NEC_CRD.metadata.name });
    expect((await failure(custom.listClusterCustomObject({ ...nec }))).code).toBe(404);
    await crds.createCustomResourceDefinition({ body: crdModel(NEC_CRD) });
    expect((await custom.listClusterCustomObject({ ...nec })).items).toEqual([]);
  });
});

describe('deletion', () => {
  it('marks an object with finalizers and removes it when its last finalizer goes', async () => {
    const { kc, core } = await serve();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'cfg', finalizers: ['tke.cloud.tencent.com/eni-cni'] } } });
    const watch = await collectWatch(kc, `/api/v1/namespaces/${ns}/configmaps`, {});
    cleanups.push(watch.stop);
    await core.deleteNamespacedConfigMap({ name: 'cfg', namespace: ns });
    const marked = await core.readNamespacedConfigMap({ name: 'cfg', namespace: ns });
    expect(marked.metadata?.deletionTimestamp).toBeInstanceOf(Date);
    expect(await failure(core.patchNamespacedConfigMap({ name: 'cfg', namespace: ns, body: { metadata: { finalizers: ['tke.cloud.tencent.com/eni-cni', 'other.io/x'] } } }, mergePatch))).toMatchObject({ code: 422 });
    await core.patchNamespacedConfigMap({ name: 'cfg', namespace: ns, body: { metadata: { finalizers: null } } }, mergePatch);
    expect((await failure(core.readNamespacedConfigMap({ name: 'cfg', namespace: ns }))).code).toBe(404);
    await until('the deletion on the watch', () => watch.events.length === 3);
    expect(summary(watch.events)).toEqual(['ADDED cfg', 'MODIFIED cfg', 'DELETED cfg']);
  });

  it('deletes dependents with their owner, keeps them with propagationPolicy=Orphan, and empties a deleted namespace', async () => {
    const { core, crds, custom } = await serve();
    await crds.createCustomResourceDefinition({ body: crdModel(VIPC_CRD) });
    await core.createNamespace({ body: { metadata: { name: 'apps' } } });
    const claim = (name: string, owner: k8s.V1Pod) => ({
      apiVersion: `${GROUP}/v1`,
      kind: 'VpcIPClaim',
      metadata: { name, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: owner.metadata!.name!, uid: owner.metadata!.uid! }] },
    });
    const p1 = await core.createNamespacedPod({ namespace: 'apps', body: pod('p1') });
    const p2 = await core.createNamespacedPod({ namespace: 'apps', body: pod('p2') });
    await custom.createNamespacedCustomObject({ ...vipc, namespace: 'apps', body: claim('p1', p1) });
    await custom.createNamespacedCustomObject({ ...vipc, namespace: 'apps', body: claim('p2', p2) });

    await core.deleteNamespacedPod({ name: 'p1', namespace: 'apps' });
    expect((await failure(custom.getNamespacedCustomObject({ ...vipc, namespace: 'apps', name: 'p1' }))).code).toBe(404);
    await core.deleteNamespacedPod({ name: 'p2', namespace: 'apps', propagationPolicy: 'Orphan' });
    const orphan = (await custom.getNamespacedCustomObject({ ...vipc, namespace: 'apps', name: 'p2' })) as Custom;
    expect(orphan.metadata.ownerReferences).toBeUndefined();

    await core.createNamespacedConfigMap({ namespace: 'apps', body: { metadata: { name: 'cfg' } } });
    await core.deleteNamespace({ name: 'apps' });
    expect((await failure(core.readNamespace({ name: 'apps' }))).code).toBe(404);
    expect((await custom.listClusterCustomObject({ ...vipc })).items).toEqual([]);
    expect((await core.listConfigMapForAllNamespaces()).items.map((c) => c.metadata?.name)).not.toContain('cfg');
  });

  it('refuses a deletion whose preconditions do not hold with 409', async () => {
    const { core } = await serve();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'cfg' } } });
    const stale = await failure(core.deleteNamespacedConfigMap({ name: 'cfg', namespace: ns, body: { preconditions: { uid: 'not-its-uid' } } }));
    expect(stale).toMatchObject({ code: 409, status: { reason: 'Conflict', message: expect.stringContaining('Precondition failed: UID in precondition: not-its-uid') } });
    expect(await core.readNamespacedConfigMap({ name: 'cfg', namespace: ns })).toBeTruthy();
  });
});

describe('graceful pod deletion', () => {
  const at = (time: string) => new Date(`2025-06-01T${time}Z`);

  it('marks a pod on a node with a deletionTimestamp and grace period, may only shorten it, and removes it on a delete with grace 0', async () => {
    let now = at('12:00:00');
    const { kc, core } = await serve({ clock: { now: () => now } });
    const created = await core.createNamespacedPod({ namespace: ns, body: pod('web-0', { nodeName: 'node-1' }) });
    const watch = await collectWatch(kc, `/api/v1/namespaces/${ns}/pods`, {});
    cleanups.push(watch.stop);

    const marked = await core.deleteNamespacedPod({ name: 'web-0', namespace: ns });
    expect(marked.metadata).toMatchObject({ deletionTimestamp: at('12:00:30'), deletionGracePeriodSeconds: 30 });
    expect((await core.readNamespacedPod({ name: 'web-0', namespace: ns })).metadata?.deletionTimestamp).toEqual(at('12:00:30'));
    // A longer grace period than the one running changes nothing; a shorter one moves the deadline back as much.
    const longer = await core.deleteNamespacedPod({ name: 'web-0', namespace: ns, body: { gracePeriodSeconds: 60 } });
    expect(longer.metadata?.resourceVersion).toBe(marked.metadata?.resourceVersion);
    now = at('12:00:10');
    const shorter = await core.deleteNamespacedPod({ name: 'web-0', namespace: ns, body: { gracePeriodSeconds: 5 } });
    expect(shorter.metadata).toMatchObject({ deletionTimestamp: at('12:00:05'), deletionGracePeriodSeconds: 5 });
    // The kubelet reports its containers stopped, then deletes the pod with grace 0 and its uid as precondition.
    await core.patchNamespacedPodStatus({ name: 'web-0', namespace: ns, body: { status: { phase: 'Running', containerStatuses: [] } } }, mergePatch);
    expect((await core.readNamespacedPod({ name: 'web-0', namespace: ns })).metadata?.deletionGracePeriodSeconds).toBe(5);
    await core.deleteNamespacedPod({ name: 'web-0', namespace: ns, body: { gracePeriodSeconds: 0, preconditions: { uid: created.metadata!.uid! } } });
    expect((await failure(core.readNamespacedPod({ name: 'web-0', namespace: ns }))).code).toBe(404);
    await until('the deletion on the watch', () => watch.events.length === 5);
    expect(summary(watch.events)).toEqual(['ADDED web-0', 'MODIFIED web-0', 'MODIFIED web-0', 'MODIFIED web-0', 'DELETED web-0']);
  });

  it('takes the grace period asked for (body or query), else the pod\'s, else 30 s; removes a pod off a node, a finished one, and one given 0', async () => {
    const now = at('12:00:00');
    const { core } = await serve({ clock: { now: () => now } });
    const onNode = async (name: string, extra: Partial<k8s.V1PodSpec> = {}) => {
      const body = pod(name, { nodeName: 'node-1' });
      Object.assign(body.spec!, extra);
      return core.createNamespacedPod({ namespace: ns, body });
    };
    const grace = async (name: string) => (await core.readNamespacedPod({ name, namespace: ns })).metadata?.deletionGracePeriodSeconds;
    const gone = async (name: string) => (await failure(core.readNamespacedPod({ name, namespace: ns }))).code === 404;

    await onNode('own', { terminationGracePeriodSeconds: 10 });
    await core.deleteNamespacedPod({ name: 'own', namespace: ns });
    expect(await grace('own')).toBe(10);
    await onNode('query');
    await core.deleteNamespacedPod({ name: 'query', namespace: ns, gracePeriodSeconds: 3 });
    expect(await grace('query')).toBe(3);
    // A negative grace period, asked for or the pod's own, is 1 s.
    await onNode('negative');
    await core.deleteNamespacedPod({ name: 'negative', namespace: ns, body: { gracePeriodSeconds: -5 } });
    expect(await grace('negative')).toBe(1);
    await onNode('negative-own', { terminationGracePeriodSeconds: -1 });
    await core.deleteNamespacedPod({ name: 'negative-own', namespace: ns });
    expect(await grace('negative-own')).toBe(1);
    await onNode('dry');
    const dry = await core.deleteNamespacedPod({ name: 'dry', namespace: ns, dryRun: 'All' });
    expect(dry.metadata?.deletionTimestamp).toEqual(at('12:00:30'));
    expect((await core.readNamespacedPod({ name: 'dry', namespace: ns })).metadata?.deletionTimestamp).toBeUndefined();

    await core.createNamespacedPod({ namespace: ns, body: pod('pending') });
    await core.deleteNamespacedPod({ name: 'pending', namespace: ns });
    expect(await gone('pending')).toBe(true);
    await onNode('done');
    await core.patchNamespacedPodStatus({ name: 'done', namespace: ns, body: { status: { phase: 'Succeeded' } } }, mergePatch);
    await core.deleteNamespacedPod({ name: 'done', namespace: ns });
    expect(await gone('done')).toBe(true);
    await onNode('forced');
    await core.deleteNamespacedPod({ name: 'forced', namespace: ns, body: { gracePeriodSeconds: 0 } });
    expect(await gone('forced')).toBe(true);
  });

  it('removes a pod with finalizers once a grace-0 delete has ended its grace period and its finalizers are gone, in either order', async () => {
    const { core } = await serve();
    const withFinalizer = async (name: string) => {
      const body = pod(name, { nodeName: 'node-1' });
      body.metadata!.finalizers = ['example.com/hold'];
      await core.createNamespacedPod({ namespace: ns, body });
      await core.deleteNamespacedPod({ name, namespace: ns });
    };
    const read = (name: string) => core.readNamespacedPod({ name, namespace: ns });
    const dropFinalizers = (name: string) => core.patchNamespacedPod({ name, namespace: ns, body: { metadata: { finalizers: null } } }, mergePatch);
    const kubeletDelete = (name: string) => core.deleteNamespacedPod({ name, namespace: ns, body: { gracePeriodSeconds: 0 } });

    await withFinalizer('finalizers-first');
    await dropFinalizers('finalizers-first');
    expect((await read('finalizers-first')).metadata?.deletionGracePeriodSeconds).toBe(30);
    await kubeletDelete('finalizers-first');
    expect((await failure(read('finalizers-first'))).code).toBe(404);

    await withFinalizer('kubelet-first');
    await kubeletDelete('kubelet-first');
    expect((await read('kubelet-first')).metadata).toMatchObject({ deletionGracePeriodSeconds: 0, finalizers: ['example.com/hold'] });
    await dropFinalizers('kubelet-first');
    expect((await failure(read('kubelet-first'))).code).toBe(404);
  });

  it('deletes the pods of a deleted StatefulSet and of a deleted namespace the same way: marked, and left to their kubelet', async () => {
    const { core, apps } = await serve();
    await core.createNamespace({ body: { metadata: { name: 'apps' } } });
    const set = await apps.createNamespacedStatefulSet({ namespace: 'apps', body: statefulSet('web', 2) });
    const owned = (name: string, nodeName?: string): k8s.V1Pod => {
      const body = pod(name, nodeName ? { nodeName } : {});
      body.metadata!.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: set.metadata!.uid!, controller: true }];
      return body;
    };
    await core.createNamespacedPod({ namespace: 'apps', body: owned('web-0', 'node-1') });
    await core.createNamespacedPod({ namespace: 'apps', body: owned('web-1') });
    await apps.deleteNamespacedStatefulSet({ name: 'web', namespace: 'apps' });
    expect((await core.readNamespacedPod({ name: 'web-0', namespace: 'apps' })).metadata?.deletionGracePeriodSeconds).toBe(30);
    expect((await failure(core.readNamespacedPod({ name: 'web-1', namespace: 'apps' }))).code).toBe(404);

    await core.createNamespacedPod({ namespace: 'apps', body: pod('db-0', { nodeName: 'node-1' }) });
    await core.deleteNamespace({ name: 'apps' });
    expect((await failure(core.readNamespace({ name: 'apps' }))).code).toBe(404);
    expect((await core.listPodForAllNamespaces({ fieldSelector: 'metadata.namespace=apps' })).items.map((p) => [p.metadata?.name, p.metadata?.deletionGracePeriodSeconds])).toEqual([
      ['db-0', 30],
      ['web-0', 30],
    ]);
    for (const name of ['db-0', 'web-0']) await core.deleteNamespacedPod({ name, namespace: 'apps', body: { gracePeriodSeconds: 0 } });
    expect((await core.listPodForAllNamespaces({ fieldSelector: 'metadata.namespace=apps' })).items).toEqual([]);
  });
});

describe('pod binding', () => {
  const binding = (name: string, node: string, meta: Partial<k8s.V1ObjectMeta> = {}): k8s.V1Binding => ({ apiVersion: 'v1', kind: 'Binding', metadata: { name, ...meta }, target: { kind: 'Node', name: node } });

  it('binds a pod as a scheduler does: nodeName, the Binding\'s annotations, PodScheduled True; 409 when already bound, 404 when missing', async () => {
    const { core } = await serve();
    const created = await core.createNamespacedPod({ namespace: ns, body: pod('web-0') });
    await core.createNamespacedPodBinding({ name: 'web-0', namespace: ns, body: binding('web-0', 'node-1', { uid: created.metadata!.uid!, annotations: { 'example.com/score': '7' } }) });
    const bound = await core.readNamespacedPod({ name: 'web-0', namespace: ns });
    expect(bound.spec?.nodeName).toBe('node-1');
    expect(bound.metadata?.annotations).toEqual({ 'example.com/score': '7' });
    expect(bound.status).toMatchObject({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: expect.any(Date) }] });

    expect(await failure(core.createNamespacedPodBinding({ name: 'web-0', namespace: ns, body: binding('web-0', 'node-2') }))).toMatchObject({
      code: 409,
      status: { reason: 'Conflict', message: 'Operation cannot be fulfilled on pods/binding "web-0": pod web-0 is already assigned to node "node-1"', details: { name: 'web-0', kind: 'pods/binding' } },
    });
    expect(await failure(core.createNamespacedPodBinding({ name: 'db-0', namespace: ns, body: binding('db-0', 'node-1') }))).toMatchObject({
      code: 404,
      status: { reason: 'NotFound', message: 'pods "db-0" not found' },
    });

    // kube-apiserver answers 201 with a Success Status (client-node reads it as a V1Binding).
    await core.createNamespacedPod({ namespace: ns, body: pod('web-1') });
    const answer = await fetch(`${server!.url}/api/v1/namespaces/${ns}/pods/web-1/binding`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(binding('web-1', 'node-2')) });
    expect(answer.status).toBe(201);
    expect(await answer.json()).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
  });

  it('refuses to bind a pod being deleted, another pod of the same name (uid), a Binding named otherwise, and one without a node', async () => {
    const { core } = await serve();
    const held = pod('held');
    held.metadata!.finalizers = ['example.com/hold'];
    await core.createNamespacedPod({ namespace: ns, body: held });
    await core.deleteNamespacedPod({ name: 'held', namespace: ns });
    expect(await failure(core.createNamespacedPodBinding({ name: 'held', namespace: ns, body: binding('held', 'node-1') }))).toMatchObject({
      code: 409,
      status: { message: 'Operation cannot be fulfilled on pods/binding "held": pod held is being deleted, cannot be assigned to a host' },
    });
    await core.createNamespacedPod({ namespace: ns, body: pod('web-0') });
    expect(await failure(core.createNamespacedPodBinding({ name: 'web-0', namespace: ns, body: binding('web-0', 'node-1', { uid: 'an-old-uid' }) }))).toMatchObject({
      code: 409,
      status: { reason: 'Conflict', message: expect.stringContaining('Precondition failed: UID in precondition: an-old-uid') },
    });
    expect(await failure(core.createNamespacedPodBinding({ name: 'web-0', namespace: ns, body: binding('web-1', 'node-1') }))).toMatchObject({
      code: 400,
      status: { message: 'name in URL does not match name in Binding object' },
    });
    expect(await failure(core.createNamespacedPodBinding({ name: 'web-0', namespace: ns, body: { metadata: { name: 'web-0' }, target: {} } }))).toMatchObject({
      code: 500,
      status: { message: 'target.name: Required value' },
    });
    expect((await core.readNamespacedPod({ name: 'web-0', namespace: ns })).spec?.nodeName).toBeUndefined();
  });
});

describe('scale subresource', () => {
  it('serves a StatefulSet\'s Scale, and a patch of the Scale (merge or JSON) scales the StatefulSet', async () => {
    const { apps } = await serve();
    const created = await apps.createNamespacedStatefulSet({ namespace: ns, body: statefulSet('web', 3) });
    expect(await apps.readNamespacedStatefulSetScale({ name: 'web', namespace: ns })).toMatchObject({
      apiVersion: 'autoscaling/v1',
      kind: 'Scale',
      metadata: { name: 'web', namespace: ns, uid: created.metadata!.uid, resourceVersion: created.metadata!.resourceVersion },
      spec: { replicas: 3 },
      status: { replicas: 0, selector: 'app=web,tier in (back,front)' },
    });

    const patched = await apps.patchNamespacedStatefulSetScale({ name: 'web', namespace: ns, body: { spec: { replicas: 1 } } }, mergePatch);
    expect(patched.spec?.replicas).toBe(1);
    const scaled = await apps.readNamespacedStatefulSet({ name: 'web', namespace: ns });
    expect(scaled.spec?.replicas).toBe(1);
    expect(scaled.metadata).toMatchObject({ generation: 2, resourceVersion: patched.metadata?.resourceVersion });
    // The same count again is no change: no new version.
    const same = await apps.patchNamespacedStatefulSetScale({ name: 'web', namespace: ns, body: { spec: { replicas: 1 } } }, mergePatch);
    expect(same.metadata?.resourceVersion).toBe(patched.metadata?.resourceVersion);

    await apps.patchNamespacedStatefulSetStatus({ name: 'web', namespace: ns, body: { status: { replicas: 1, readyReplicas: 1 } } }, mergePatch);
    const zero = await apps.patchNamespacedStatefulSetScale({ name: 'web', namespace: ns, body: [{ op: 'replace', path: '/spec/replicas', value: 0 }] });
    // Go's omitempty: a Scale of 0 replicas has no spec.replicas.
    expect(zero).toMatchObject({ spec: {}, status: { replicas: 1 } });
    expect(zero.spec?.replicas).toBeUndefined();
    expect((await apps.readNamespacedStatefulSet({ name: 'web', namespace: ns })).spec?.replicas).toBe(0);
  });

  it('replaces a Deployment\'s or ReplicaSet\'s Scale; refuses a stale version (409) and a negative count (422); 404 without object or scale', async () => {
    const { apps } = await serve();
    const created = await apps.createNamespacedDeployment({ namespace: ns, body: { metadata: { name: 'x' }, spec: statefulSet('x').spec as k8s.V1DeploymentSpec } });
    // apps/v1 defaults spec.replicas to 1.
    expect(created.spec?.replicas).toBe(1);
    const scale = await apps.readNamespacedDeploymentScale({ name: 'x', namespace: ns });
    const replaced = await apps.replaceNamespacedDeploymentScale({ name: 'x', namespace: ns, body: { ...scale, spec: { replicas: 2 } } });
    expect(replaced.spec?.replicas).toBe(2);
    expect((await apps.readNamespacedDeployment({ name: 'x', namespace: ns })).spec?.replicas).toBe(2);
    expect(await failure(apps.replaceNamespacedDeploymentScale({ name: 'x', namespace: ns, body: { ...scale, spec: { replicas: 5 } } }))).toMatchObject({
      code: 409,
      status: { reason: 'Conflict', message: `Operation cannot be fulfilled on deployments.apps "x": ${'the object has been modified; please apply your changes to the latest version and try again'}` },
    });
    expect(await failure(apps.replaceNamespacedDeploymentScale({ name: 'x', namespace: ns, body: { ...replaced, spec: { replicas: -1 } } }))).toMatchObject({
      code: 422,
      status: { reason: 'Invalid', message: 'Scale.autoscaling "x" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0' },
    });

    await apps.createNamespacedReplicaSet({ namespace: ns, body: { metadata: { name: 'x-1' }, spec: statefulSet('x', 1).spec as k8s.V1ReplicaSetSpec } });
    await apps.patchNamespacedReplicaSetScale({ name: 'x-1', namespace: ns, body: { spec: { replicas: 4 } } }, mergePatch);
    expect((await apps.readNamespacedReplicaSet({ name: 'x-1', namespace: ns })).spec?.replicas).toBe(4);

    expect(await failure(apps.readNamespacedDeploymentScale({ name: 'nope', namespace: ns }))).toMatchObject({ code: 404, status: { message: 'deployments/scale.apps "nope" not found' } });
    expect((await fetch(`${server!.url}/apis/apps/v1/namespaces/${ns}/daemonsets/agent/scale`)).status).toBe(404);
  });

  it('is listed in discovery as kube-apiserver lists it, with pods/binding and replicasets', async () => {
    const { kc } = await serve();
    const core = await kc.makeApiClient(k8s.CoreV1Api).getAPIResources();
    expect(core.resources.find((r) => r.name === 'pods/binding')).toEqual(expect.objectContaining({ kind: 'Binding', namespaced: true, verbs: ['create'] }));
    const apps = await kc.makeApiClient(k8s.AppsV1Api).getAPIResources();
    for (const plural of ['deployments', 'statefulsets', 'replicasets']) {
      expect(apps.resources.find((r) => r.name === `${plural}/scale`)).toEqual(expect.objectContaining({ group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] }));
    }
    expect(apps.resources.find((r) => r.name === 'daemonsets/scale')).toBeUndefined();
    expect(apps.resources.find((r) => r.name === 'replicasets')).toEqual(expect.objectContaining({ kind: 'ReplicaSet', shortNames: ['rs'], categories: ['all'] }));
  });

  it('answers the verbs a subresource does not take with 405, as discovery lists them', async () => {
    const { core, apps } = await serve();
    await core.createNamespacedPod({ namespace: ns, body: pod('web-0') });
    await apps.createNamespacedStatefulSet({ namespace: ns, body: statefulSet('web', 1) });
    for (const [method, path] of [['GET', `/api/v1/namespaces/${ns}/pods/web-0/binding`], ['DELETE', `/apis/apps/v1/namespaces/${ns}/statefulsets/web/scale`], ['POST', `/apis/apps/v1/namespaces/${ns}/statefulsets/web/scale`]] as const) {
      const answer = await fetch(`${server!.url}${path}`, { method, headers: { 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{}' } : {}) });
      expect([method, answer.status, ((await answer.json()) as k8s.V1Status).reason]).toEqual([method, 405, 'MethodNotAllowed']);
    }
  });
});

describe('authentication', () => {
  it('requires the bearer token when started with one, over HTTPS, and a kubeconfig from the server carries both', async () => {
    const { core } = await serve({ token: 'sekret' });
    expect(server!.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const anonymous = await httpsGet(`${server!.url}/api/v1/namespaces`);
    expect(anonymous.code).toBe(401);
    expect(JSON.parse(anonymous.body)).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
    expect((await httpsGet(`${server!.url}/api/v1/namespaces`, 'Bearer wrong')).code).toBe(401);
    expect((await httpsGet(`${server!.url}/healthz`)).code).toBe(200);
    expect((await core.listNamespace()).items.map((n) => n.metadata?.name)).toContain('default');
  });
});

/** A GET trusting the server's test certificate (fetch cannot be given a CA). */
function httpsGet(url: string, authorization?: string): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: TEST_CERT, headers: authorization ? { authorization } : {} }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

describe('kubectl', () => {
  let kubectl: ReturnType<typeof kubectlFor>;

  beforeEach(async () => {
    await requireKubectl();
    await serve();
    kubectl = kubectlFor(await server!.writeKubeconfig(join(dir, 'kubeconfig')), join(dir, 'cache'));
  });

  it('applies a CRD from a YAML file, then gets, annotates, re-applies and deletes its resources by short name', async () => {
    const crdFile = join(dir, 'crd.yaml');
    await writeFile(crdFile, YAML.stringify(NEC_CRD));
    expect((await kubectl(['apply', '-f', crdFile])).stdout).toBe(`customresourcedefinition.apiextensions.k8s.io/${NEC_CRD.metadata.name} created`);
    expect((await kubectl(['get', 'crd', '-o', 'name'])).stdout).toBe(`customresourcedefinition.apiextensions.k8s.io/${NEC_CRD.metadata.name}`);

    const necFile = join(dir, 'nec.yaml');
    const necYaml = (subnetId: string) => YAML.stringify({ apiVersion: `${GROUP}/v1`, kind: 'NodeENIConfig', metadata: { name: 'node-1' }, spec: { subnetId } });
    await writeFile(necFile, necYaml('s1'));
    expect((await kubectl(['apply', '-f', necFile])).stdout).toBe(`nodeeniconfig.${GROUP}/node-1 created`);
    const table = await kubectl(['get', 'nec']);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+SUBNET\s+ENIS$/);
    // A column with no value is an empty cell, as kube-apiserver sends it.
    expect(table.stdout.split('\n')[1]).toMatch(/^node-1\s+s1\s*$/);

    const annotate = await kubectl(['annotate', 'nec', 'node-1', 'tke.cloud.tencent.com/route-eni-ip-min-warm-target=1', '--overwrite']);
    expect(annotate.stdout).toBe(`nodeeniconfig.${GROUP}/node-1 annotated`);
    await writeFile(necFile, necYaml('s2'));
    expect((await kubectl(['apply', '-f', necFile])).stdout).toBe(`nodeeniconfig.${GROUP}/node-1 configured`);
    const got = JSON.parse((await kubectl(['get', 'nec', 'node-1', '-o', 'json'])).stdout) as Custom;
    expect(got.spec).toEqual({ subnetId: 's2', maxEni: 4 });
    expect(got.metadata).toMatchObject({ generation: 2, annotations: expect.objectContaining({ 'tke.cloud.tencent.com/route-eni-ip-min-warm-target': '1' }) });

    expect((await kubectl(['delete', 'nec', 'node-1'])).stdout).toBe(`nodeeniconfig.${GROUP} "node-1" deleted`);
    const missing = await kubectl(['get', 'nec', 'node-1']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain(`Error from server (NotFound): nodeeniconfigs.${GROUP} "node-1" not found`);
    expect((await kubectl(['delete', '-f', crdFile])).exitCode).toBe(0);
  });

  it('applies and re-applies a pod (strategic merge), selects, patches its status, and deletes it', async () => {
    const podFile = join(dir, 'pod.yaml');
    const podYaml = (image: string) =>
      YAML.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'web-0', namespace: ns, labels: { app: 'web' } },
        spec: { nodeName: 'node-1', containers: [{ name: 'app', image, env: [{ name: 'X', value: '1' }] }, { name: 'sidecar', image: 'envoy' }] },
      });
    await writeFile(podFile, podYaml('busybox:1'));
    expect((await kubectl(['apply', '-f', podFile])).stdout).toBe('pod/web-0 created');
    await writeFile(podFile, podYaml('busybox:2'));
    expect((await kubectl(['apply', '-f', podFile])).stdout).toBe('pod/web-0 configured');
    const applied = JSON.parse((await kubectl(['get', 'pod', 'web-0', '-o', 'json'])).stdout) as k8s.V1Pod;
    expect(applied.spec?.containers).toEqual([
      { name: 'app', image: 'busybox:2', env: [{ name: 'X', value: '1' }] },
      { name: 'sidecar', image: 'envoy' },
    ]);

    expect((await kubectl(['get', 'pods', '-l', 'app in (web)', '-o', 'name'])).stdout).toBe('pod/web-0');
    expect((await kubectl(['get', 'pods', '-l', 'app!=web', '-o', 'name'])).stdout).toBe('');
    expect((await kubectl(['get', 'pods', '-A', '--field-selector', 'spec.nodeName=node-1', '-o', 'name'])).stdout).toBe('pod/web-0');
    expect((await kubectl(['patch', 'pod', 'web-0', '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Running","podIP":"10.0.0.5"}}'])).exitCode).toBe(0);
    expect((await kubectl(['get', 'pods'])).stdout.split('\n')[1]).toMatch(/^web-0\s+0\/2\s+Running\s+0\s+\d+s$/);
    expect((await kubectl(['get', 'pods', '-o', 'wide'])).stdout.split('\n')[1]).toMatch(/^web-0\s+0\/2\s+Running\s+0\s+\d+s\s+10\.0\.0\.5\s+node-1\s+<none>\s+<none>$/);

    // The pod is on a node: without a kubelet, only a forced deletion removes it at once.
    const deleted = await kubectl(['delete', 'pod', 'web-0', '--grace-period=0', '--force']);
    expect(deleted).toMatchObject({ exitCode: 0, stdout: 'pod "web-0" force deleted' });
    expect(deleted.stderr).toContain('Immediate deletion does not wait for confirmation');
    expect((await kubectl(['get', 'pods', '-o', 'name'])).stdout).toBe('');
  });

  it('deletes a pod on a node gracefully: kubectl delete waits until the kubelet\'s delete with grace 0 removes it', async () => {
    const { kc, core } = clientsFor(server!);
    const created = await core.createNamespacedPod({ namespace: ns, body: pod('web-0', { nodeName: 'node-1' }) });
    const watch = await collectWatch(kc, `/api/v1/namespaces/${ns}/pods`, {});
    cleanups.push(watch.stop);
    let exited = false;
    const deleting = kubectl(['delete', 'pod', 'web-0']).finally(() => (exited = true));
    await until('the pod marked for deletion', () => summary(watch.events).includes('MODIFIED web-0'));
    expect((await kubectl(['get', 'pod', 'web-0'])).stdout.split('\n')[1]).toMatch(/^web-0\s+0\/1\s+Terminating\s+0\s+\d+s$/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(exited).toBe(false);
    await core.deleteNamespacedPod({ name: 'web-0', namespace: ns, body: { gracePeriodSeconds: 0, preconditions: { uid: created.metadata!.uid! } } });
    expect(await deleting).toMatchObject({ exitCode: 0, stdout: 'pod "web-0" deleted' });
  });

  it('scales a StatefulSet, a Deployment and a ReplicaSet through the scale subresource (merge patch, or GET and PUT with --current-replicas)', async () => {
    const file = join(dir, 'workloads.yaml');
    const workload = (kind: string, name: string, replicas: number) => {
      const { serviceName, ...spec } = statefulSet(name, replicas).spec!;
      return { apiVersion: 'apps/v1', kind, metadata: { name, namespace: ns }, spec: kind === 'StatefulSet' ? { ...spec, serviceName } : spec };
    };
    await writeFile(file, [workload('StatefulSet', 'web', 3), workload('Deployment', 'x', 1), workload('ReplicaSet', 'x-1', 1)].map((w) => YAML.stringify(w)).join('---\n'));
    expect((await kubectl(['apply', '-f', file])).exitCode).toBe(0);
    expect((await kubectl(['scale', 'statefulset', 'web', '--replicas=1'])).stdout).toBe('statefulset.apps/web scaled');
    expect((await kubectl(['scale', 'deploy', 'x', '--replicas=2'])).stdout).toBe('deployment.apps/x scaled');
    expect((await kubectl(['scale', 'rs', 'x-1', '--replicas=0'])).stdout).toBe('replicaset.apps/x-1 scaled');
    const replicas = async (resource: string) => (await kubectl(['get', resource, '-o', 'jsonpath={.spec.replicas}'])).stdout;
    expect([await replicas('sts/web'), await replicas('deploy/x'), await replicas('rs/x-1')]).toEqual(['1', '2', '0']);

    expect((await kubectl(['scale', 'sts', 'web', '--current-replicas=1', '--replicas=2'])).stdout).toBe('statefulset.apps/web scaled');
    const refused = await kubectl(['scale', 'sts', 'web', '--current-replicas=5', '--replicas=3']);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('Expected replicas to be 5, was 2');
    expect(await replicas('sts/web')).toBe('2');
  });

  it('prints pods, nodes, workloads and events with kube-apiserver\'s columns', async () => {
    const { core, apps } = clientsFor(server!);
    const rows = async (...args: string[]) => (await kubectl(['get', ...args])).stdout.split('\n');
    const minuteAgo = new Date(Date.now() - 60_000);

    await core.createNode({
      body: {
        metadata: { name: 'node-1', labels: { 'node-role.kubernetes.io/control-plane': '' } },
        spec: { unschedulable: true },
        status: {
          conditions: [{ type: 'Ready', status: 'True' }],
          addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
          nodeInfo: { kubeletVersion: 'v1.32.0', osImage: 'Debian GNU/Linux 12', kernelVersion: '6.1.0', containerRuntimeVersion: 'containerd://1.7', machineID: '', systemUUID: '', bootID: '', kubeProxyVersion: '', operatingSystem: 'linux', architecture: 'amd64' },
        },
      },
    });
    await core.createNode({ body: { metadata: { name: 'node-2' } } });
    expect(await rows('nodes')).toEqual([
      expect.stringMatching(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION$/),
      expect.stringMatching(/^node-1\s+Ready,SchedulingDisabled\s+control-plane\s+\d+s\s+v1\.32\.0$/),
      expect.stringMatching(/^node-2\s+Unknown\s+<none>\s+\d+s\s*$/),
    ]);
    expect((await rows('nodes', '-o', 'wide')).slice(0, 2)).toEqual([
      expect.stringMatching(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\s+INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME$/),
      expect.stringMatching(/^node-1\s+.*v1\.32\.0\s+10\.0\.0\.1\s+<none>\s+Debian GNU\/Linux 12\s+6\.1\.0\s+containerd:\/\/1\.7$/),
    ]);

    await core.createNamespacedPod({ namespace: ns, body: pod('creating', { nodeName: 'node-1' }) });
    await core.patchNamespacedPodStatus({ name: 'creating', namespace: ns, body: { status: { containerStatuses: [{ name: 'app', image: 'busybox', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } }] } } }, mergePatch);
    await core.createNamespacedPod({ namespace: ns, body: pod('running', { nodeName: 'node-1' }) });
    const running = { name: 'app', image: 'busybox', imageID: '', ready: true, restartCount: 2, state: { running: { startedAt: new Date() } }, lastState: { terminated: { exitCode: 1, finishedAt: minuteAgo } } };
    await core.patchNamespacedPodStatus({ name: 'running', namespace: ns, body: { status: { phase: 'Running', podIP: '10.1.0.7', containerStatuses: [running] } } }, mergePatch);
    expect(await rows('pods')).toEqual([
      expect.stringMatching(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/),
      expect.stringMatching(/^creating\s+0\/1\s+ContainerCreating\s+0\s+\d+s$/),
      expect.stringMatching(/^running\s+1\/1\s+Running\s+2 \(6\ds ago\)\s+\d+s$/),
    ]);
    expect((await rows('pods', '-o', 'wide'))[0]).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$/);
    expect((await rows('pods', '-o', 'wide'))[2]).toMatch(/\s10\.1\.0\.7\s+node-1\s+<none>\s+<none>$/);

    await apps.createNamespacedStatefulSet({ namespace: ns, body: statefulSet('web', 3) });
    await apps.patchNamespacedStatefulSetStatus({ name: 'web', namespace: ns, body: { status: { replicas: 3, readyReplicas: 2 } } }, mergePatch);
    const { serviceName: _, ...spec } = statefulSet('x', 2).spec!;
    await apps.createNamespacedDeployment({ namespace: ns, body: { metadata: { name: 'x' }, spec } });
    await apps.patchNamespacedDeploymentStatus({ name: 'x', namespace: ns, body: { status: { readyReplicas: 1, updatedReplicas: 2, availableReplicas: 1 } } }, mergePatch);
    await apps.createNamespacedReplicaSet({ namespace: ns, body: { metadata: { name: 'x-1' }, spec } });
    await apps.patchNamespacedReplicaSetStatus({ name: 'x-1', namespace: ns, body: { status: { replicas: 2, readyReplicas: 1 } } }, mergePatch);
    expect(await rows('sts')).toEqual([expect.stringMatching(/^NAME\s+READY\s+AGE$/), expect.stringMatching(/^web\s+2\/3\s+\d+s$/)]);
    expect(await rows('deploy')).toEqual([expect.stringMatching(/^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE$/), expect.stringMatching(/^x\s+1\/2\s+2\s+1\s+\d+s$/)]);
    expect(await rows('rs')).toEqual([expect.stringMatching(/^NAME\s+DESIRED\s+CURRENT\s+READY\s+AGE$/), expect.stringMatching(/^x-1\s+2\s+2\s+1\s+\d+s$/)]);
    expect((await rows('rs', '-o', 'wide'))[1]).toMatch(/\sapp\s+busybox\s+app=x,tier in \(back,front\)$/);
    expect((await kubectl(['get', 'all', '-o', 'name'])).stdout.split('\n')).toEqual(['pod/creating', 'pod/running', 'deployment.apps/x', 'statefulset.apps/web', 'replicaset.apps/x-1']);

    await core.createNamespacedEvent({
      namespace: ns,
      body: { metadata: { name: 'running.1' }, involvedObject: { kind: 'Pod', name: 'running', namespace: ns }, reason: 'ENILimit', type: 'Warning', message: 'no ENI left ', lastTimestamp: minuteAgo },
    });
    expect(await rows('events')).toEqual([expect.stringMatching(/^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$/), expect.stringMatching(/^6\ds\s+Warning\s+ENILimit\s+pod\/running\s+no ENI left$/)]);
  });

  it('works with a server that requires a token (over HTTPS), through the kubeconfig the server writes', async () => {
    await server!.close();
    server = await startApiServer({ token: 'sekret' });
    const withToken = kubectlFor(await server.writeKubeconfig(join(dir, 'token-kubeconfig')), join(dir, 'cache-token'));
    expect((await withToken(['get', 'ns', 'default', '-o', 'name'])).stdout).toBe('namespace/default');
    await writeFile(join(dir, 'wrong-token'), server.kubeconfig().replace(/token: sekret/, 'token: wrong'));
    const refused = await kubectlFor(join(dir, 'wrong-token'), join(dir, 'cache-wrong'))(['get', 'ns']);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('You must be logged in to the server');
  });
});
