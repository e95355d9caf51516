import { describe, expect, it } from 'vitest';
import { hostDrift, type HostFacts } from './drift.ts';
import { podPlan } from './plan.ts';

const pod = { address: '10.0.16.5', hostIf: 'eni0123456789a', table: 2003, containerId: 'c1', ifName: 'eth0' };
const healthy: HostFacts = { objects: [...podPlan(pod).onHost, { kind: 'up', dev: 'eth0' }, { kind: 'rule', priority: 32766, table: 254 }], links: ['eth0', pod.hostIf] };
const without = (drop: (o: HostFacts['objects'][number]) => boolean): HostFacts => ({ ...healthy, objects: healthy.objects.filter((o) => !drop(o)) });

describe("the host side's drift", () => {
  it('finds nothing on a pod as planned', () => {
    expect(hostDrift([pod], healthy)).toEqual([]);
  });

  it('mends each missing piece, and only it', () => {
    const noRoute = hostDrift([pod], without((o) => o.kind === 'route'));
    expect(noRoute).toEqual([{ pod, found: ['missing: route 10.0.16.5/32 dev eni0123456789a'], mend: { missing: [{ kind: 'route', table: 254, dst: '10.0.16.5', prefix: 32, dev: pod.hostIf }], wrong: [] } }]);
    expect(hostDrift([pod], without((o) => o.kind === 'rule' && o.priority === 512))[0]!.found).toEqual(['missing: rule to 10.0.16.5/32 lookup main pref 512']);
    expect(hostDrift([pod], without((o) => o.kind === 'rule' && o.priority === 1536))[0]!.found).toEqual(['missing: rule from 10.0.16.5/32 lookup 2003 pref 1536']);
    expect(hostDrift([pod], without((o) => o.kind === 'up' && o.dev === pod.hostIf))[0]!.found).toEqual(['missing: link eni0123456789a up']);
  });

  it('replaces a rule from the pod that looks up the wrong table, and a route by another link', () => {
    const drifted: HostFacts = {
      ...healthy,
      objects: [
        ...without((o) => o.kind === 'route' || (o.kind === 'rule' && o.priority === 1536)).objects,
        { kind: 'route', table: 254, dst: '10.0.16.5', prefix: 32, dev: 'eth0' },
        { kind: 'rule', priority: 1536, src: '10.0.16.5', table: 2004 },
      ],
    };
    const [d] = hostDrift([pod], drifted);
    expect(d!.found).toEqual([
      'missing: route 10.0.16.5/32 dev eni0123456789a',
      'missing: rule from 10.0.16.5/32 lookup 2003 pref 1536',
      'wrong: route 10.0.16.5/32 dev eth0',
      'wrong: rule from 10.0.16.5/32 lookup 2004 pref 1536',
    ]);
    expect(d!.mend.wrong).toEqual(drifted.objects.slice(-2));
  });

  it('leaves a pod whose veth is gone to CHECK and the garbage collection', () => {
    expect(hostDrift([pod], { objects: [], links: ['eth0'] })).toEqual([]);
  });
});
