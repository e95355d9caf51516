import { describe, expect, it } from 'vitest';
import { eipRequestOf } from './eip-claims.ts';

const attrs = (value: string, more: Record<string, string> = {}) => ({ 'tke.cloud.tencent.com/eip-attributes': value, ...more });
const list = (value: string) => ({ 'tke.cloud.tencent.com/eip-id-list': value });
const message = (r: unknown) => (r instanceof Error ? r.message : `not an error: ${JSON.stringify(r)}`);

describe("a pod's EIP annotations", () => {
  it('ask for nothing without eip-attributes or eip-id-list', () => {
    expect(eipRequestOf('web-0', {})).toBeUndefined();
    expect(eipRequestOf('web-0', undefined)).toBeUndefined();
  });

  it("take the seed's attributes, strings or numbers, with 100 Mbps and BGP for what is empty or missing", () => {
    expect(eipRequestOf('web-0', attrs('{"Bandwidth":"100","ISP":"BGP"}'))).toEqual({ deletePolicy: 'Immediate', kind: 'new', bandwidth: 100, isp: 'BGP' });
    expect(eipRequestOf('web-0', attrs('{"Bandwidth":20,"ISP":"CMCC"}', { 'tke.cloud.tencent.com/eip-claim-delete-policy': 'Never' }))).toEqual({ deletePolicy: 'Never', kind: 'new', bandwidth: 20, isp: 'CMCC' });
    expect(eipRequestOf('web-0', attrs(''))).toEqual({ deletePolicy: 'Immediate', kind: 'new', bandwidth: 100, isp: 'BGP' });
    expect(eipRequestOf('web-0', attrs('{"Bandwidth":""}'))).toEqual({ deletePolicy: 'Immediate', kind: 'new', bandwidth: 100, isp: 'BGP' });
  });

  it('refuse bad JSON, an unknown ISP, an out-of-range bandwidth, other keys and a bad policy, naming the annotation', () => {
    expect(message(eipRequestOf('web-0', attrs('{"Bandwidth":')))).toMatch(/^tke.cloud.tencent.com\/eip-attributes: not JSON/);
    expect(message(eipRequestOf('web-0', attrs('{"ISP":"XYZ"}')))).toContain('ISP "XYZ" is not one of BGP, CMCC, CTCC, CUCC');
    expect(message(eipRequestOf('web-0', attrs('{"Bandwidth":"0"}')))).toContain('from 1 to 100');
    expect(message(eipRequestOf('web-0', attrs('{"Bandwidth":101}')))).toContain('from 1 to 100');
    expect(message(eipRequestOf('web-0', attrs('{"Bandwidth":"1.5"}')))).toContain('whole number');
    expect(message(eipRequestOf('web-0', attrs('{"Bandwidth":10,"Region":"x"}')))).toContain('Region: only Bandwidth and ISP');
    expect(message(eipRequestOf('web-0', attrs('[1]')))).toContain('JSON object');
    expect(message(eipRequestOf('web-0', attrs('{}', { 'tke.cloud.tencent.com/eip-claim-delete-policy': 'Sometimes' })))).toMatch(/^tke.cloud.tencent.com\/eip-claim-delete-policy: "Sometimes"/);
  });

  it("choose from eip-id-list by the name's ordinal, at random without one, and refuse an ordinal past the list", () => {
    expect(eipRequestOf('web-0', list('eip-aaa1, eip-bbb2'))).toEqual({ deletePolicy: 'Immediate', kind: 'listed', eipId: 'eip-aaa1' });
    expect(eipRequestOf('web-1', list('eip-aaa1,eip-bbb2'))).toMatchObject({ eipId: 'eip-bbb2' });
    expect(eipRequestOf('web', list('eip-aaa1,eip-bbb2'), () => 0.99)).toMatchObject({ eipId: 'eip-bbb2' });
    expect(eipRequestOf('web', list('eip-aaa1,eip-bbb2'), () => 0)).toMatchObject({ eipId: 'eip-aaa1' });
    expect(message(eipRequestOf('web-2', list('eip-aaa1,eip-bbb2')))).toContain('ordinal 2, but the list names only 2 EIPs');
    expect(message(eipRequestOf('web-0', list('eip-aaa1,nope')))).toContain('"nope" is not an EIP id');
    expect(message(eipRequestOf('web-0', list(' , ')))).toContain('names no EIP');
  });
});
