import { describe as group, expect, it } from 'vitest';
import { hostIfName } from '../../shared/names.ts';
import { describe, eniLinkPlan, hostUnrouting, podMac, podPlan, wholeEniPlan } from './plan.ts';

const pod = { containerId: 'c0ffee', ifName: 'eth0', hostIf: 'eni0123456789a', address: '10.0.16.5', table: 2007 };

group('datapath plan', () => {
  it('names host veths stably, within the 15 characters Linux allows, differently per container and interface', () => {
    const a = hostIfName('abc', 'eth0');
    expect(a).toMatch(/^eni[0-9a-f]{11}$/);
    expect(hostIfName('abc', 'eth0')).toBe(a);
    expect(hostIfName('abd', 'eth0')).not.toBe(a);
    expect(hostIfName('abc', 'net1')).not.toBe(a);
  });

  it('derives a locally administered pod MAC from the address', () => {
    expect(podMac('10.0.16.5')).toBe('0a:58:0a:00:10:05');
    expect(podMac('192.168.255.1')).toBe('0a:58:c0:a8:ff:01');
  });

  it('gives an ENI link its address and a default route of its own table', () => {
    expect(eniLinkPlan({ ifName: 'eth1', table: 2003, primaryIp: '10.0.16.2', gateway: '10.0.16.1' }).map(describe)).toEqual([
      'link eth1 up',
      'address 10.0.16.2/32 dev eth1',
      'route default via 10.0.16.1 dev eth1 onlink table 2003',
    ]);
  });

  it('plumbs the pod through a static link-local gateway, and the host with one route and two rules', () => {
    const plan = podPlan(pod);
    expect(plan.veth).toEqual({ hostIf: 'eni0123456789a', hostMac: 'ee:ee:ee:ee:ee:ee', ifName: 'eth0', podMac: '0a:58:0a:00:10:05' });
    expect(plan.inPod.map(describe)).toEqual([
      'link eth0 up',
      'address 10.0.16.5/32 dev eth0',
      'neigh 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0',
      'route 169.254.1.1/32 dev eth0',
      'route default via 169.254.1.1 dev eth0',
    ]);
    expect(plan.onHost.map(describe)).toEqual([
      'link eni0123456789a up',
      'route 10.0.16.5/32 dev eni0123456789a',
      'rule to 10.0.16.5/32 lookup main pref 512',
      'rule from 10.0.16.5/32 lookup 2007 pref 1536',
    ]);
  });

  it('unroutes what the host side routed, the rule from the pod whatever table it looks up', () => {
    const routed = podPlan(pod).onHost.filter((o) => o.kind !== 'up');
    expect(hostUnrouting(pod)).toEqual(routed.map((o) => (o.kind === 'rule' && o.src ? { ...o, table: 0 } : o)));
    expect(hostUnrouting(pod).map(describe)).toContain('rule from 10.0.16.5/32 pref 1536');
  });

  it('makes a whole ENI the pod interface, addressed in its subnet', () => {
    expect(wholeEniPlan({ ifName: 'eth0', address: '10.0.16.9', prefix: 24, gateway: '10.0.16.1' }).map(describe)).toEqual(['link eth0 up', 'address 10.0.16.9/24 dev eth0', 'route default via 10.0.16.1 dev eth0']);
  });
});
