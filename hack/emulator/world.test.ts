import { describe, expect, it } from 'vitest';
import { defaultWorld, parseWorld, quotaForCpu } from './world.ts';

describe('world file', () => {
  it('ships a default world that parses', () => {
    const world = defaultWorld();
    expect(world.instances.length).toBeGreaterThan(0);
    expect(world.latencies.taskMs).toBeGreaterThan(0);
  });

  it('names each inconsistency', () => {
    const base = defaultWorld();
    const broken = {
      ...base,
      subnets: [...base.subnets, { id: 'subnet-out', zone: 'ap-guangzhou-3', cidr: '10.9.0.0/24' }],
      instances: [{ ...base.instances[0]!, privateIp: '10.0.1.5' }, { ...base.instances[0]!, id: 'ins-x', subnetId: 'subnet-none' }],
    };
    expect(() => parseWorld(broken, 'broken.json')).toThrow(/broken.json[\s\S]*subnet-out[\s\S]*10\.0\.1\.5 is outside[\s\S]*unknown subnet subnet-none/);
    expect(() => parseWorld({ ...base, vpc: { id: 'vpc-1', cidr: '10.0.0.0/33' } })).toThrow('vpc.cidr');
  });

  it('gives ENI quotas by CPU count as Tencent documents them', () => {
    expect([1, 2, 4, 6, 8, 10, 12, 16, 64].map((cpu) => quotaForCpu(cpu))).toEqual([
      { enis: 2, ipsPerEni: 6 },
      { enis: 4, ipsPerEni: 10 },
      { enis: 4, ipsPerEni: 10 },
      { enis: 4, ipsPerEni: 10 },
      { enis: 6, ipsPerEni: 20 },
      { enis: 6, ipsPerEni: 20 },
      { enis: 8, ipsPerEni: 30 },
      { enis: 8, ipsPerEni: 30 },
      { enis: 8, ipsPerEni: 30 },
    ]);
  });
});
