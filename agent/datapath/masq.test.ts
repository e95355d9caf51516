import { describe, expect, it } from 'vitest';
import { masqRestoreInput, parseMasqConfig } from './masq.ts';

const VPC = '10.0.0.0/16';

describe('masquerade config', () => {
  it('reads ip-masq-agent camelCase and TKE PascalCase alike', () => {
    const camel = parseMasqConfig('nonMasqueradeCIDRs: [10.0.0.0/8]\nmasqLinkLocal: true\nresyncInterval: 30s\n', 'camel', VPC);
    const pascal = parseMasqConfig('{"NonMasqueradeCIDRs": ["10.0.0.0/8"], "MasqLinkLocal": true, "ResyncInterval": "30s"}', 'pascal', VPC);
    expect(camel).toEqual(pascal);
    expect(camel).toEqual({ nonMasqueradeCIDRs: ['10.0.0.0/8'], nonMasqueradeSrcCIDRs: [], masqLinkLocal: true, resyncIntervalMs: 30_000 });
  });

  it("reads TKE's own ConfigMap as seed 001 shows it, Go durations included", () => {
    const tke = parseMasqConfig('{"NonMasqueradeCIDRs":["172.16.0.0/16"],"MasqLinkLocal":false,"MasqLinkLocalIPv6":false,"ResyncInterval":"1m0s"}', 'tke', VPC);
    expect(tke).toMatchObject({ nonMasqueradeCIDRs: ['172.16.0.0/16'], resyncIntervalMs: 60_000 });
    expect(parseMasqConfig('resyncInterval: 1h30m500ms', 'go', VPC).resyncIntervalMs).toBe(5_400_500);
  });

  it('defaults to the VPC CIDR', () => {
    expect(parseMasqConfig('', 'empty', VPC).nonMasqueradeCIDRs).toEqual([VPC]);
  });

  it.each([
    ['nonMasqueradeCIDRs: [10.0.0.0/33]', 'nonMasqueradeCIDRs.0'],
    ['masqLinkLocal: yes please', 'masqLinkLocal'],
    ['colour: red', 'colour'],
    ['resyncInterval: soon', 'resyncInterval'],
    ['[1, 2', 'not YAML'],
  ])('refuses %s, naming %s', (text, named) => {
    expect(() => parseMasqConfig(text, '/etc/config/ip-masq-agent', VPC)).toThrow(named);
    expect(() => parseMasqConfig(text, '/etc/config/ip-masq-agent', VPC)).toThrow('/etc/config/ip-masq-agent');
  });

  it('returns early for local, kept and link-local destinations, then marks; nat masquerades the marked', () => {
    const input = masqRestoreInput({ nonMasqueradeCIDRs: ['10.0.0.0/16', '172.16.0.0/12'], nonMasqueradeSrcCIDRs: ['10.9.0.0/16'], masqLinkLocal: false, resyncIntervalMs: 60_000 });
    expect(input.split('\n')).toEqual([
      '*mangle',
      ':ENI-CNI-MASQ-MARK - [0:0]',
      '-A ENI-CNI-MASQ-MARK -m addrtype --dst-type LOCAL -j RETURN',
      '-A ENI-CNI-MASQ-MARK -s 10.9.0.0/16 -j RETURN',
      '-A ENI-CNI-MASQ-MARK -d 10.0.0.0/16 -j RETURN',
      '-A ENI-CNI-MASQ-MARK -d 172.16.0.0/12 -j RETURN',
      '-A ENI-CNI-MASQ-MARK -d 169.254.0.0/16 -j RETURN',
      '-A ENI-CNI-MASQ-MARK -j MARK --set-xmark 0x80/0x80',
      'COMMIT',
      '*nat',
      ':ENI-CNI-MASQ - [0:0]',
      '-A ENI-CNI-MASQ -m mark --mark 0x80/0x80 -j MASQUERADE',
      'COMMIT',
      '',
    ]);
  });
});
