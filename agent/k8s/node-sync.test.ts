import { describe, expect, it } from 'vitest';
import { eipsPerNode, sharedRoom } from './node-sync.ts';

describe('the EIPs a node advertises (tke.cloud.tencent.com/eip)', () => {
  it("is the CVM's public IP binding count by vCPUs, less the node's own", () => {
    // Tencent: CPU 1–5 → 2; 6–11 → 3; 12–17 → 4; … 42–47 → 9; 48 and more → 10.
    const table: Array<[number, number]> = [[1, 1], [4, 1], [5, 1], [6, 2], [11, 2], [12, 3], [17, 3], [18, 4], [47, 8], [48, 9], [96, 9]];
    for (const [cpus, eips] of table) expect(eipsPerNode(cpus), `${cpus} vCPUs`).toBe(eips);
  });
});

describe('the addresses a node advertises for shared-ENI pods (tke.cloud.tencent.com/eni-ip)', () => {
  it('leaves out the ENIs whole-ENI pods hold of the quota', () => {
    const limits = { maxEnis: 3, maxIpsPerEni: 9 };
    expect(sharedRoom(27, limits, 3, 0)).toBe(27);
    expect(sharedRoom(27, limits, 3, 2)).toBe(9);
    expect(sharedRoom(27, limits, 3, 3)).toBe(0);
    // route-eni-max-attach=1 already lowers it further.
    expect(sharedRoom(9, { maxEnis: 1, maxIpsPerEni: 9 }, 3, 1)).toBe(9);
  });
});
