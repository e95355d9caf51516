import { describe, expect, it } from 'vitest';
import type { NetObject } from './plan.ts';
import { diff, explain } from './reconcile.ts';

const rule = (priority: number, table: number, src?: string): NetObject => ({ kind: 'rule', priority, table, ...(src ? { src } : {}) });
const route = (dst: string, dev: string, via?: string): NetObject => ({ kind: 'route', table: 254, dst, prefix: dst === '0.0.0.0' ? 0 : 32, dev, ...(via ? { via } : {}) });

describe('wanted against actual', () => {
  it('finds nothing when everything wanted is there, whatever else the kernel has', () => {
    const wanted = [rule(1536, 2003, '10.0.16.5'), route('10.0.16.5', 'eni1')];
    expect(diff(wanted, [rule(0, 255), ...wanted, route('10.0.16.6', 'eni2'), rule(1536, 2003, '10.0.16.6')])).toEqual({ missing: [], wrong: [] });
  });

  it('names what is missing, and what stands where a wanted object should', () => {
    const wanted = [rule(1536, 2003, '10.0.16.5'), route('10.0.16.5', 'eni1'), { kind: 'up', dev: 'eni1' } as NetObject];
    const d = diff(wanted, [rule(1536, 2004, '10.0.16.5'), route('10.0.16.5', 'eth0')]);
    expect(d.missing).toEqual(wanted);
    expect(d.wrong).toEqual([rule(1536, 2004, '10.0.16.5'), route('10.0.16.5', 'eth0')]);
    expect(explain(d)).toEqual([
      'missing: rule from 10.0.16.5/32 lookup 2003 pref 1536',
      'missing: route 10.0.16.5/32 dev eni1',
      'missing: link eni1 up',
      'wrong: rule from 10.0.16.5/32 lookup 2004 pref 1536',
      'wrong: route 10.0.16.5/32 dev eth0',
    ]);
  });

  it('tells an address with another prefix, a neighbour with another MAC and a default route by another gateway from the planned', () => {
    const wanted: NetObject[] = [
      { kind: 'address', dev: 'eth0', local: '10.0.16.9', prefix: 24 },
      { kind: 'neigh', dev: 'eth0', ip: '169.254.1.1', mac: 'ee:ee:ee:ee:ee:ee' },
      route('0.0.0.0', 'eth0', '10.0.16.1'),
    ];
    const actual: NetObject[] = [
      { kind: 'address', dev: 'eth0', local: '10.0.16.9', prefix: 32 },
      { kind: 'neigh', dev: 'eth0', ip: '169.254.1.1', mac: 'ee:ee:ee:ee:ee:01' },
      route('0.0.0.0', 'eth0', '10.0.16.254'),
    ];
    expect(diff(wanted, actual)).toEqual({ missing: wanted, wrong: actual });
  });
});
