// The manifests an operator applies: they parse, the kustomization lists them, the CRDs are structural
// and accept the objects of Tencent's documentation (seeds/) while refusing broken ones, RBAC is what
// each component needs and no more, and the DaemonSet and the Deployment run the agent and ipamd with
// the flags each really takes (each program's own parser reads the manifests' args).
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parseAllDocuments } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { agentCommand, type AgentConfig } from '../agent/config.ts';
import { ipamdCommand, parseIpamdArgs } from '../agent/ipamd/config.ts';
import { parseNetConf } from '../cni-plugin/config.ts';
import { CRD_GROUP, CRD_VERSION, EXTENDED_RESOURCES, NEC_ANNOTATIONS } from '../shared/tke.ts';
import { structuralProblems, validate, type Schema } from './openapi.ts';

const DIR = dirname(fileURLToPath(import.meta.url));
// The image npm run image makes: tagged with the package's version, so a release names its own build.
const IMAGE = `eni-cni/agent:${(JSON.parse(readFileSync(`${DIR}/../package.json`, 'utf8')) as { version: string }).version}`;

// ---- the objects ----------------------------------------------------------------------------

interface Meta { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface K8sObject { apiVersion: string; kind: string; metadata: Meta }
interface PrinterColumn { name: string; type: string; jsonPath: string; priority?: number }
interface Crd extends K8sObject {
  spec: {
    group: string;
    scope: 'Cluster' | 'Namespaced';
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames?: string[]; categories?: string[] };
    versions: Array<{ name: string; served: boolean; storage: boolean; subresources?: { status?: object }; additionalPrinterColumns?: PrinterColumn[]; schema: { openAPIV3Schema: Schema } }>;
  };
}
interface Rule { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[]; nonResourceURLs?: string[] }
interface RoleObject extends K8sObject { rules: Rule[] }
interface Binding extends K8sObject { roleRef: { apiGroup: string; kind: string; name: string }; subjects: Array<{ kind: string; name: string; namespace?: string }> }
interface ConfigMapObject extends K8sObject { data: Record<string, string> }
interface EnvVar { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; configMapKeyRef?: { name: string; key: string } } }
interface Probe { httpGet?: { host?: string; path: string; port: number | string } }
interface Mount { name: string; mountPath: string; readOnly?: boolean; mountPropagation?: string }
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: Array<{ name?: string; containerPort: number }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { privileged?: boolean; allowPrivilegeEscalation?: boolean; runAsUser?: number; capabilities?: { add?: string[]; drop?: string[] } };
  volumeMounts?: Mount[];
}
interface Volume { name: string; hostPath?: { path: string; type?: string }; configMap?: { name: string; optional?: boolean; items?: Array<{ key: string; path: string }> } }
interface PodSpec {
  serviceAccountName: string;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  dnsPolicy?: string;
  priorityClassName?: string;
  tolerations?: Array<Record<string, unknown>>;
  initContainers?: Container[];
  containers: Container[];
  volumes?: Volume[];
}
interface DeploymentObject extends K8sObject {
  spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: Meta; spec: PodSpec } };
}
interface DaemonSetObject extends K8sObject {
  spec: {
    selector: { matchLabels: Record<string, string> };
    updateStrategy: { type: string; rollingUpdate?: { maxUnavailable?: string | number; maxSurge?: string | number } };
    template: { metadata: Meta; spec: PodSpec };
  };
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [relative(DIR, path)] : [];
  });
}

function load(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(join(DIR, file), 'utf8'));
  if (!Array.isArray(docs)) return [];
  for (const doc of docs) {
    if (doc.errors.length > 0 || doc.warnings.length > 0) throw new Error(`${file}: ${[...doc.errors, ...doc.warnings].map((e) => e.message).join('; ')}`);
  }
  return docs.map((doc) => doc.toJS() as unknown).filter((o) => o !== null);
}

const KUSTOMIZATION = load('kustomization.yaml')[0] as { resources: string[] };
const OBJECTS = KUSTOMIZATION.resources.flatMap((file) => load(file) as K8sObject[]);

function the<T extends K8sObject>(kind: string, name: string, objects: K8sObject[] = OBJECTS): T {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}`);
  return found[0] as T;
}

const CRDS = OBJECTS.filter((o): o is Crd => o.kind === 'CustomResourceDefinition');
const DAEMONSET = the<DaemonSetObject>('DaemonSet', 'tke-eni-agent');
const POD = DAEMONSET.spec.template.spec;
const AGENT = POD.containers.find((c) => c.name === 'eni-agent')!;
const INSTALL = (POD.initContainers ?? []).find((c) => c.name === 'install-cni')!;
const SETTINGS = the<ConfigMapObject>('ConfigMap', 'eni-cni-config');
const DAEMONSET_TEXT = readFileSync(join(DIR, 'daemonset.yaml'), 'utf8');
const DEPLOYMENT = the<DeploymentObject>('Deployment', 'tke-eni-ipamd');
const IPAMD_POD = DEPLOYMENT.spec.template.spec;
const IPAMD = IPAMD_POD.containers.find((c) => c.name === 'eni-ipamd')!;
const IPAMD_TEXT = readFileSync(join(DIR, 'ipamd.yaml'), 'utf8');

describe('the files', () => {
  it('every YAML file parses, and every object in it has apiVersion, kind and a name', () => {
    const files = yamlFiles(DIR);
    expect(files.length).toBeGreaterThan(1);
    for (const file of files.filter((f) => f !== 'kustomization.yaml')) {
      const objects = load(file) as Array<Partial<K8sObject>>;
      expect(objects.length, file).toBeGreaterThan(0);
      for (const o of objects) {
        expect(o.apiVersion, file).toMatch(/^[a-z0-9.]*\/?v[0-9]+[a-z0-9]*$/);
        expect(o.kind, file).toMatch(/^[A-Z][A-Za-z]+$/);
        expect(o.metadata?.name, file).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      }
    }
  });

  it('the kustomization lists every YAML file, each once', () => {
    const files = yamlFiles(DIR).filter((f) => f !== 'kustomization.yaml').sort();
    expect([...KUSTOMIZATION.resources].sort()).toEqual(files);
    expect(new Set(KUSTOMIZATION.resources).size).toBe(KUSTOMIZATION.resources.length);
  });

  it('holds only standard Kubernetes objects, each once, the namespaced ones in kube-system', () => {
    const standard: Record<string, string> = {
      CustomResourceDefinition: 'apiextensions.k8s.io/v1',
      ServiceAccount: 'v1',
      ClusterRole: 'rbac.authorization.k8s.io/v1',
      ClusterRoleBinding: 'rbac.authorization.k8s.io/v1',
      Role: 'rbac.authorization.k8s.io/v1',
      RoleBinding: 'rbac.authorization.k8s.io/v1',
      ConfigMap: 'v1',
      DaemonSet: 'apps/v1',
      Deployment: 'apps/v1',
    };
    const clusterScoped = new Set(['CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding']);
    const seen = new Set<string>();
    for (const o of OBJECTS) {
      expect(standard[o.kind], `${o.kind} ${o.metadata.name}`).toBe(o.apiVersion);
      expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe(clusterScoped.has(o.kind) ? undefined : 'kube-system');
      const key = `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
      expect(seen.has(key), key).toBe(false);
      seen.add(key);
    }
  });

  it('every container runs the one documented image, so the plugin and the agent always match', () => {
    for (const c of [...(POD.initContainers ?? []), ...POD.containers, ...IPAMD_POD.containers]) expect(c.image, c.name).toBe(IMAGE);
    expect(readFileSync(join(DIR, 'README.md'), 'utf8')).toContain(IMAGE);
  });
});

// ---- CRDs ---------------------------------------------------------------------------------------

const EXPECTED_CRDS = [
  { kind: 'NodeENIConfig', plural: 'nodeeniconfigs', short: 'nec', scope: 'Cluster' },
  { kind: 'VpcIPClaim', plural: 'vpcipclaims', short: 'vipc', scope: 'Namespaced' },
  { kind: 'VpcIP', plural: 'vpcips', short: 'vip', scope: 'Cluster' },
  { kind: 'VpcENI', plural: 'vpcenis', short: 'veni', scope: 'Cluster' },
  { kind: 'EIPClaim', plural: 'eipclaims', short: 'eipc', scope: 'Namespaced' },
] as const;

function crd(kind: string): Crd {
  const found = CRDS.find((c) => c.spec.names.kind === kind);
  if (!found) throw new Error(`no CRD of kind ${kind}`);
  return found;
}
const schemaOf = (kind: string): Schema => crd(kind).spec.versions[0]!.schema.openAPIV3Schema;

/** The schema node a printer column's simple JSONPath (.a.b.c) lands on. */
function schemaAt(schema: Schema, jsonPath: string): Schema | undefined {
  let node: Schema | undefined = schema;
  for (const part of jsonPath.replace(/^\./, '').split('.')) node = node?.properties?.[part];
  return node;
}

describe('CRDs', () => {
  it.each(EXPECTED_CRDS)('$kind: group, v1, scope, names and short name $short', ({ kind, plural, short, scope }) => {
    const c = crd(kind);
    expect(c.metadata.name).toBe(`${plural}.${CRD_GROUP}`);
    expect(c.spec.group).toBe(CRD_GROUP);
    expect(c.spec.scope).toBe(scope);
    expect(c.spec.names).toMatchObject({ kind, plural, listKind: `${kind}List`, singular: kind.toLowerCase() });
    expect(c.spec.names.shortNames).toEqual([short]);
    expect(c.spec.names.categories).toContain('eni-cni');
    expect(c.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([[CRD_VERSION, true, true]]);
  });

  it('there are exactly these five', () => {
    expect(CRDS.map((c) => c.spec.names.kind).sort()).toEqual(EXPECTED_CRDS.map((c) => c.kind).sort());
  });

  it.each(EXPECTED_CRDS)('$kind: the schema is structural', ({ kind }) => {
    expect(structuralProblems(schemaOf(kind))).toEqual([]);
  });

  it.each(EXPECTED_CRDS)('$kind: status is a subresource, and the schema has a status', ({ kind }) => {
    const version = crd(kind).spec.versions[0]!;
    expect(version.subresources?.status).toEqual({});
    expect(version.schema.openAPIV3Schema.properties?.status?.type).toBe('object');
  });

  it.each(EXPECTED_CRDS)('$kind: every printer column shows a field of the schema, of its type', ({ kind }) => {
    const version = crd(kind).spec.versions[0]!;
    const columns = version.additionalPrinterColumns ?? [];
    expect(columns.length).toBeGreaterThan(2);
    expect(new Set(columns.map((c) => c.name)).size).toBe(columns.length);
    for (const column of columns) {
      if (column.jsonPath === '.metadata.creationTimestamp') {
        expect(column.type).toBe('date');
        continue;
      }
      const field = schemaAt(version.schema.openAPIV3Schema, column.jsonPath);
      expect(field, `${column.name} ${column.jsonPath}`).toBeDefined();
      const expected = column.type === 'date' ? 'string' : column.type;
      expect(field?.type, `${column.name} ${column.jsonPath}`).toBe(expected);
    }
  });
});

describe('the structural check can fail', () => {
  const base = (): Schema => ({ type: 'object', properties: { spec: { type: 'object', properties: { a: { type: 'string' } } } } });
  it.each([
    ['a property without a type', (s: Schema) => (s.properties!.spec!.properties!.b = {}), 'no type'],
    ['properties and additionalProperties together', (s: Schema) => (s.properties!.spec!.additionalProperties = { type: 'string' }), 'together'],
    ['additionalProperties: false', (s: Schema) => (s.properties!.spec = { type: 'object', additionalProperties: false }), 'must be a schema'],
    ['a forbidden keyword', (s: Schema) => (s.properties!.spec!.patternProperties = {}), 'not supported'],
    ['a required field that is not a property', (s: Schema) => (s.properties!.spec!.required = ['b']), 'not a property'],
    ['an open object', (s: Schema) => (s.properties!.spec!.properties!.o = { type: 'object' }), 'keeps no field'],
    ['a list map key that is not required', (s: Schema) => (s.properties!.spec!.properties!.l = { type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['k'], items: { type: 'object', properties: { k: { type: 'string' } } } }), 'must be a required'],
    ['a default that does not fit', (s: Schema) => (s.properties!.spec!.properties!.a = { type: 'string', enum: ['x'], default: 'y' }), 'default does not fit'],
    ['a field beside spec and status at the root', (s: Schema) => (s.properties!.data = { type: 'string' }), 'besides'],
  ])('the structural check finds %s', (_name, spoil, message) => {
    const schema = base();
    expect(structuralProblems(schema)).toEqual([]);
    spoil(schema);
    expect(structuralProblems(schema).join('\n')).toContain(message);
  });
});

// ---- examples from the seeds --------------------------------------------------------------------
// The seeds show the StatefulSet busybox (3 replicas, namespace default) with
// vpc-ip-claim-delete-policy Never (seed 000), eip-attributes '{"Bandwidth":"100","ISP":"BGP"}' and
// eip-claim-delete-policy Never (seeds 001, 002), eip-id-list "eip-xxx1,eip-xxx2" (same), the pod
// 172.16.0.2 of the VPC 172.16.0.0/16 (seed 001's ip-masq-agent example), a VpcIP stuck in Attaching
// and a NEC with an empty status when the ENI quota is reached (seed 000), and the NEC annotations of
// seed 004. The objects below are what the agent makes of them; the seeds show no CRD YAML itself.

const apiVersion = `${CRD_GROUP}/${CRD_VERSION}`;
const IPV4_POD = '172.16.0.2';
const NODE = '172.16.0.10'; // TKE names nodes by their address
const now = '2024-07-11T10:00:10Z';

const EXAMPLES: Record<string, () => K8sObject & Record<string, unknown>> = {
  'VpcIPClaim of busybox-0, fixed IP, bound': () => ({
    apiVersion,
    kind: 'VpcIPClaim',
    metadata: { name: 'busybox-0', namespace: 'default' },
    spec: { deletePolicy: 'Never', networkMode: 'tke-route-eni', subnetId: 'subnet-8ngl5m6c' },
    status: {
      phase: 'Bound', ip: IPV4_POD, subnetId: 'subnet-8ngl5m6c', nodeName: NODE, eniId: 'eni-m6dyj72l', podUID: '6b0f1f3e-2f5c-4b8a-9c57-0e6d9f2f4a11',
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now, reason: 'Bound', message: `${IPV4_POD} on eni-m6dyj72l` }],
    },
  }),
  'VpcIPClaim of busybox-1 as first created (no status)': () => ({
    apiVersion, kind: 'VpcIPClaim', metadata: { name: 'busybox-1', namespace: 'default' }, spec: { deletePolicy: 'Never' },
  }),
  'VpcIPClaim of busybox-2 after its pod went (kept)': () => ({
    apiVersion, kind: 'VpcIPClaim', metadata: { name: 'busybox-2', namespace: 'default' },
    spec: { deletePolicy: 'Never' }, status: { phase: 'Released', ip: '172.16.0.3', releasedAt: now },
  }),
  'VpcIP 172.16.0.2 stuck in Attaching (ENI quota)': () => ({
    apiVersion,
    kind: 'VpcIP',
    metadata: { name: IPV4_POD },
    spec: { ip: IPV4_POD, subnetId: 'subnet-8ngl5m6c', vpcId: 'vpc-2lbrhw0x', claimRef: { namespace: 'default', name: 'busybox-0' } },
    status: { phase: 'Attaching', nodeName: NODE, message: 'LimitExceeded.AttachedENI: the ENI quota of the VPC is reached' },
  }),
  'NEC with the overrides of seed 004 and an empty status': () => ({
    apiVersion,
    kind: 'NodeENIConfig',
    metadata: {
      name: NODE,
      annotations: {
        [NEC_ANNOTATIONS.routeEniIpMinWarmTarget]: '1',
        [NEC_ANNOTATIONS.routeEniIpMaxWarmTarget]: '3',
        [NEC_ANNOTATIONS.routeEniMaxAttach]: '1',
        [NEC_ANNOTATIONS.maxIpPerRouteEni]: '9',
        [NEC_ANNOTATIONS.directEniMaxAttach]: '5',
      },
    },
    spec: { instanceId: 'ins-node0001', zone: 'ap-guangzhou-3' },
  }),
  'NEC with its ENIs, addresses and pool': () => ({
    apiVersion,
    kind: 'NodeENIConfig',
    metadata: { name: NODE },
    spec: { instanceId: 'ins-node0001', zone: 'ap-guangzhou-3', vpcId: 'vpc-2lbrhw0x', subnetIds: ['subnet-8ngl5m6c'], securityGroupIds: ['sg-5x2bq1kd'] },
    status: {
      limits: { maxRouteENI: 3, maxIPPerENI: 9, maxDirectENI: 5, maxEIP: 2 },
      pool: { minWarmTarget: 1, maxWarmTarget: 3, capacity: 27, bound: 4, allocated: 2 },
      directENIPool: { minWarmTarget: 1, maxWarmTarget: 1, capacity: 5, bound: 0, allocated: 0 },
      enis: [{
        eniId: 'eni-m6dyj72l', type: 'route', state: 'Attached', mac: '52:54:00:26:6E:DA', primaryIP: '172.16.0.20',
        subnetId: 'subnet-8ngl5m6c', subnetCIDR: '172.16.0.0/24', ifName: 'eth1', routeTable: 2003,
        ips: [
          { ip: IPV4_POD, podNamespace: 'default', podName: 'busybox-0', containerId: 'c0ffee', eipId: 'eip-xxx1', publicIP: '203.0.113.7' },
          { ip: '172.16.0.3', podNamespace: 'default', podName: 'busybox-1' },
          { ip: '172.16.0.4' },
          { ip: '172.16.0.5' },
        ],
      }],
      conditions: [{ type: 'OverridesApplied', status: 'False', lastTransitionTime: now, reason: 'Refused', message: 'route-eni-max-attach=0 is below the 1 ENIs in use' }],
    },
  }),
  'VpcENI eni-m6dyj72l on its node': () => ({
    apiVersion,
    kind: 'VpcENI',
    metadata: { name: 'eni-m6dyj72l' },
    spec: { eniId: 'eni-m6dyj72l', type: 'route', vpcId: 'vpc-2lbrhw0x', subnetId: 'subnet-8ngl5m6c', securityGroupIds: ['sg-5x2bq1kd'], nodeName: NODE },
    status: { phase: 'Attached', instanceId: 'ins-node0001', mac: '52:54:00:26:6e:da', primaryIP: '172.16.0.20', ips: [IPV4_POD, '172.16.0.3'], deviceIndex: 1 },
  }),
  'EIPClaim of busybox-0, new EIP of 100 Mbps BGP, kept': () => ({
    apiVersion,
    kind: 'EIPClaim',
    metadata: { name: 'busybox-0', namespace: 'default' },
    spec: { deletePolicy: 'Never', bandwidth: 100, isp: 'BGP' },
    status: { phase: 'Bound', eipId: 'eip-hxlqja90', publicIP: '203.0.113.7', privateIP: IPV4_POD, eniId: 'eni-m6dyj72l', nodeName: NODE },
  }),
  'EIPClaim of busybox-1 for the EIP eip-xxx2 of eip-id-list': () => ({
    apiVersion, kind: 'EIPClaim', metadata: { name: 'busybox-1', namespace: 'default' }, spec: { deletePolicy: 'Immediate', eipId: 'eip-xxx2' },
  }),
  'EIPClaim from eip-attributes "" (the defaults), on a China Mobile line': () => ({
    apiVersion, kind: 'EIPClaim', metadata: { name: 'busybox-2', namespace: 'default' }, spec: { deletePolicy: 'Immediate', isp: 'CMCC' },
  }),
};

function validateExample(o: K8sObject): string[] {
  return validate(schemaOf(o.kind), o);
}

type Spoil = (o: Record<string, any>) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

const BROKEN: Array<[string, string, Spoil, string]> = [
  ['VpcIPClaim of busybox-0, fixed IP, bound', 'a delete policy outside the enum', (o) => (o.spec.deletePolicy = 'Sometimes'), '.spec.deletePolicy'],
  ['VpcIPClaim of busybox-0, fixed IP, bound', 'the delete policy missing', (o) => delete o.spec.deletePolicy, '.spec.deletePolicy: required'],
  ['VpcIPClaim of busybox-0, fixed IP, bound', 'no spec', (o) => delete o.spec, '.spec: required'],
  ['VpcIPClaim of busybox-0, fixed IP, bound', 'an address out of range', (o) => (o.status.ip = '172.16.0.256'), '.status.ip'],
  ['VpcIPClaim of busybox-0, fixed IP, bound', 'an address with a prefix', (o) => (o.status.ip = '172.16.0.2/32'), '.status.ip'],
  ['VpcIPClaim of busybox-0, fixed IP, bound', 'a network mode TKE does not have', (o) => (o.spec.networkMode = 'tke-bridge'), '.spec.networkMode'],
  ['VpcIPClaim of busybox-0, fixed IP, bound', 'a misspelt field', (o) => (o.spec.deletepolicy = 'Never'), '.spec.deletepolicy: unknown field'],
  ['VpcIPClaim of busybox-0, fixed IP, bound', 'a condition status in lower case', (o) => (o.status.conditions[0].status = 'true'), '.status.conditions[0].status'],
  ['VpcIPClaim of busybox-0, fixed IP, bound', 'a condition time that is not RFC 3339', (o) => (o.status.conditions[0].lastTransitionTime = 'yesterday'), 'lastTransitionTime'],
  ['VpcIPClaim of busybox-2 after its pod went (kept)', 'a phase outside the enum', (o) => (o.status.phase = 'Expired'), '.status.phase'],
  ['VpcIP 172.16.0.2 stuck in Attaching (ENI quota)', 'a three-part address', (o) => (o.spec.ip = '172.16.0'), '.spec.ip'],
  ['VpcIP 172.16.0.2 stuck in Attaching (ENI quota)', 'no subnet', (o) => delete o.spec.subnetId, '.spec.subnetId: required'],
  ['VpcIP 172.16.0.2 stuck in Attaching (ENI quota)', 'a misspelt phase', (o) => (o.status.phase = 'Attachin'), '.status.phase'],
  ['VpcIP 172.16.0.2 stuck in Attaching (ENI quota)', 'a claim reference without a name', (o) => delete o.spec.claimRef.name, '.spec.claimRef.name: required'],
  ['VpcIP 172.16.0.2 stuck in Attaching (ENI quota)', 'a subnet id that is not one', (o) => (o.spec.subnetId = '172.16.0.0/24'), '.spec.subnetId'],
  ['NEC with the overrides of seed 004 and an empty status', 'no instance', (o) => delete o.spec.instanceId, '.spec.instanceId: required'],
  ['NEC with the overrides of seed 004 and an empty status', 'an instance id that is not one', (o) => (o.spec.instanceId = 'i-12345'), '.spec.instanceId'],
  ['NEC with its ENIs, addresses and pool', 'an ENI id with an underscore', (o) => (o.status.enis[0].eniId = 'eni_m6dyj72l'), '.status.enis[0].eniId'],
  ['NEC with its ENIs, addresses and pool', 'an ENI id in capitals', (o) => (o.status.enis[0].eniId = 'ENI-M6DYJ72L'), '.status.enis[0].eniId'],
  ['NEC with its ENIs, addresses and pool', 'an ENI type outside the enum', (o) => (o.status.enis[0].type = 'shared'), '.status.enis[0].type'],
  ['NEC with its ENIs, addresses and pool', 'a primary address out of range', (o) => (o.status.enis[0].primaryIP = '172.16.0.300'), '.status.enis[0].primaryIP'],
  ['NEC with its ENIs, addresses and pool', 'a prefix longer than 32', (o) => (o.status.enis[0].subnetCIDR = '172.16.0.0/33'), '.status.enis[0].subnetCIDR'],
  ['NEC with its ENIs, addresses and pool', 'a CIDR without its prefix', (o) => (o.status.enis[0].subnetCIDR = '172.16.0.0'), '.status.enis[0].subnetCIDR'],
  ['NEC with its ENIs, addresses and pool', 'a short MAC', (o) => (o.status.enis[0].mac = '52:54:00:26:6E'), '.status.enis[0].mac'],
  ['NEC with its ENIs, addresses and pool', 'a pod address out of range', (o) => (o.status.enis[0].ips[1].ip = '172.16.0.999'), '.status.enis[0].ips[1].ip'],
  ['NEC with its ENIs, addresses and pool', 'the same address twice', (o) => (o.status.enis[0].ips[3].ip = '172.16.0.4'), 'duplicate'],
  ['NEC with its ENIs, addresses and pool', 'an ENI without its id', (o) => delete o.status.enis[0].eniId, '.status.enis[0].eniId: required'],
  ['NEC with its ENIs, addresses and pool', 'a negative count', (o) => (o.status.pool.bound = -1), '.status.pool.bound'],
  ['NEC with its ENIs, addresses and pool', 'a count as a string', (o) => (o.status.pool.bound = '4'), '.status.pool.bound'],
  ['NEC with its ENIs, addresses and pool', 'a count that is not whole', (o) => (o.status.limits.maxIPPerENI = 9.5), '.status.limits.maxIPPerENI'],
  ['NEC with its ENIs, addresses and pool', 'an EIP id with an underscore', (o) => (o.status.enis[0].ips[0].eipId = 'eip_xxx1'), '.status.enis[0].ips[0].eipId'],
  ['VpcENI eni-m6dyj72l on its node', 'no type', (o) => delete o.spec.type, '.spec.type: required'],
  ['VpcENI eni-m6dyj72l on its node', 'a security group id that is not one', (o) => (o.spec.securityGroupIds = ['5x2bq1kd']), '.spec.securityGroupIds[0]'],
  ['EIPClaim of busybox-0, new EIP of 100 Mbps BGP, kept', 'an ISP in lower case', (o) => (o.spec.isp = 'bgp'), '.spec.isp'],
  ['EIPClaim of busybox-0, new EIP of 100 Mbps BGP, kept', 'the bandwidth as the annotation writes it (a string)', (o) => (o.spec.bandwidth = '100'), '.spec.bandwidth'],
  ['EIPClaim of busybox-0, new EIP of 100 Mbps BGP, kept', 'no bandwidth at all', (o) => (o.spec.bandwidth = 0), '.spec.bandwidth'],
  ['EIPClaim of busybox-0, new EIP of 100 Mbps BGP, kept', 'the delete policy missing', (o) => delete o.spec.deletePolicy, '.spec.deletePolicy: required'],
  ['EIPClaim of busybox-0, new EIP of 100 Mbps BGP, kept', 'a public address out of range', (o) => (o.status.publicIP = '203.0.113.256'), '.status.publicIP'],
  ['EIPClaim of busybox-1 for the EIP eip-xxx2 of eip-id-list', 'an EIP id with an underscore', (o) => (o.spec.eipId = 'eip_xxx2'), '.spec.eipId'],
  ['EIPClaim of busybox-1 for the EIP eip-xxx2 of eip-id-list', 'an EIP id that is an address', (o) => (o.spec.eipId = '203.0.113.7'), '.spec.eipId'],
  ['EIPClaim of busybox-1 for the EIP eip-xxx2 of eip-id-list', 'no name', (o) => delete o.metadata.name, '.metadata.name: required'],
];

describe('the CRD schemas and the seeds', () => {
  it.each(Object.keys(EXAMPLES))('accepts: %s', (name) => {
    expect(validateExample(EXAMPLES[name]!())).toEqual([]);
  });

  it.each(BROKEN)('refuses %s with %s', (example, _what, spoil, message) => {
    const object = EXAMPLES[example]!();
    expect(validateExample(object)).toEqual([]);
    spoil(object as Record<string, unknown>);
    expect(validateExample(object).join('\n')).toContain(message);
  });

  it('names a VpcIP by its address and a claim after its pod', () => {
    const vip = EXAMPLES['VpcIP 172.16.0.2 stuck in Attaching (ENI quota)']!() as unknown as K8sObject & { spec: { ip: string; claimRef: { name: string } } };
    expect(vip.metadata.name).toBe(vip.spec.ip);
    const claim = EXAMPLES['VpcIPClaim of busybox-0, fixed IP, bound']!();
    expect(vip.spec.claimRef.name).toBe(claim.metadata.name);
  });
});

// ---- RBAC ---------------------------------------------------------------------------------------

type Need = [group: string, resource: string, verbs: string[]];
const NEC_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch'];
const CLAIM_VERBS = [...NEC_VERBS, 'delete'];
const EVENT_NEEDS: Need[] = [
  ['', 'events', ['create', 'patch']],
  ['events.k8s.io', 'events', ['create', 'patch']],
];

/** What each component needs, cluster-wide (from the CRDs in this folder, so a new CRD needs its rule) and in kube-system. */
const COMPONENTS = {
  agent: {
    serviceAccount: 'eni-cni',
    core: [
      ['', 'pods', ['get', 'list', 'watch', 'patch']], // patch: the eip-public-ip annotation
      ['', 'nodes', ['get', 'list', 'watch']],
      ['', 'nodes/status', ['patch']], // the extended resources
      ...EVENT_NEEDS,
    ] as Need[],
    // The NEC: made only by a --standalone agent, never deleted (its Node owns it).
    necVerbs: NEC_VERBS,
    namespaced: [] as Need[],
  },
  ipamd: {
    serviceAccount: 'tke-eni-ipamd',
    core: [['', 'nodes', ['get', 'list', 'watch']], ['', 'pods', ['get', 'list', 'watch']], ...EVENT_NEEDS] as Need[],
    // The NEC of a node that left is deleted if the garbage collector has not yet.
    necVerbs: CLAIM_VERBS,
    namespaced: [['coordination.k8s.io', 'leases', ['get', 'create', 'update']]] as Need[],
  },
} as const;
type Component = keyof typeof COMPONENTS;

function needs(crds: Crd[], component: Component): { cluster: Set<string>; namespaced: Set<string> } {
  const c = COMPONENTS[component];
  const crdNeeds = crds.flatMap((crd): Need[] => {
    const verbs = crd.spec.names.kind === 'NodeENIConfig' ? c.necVerbs : CLAIM_VERBS;
    return [[crd.spec.group, crd.spec.names.plural, verbs], [crd.spec.group, `${crd.spec.names.plural}/status`, verbs]];
  });
  const flat = (list: Need[]) => new Set(list.flatMap(([g, r, verbs]) => verbs.map((v) => `${g}|${r}|${v}`)));
  return { cluster: flat([...c.core, ...crdNeeds]), namespaced: flat(c.namespaced) };
}

/** What a component's service account may do, through the bindings among `objects`. */
function grants(objects: K8sObject[], component: Component = 'agent'): { cluster: Set<string>; namespaced: Set<string>; rules: Rule[] } {
  const sa = { name: COMPONENTS[component].serviceAccount, namespace: 'kube-system' };
  const boundTo = (b: Binding) => b.subjects.some((s) => s.kind === 'ServiceAccount' && s.name === sa.name && s.namespace === sa.namespace);
  const expand = (rules: Rule[]) => new Set(rules.flatMap((r) => (r.apiGroups ?? []).flatMap((g) => (r.resources ?? []).flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`)))));
  const clusterRules = objects.filter((o): o is Binding => o.kind === 'ClusterRoleBinding').filter(boundTo).flatMap((b) => the<RoleObject>('ClusterRole', b.roleRef.name, objects).rules);
  const roleRules = objects
    .filter((o): o is Binding => o.kind === 'RoleBinding' && o.metadata.namespace === sa.namespace)
    .filter(boundTo)
    .flatMap((b) => the<RoleObject>(b.roleRef.kind, b.roleRef.name, objects).rules);
  return { cluster: expand(clusterRules), namespaced: expand(roleRules), rules: [...clusterRules, ...roleRules] };
}

function rbacProblems(objects: K8sObject[], component: Component = 'agent'): string[] {
  const need = needs(objects.filter((o): o is Crd => o.kind === 'CustomResourceDefinition'), component);
  const have = grants(objects, component);
  const problems: string[] = [];
  for (const n of need.cluster) if (!have.cluster.has(n)) problems.push(`missing cluster-wide ${n}`);
  for (const n of need.namespaced) if (!have.namespaced.has(n) && !have.cluster.has(n)) problems.push(`missing in kube-system ${n}`);
  for (const h of have.cluster) if (!need.cluster.has(h)) problems.push(`more than needed cluster-wide: ${h}`);
  for (const h of have.namespaced) if (!need.namespaced.has(h)) problems.push(`more than needed in kube-system: ${h}`);
  const allRules = objects.filter((o): o is RoleObject => o.kind === 'ClusterRole' || o.kind === 'Role').flatMap((r) => r.rules);
  for (const rule of allRules) {
    const words = [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs, ...(rule.resourceNames ?? [])];
    if (words.some((w) => w.includes('*'))) problems.push(`a wildcard: ${JSON.stringify(rule)}`);
    if (rule.nonResourceURLs) problems.push(`non-resource URLs: ${JSON.stringify(rule)}`);
    for (const verb of ['escalate', 'bind', 'impersonate']) if (rule.verbs.includes(verb)) problems.push(`the verb ${verb}`);
    for (const res of ['secrets', 'clusterroles', 'clusterrolebindings', 'roles', 'rolebindings', 'serviceaccounts/token']) {
      if (rule.resources?.includes(res)) problems.push(`access to ${res}`);
    }
  }
  return problems;
}

describe('RBAC', () => {
  it('the DaemonSet runs as the eni-cni service account of kube-system', () => {
    expect(POD.serviceAccountName).toBe('eni-cni');
    expect(the('ServiceAccount', 'eni-cni').metadata.namespace).toBe('kube-system');
  });

  it('grants every resource and verb the agent needs, nothing more, no wildcard and nothing admin-like', () => {
    expect(rbacProblems(OBJECTS)).toEqual([]);
  });

  it('runs tke-eni-ipamd as its own service account, with what it needs and no more (the Lease in kube-system only)', () => {
    expect(IPAMD_POD.serviceAccountName).toBe('tke-eni-ipamd');
    expect(rbacProblems(OBJECTS, 'ipamd')).toEqual([]);
    expect(grants(OBJECTS, 'ipamd').cluster.has('coordination.k8s.io|leases|update')).toBe(false);
    // The agent takes part in no election any more, and cannot delete a NEC.
    expect(grants(OBJECTS, 'agent').namespaced.size).toBe(0);
  });

  it('covers the node status patch for each extended resource the agent advertises', () => {
    // Extended resources are capacity entries of the node's status: one grant serves them all.
    expect(Object.values(EXTENDED_RESOURCES).sort()).toEqual(['tke.cloud.tencent.com/direct-eni', 'tke.cloud.tencent.com/eip', 'tke.cloud.tencent.com/eni-ip']);
    expect(grants(OBJECTS).cluster.has('|nodes/status|patch')).toBe(true);
  });

  it.each([
    ['a verb taken away', (rules: Rule[]) => rules.find((r) => r.resources?.includes('vpcips'))!.verbs.pop(), 'missing cluster-wide'],
    ['a wildcard verb', (rules: Rule[]) => (rules[0]!.verbs = ['*']), 'wildcard'],
    ['a wildcard resource', (rules: Rule[]) => rules.push({ apiGroups: [''], resources: ['*'], verbs: ['get'] }), 'wildcard'],
    ['secrets', (rules: Rule[]) => rules.push({ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }), 'more than needed'],
    ['delete of NECs', (rules: Rule[]) => rules.push({ apiGroups: [CRD_GROUP], resources: ['nodeeniconfigs'], verbs: ['delete'] }), 'more than needed'],
  ])('the RBAC check finds %s', (_name, spoil, message) => {
    const objects = structuredClone(OBJECTS);
    spoil(the<RoleObject>('ClusterRole', 'eni-cni', objects).rules);
    expect(rbacProblems(objects).join('\n')).toContain(message);
  });

  it('the RBAC check finds a CRD without its rule', () => {
    const objects = structuredClone(OBJECTS);
    const extra = structuredClone(crd('VpcENI'));
    extra.spec.names.plural = 'vpcsubnets';
    objects.push(extra);
    expect(rbacProblems(objects).join('\n')).toContain('vpcsubnets');
  });
});

// ---- the DaemonSet ------------------------------------------------------------------------------

function volume(name: string): Volume {
  const v = (POD.volumes ?? []).find((x) => x.name === name);
  if (!v) throw new Error(`no volume ${name}`);
  return v;
}
const mountAt = (c: Container, path: string) => (c.volumeMounts ?? []).find((m) => m.mountPath === path);

const MEBI = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 } as const;
function bytes(quantity: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)$/.exec(quantity);
  if (!m) throw new Error(`unexpected quantity ${quantity}`);
  return Number(m[1]) * MEBI[m[2] as keyof typeof MEBI];
}

describe('the DaemonSet', () => {
  it('runs on every node, host network, node-critical, with the node resolver', () => {
    expect(DAEMONSET.metadata).toMatchObject({ name: 'tke-eni-agent', namespace: 'kube-system' });
    expect(POD.hostNetwork).toBe(true);
    expect(POD.hostPID ?? false).toBe(false);
    expect(POD.hostIPC ?? false).toBe(false);
    expect(POD.dnsPolicy).toBe('Default');
    expect(POD.priorityClassName).toBe('system-node-critical');
    expect(POD.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(DAEMONSET.spec.template.metadata.labels).toMatchObject(DAEMONSET.spec.selector.matchLabels);
  });

  it('rolls out a part of the nodes at a time, never two agents on a node', () => {
    const { updateStrategy } = DAEMONSET.spec;
    expect(updateStrategy.type).toBe('RollingUpdate');
    expect(String(updateStrategy.rollingUpdate?.maxUnavailable)).toMatch(/^([1-9]\d*|[1-9]\d?%)$/);
    expect(updateStrategy.rollingUpdate?.maxSurge).toBe(0);
  });

  it('gives the agent NET_ADMIN, NET_RAW and SYS_ADMIN and the installer NET_ADMIN, each explained', () => {
    const agent = AGENT.securityContext!;
    expect(agent.privileged ?? false).toBe(false);
    expect([...(agent.capabilities?.add ?? [])].sort()).toEqual(['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN']);
    expect(agent.capabilities?.drop).toEqual(['ALL']);
    // The API server refuses allowPrivilegeEscalation: false next to SYS_ADMIN.
    expect(agent.allowPrivilegeEscalation).toBeUndefined();
    const install = INSTALL.securityContext!;
    expect(install.privileged ?? false).toBe(false);
    expect(install.capabilities).toEqual({ drop: ['ALL'], add: ['NET_ADMIN'] });
    expect(install.allowPrivilegeEscalation).toBe(false);
    // Each grant has its reason in a comment: "# CAP: why", as many as there are grants.
    const grantsOfCaps = [...(agent.capabilities?.add ?? []), ...(install.capabilities?.add ?? [])];
    for (const cap of new Set(grantsOfCaps)) {
      expect(DAEMONSET_TEXT.match(new RegExp(`#\\s*${cap}: \\S+`, 'g'))?.length, cap).toBe(grantsOfCaps.filter((c) => c === cap).length);
    }
    // The AppArmor exemption is for the agent's container, by name.
    const annotations = DAEMONSET.spec.template.metadata.annotations ?? {};
    expect(annotations).toEqual({ [`container.apparmor.security.beta.kubernetes.io/${AGENT.name}`]: 'unconfined' });
  });

  it('probes the agent on 127.0.0.1:61678, /readyz and /healthz', () => {
    expect(AGENT.readinessProbe?.httpGet).toEqual({ host: '127.0.0.1', path: '/readyz', port: 61678 });
    expect(AGENT.livenessProbe?.httpGet).toEqual({ host: '127.0.0.1', path: '/healthz', port: 61678 });
    expect(AGENT.ports).toContainEqual({ name: 'health', containerPort: 61678, protocol: 'TCP' });
  });

  it('limits the agent to 128Mi and asks for what it uses', () => {
    const { requests = {}, limits = {} } = AGENT.resources ?? {};
    expect(limits.memory).toBe('128Mi');
    expect(requests.cpu).toMatch(/^\d+m$/);
    expect(bytes(requests.memory ?? '0Mi')).toBeGreaterThan(0);
    expect(bytes(requests.memory ?? '0Mi')).toBeLessThanOrEqual(bytes(limits.memory ?? '0Mi'));
    expect(INSTALL.resources?.limits?.memory).toBeDefined();
  });

  it('tells the agent its node', () => {
    expect(AGENT.env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
  });

  it('mounts exactly what the agent and the installer need, as the host has it', () => {
    const host = (c: Container) =>
      Object.fromEntries((c.volumeMounts ?? []).map((m) => {
        const v = volume(m.name);
        const source = v.hostPath ? `host:${v.hostPath.path}:${v.hostPath.type}` : `configmap:${v.configMap?.name}`;
        return [m.mountPath, `${source}${m.readOnly ? ':ro' : ''}${m.mountPropagation ? `:${m.mountPropagation}` : ''}`];
      }));
    expect(host(AGENT)).toEqual({
      '/run/netns': 'host:/run/netns:DirectoryOrCreate:ro:HostToContainer',
      '/run/eni-cni': 'host:/run/eni-cni:DirectoryOrCreate',
      '/run/xtables.lock': 'host:/run/xtables.lock:FileOrCreate',
      '/lib/modules': 'host:/lib/modules:Directory:ro',
      '/etc/config': 'configmap:ip-masq-agent-config:ro',
      '/etc/eni-cni': 'configmap:eni-cni-config:ro',
      '/host/etc/cni/net.d': 'host:/etc/cni/net.d:DirectoryOrCreate',
    });
    expect(host(INSTALL)).toEqual({
      '/host/opt/cni/bin': 'host:/opt/cni/bin:DirectoryOrCreate',
      '/host/proc/sys/net': 'host:/proc/sys/net:Directory',
    });
    const used = new Set([...POD.containers, ...(POD.initContainers ?? [])].flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
    expect((POD.volumes ?? []).map((v) => v.name).sort()).toEqual([...used].sort());
    for (const v of POD.volumes ?? []) expect(v.name).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
  });

  it('mounts TKE\'s ip-masq-agent ConfigMap, when there is one, as the file the agent reads', async () => {
    const v = volume('ip-masq-agent-config');
    expect(v.configMap).toEqual({ name: 'ip-masq-agent-config', optional: true, items: [{ key: 'config', path: 'ip-masq-agent' }] });
    const mount = (AGENT.volumeMounts ?? []).find((m) => m.name === v.name)!;
    expect(`${mount.mountPath}/${v.configMap!.items![0]!.path}`).toBe((await agentConfig()).masqConfig);
  });
});

// ---- the conflist and the installer -------------------------------------------------------------

const CONFLIST_KEY = '10-eni-cni.conflist';
const INSTALL_SCRIPT = INSTALL.command?.[2] ?? '';

interface Conflist { cniVersion: string; cniVersions?: string[]; name: string; plugins: Array<{ type: string; agentSocket?: string; capabilities?: Record<string, boolean> }> }

describe('the conflist and its installer', () => {
  const conflist = JSON.parse(SETTINGS.data[CONFLIST_KEY] ?? 'null') as Conflist;

  it('the agent, not the installer, puts the ConfigMap\'s conflist into the host\'s /etc/cni/net.d (once it serves)', async () => {
    expect(INSTALL.command?.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    const v = volume('eni-cni-config');
    expect(v.configMap?.items).toEqual([{ key: CONFLIST_KEY, path: CONFLIST_KEY }]);
    const { cniConf } = await agentConfig();
    expect(cniConf?.source).toBe(`${mountAt(AGENT, '/etc/eni-cni')!.mountPath}/${CONFLIST_KEY}`);
    expect(volume(mountAt(AGENT, cniConf!.dir)!.name).hostPath?.path).toBe('/etc/cni/net.d');
    expect(INSTALL_SCRIPT).not.toContain('net.d');
    expect(INSTALL_SCRIPT).not.toContain(CONFLIST_KEY);
  });

  it('names eni-cni first, portmap after it, and the agent\'s socket', async () => {
    expect(conflist).toMatchObject({ cniVersion: '1.0.0', cniVersions: ['1.0.0', '1.1.0'], name: 'eni-cni' });
    expect(conflist.plugins.map((p) => p.type)).toEqual(['eni-cni', 'portmap']);
    expect(conflist.plugins[1]!.capabilities).toEqual({ portMappings: true });
    expect(conflist.cniVersions).toContain(conflist.cniVersion);
    expect(conflist.plugins[0]!.agentSocket).toBe((await agentConfig()).socket);
  });

  it('the plugin accepts its part of the conflist as a runtime hands it over', async () => {
    const { socket } = await agentConfig();
    for (const cniVersion of conflist.cniVersions ?? []) {
      const conf = parseNetConf(JSON.stringify({ cniVersion, name: conflist.name, ...conflist.plugins[0] }));
      expect(conf).toMatchObject({ type: 'eni-cni', name: 'eni-cni', agentSocket: socket });
    }
  });

  it('the socket is in a host directory mounted at the same path, where the plugin on the host finds it', async () => {
    const { socket, stateDir } = await agentConfig();
    const dir = dirname(socket);
    const mount = mountAt(AGENT, dir)!;
    expect(volume(mount.name).hostPath?.path).toBe(dir);
    expect(stateDir).toBe(dir);
  });

  describe('run in a scratch root', () => {
    let root = '';
    afterEach(() => rmSync(root, { recursive: true, force: true }));

    /** The script with its absolute paths moved under `root`, run by sh. */
    async function runInstall(options: { hostPortmap: boolean; imagePortmap: boolean }) {
      root = mkdtempSync(join(tmpdir(), 'eni-cni-install-'));
      const put = (path: string, text: string, mode = 0o644) => {
        mkdirSync(dirname(join(root, path)), { recursive: true });
        writeFileSync(join(root, path), text);
        chmodSync(join(root, path), mode);
      };
      put('opt/eni-cni/bin/eni-cni', '#!/bin/sh\necho new plugin\n', 0o755);
      if (options.imagePortmap) put('opt/eni-cni/bin/portmap', 'image portmap', 0o755);
      if (options.hostPortmap) put('host/opt/cni/bin/portmap', 'host portmap', 0o755);
      put('host/opt/cni/bin/eni-cni', 'old plugin', 0o755);
      put('host/proc/sys/net/ipv4/ip_forward', '0\n');
      put('host/proc/sys/net/ipv4/conf/all/rp_filter', '1\n');
      put('host/proc/sys/net/ipv4/conf/default/rp_filter', '1\n');
      const script = INSTALL_SCRIPT.replace(/(^|[\s"'])(\/host\/|\/opt\/eni-cni\/)/gm, (_m, before: string, path: string) => `${before}${root}${path}`);
      return execa('/bin/sh', ['-c', script], { reject: false });
    }
    const read = (path: string) => readFileSync(join(root, path), 'utf8');

    it('installs the plugin by renaming, and sets the sysctls', async () => {
      const result = await runInstall({ hostPortmap: true, imagePortmap: false });
      expect(result.stderr).toBe('');
      expect(result.exitCode).toBe(0);
      expect(read('host/opt/cni/bin/eni-cni')).toBe(read('opt/eni-cni/bin/eni-cni'));
      expect(statSync(join(root, 'host/opt/cni/bin/eni-cni')).mode & 0o777).toBe(0o755);
      expect(read('host/opt/cni/bin/portmap')).toBe('host portmap');
      expect(read('host/proc/sys/net/ipv4/ip_forward').trim()).toBe('1');
      expect(read('host/proc/sys/net/ipv4/conf/all/rp_filter').trim()).toBe('0');
      expect(read('host/proc/sys/net/ipv4/conf/default/rp_filter').trim()).toBe('0');
      const leftovers = readdirSync(join(root, 'host/opt/cni/bin')).filter((f) => f.includes('tmp'));
      expect(leftovers).toEqual([]);
    });

    it('brings portmap from the image when the node has none', async () => {
      const result = await runInstall({ hostPortmap: false, imagePortmap: true });
      expect(result.exitCode).toBe(0);
      expect(read('host/opt/cni/bin/portmap')).toBe('image portmap');
    });

    it('fails when there is no portmap at all, so that the agent never starts and installs the conflist', async () => {
      const result = await runInstall({ hostPortmap: false, imagePortmap: false });
      expect(result.exitCode).not.toBe(0);
      expect(result.stderr).toContain('portmap');
      expect(existsSync(join(root, 'host/opt/cni/bin/portmap'))).toBe(false);
    });
  });
});

// ---- the programs' flags -------------------------------------------------------------------------

/** The flags of DESIGN.md ("Flags:"), as TKE's users write them, and the component the seeds put each on. */
const DESIGN_FLAGS: Record<string, 'agent' | 'ipamd'> = {
  '--ip-min-warm-target': 'ipamd',
  '--ip-max-warm-target': 'ipamd',
  '--eni-min-warm-target': 'ipamd',
  '--eni-max-warm-target': 'ipamd',
  '--claim-expired-duration': 'ipamd',
  '--enable-ownerref': 'ipamd',
  '--enable-quick-release': 'agent',
};
/** Each DESIGN.md flag with a value, and the ConfigMap key that holds it. */
const SETTING_OF: Record<string, string> = {
  '--ip-min-warm-target': 'ip-min-warm-target',
  '--ip-max-warm-target': 'ip-max-warm-target',
  '--eni-min-warm-target': 'eni-min-warm-target',
  '--eni-max-warm-target': 'eni-max-warm-target',
  '--claim-expired-duration': 'claim-expired-duration',
};

/** The container's args with $(VAR) replaced as the kubelet does, from its env and the ConfigMap. */
function expandedArgs(container: Container, settings: ConfigMapObject): string[] {
  const env = new Map<string, string>();
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env.set(e.name, e.value);
    else if (e.valueFrom?.configMapKeyRef) {
      const { name, key } = e.valueFrom.configMapKeyRef;
      const value = name === settings.metadata.name ? settings.data[key] : undefined;
      if (value === undefined) throw new Error(`${e.name}: no key ${key} in the ConfigMap ${name}`);
      env.set(e.name, value);
    } else env.set(e.name, `<${e.valueFrom?.fieldRef?.fieldPath}>`);
  }
  return (container.args ?? []).map((arg) =>
    arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_m, name: string) => {
      // The kubelet leaves an unknown $(NAME) as it is: the program would get it literally.
      if (!env.has(name)) throw new Error(`${arg}: no environment variable ${name}`);
      return env.get(name)!;
    }));
}

async function parseAgent(args: string[]): Promise<AgentConfig> {
  let config: AgentConfig | undefined;
  const command = agentCommand(async (c) => {
    config = c;
  });
  command.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  await command.parseAsync(['node', 'eni-agent', ...args]);
  if (!config) throw new Error('the agent did not start');
  return config;
}

let parsed: Promise<AgentConfig> | undefined;
/** The agent's configuration from the DaemonSet's arguments, as the agent itself parses them. */
const agentConfig = (): Promise<AgentConfig> => (parsed ??= parseAgent(expandedArgs(AGENT, SETTINGS)));

/** The flags each program takes (not the hidden ones it knows only to refuse, naming the other). */
const TAKES = {
  agent: new Set(agentCommand(async () => {}).options.filter((o) => !o.hidden).map((o) => o.long)),
  ipamd: new Set(ipamdCommand(async () => {}).options.filter((o) => !o.hidden).map((o) => o.long)),
};
const CONTAINER = { agent: AGENT, ipamd: IPAMD };
const TEXT = { agent: DAEMONSET_TEXT, ipamd: IPAMD_TEXT };
const passedFlags = (c: 'agent' | 'ipamd') => (CONTAINER[c].args ?? []).map((a) => a.split('=')[0]!);
/** Commented-out args lines: `# - --flag[=…]`, a switch shown off. */
const commentedFlags = (c: 'agent' | 'ipamd') => [...TEXT[c].matchAll(/^\s*#\s*-\s*(--[a-z0-9-]+)(=\S*)?(.*)$/gm)].map((m) => ({ flag: m[1]!, value: m[2] !== undefined }));

describe("the programs' flags", () => {
  it('the agent takes every argument the DaemonSet passes, with the ConfigMap\'s values, and no cloud keys', async () => {
    expect(AGENT.command).toEqual(['/opt/eni-cni/bin/eni-agent']);
    const config = await parseAgent(expandedArgs(AGENT, SETTINGS));
    expect(config.quickRelease).toBe(SETTINGS.data['enable-quick-release'] === 'true');
    expect(config.directEni).toBe(SETTINGS.data['enable-direct-eni'] === 'true');
    expect(config.logLevel).toBe(SETTINGS.data['log-level']);
    expect(config.credentials).toBeUndefined();
    expect(config.standalone).toBe(false);
    expect(JSON.stringify(POD)).not.toMatch(/credential|secretKey|SECRET/i);
  });

  it('ipamd takes every argument the Deployment passes, with the ConfigMap\'s values', async () => {
    expect(IPAMD.command).toEqual(['/opt/eni-cni/bin/eni-ipamd']);
    const config = await parseIpamdArgs(expandedArgs(IPAMD, SETTINGS));
    expect(config.ipMinWarmTarget).toBe(Number(SETTINGS.data['ip-min-warm-target']));
    expect(config.ipMaxWarmTarget).toBe(Number(SETTINGS.data['ip-max-warm-target']));
    expect(config.eniMinWarmTarget).toBe(Number(SETTINGS.data['eni-min-warm-target']));
    expect(config.eniMaxWarmTarget).toBe(Number(SETTINGS.data['eni-max-warm-target']));
    expect(config.claimExpiredMs).toBe(0);
    expect(config.subnetIds).toEqual([]);
    expect(config.logLevel).toBe(SETTINGS.data['log-level']);
    expect(config.leaderElect).toBe(true);
  });

  it('ipamd runs as two replicas in kube-system, on the node network, through nodes not ready yet', () => {
    expect(DEPLOYMENT.metadata.namespace).toBe('kube-system');
    expect(DEPLOYMENT.spec.replicas).toBe(2);
    expect(IPAMD_POD.hostNetwork).toBe(true);
    expect(IPAMD_POD.tolerations).toContainEqual(expect.objectContaining({ key: 'node.kubernetes.io/not-ready' }));
    expect(IPAMD.env?.find((e) => e.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
  });

  it.each([
    // The seeds' edits, each on the component the seeds name (004, 002, 001).
    ['ipamd', ['--ip-min-warm-target=3', '--ip-max-warm-target=3', '--eni-min-warm-target=3', '--eni-max-warm-target=3']],
    ['ipamd', ['--claim-expired-duration=1h']],
    ['ipamd', ['--enable-ownerref']],
    ['agent', ['--enable-quick-release']],
  ] as const)("the seeds' edit of %s %j is taken by that program's parser", async (component, extra) => {
    if (component === 'ipamd') await expect(parseIpamdArgs([...expandedArgs(IPAMD, SETTINGS), ...extra])).resolves.toBeDefined();
    else await expect(parseAgent([...expandedArgs(AGENT, SETTINGS), ...extra])).resolves.toBeDefined();
  });

  it.each([
    ['the agent', '--claim-expired-duration=1h', 'tke-eni-ipamd'],
    ['the agent', '--eni-min-warm-target=3', 'tke-eni-ipamd'],
    ['the agent', '--enable-ownerref', 'tke-eni-ipamd'],
    ['the agent in a cluster', '--ip-min-warm-target=3', 'tke-eni-ipamd'],
    ['the agent in a cluster', '--ip-max-warm-target=3', 'tke-eni-ipamd'],
    ['ipamd', '--enable-quick-release', 'tke-eni-agent'],
  ])('%s refuses %s, naming %s', async (who, flag, names) => {
    const inCluster = who === 'the agent in a cluster' ? ['--kubeconfig', '/etc/kubernetes/kubelet.conf', '--node-name', 'node-1'] : [];
    const parse = who === 'ipamd' ? parseIpamdArgs([flag]) : parseAgent([...inCluster, flag]);
    await expect(parse).rejects.toThrow(names);
  });

  it('a standalone agent keeps its own warm targets', async () => {
    await expect(parseAgent(['--ip-min-warm-target=3', '--ip-max-warm-target=4'])).resolves.toMatchObject({ ipMinWarmTarget: 3, ipMaxWarmTarget: 4 });
    await expect(parseAgent(['--kubeconfig', '/k', '--node-name', 'n', '--standalone', '--ip-min-warm-target=3', '--ip-max-warm-target=4'])).resolves.toMatchObject({ ipMinWarmTarget: 3 });
  });

  it('refuses a claim expiry under 5m, as seed 002 says', async () => {
    await expect(parseIpamdArgs(['--claim-expired-duration=4m'])).rejects.toThrow(/at least 5m/);
    await expect(parseIpamdArgs(['--claim-expired-duration=5m'])).resolves.toMatchObject({ claimExpiredMs: 300_000 });
  });

  it('the check would see a flag a program does not take', async () => {
    await expect(parseAgent(['--enable-ownerref-typo'])).rejects.toThrow(/unknown option/);
    await expect(parseIpamdArgs(['--enable-ownerref-typo'])).rejects.toThrow(/unknown option/);
  });

  it('the defaults are DESIGN.md\'s: 5 and 5 addresses, 1 and 1 direct ENIs, claims kept forever', () => {
    expect(SETTINGS.data).toMatchObject({ 'ip-min-warm-target': '5', 'ip-max-warm-target': '5', 'eni-min-warm-target': '1', 'eni-max-warm-target': '1', 'claim-expired-duration': '' });
  });

  it('every flag of DESIGN.md is passed, or shown commented out as a switch, on the component the seeds name, which takes it', () => {
    for (const [flag, component] of Object.entries(DESIGN_FLAGS)) {
      const shown = passedFlags(component).includes(flag) || commentedFlags(component).some((c) => c.flag === flag && !c.value);
      expect(shown, `${flag} on ${component}`).toBe(true);
      expect(TAKES[component].has(flag), `${component} takes ${flag}`).toBe(true);
    }
  });

  it('every setting of the ConfigMap reaches ipamd through one variable', () => {
    for (const [flag, key] of Object.entries(SETTING_OF)) {
      const variable = (IPAMD.env ?? []).find((e) => e.valueFrom?.configMapKeyRef?.key === key);
      expect(variable, `an env variable from ${key}`).toBeDefined();
      expect(IPAMD.args ?? [], flag).toContain(`${flag}=$(${variable!.name})`);
    }
  });

  it('README.md says how to apply, and which component takes which of TKE\'s flags', () => {
    const readme = readFileSync(join(DIR, 'README.md'), 'utf8');
    expect(readme).toContain('kubectl apply -k daemonset/');
    for (const flag of Object.keys(DESIGN_FLAGS)) expect(readme, flag).toContain(flag);
    expect(readme).toContain('kubectl edit deploy tke-eni-ipamd -n kube-system');
  });
});
