// `npm run image` as an operator runs it after `npm run build`: the image is made from scratch, says its
// size, and every program and tool the manifests run works inside it. Then the image is rolled out on a
// lab node as kubelet runs the DaemonSet's pod, and upgraded in place (the second describe).
import { createHash, randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ARCHIVE, IMAGE } from '../hack/build/image.ts';
import { startContainerd, type Containerd } from '../hack/cri/containerd.ts';
import type { CriClient, CriError } from '../hack/cri/cri-client.ts';
import { containerSpecOf } from '../hack/cri/pod-spec.ts';
import { Lab, pings, type LabNode } from '../hack/lab/lab.ts';
import { REPO } from '../hack/lab/node-agent.ts';
import { httpGetIn } from '../hack/lab/sh.ts';
import { hostIfName } from '../shared/names.ts';
import { agentCallFile } from '../shared/protocol.ts';
import { until } from './eventually.ts';

let built: { stdout: string; stderr: string; exitCode?: number | undefined };
let container: string | undefined;
const inImage = (...args: string[]) => execa('buildah', ['run', '--isolation', 'chroot', container!, '--', ...args], { reject: false });

beforeAll(async () => {
  built = await execa('npx', ['tsx', 'hack/build/image.ts'], { cwd: REPO, reject: false });
  if (built.exitCode === 0) container = (await execa('buildah', ['from', IMAGE])).stdout.trim();
}, 240_000);
afterAll(async () => {
  if (container) await execa('buildah', ['rm', container], { reject: false });
});

describe('npm run image', () => {
  it('builds the tag the manifests name and prints its size', () => {
    expect(built.exitCode, built.stderr).toBe(0);
    expect(built.stdout).toMatch(new RegExp(`image: ${IMAGE.replace(/[/.]/g, '\\$&')}, \\d+(\\.\\d+)? [kMG]B`));
    expect(existsSync(ARCHIVE)).toBe(true);
  });

  it('holds the four programs, and the tools the agent and the install step run', async () => {
    for (const program of ['eni-agent', 'eni-ipamd', 'eni-cnictl']) {
      const r = await inImage(`/opt/eni-cni/bin/${program}`, '--help');
      expect(r.exitCode, `${program}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('Usage:');
    }
    const version = await execa('buildah', ['run', '--isolation', 'chroot', '--env', 'CNI_COMMAND=VERSION', container!, '--', '/opt/eni-cni/bin/eni-cni'], { input: '{"cniVersion":"1.0.0"}', reject: false });
    expect(JSON.parse(version.stdout).supportedVersions).toContain('1.0.0');
    for (const [tool, says] of [['ip', 'iproute2'], ['iptables', 'iptables v'], ['iptables-restore', 'iptables-restore v'], ['nsenter', 'util-linux']] as const) {
      const r = await inImage(tool, tool === 'ip' ? '-V' : '--version');
      expect(r.exitCode, `${tool}: ${r.stderr}`).toBe(0);
      expect(r.stdout, tool).toContain(says);
    }
    // The install step's shell, with what its script uses, and /var/run where the agent's paths expect it.
    const sh = await inImage('/bin/sh', '-c', 'cp /opt/eni-cni/bin/portmap /tmp/p && chmod 0755 /tmp/p && mv /tmp/p /tmp/q && test -x /tmp/q && cd /var/run && pwd -P');
    expect(sh.exitCode, sh.stderr).toBe(0);
    expect(sh.stdout.trim()).toBe('/run');
  });
});

// ---- the DaemonSet's pod, run from the image on a lab node through CRI ---------------------------------
//
// kubelet's part is played by hack/cri/pod-spec.ts: daemonset.yaml's pod spec, unchanged but for what
// only the lab knows (below), becomes a host-network sandbox, the init container, then the agent container,
// with the manifest's mounts, capabilities and read-only root. What the lab changes, and why:
// - the node's CNI dirs and /run/eni-cni are the lab node's own (a lab node is a network namespace on a
//   shared host), so the conflist's agentSocket names that host path; a host without /lib/modules (a
//   container) lends an empty one;
// - the agent is given the lab's kubeconfig (the API server stand-in cannot serve the in-cluster TLS
//   address a kubelet would), and /etc/hosts names the cloud's metadata service, as a TKE node resolves it.
describe('the DaemonSet rolled out from the image on a lab node', () => {
  let lab: Lab;
  let node: LabNode;
  let containerd: Containerd;
  let cri: CriClient;
  let dir: string;
  let host: { binDir: string; confDir: string; runDir: string; modules: string };
  const conflistPath = () => join(host.confDir, '10-eni-cni.conflist');
  const manifest = () => {
    const docs = (file: string) => parseAllDocuments(readFileSync(join(REPO, 'daemonset', file), 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string }; data?: Record<string, string>; spec?: { template: { metadata?: { annotations?: Record<string, string> }; spec: k8s.V1PodSpec } } });
    const template = docs('daemonset.yaml').find((o) => o.kind === 'DaemonSet')!.spec!.template;
    const pod = template.spec;
    const settings = { ...docs('configmap.yaml').find((o) => o.metadata.name === 'eni-cni-config')!.data! };
    settings['10-eni-cni.conflist'] = settings['10-eni-cni.conflist']!.replace('"/run/eni-cni/agent.sock"', JSON.stringify(join(host.runDir, 'agent.sock')));
    return { pod, settings, annotations: template.metadata?.annotations ?? {} };
  };

  /** kubelet running the DaemonSet's pod: the sandbox, the init container to completion, then the agent. */
  async function runAgentPod(image: string): Promise<{ sandbox: string; agent: string; log: (container: string) => Promise<string> }> {
    const { pod, settings, annotations } = manifest();
    const spec = { name: `tke-eni-agent-${image.split(':').pop()!.replace(/\W/g, '')}`, namespace: 'kube-system', uid: randomUUID(), hostNetwork: true };
    const volumeDir = join(dir, 'volumes', spec.uid);
    const environment = {
      hostPath: (path: string) => ({ '/opt/cni/bin': host.binDir, '/etc/cni/net.d': host.confDir, '/run/eni-cni': host.runDir, ...(existsSync('/lib/modules') ? {} : { '/lib/modules': host.modules }) })[path] ?? path,
      configMaps: { 'eni-cni-config': settings },
      fields: { 'spec.nodeName': node.name, 'metadata.namespace': spec.namespace },
      volumeDir,
      image,
      extraMounts: [{ containerPath: '/etc/hosts', hostPath: join(dir, 'hosts'), readonly: true }, { containerPath: '/etc/eni-cni-lab', hostPath: join(dir, 'kube'), readonly: true }],
    };
    const sandbox = await cri.runPodSandbox(spec);
    // kubelet's log layout: <pod log dir>/<container>/<attempt>.log
    const log = (name: string) => readFile(join(containerd.dir, 'pods', `${spec.namespace}_${spec.name}_${spec.uid}`, name, '0.log'), 'utf8').catch(() => '');
    for (const init of pod.initContainers ?? []) {
      const id = await cri.createContainer(sandbox, spec, containerSpecOf(pod, init, environment, annotations));
      await cri.startContainer(id);
      const done = await until(`init container ${init.name}`, () => cri.containerStatus(id), (s) => s.state === 'CONTAINER_EXITED', 30_000);
      expect(done.exitCode, `${init.name}: ${await log(init.name)}`).toBe(0);
    }
    const container = containerSpecOf(pod, pod.containers[0]!, environment, annotations);
    container.args = [...(container.args ?? []), '--kubeconfig=/etc/eni-cni-lab/kubeconfig'];
    const agent = await cri.createContainer(sandbox, spec, container);
    await cri.startContainer(agent);
    return { sandbox, agent, log };
  }
  /** GET on the agent's health port in the node's network, as kubelet's probes do. */
  const health = (path: string) => httpGetIn(node.ns, `http://127.0.0.1:61678${path}`);
  const ready = async () => (await health('/readyz')).ok;
  const agentStatus = async () => JSON.parse((await health('/status')).body) as { allocations: Array<{ address: string; pod?: { name: string } }> };
  const netnsOf = async (sandbox: string) => (await cri.podSandboxStatus(sandbox, { verbose: true })).netnsPath!.split('/').pop()!;

  beforeAll(async () => {
    expect(built.exitCode, built.stderr).toBe(0);
    lab = await Lab.up({ nodes: 1, kube: true, taskMs: 30 });
    node = lab.nodes[0]!;
    dir = mkdtempSync(join(tmpdir(), 'eni-cni-rollout-'));
    host = { binDir: join(dir, 'opt-cni-bin'), confDir: join(dir, 'etc-cni-net.d'), runDir: join(dir, 'run-eni-cni'), modules: join(dir, 'lib-modules') };
    for (const d of [host.binDir, host.confDir, host.modules, join(dir, 'kube')]) mkdirSync(d, { recursive: true });
    writeFileSync(join(dir, 'hosts'), `127.0.0.1 localhost\n169.254.0.23 metadata.tencentyun.com\n`);
    copyFileSync(lab.kubeconfigFile('admin'), join(dir, 'kube', 'kubeconfig'));
    containerd = await startContainerd({ netns: node.ns, cniBinDir: host.binDir, cniConfDir: host.confDir, netnsMountsUnder: 'host' });
    await execa('ctr', ['-a', containerd.socket, '-n', 'k8s.io', 'images', 'import', ARCHIVE]);
    cri = containerd.client({ timeoutMs: 60_000 });
  }, 180_000);
  afterAll(async () => {
    try {
      await containerd?.stop();
    } finally {
      try {
        await lab?.down();
      } finally {
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    }
  }, 120_000);

  it('installs the plugin, and the conflist only once the agent serves; pods started then get addresses', async () => {
    // The image as the manifests name it.
    const image = manifest().pod.containers[0]!.image!;
    expect(image).toBe(IMAGE);
    const { log } = await runAgentPod(image);
    // The init step installed the plugin (and portmap: this node had none) and set the sysctls, not the conflist.
    expect(readFileSync(join(host.binDir, 'eni-cni')).equals(readFileSync(join(REPO, 'dist/bin/eni-cni')))).toBe(true);
    expect(existsSync(join(host.binDir, 'portmap'))).toBe(true);
    expect((await execa('ip', ['netns', 'exec', node.ns, 'sysctl', '-n', 'net.ipv4.ip_forward'])).stdout).toBe('1');
    // No tke-eni-ipamd yet: the agent waits for its NodeENIConfig, is not ready, and the node has no conflist.
    await until('the agent waiting for tke-eni-ipamd', () => log('eni-agent'), (text) => text.includes('waiting for tke-eni-ipamd'), 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await ready()).toBe(false);
    expect(existsSync(conflistPath())).toBe(false);
    await lab.startIpamd({ minWarm: 3, maxWarm: 6 });
    await until('the agent ready', ready, (ok) => ok, 45_000);
    await until('the conflist installed', () => existsSync(conflistPath()), (there) => there, 5_000);
    // Its native addons came with the image: pods are plumbed in the agent's own process.
    expect(await log('eni-agent')).toContain('pods are plumbed over netlink');
    // And the plugin's: the agent put the plugin's request to it beside its socket on the host, under the
    // digest the plugin was built with.
    const agentCall = readFileSync(new URL('../dist/native/agent-call.node', import.meta.url));
    expect(readFileSync(agentCallFile(join(host.runDir, 'agent.sock'), createHash('sha256').update(agentCall).digest('hex'))).equals(agentCall)).toBe(true);
    expect(JSON.parse(readFileSync(conflistPath(), 'utf8'))).toEqual(JSON.parse(manifest().settings['10-eni-cni.conflist']!));

    const pods = await Promise.all(['web-0', 'web-1', 'web-2'].map((name) => cri.runPodSandbox({ name, namespace: 'shop' })));
    const statuses = await Promise.all(pods.map((id) => cri.podSandboxStatus(id)));
    for (const s of statuses) expect(s.ip).toMatch(/^10\.0\.1[67]\./);
    expect(new Set(statuses.map((s) => s.ip)).size).toBe(3);
    expect(await pings(await netnsOf(pods[0]!), statuses[1]!.ip)).toBe(true);
  }, 150_000);

  it('upgrades in place: running pods keep their addresses, an ADD in the gap is told to try again later, a DEL in the gap is kept', async () => {
    const before = await agentStatus();
    const pods = (await cri.listPodSandbox({ state: 'SANDBOX_READY' })).filter((s) => s.namespace === 'shop');
    expect(pods).toHaveLength(3);
    const addresses = new Map(await Promise.all(pods.map(async (p) => [p.name, (await cri.podSandboxStatus(p.id)).ip] as const)));
    const old = (await cri.listPodSandbox()).find((s) => s.namespace === 'kube-system')!;
    // The same build under the next version's tag, as `kustomize edit set image` would name it.
    const next = IMAGE.replace(/:[^:]+$/, ':0.1.1-next');
    await execa('ctr', ['-a', containerd.socket, '-n', 'k8s.io', 'images', 'tag', `docker.io/${IMAGE}`, `docker.io/${next}`]);

    // kubelet deletes the old pod (maxSurge 0): the agent gets SIGTERM, the sandbox goes.
    for (const c of await cri.listContainers({ sandboxId: old.id })) await cri.stopContainer(c.id, 30);
    await cri.stopPodSandbox(old.id);
    await cri.removePodSandbox(old.id);
    expect(await ready()).toBe(false);
    // The gap: the conflist stays, the running pods keep their network, a new pod is told to try again later.
    expect(existsSync(conflistPath())).toBe(true);
    const [web0, web1, web2] = ['web-0', 'web-1', 'web-2'].map((name) => pods.find((p) => p.name === name)!);
    expect(await pings(await netnsOf(web0!.id), addresses.get('web-1')!)).toBe(true);
    const refused = await cri.runPodSandbox({ name: 'late-0', namespace: 'shop' }).then(() => undefined, (e: CriError) => e.details);
    expect(refused).toMatch(/try again later/i);
    // A pod deleted in the gap: the plugin keeps its DEL for the next agent, which frees the address.
    await cri.stopPodSandbox(web2!.id);
    await cri.removePodSandbox(web2!.id);
    // Noted for the next agent (so is the refused sandbox, which containerd tears down too).
    expect(readdirSync(join(host.runDir, 'pending-del'))).toContain(hostIfName(web2!.id, 'eth0'));

    const { log } = await runAgentPod(next);
    await until('the new agent ready', ready, (ok) => ok, 45_000);
    const after = await agentStatus();
    expect(after.allocations.map((a) => a.pod?.name).sort()).toEqual(['web-0', 'web-1']);
    for (const name of ['web-0', 'web-1']) {
      expect(after.allocations.find((a) => a.pod?.name === name)?.address).toBe(addresses.get(name));
      expect(before.allocations.find((a) => a.pod?.name === name)?.address).toBe(addresses.get(name));
      expect((await cri.podSandboxStatus(pods.find((p) => p.name === name)!.id)).ip).toBe(addresses.get(name));
    }
    expect(await pings(await netnsOf(web0!.id), addresses.get('web-1')!)).toBe(true);
    expect(await pings(await netnsOf(web1!.id), addresses.get('web-0')!)).toBe(true);
    // The pod that was refused is retried by kubelet and now starts, with an address nobody else holds.
    const late = await cri.runPodSandbox({ name: 'late-0', namespace: 'shop' });
    const lateIp = (await cri.podSandboxStatus(late)).ip;
    expect(lateIp).toMatch(/^10\.0\.1[67]\./);
    expect([addresses.get('web-0'), addresses.get('web-1')]).not.toContain(lateIp);
    expect(await pings(await netnsOf(late), addresses.get('web-0')!)).toBe(true);
    const said = await log('eni-agent');
    expect(said).toContain('a DEL made while the agent was away');
    expect(readdirSync(join(host.runDir, 'pending-del'))).toEqual([]);
    // The conflist was there as it is: the new agent leaves it alone.
    expect(said).not.toContain('installed the CNI network configuration');
  }, 180_000);
});
