// Discovery, the way clients find what a server serves: /api, /apis, /apis/<group>, /api/v1 and
// /apis/<group>/<version> (the "legacy" documents; kubectl asks for the aggregated form first and, answered in
// plain JSON, reads these instead), /version, and an OpenAPI v2 document with no schemas in it.
//
// Why an empty OpenAPI document: kubectl apply validates against the server's schemas (OpenAPI v3, then v2)
// and refuses to apply when it can fetch neither. An empty v2 document is a schema with no types in it, so
// kubectl validates nothing, sends no fieldValidation, and builds its patches from its compiled-in types (built-in
// kinds, strategic merge) or as merge patches (custom resources). /openapi/v3 is 404, from which kubectl falls
// back to v2.
import { apiVersionOf, type ResourceType } from './resources.ts';

export const VERSION_INFO = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z',
  goVersion: 'go1.23.0',
  compiler: 'gc',
  platform: 'linux/amd64',
};

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export function apiVersions(serverAddress: string): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

/** kube's version order: GA before beta before alpha, then higher numbers first; other names last, by name. */
export function compareVersions(a: string, b: string): number {
  const rank = (v: string): [number, number, number, string] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [3, 0, 0, v];
    const level = m[2] === undefined ? 0 : m[2] === 'beta' ? 1 : 2;
    return [level, -Number(m[1]), -Number(m[3] ?? 0), v];
  };
  const [x, y] = [rank(a), rank(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x[3] < y[3] ? -1 : x[3] > y[3] ? 1 : 0;
}

function groupDocument(group: string, types: ResourceType[]): Record<string, unknown> {
  const versions = [...new Set(types.filter((t) => t.group === group).map((t) => t.version))].sort(compareVersions);
  const entries = versions.map((version) => ({ groupVersion: apiVersionOf({ group, version }), version }));
  return { name: group, versions: entries, preferredVersion: entries[0] };
}

export function apiGroupList(types: ResourceType[]): Record<string, unknown> {
  const groups = [...new Set(types.map((t) => t.group).filter((g) => g !== ''))];
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map((g) => groupDocument(g, types)) };
}

export function apiGroup(group: string, types: ResourceType[]): Record<string, unknown> | undefined {
  if (!types.some((t) => t.group === group)) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...groupDocument(group, types) };
}

export function apiResourceList(group: string, version: string, types: ResourceType[]): Record<string, unknown> | undefined {
  const served = types.filter((t) => t.group === group && t.version === version);
  if (served.length === 0) return undefined;
  const resources = served.flatMap((t) => {
    const main = {
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: VERBS,
      ...(t.shortNames.length > 0 ? { shortNames: t.shortNames } : {}),
      ...(t.categories.length > 0 ? { categories: t.categories } : {}),
    };
    // Subresources as kube-apiserver lists them, by name after the resource; scale names the group and version
    // of its kind, which is not the resource's own (kubectl scale reads it from here).
    const sub = (name: string, kind: string, verbs: string[], groupVersion?: { group: string; version: string }) => ({
      name: `${t.plural}/${name}`,
      singularName: '',
      namespaced: t.namespaced,
      ...groupVersion,
      kind,
      verbs,
    });
    return [
      main,
      ...(t.hasBinding ? [sub('binding', 'Binding', ['create'])] : []),
      ...(t.hasScale ? [sub('scale', 'Scale', ['get', 'patch', 'update'], { group: 'autoscaling', version: 'v1' })] : []),
      ...(t.hasStatus ? [sub('status', t.kind, ['get', 'patch', 'update'])] : []),
    ];
  });
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf({ group, version }), resources };
}

/** The OpenAPI v2 document as JSON. */
export function openApiV2(): Record<string, unknown> {
  return { swagger: '2.0', info: { title: 'Kubernetes', version: VERSION_INFO.gitVersion }, paths: {}, definitions: {} };
}

/**
 * The same document as the protobuf kubectl asks for (gnostic's openapi_v2.Document): field 1 `swagger`, field 2
 * `info` with its field 1 `title` and field 2 `version`. Written by hand: four strings do not need a protobuf library.
 */
export function openApiV2Protobuf(): Buffer {
  const field = (number: number, bytes: Buffer) => Buffer.concat([Buffer.from([(number << 3) | 2]), varint(bytes.length), bytes]);
  const info = Buffer.concat([field(1, Buffer.from('Kubernetes')), field(2, Buffer.from(VERSION_INFO.gitVersion))]);
  return Buffer.concat([field(1, Buffer.from('2.0')), field(2, info)]);
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}
