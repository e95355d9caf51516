import { describe, expect, it } from 'vitest';
import { cidrContains, cidrSize, cidrWithin, formatCidr, intToIp, ipToInt, isIPv4, nthAddress, parseCidr } from './ip.ts';

describe('ip helpers', () => {
  it('round-trips addresses through numbers', () => {
    for (const ip of ['0.0.0.0', '10.0.1.7', '255.255.255.255', '172.16.0.1']) expect(intToIp(ipToInt(ip))).toBe(ip);
  });

  it.each(['10.0.0', '10.0.0.256', '01.2.3.4', '1.2.3.4.5', 'a.b.c.d', ''])('rejects "%s"', (bad) => {
    expect(isIPv4(bad)).toBe(false);
    expect(() => ipToInt(bad)).toThrow(`"${bad}"`);
  });

  it('parses CIDRs to their network address', () => {
    expect(formatCidr(parseCidr('10.0.1.77/24'))).toBe('10.0.1.0/24');
    expect(cidrSize(parseCidr('10.0.0.0/26'))).toBe(64);
    expect(nthAddress(parseCidr('10.0.1.0/24'), 1)).toBe('10.0.1.1');
    expect(() => parseCidr('10.0.0.0/33')).toThrow('10.0.0.0/33');
    expect(() => parseCidr('10.0.0.0')).toThrow();
  });

  it('answers containment', () => {
    const vpc = parseCidr('10.0.0.0/16');
    expect(cidrContains(vpc, '10.0.200.1')).toBe(true);
    expect(cidrContains(vpc, '10.1.0.1')).toBe(false);
    expect(cidrWithin(parseCidr('10.0.3.0/24'), vpc)).toBe(true);
    expect(cidrWithin(vpc, parseCidr('10.0.3.0/24'))).toBe(false);
  });
});
