// A Never pod's ADD on the node's side, with the claims API faked in memory (the lab suites run it for
// real): the node's own view of its ENIs may lag behind the cloud, so a claim on its way elsewhere is not
// taken for here.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FixedIps } from './fixed-ips.ts';
import type { VpcIpClaim } from './k8s/claims.ts';
import { PoolStore } from './pool/store.ts';

const ADDRESS = '10.0.16.20';

function setup(status: VpcIpClaim['status'], spec: Partial<VpcIpClaim['spec']> = {}) {
  let claim: VpcIpClaim = { metadata: { name: 'web-0', namespace: 'default', resourceVersion: '1' }, spec: { deletePolicy: 'Never', ip: ADDRESS, subnetId: 'subnet-pod3a', ...spec }, status };
  const patches: Array<Record<string, unknown>> = [];
  const kube = {
    getClaim: async () => structuredClone(claim),
    createClaim: async () => {
      throw new Error('not expected');
    },
    patchClaim: async () => {
      throw new Error('not expected');
    },
    patchClaimStatus: async (_c: VpcIpClaim, patch: Record<string, unknown>) => {
      patches.push(patch);
      claim = { ...claim, metadata: { ...claim.metadata, resourceVersion: String(Number(claim.metadata.resourceVersion) + 1) }, status: { ...claim.status, ...(patch as VpcIpClaim['status']) } };
      return structuredClone(claim);
    },
    removeClaimFinalizer: async () => undefined,
  };
  const store = new PoolStore();
  // This node's view: the address still on its ENI (the view lags behind the cloud).
  store.addEni({ id: 'eni-two', mac: '', subnetId: 'subnet-pod3a', primaryIp: '10.0.16.2', gateway: '10.0.16.1', subnetCidr: '10.0.16.0/24', capacity: 9, ifName: 'eth1', table: 1001, addresses: new Set([ADDRESS]) });
  const fixed = new FixedIps({ kube, store, giveBack: async () => undefined, nodeName: 'node-2', save: () => undefined, log: pino({ level: 'silent' }), pollMs: 20 });
  return { fixed, patches, setStatus: (s: VpcIpClaim['status']) => (claim = { ...claim, status: { ...claim.status, ...s } }) };
}

const details = { containerId: 'c1', ifName: 'eth0', netns: '/var/run/netns/x', hostIf: 'enic1', pod: { namespace: 'default', name: 'web-0', uid: 'uid-2' }, allocatedAt: 0 };
const pod = { namespace: 'default', name: 'web-0', uid: 'uid-2' };

describe("a Never pod's address on its node", () => {
  it('comes at once from the node when the claim says it is here and going nowhere', async () => {
    const { fixed, patches } = setup({ phase: 'Released', ip: ADDRESS, nodeName: 'node-2', eniId: 'eni-two' });
    const got = await fixed.take(pod, details, Date.now() + 1000, async () => undefined);
    expect(got).toMatchObject({ address: ADDRESS, eniId: 'eni-two' });
    expect(patches.some((p) => p.targetNode === 'node-2')).toBe(false);
  });

  it('is not taken while the claim says it is on its way to another node, whatever this node still sees', async () => {
    const { fixed, patches, setStatus } = setup({ phase: 'Pending', ip: ADDRESS, nodeName: 'node-2', eniId: 'eni-two', targetNode: 'node-1', targetPodUID: 'uid-1', message: 'moving' });
    const taking = fixed.take(pod, details, Date.now() + 2000, async () => undefined);
    await new Promise((r) => setTimeout(r, 200));
    // It asked for the address back, and waits for ipamd to say it is here.
    expect(patches.some((p) => p.targetNode === 'node-2')).toBe(true);
    setStatus({ phase: 'Released', nodeName: 'node-2', eniId: 'eni-two', targetNode: undefined, targetPodUID: undefined, message: 'on node-2' });
    const got = await taking;
    expect(got).toMatchObject({ address: ADDRESS });
  });

  it("is refused when ipamd turns its ask down, though the claim still names this node", async () => {
    // The claim's node is this one only because a move away has not been recorded yet; ipamd refuses the
    // ask (the address is on another ENI now): the pod must not be given what this node's stale view shows.
    const { fixed, setStatus } = setup({ phase: 'Pending', ip: ADDRESS, nodeName: 'node-2', eniId: 'eni-two', targetNode: 'node-1', targetPodUID: 'uid-1', message: 'moving' });
    const taking = fixed.take(pod, details, Date.now() + 2000, async () => undefined);
    await new Promise((r) => setTimeout(r, 100));
    setStatus({ targetNode: undefined, targetPodUID: undefined, refusedPodUID: 'uid-2', message: 'address 10.0.16.20 is held by eni-one of ins-1, not by an ENI of node node-2' });
    const got = await taking;
    expect(got).toMatchObject({ ok: false, error: { code: 'fixed-ip-unavailable', message: expect.stringContaining('held by eni-one') } });
  });

  it('refuses a pod whose claim keeps its address for the other network mode, naming both', async () => {
    const { fixed, patches } = setup({ phase: 'Released', ip: ADDRESS, nodeName: 'node-2', eniId: 'eni-two' }, { networkMode: 'tke-direct-eni' });
    const got = await fixed.take(pod, details, Date.now() + 500, async () => undefined);
    expect(got).toMatchObject({ ok: false, error: { code: 'fixed-ip-unavailable', message: expect.stringMatching(/tke-direct-eni pods; the pod asks for tke-route-eni/) } });
    expect(patches).toEqual([]);
  });
});
