// The doctor's reading of facts: a healthy pod has every link ok; each link broken alone is the one named.
import { describe, expect, it } from 'vitest';
import { diagnose, type DoctorSources } from './doctor.ts';
import { MARK_CHAIN } from './datapath/masq.ts';
import type { LinkFact, Probe, RouteFact, RuleFact } from './datapath/probe.ts';
import type { Allocation, PoolEni } from './pool/store.ts';

const pod: Allocation = { address: '10.0.1.12', eniId: 'eni-aaa', containerId: 'c0ffee0123456789', ifName: 'eth0', netns: '/var/run/netns/p1', hostIf: 'eni0c0ffee01', table: 2003, pod: { namespace: 'shop', name: 'web-1' }, allocatedAt: 0 };
const eni: PoolEni = { id: 'eni-aaa', mac: '20:90:6f:00:00:01', subnetId: 'subnet-1', primaryIp: '10.0.1.2', gateway: '10.0.1.1', subnetCidr: '10.0.1.0/24', capacity: 10, ifName: 'eth1', table: 2003, addresses: new Set([pod.address]) };

function healthyHost() {
  return {
    links: new Map<string, LinkFact>([
      ['p1:eth0', { name: 'eth0', up: true, mac: '0a:58:0a:00:01:0c', addresses: ['10.0.1.12/32'] }],
      [':eni0c0ffee01', { name: 'eni0c0ffee01', up: true, mac: 'ee:ee:ee:ee:ee:ee', addresses: [] }],
      [':eth1', { name: 'eth1', up: true, mac: eni.mac, addresses: ['10.0.1.2/32'] }],
    ]),
    routes: new Map<string, RouteFact[]>([
      ['p1:main', [{ dst: 'default', gateway: '169.254.1.1', dev: 'eth0' }]],
      [':main', [{ dst: '10.0.1.12', dev: 'eni0c0ffee01' }]],
      [':2003', [{ dst: 'default', gateway: '10.0.1.1', dev: 'eth1' }]],
    ]),
    rules: [
      { priority: 512, dst: '10.0.1.12', table: 'main' },
      { priority: 1536, src: '10.0.1.12', table: '2003' },
    ] as RuleFact[],
    iptables: new Map<string, string[]>([
      ['mangle:PREROUTING', [`-A PREROUTING -i eni+ -j ${MARK_CHAIN}`]],
      [`mangle:${MARK_CHAIN}`, [`-N ${MARK_CHAIN}`, `-A ${MARK_CHAIN} -d 10.0.0.0/16 -j RETURN`, `-A ${MARK_CHAIN} -j MARK --set-xmark 0x80/0x80`]],
    ]),
    cloud: ['10.0.1.12'],
    exempt: [] as string[],
  };
}
type Host = ReturnType<typeof healthyHost>;

function sources(h: Host, allocation = pod): DoctorSources {
  const nsOf = (netns?: string) => (netns ? netns.split('/').pop() : '');
  const probe: Probe = {
    link: async (name, netns) => h.links.get(`${nsOf(netns)}:${name}`),
    linkByMac: async (mac) => [...h.links.values()].find((l) => l.mac === mac),
    routes: async (table, netns) => h.routes.get(`${nsOf(netns)}:${table}`) ?? [],
    rules: async () => h.rules,
    iptables: async (table, chain) => h.iptables.get(`${table}:${chain}`) ?? [],
  };
  return {
    allocations: () => [allocation],
    eni: (id) => (id === eni.id ? eni : undefined),
    probe,
    netnsProblem: () => undefined,
    exempted: () => h.exempt,
    cloudEni: async (id) => (id === eni.id ? { attachedHere: true, secondaryIps: h.cloud, source: 'the cloud', command: 'tccli' } : undefined),
  };
}

describe('doctor', () => {
  it('finds every link of a healthy pod as planned, by name, address or container', async () => {
    for (const query of ['shop/web-1', '10.0.1.12', 'c0ffee01']) {
      const d = await diagnose(sources(healthyHost()), query);
      expect(d.broken, JSON.stringify(d.broken)).toBeUndefined();
      expect(d.findings.map((f) => f.check)).toEqual(['pod namespace', 'pod interface', 'pod default route', 'host interface', 'host route', 'rule to the pod', 'rule from the pod', 'ENI link', 'ENI table', 'masquerade', 'cloud']);
    }
  });

  const breaks: Array<[string, (h: Host) => void, string, RegExp]> = [
    ['the pod interface down', (h) => (h.links.get('p1:eth0')!.up = false), 'pod interface', /eth0 .* is down/],
    ['the pod address gone', (h) => (h.links.get('p1:eth0')!.addresses = []), 'pod interface', /does not have 10\.0\.1\.12\/32/],
    ['the host veth gone', (h) => h.links.delete(':eni0c0ffee01'), 'host interface', /eni0c0ffee01 is missing/],
    ['the host route gone', (h) => h.routes.set(':main', []), 'host route', /no route .* 10\.0\.1\.12/],
    ['the from rule gone', (h) => (h.rules = h.rules.filter((r) => r.priority !== 1536)), 'rule from the pod', /from 10\.0\.1\.12 lookup 2003/],
    ['the ENI link down', (h) => (h.links.get(':eth1')!.up = false), 'ENI link', /eth1 is down/],
    ['the ENI table empty', (h) => h.routes.set(':2003', []), 'ENI table', /table 2003 has no default route/],
    ['the masquerade jump gone', (h) => h.iptables.set('mangle:PREROUTING', []), 'masquerade', /no jump from PREROUTING/],
    ['the address off the ENI in the cloud', (h) => (h.cloud = []), 'cloud', /10\.0\.1\.12 is not on eni-aaa/],
  ];
  for (const [what, breakIt, check, says] of breaks) {
    it(`names "${check}" as the first broken link with ${what}`, async () => {
      const h = healthyHost();
      breakIt(h);
      const d = await diagnose(sources(h), 'shop/web-1');
      expect(d.broken?.check).toBe(check);
      expect(d.broken?.says).toMatch(says);
      expect(d.broken?.command).not.toBe('');
    });
  }

  it('names a pod with an EIP that is not exempt from masquerade', async () => {
    const h = healthyHost();
    const d = await diagnose(sources(h, { ...pod, eip: true }), 'shop/web-1');
    expect(d.broken?.check).toBe('EIP exemption');
    h.exempt = ['10.0.1.12'];
    h.iptables.get(`mangle:${MARK_CHAIN}`)!.splice(1, 0, `-A ${MARK_CHAIN} -s 10.0.1.12/32 -j RETURN`);
    expect((await diagnose(sources(h, { ...pod, eip: true }), 'shop/web-1')).broken).toBeUndefined();
  });

  it('says so when the agent holds no address for the pod, or only its reservation', async () => {
    expect((await diagnose(sources(healthyHost()), 'shop/web-9')).broken?.says).toMatch(/holds no address for shop\/web-9/);
    const reservation: Allocation = { ...pod, containerId: 'claim:shop/web-1', ifName: 'claim', reserved: true, claim: { namespace: 'shop', name: 'web-1' } };
    expect((await diagnose(sources(healthyHost(), reservation), 'shop/web-1')).broken?.says).toMatch(/10\.0\.1\.12 is reserved here for it/);
  });

  it("checks a whole-ENI pod's own interface: the ENI by MAC, up, in its subnet, routed by the gateway", async () => {
    const whole: Allocation = { ...pod, address: '10.0.1.20', eniId: 'eni-bbb', hostIf: '', table: 0, direct: { mac: '20:90:6f:00:00:02', prefix: 24, gateway: '10.0.1.1', hostName: 'eth2' } };
    const h = healthyHost();
    h.links.set('p1:eth0', { name: 'eth0', up: true, mac: '20:90:6f:00:00:02', addresses: ['10.0.1.20/24'] });
    h.routes.set('p1:main', [{ dst: 'default', gateway: '10.0.1.1', dev: 'eth0' }]);
    const d = await diagnose(sources(h, whole), 'shop/web-1');
    expect(d.broken, JSON.stringify(d.broken)).toBeUndefined();
    expect(d.findings.map((f) => f.check)).toEqual(['pod namespace', 'pod interface', 'pod default route']);
    h.links.get('p1:eth0')!.mac = '0a:58:0a:00:01:14';
    expect((await diagnose(sources(h, whole), 'shop/web-1')).broken?.says).toMatch(/is not eni-bbb/);
    h.links.get('p1:eth0')!.mac = '20:90:6f:00:00:02';
    h.routes.set('p1:main', []);
    expect((await diagnose(sources(h, whole), 'shop/web-1')).broken?.check).toBe('pod default route');
  });
});
