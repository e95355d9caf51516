import { describe, expect, it } from 'vitest';
import { hostIfName } from '../../shared/names.ts';
import { eniLinkCommands, hostSideCommands, hostUnrouteCommands, podMac, podSideCommands } from './plan.ts';

const pod = { containerId: 'c0ffee', ifName: 'eth0', hostIf: 'eni0123456789a', address: '10.0.16.5', table: 2007 };

describe('datapath plan', () => {
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
    expect(eniLinkCommands({ ifName: 'eth1', table: 2003, primaryIp: '10.0.16.2', gateway: '10.0.16.1' })).toEqual([
      'link set eth1 up',
      'address replace 10.0.16.2/32 dev eth1',
      'route replace default via 10.0.16.1 dev eth1 onlink table 2003',
    ]);
  });

  it('plumbs the pod through a static link-local gateway, and the host with one route and two rules', () => {
    expect(podSideCommands(pod, 4242)).toEqual([
      'link add eth0 address 0a:58:0a:00:10:05 type veth peer name eni0123456789a address ee:ee:ee:ee:ee:ee netns 4242',
      'link set eth0 up',
      'address add 10.0.16.5/32 dev eth0',
      'neigh add 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent',
      'route add 169.254.1.1 dev eth0 scope link',
      'route add default via 169.254.1.1 dev eth0',
    ]);
    expect(hostSideCommands(pod)).toEqual([
      'link set eni0123456789a up',
      'route replace 10.0.16.5/32 dev eni0123456789a scope link',
      'rule add to 10.0.16.5/32 lookup main pref 512',
      'rule add from 10.0.16.5/32 lookup 2007 pref 1536',
    ]);
  });

  it('unroutes exactly what the host side added', () => {
    const added = hostSideCommands(pod);
    const removed = hostUnrouteCommands(pod);
    expect(removed).toContain(`route del ${pod.address}/32`);
    for (const rule of added.filter((c) => c.startsWith('rule add'))) {
      const [, , dir, addr] = rule.split(' ');
      expect(removed.some((c) => c.startsWith(`rule del ${dir} ${addr}`))).toBe(true);
    }
  });
});
