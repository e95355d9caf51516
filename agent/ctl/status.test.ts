import { describe, expect, it } from 'vitest';
import { formatStatus, type Status } from './status.ts';

/** A node with nothing in its pool: each test adds what it shows. */
const empty: Status = {
  instance: 'ins-node0001',
  zone: 'ap-guangzhou-3',
  counts: { total: 0, assigned: 0, free: 0, cooling: 0 },
  limits: { warm: { min: 1, max: 2 }, maxEnis: 3, maxIpsPerEni: 9 },
  enis: [],
  allocations: [],
};

describe('eni-cnictl status', () => {
  it('shows each ENI with its link and table, and each address with the pod holding it', () => {
    const status: Status = {
      ...empty,
      counts: { total: 3, assigned: 1, free: 1, cooling: 1 },
      lastError: 'LimitExceeded: 4 of 4 ENIs',
      enis: [{ id: 'eni-1', mac: '20:90:6f:00:00:01', subnetId: 'subnet-pod3a', primaryIp: '10.0.16.2', ifName: 'eth1', table: 2003, addresses: ['10.0.16.4', '10.0.16.3', '10.0.16.5'] }],
      allocations: [{ address: '10.0.16.4', containerId: 'abcdef0123456789', ifName: 'eth0', netns: '/var/run/netns/x', hostIf: 'eni0123456789a', pod: { namespace: 'shop', name: 'web-0' } }],
    };
    const text = formatStatus(status).split('\n');
    expect(text).toContain('pool: 3 bound, 1 held by pods, 1 free, 1 cooling down');
    expect(text).toContain('last error: LimitExceeded: 4 of 4 ENIs');
    expect(text).toContain('eni-1  eth1  table 2003  subnet-pod3a  mac 20:90:6f:00:00:01  primary 10.0.16.2');
    // Sorted, with the holder named.
    expect(text.slice(-3)).toEqual(['  10.0.16.3       free', '  10.0.16.4       shop/web-0  container abcdef012345  eni0123456789a', '  10.0.16.5       free']);
  });

  it('lists the pods whose address is on no ENI of the pool apart', () => {
    const status: Status = {
      ...empty,
      allocations: [{ address: '10.0.16.9', containerId: 'abcdef0123456789', ifName: 'eth0', netns: '/var/run/netns/x', hostIf: 'eni0123456789a', pod: { namespace: 'shop', name: 'web-1' } }],
    };
    expect(formatStatus(status).split('\n').slice(-2)).toEqual(['(on no ENI of the pool)', '  10.0.16.9       shop/web-1  container abcdef012345  eni0123456789a']);
  });

  it('shows the whole ENIs apart, each with the pod whose interface it is, or spare', () => {
    const status: Status = {
      ...empty,
      allocations: [{ address: '10.0.16.7', eniId: 'eni-b', containerId: 'fedcba9876543210', ifName: 'eth0', netns: '/var/run/netns/y', hostIf: '', pod: { namespace: 'shop', name: 'db-0' }, direct: { hostName: 'eth2' } }],
      directEnis: [
        { eniId: 'eni-b', mac: '20:90:6f:00:00:0b', primaryIP: '10.0.16.7', subnetId: 'subnet-pod3a' },
        { eniId: 'eni-a', mac: '20:90:6f:00:00:0a', primaryIP: '10.0.16.6', subnetId: 'subnet-pod3a' },
      ],
      directLimits: { warm: { min: 1, max: 1 }, maxAttach: 3 },
      directCapacity: 2,
    };
    const text = formatStatus(status).split('\n');
    // Not a stray shared-ENI pod.
    expect(text).not.toContain('(on no ENI of the pool)');
    expect(text.slice(-3)).toEqual([
      'whole ENIs: 2 attached, 1 held by pods; spare min 1, max 1; at most 2',
      '  eni-a  10.0.16.6       subnet-pod3a  mac 20:90:6f:00:00:0a  spare',
      '  eni-b  10.0.16.7       subnet-pod3a  mac 20:90:6f:00:00:0b  shop/db-0  container fedcba987654  eth0 (was eth2 on the node)',
    ]);
  });
});
