import { describe, expect, it } from 'vitest';
import { hostDrift } from './drift.ts';

const pod = { address: '10.0.16.5', hostIf: 'eni0123456789a', table: 2003, containerId: 'c1' };
const healthy = {
  routes: [{ dst: '10.0.16.5', dev: 'eni0123456789a' }],
  rules: [
    { priority: 512, dst: '10.0.16.5', table: 'main' },
    { priority: 1536, src: '10.0.16.5', table: '2003' },
  ],
};

describe("the host side's drift", () => {
  it('finds nothing on a pod as planned', () => {
    expect(hostDrift([pod], healthy)).toEqual([]);
  });

  it('mends each missing piece, and only it', () => {
    expect(hostDrift([pod], { ...healthy, routes: [] })).toEqual([{ pod, found: ['no route to 10.0.16.5 by eni0123456789a'], mend: ['route replace 10.0.16.5/32 dev eni0123456789a scope link'] }]);
    expect(hostDrift([pod], { ...healthy, rules: [healthy.rules[1]!] })[0]!.mend).toEqual(['rule add to 10.0.16.5/32 lookup main pref 512']);
    expect(hostDrift([pod], { ...healthy, rules: [healthy.rules[0]!] })[0]!.mend).toEqual(['rule add from 10.0.16.5/32 lookup 2003 pref 1536']);
  });

  it('replaces a rule from the pod that looks up the wrong table, and a route by another link', () => {
    const d = hostDrift([pod], { routes: [{ dst: '10.0.16.5', dev: 'eth0' }], rules: [healthy.rules[0]!, { priority: 1536, src: '10.0.16.5/32', table: '2004' }] });
    expect(d[0]!.found).toEqual(['no route to 10.0.16.5 by eni0123456789a', 'the rule from 10.0.16.5 looks up 2004, not 2003']);
    expect(d[0]!.mend).toEqual(['route replace 10.0.16.5/32 dev eni0123456789a scope link', 'rule del from 10.0.16.5/32 lookup 2004 pref 1536', 'rule add from 10.0.16.5/32 lookup 2003 pref 1536']);
  });
});
