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
    expect((await kubectl(['get', 'pods'])).stdout.split('\n')[1]).toMatch(/^web-0\s+Running\s+\d+s$/);
    expect((await kubectl(['get', 'pods', '-o', 'wide'])).stdout.split('\n')[1]).toMatch(/^web-0\s+Running\s+\d+s\s+10\.0\.0\.5\s+node-1$/);

    expect((await kubectl(['delete', 'pod', 'web-0'])).stdout).toBe('pod "web-0" deleted');
    expect((await kubectl(['get', 'pods', '-o', 'name'])).stdout).toBe('');
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
