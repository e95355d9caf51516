// The CRI harness with Debian's reference plugins (ptp + host-local): a real containerd runs a pod sandbox
// as kubelet would, the plugins give it an address, and stopping and removing it gives the address back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startContainerd, type Containerd } from '../hack/cri/containerd.ts';
import { CriError, type CriClient } from '../hack/cri/cri-client.ts';
import { ip, listNamespaces, run } from '../hack/lab/sh.ts';

const NETWORK = 'cri-harness';
const SUBNET_PREFIX = '172.30.250.'; // a /24 nothing else here uses
const GATEWAY = `${SUBNET_PREFIX}1`;

let work: string;
let ipamDir: string;
let containerd: Containerd | undefined;
let cri: CriClient;
let cniNamespacesBefore: string[];

beforeAll(async () => {
  cniNamespacesBefore = await cniNamespaces();
  work = await mkdtemp(join(tmpdir(), 'cri-harness-test-'));
  const binDir = join(work, 'bin');
  const confDir = join(work, 'net.d');
  ipamDir = join(work, 'ipam'); // host-local's leases, private to this run
  await mkdir(binDir);
  await mkdir(confDir);
  for (const plugin of ['ptp', 'host-local']) await copyFile(join('/usr/lib/cni', plugin), join(binDir, plugin));
  const conflist = {
    cniVersion: '1.0.0',
    name: NETWORK,
    plugins: [{ type: 'ptp', ipam: { type: 'host-local', subnet: `${SUBNET_PREFIX}0/24`, dataDir: ipamDir, routes: [{ dst: '0.0.0.0/0' }] } }],
  };
  await writeFile(join(confDir, '10-cri-harness.conflist'), JSON.stringify(conflist));
  containerd = await startContainerd({ cniBinDir: binDir, cniConfDir: confDir });
  cri = containerd.client();
});

afterAll(async () => {
  const instanceDir = containerd?.dir;
  try {
    await containerd?.stop();
    // The sandboxes the last test left running got their DEL from stop(): no address stays leased.
    expect(await leasedAddresses()).toEqual([]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  // Nothing of the instance is left: no process, mount, cgroup or dir, no netns, no pod route.
  if (instanceDir) {
    expect(await processesMentioning(instanceDir)).toEqual([]);
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(instanceDir);
    expect(existsSync(instanceDir)).toBe(false);
    expect(await cgroupsNamed(containerd!.cgroupParent)).toEqual([]);
  }
  expect(await cniNamespaces()).toEqual(cniNamespacesBefore);
  expect(await ip(undefined, 'route', 'show')).not.toContain(SUBNET_PREFIX);
});

describe('the containerd CRI harness', () => {
  it('starts a containerd that answers CRI v1', async () => {
    expect(await cri.version()).toMatchObject({ runtimeName: 'containerd', runtimeApiVersion: 'v1' });
    console.log(`containerd start-up (ms): ${JSON.stringify(roundAll(containerd!.timings))}`);
  });

  it('runs a pod sandbox to READY with a host-local address, and releases it on stop and remove', async () => {
    const started = performance.now();
    const id = await cri.runPodSandbox({ name: 'web-0', namespace: 'harness' });
    console.log(`RunPodSandbox with ptp + host-local: ${Math.round(performance.now() - started)} ms`);

    const status = await cri.podSandboxStatus(id, { verbose: true });
    expect(status).toMatchObject({ id, name: 'web-0', namespace: 'harness', state: 'SANDBOX_READY' });
    expect(status.ip.startsWith(SUBNET_PREFIX) && status.ip !== GATEWAY).toBe(true);
    // host-local leased the address to this sandbox; ptp put it on the pod's eth0 and routed it from the host.
    expect(await readFile(join(ipamDir, NETWORK, status.ip), 'utf8')).toContain(id);
    expect(status.netnsPath).toBeDefined();
    const podAddresses = await run('nsenter', [`--net=${status.netnsPath!}`, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
    expect(podAddresses).toContain(`${status.ip}/24`);
    expect(await ip(undefined, 'route', 'show', `${status.ip}/32`)).toMatch(/dev veth/);
    expect((await cri.listPodSandbox({ state: 'SANDBOX_READY' })).map((s) => s.id)).toContain(id);

    await cri.stopPodSandbox(id);
    expect((await cri.podSandboxStatus(id)).state).toBe('SANDBOX_NOTREADY');
    expect(await leasedAddresses()).toEqual([]);
    expect(await ip(undefined, 'route', 'show', `${status.ip}/32`)).toBe('');
    expect(existsSync(status.netnsPath!)).toBe(false);

    // The second DEL (containerd calls one on remove too) must find nothing to undo, and fail on nothing.
    await cri.removePodSandbox(id);
    expect((await cri.listPodSandbox()).map((s) => s.id)).not.toContain(id);
    const gone = await cri.podSandboxStatus(id).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(CriError);
    expect((gone as CriError).code).toBe(grpc.status.NOT_FOUND);
  });

  it('leaves sandboxes running for stop() to take down (checked after it, in afterAll)', async () => {
    const before = (await leasedAddresses()).length;
    await cri.runPodSandbox({ name: 'left-0' });
    await cri.runPodSandbox({ name: 'left-1' });
    expect(await leasedAddresses()).toHaveLength(before + 2);
  });
});

/** containerd names pod netns cni-…; other suites' namespaces come and go meanwhile, so only these are compared. */
async function cniNamespaces(): Promise<string[]> {
  return (await listNamespaces()).filter((name) => name.startsWith('cni-')).sort();
}

/** A cgroup path in any hierarchy: v1 controllers under /sys/fs/cgroup/*, or v2 at /sys/fs/cgroup itself. */
async function cgroupsNamed(path: string): Promise<string[]> {
  const hierarchies = (await readdir('/sys/fs/cgroup')).map((h) => join('/sys/fs/cgroup', h));
  return ['/sys/fs/cgroup', ...hierarchies].map((root) => join(root, path)).filter((p) => existsSync(p));
}

/** The addresses host-local holds leases for (its dir also has a lock and a last-reserved marker). */
async function leasedAddresses(): Promise<string[]> {
  const entries = await readdir(join(ipamDir, NETWORK)).catch(() => []);
  return entries.filter((name) => name.startsWith(SUBNET_PREFIX));
}

async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) found.push(`${pid}: ${cmdline.replaceAll('\0', ' ')}`);
  }
  return found;
}

function roundAll(timings: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)]));
}
