// The operator's manifests apply cleanly, as `kubectl apply -k daemonset/` does, to the API server
// stand-in; the CRDs they register then serve their short names and reject bad objects.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../hack/apiserver/server.ts';

let server: ApiServer;
let dir: string;
let kubeconfig: string;
const kubectl = (...args: string[]) => execa('kubectl', ['--kubeconfig', kubeconfig, ...args], { reject: false });

beforeAll(async () => {
  server = await startApiServer();
  dir = mkdtempSync(`${tmpdir()}/eni-cni-manifests-`);
  kubeconfig = await server.writeKubeconfig(`${dir}/kubeconfig`);
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('daemonset/ manifests', () => {
  it('apply with kubectl apply -k, and the objects are there', async () => {
    const applied = await kubectl('apply', '-k', 'daemonset/');
    expect(applied.exitCode, applied.stderr).toBe(0);
    for (const kind of ['customresourcedefinition/nodeeniconfigs.networking.tke.cloud.tencent.com', 'clusterrole/eni-cni', 'daemonset/tke-eni-agent']) {
      expect(applied.stdout).toContain(kind.split('/')[1]!.split('.')[0]);
    }
    const ds = await kubectl('get', 'daemonset', '-n', 'kube-system', 'tke-eni-agent', '-o', 'jsonpath={.spec.template.spec.hostNetwork}');
    expect(ds.stdout).toBe('true');
    // The seeds' `kubectl edit deploy tke-eni-ipamd -n kube-system` finds the cluster half.
    const deploy = await kubectl('get', 'deploy', '-n', 'kube-system', 'tke-eni-ipamd', '-o', 'jsonpath={.spec.replicas} {.spec.template.spec.containers[0].command[0]}');
    expect(deploy.exitCode, deploy.stderr).toBe(0);
    expect(deploy.stdout).toBe('2 /opt/eni-cni/bin/eni-ipamd');
    // Applying again changes nothing and still succeeds.
    expect((await kubectl('apply', '-k', 'daemonset/')).exitCode).toBe(0);
  });

  it('registers the CRDs under their short names, and their schemas refuse a bad object', async () => {
    for (const short of ['nec', 'vipc', 'vip', 'veni', 'eipc']) {
      const listed = await kubectl('get', short, '-A');
      expect(listed.exitCode, `${short}: ${listed.stderr}`).toBe(0);
    }
    writeFileSync(
      `${dir}/bad-claim.yaml`,
      'apiVersion: networking.tke.cloud.tencent.com/v1\nkind: EIPClaim\nmetadata: {name: web-0, namespace: default}\nspec: {deletePolicy: Never, isp: NOT-AN-ISP}\n',
    );
    const bad = await kubectl('apply', '-f', `${dir}/bad-claim.yaml`);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toContain('isp');
  });

  it('an operator\'s overlay (hack/examples/overlay) sets the image and the settings, keeping the rest of eni-cni-config', async () => {
    const built = await execa('kubectl', ['kustomize', 'hack/examples/overlay'], { reject: false });
    expect(built.exitCode, built.stderr).toBe(0);
    const objects = YAML.parseAllDocuments(built.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string }; data?: Record<string, string>; spec?: { template?: { spec: { containers: Array<{ image: string }>; initContainers?: Array<{ image: string }> } } } });
    const images = objects.flatMap((o) => [...(o.spec?.template?.spec.containers ?? []), ...(o.spec?.template?.spec.initContainers ?? [])].map((c) => c.image));
    expect(images).toEqual(['registry.example.com/eni-cni/agent:0.1.0', 'registry.example.com/eni-cni/agent:0.1.0', 'registry.example.com/eni-cni/agent:0.1.0']);
    const config = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'eni-cni-config')!;
    expect(config.data).toMatchObject({ 'subnet-ids': 'subnet-a1b2c3d4,subnet-e5f6a7b8', 'security-group-ids': 'sg-a1b2c3d4', 'ip-min-warm-target': '3', 'ip-max-warm-target': '10', 'enable-quick-release': 'true', 'log-level': 'debug' });
    // What the overlay does not name stays the base's: the conflist, the claim expiry.
    const base = YAML.parse(readFileSync('daemonset/configmap.yaml', 'utf8')) as { data: Record<string, string> };
    expect(config.data?.['10-eni-cni.conflist']).toBe(base.data['10-eni-cni.conflist']);
    expect(config.data?.['claim-expired-duration']).toBe(base.data['claim-expired-duration']);
    const applied = await kubectl('apply', '-k', 'hack/examples/overlay');
    expect(applied.exitCode, applied.stderr).toBe(0);
    const level = await kubectl('get', 'configmap', '-n', 'kube-system', 'eni-cni-config', '-o', 'jsonpath={.data.log-level}');
    expect(level.stdout).toBe('debug');
  });
});
