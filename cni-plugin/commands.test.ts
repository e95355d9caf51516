// What the plugin's DEL without an agent takes for a whole-ENI pod: only a result whose interfaces are all
// in the sandbox (no host end), and the MAC it gave the pod's interface.
import { describe, expect, it } from 'vitest';
import { wholeEniMac } from './commands.ts';

describe('a whole-ENI pod, from its prevResult', () => {
  it.each<[string, unknown, string | undefined]>([
    ['a whole-ENI result', { interfaces: [{ name: 'eth0', mac: '20:90:6F:00:00:09', sandbox: '/var/run/netns/x' }] }, '20:90:6f:00:00:09'],
    ['a shared-ENI result (a host end)', { interfaces: [{ name: 'eni0123' }, { name: 'eth0', mac: '0a:58:0a:00:10:05', sandbox: '/var/run/netns/x' }] }, undefined],
    ['another interface name', { interfaces: [{ name: 'net1', mac: '20:90:6f:00:00:09', sandbox: '/var/run/netns/x' }] }, undefined],
    ['a MAC that is not one', { interfaces: [{ name: 'eth0', mac: 'eth0; reboot', sandbox: '/var/run/netns/x' }] }, undefined],
    ['no result', undefined, undefined],
    ['garbage', { interfaces: 'eth0' }, undefined],
  ])('%s', (_what, prevResult, mac) => {
    expect(wholeEniMac(prevResult, 'eth0')).toBe(mac);
  });
});
