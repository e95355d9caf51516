// The CNI spec's rules for names (libcni's ValidateContainerID and ValidateInterfaceName), and ours on top.
import { describe, expect, it } from 'vitest';
import { containerIdProblem, hostIfName, HOST_IF_PATTERN, ifNameProblem } from './names.ts';

describe('container ids', () => {
  it.each(['c1', 'a'.repeat(64), 'Pod_1.x-y', '0abc'])('accepts %s', (id) => expect(containerIdProblem(id)).toBeUndefined());
  it.each(['', '../../x', '-x', '.x', 'a b', 'a/b', 'a\nb', 'é'])('refuses %j', (id) => expect(containerIdProblem(id)).toBeDefined());
});

describe('interface names', () => {
  it.each(['eth0', 'net1', 'a'.repeat(15), 'eth0.100', 'veth-x_y'])('accepts %s', (name) => expect(ifNameProblem(name)).toBeUndefined());
  it.each([
    ['empty', ''],
    ['16 characters', 'a'.repeat(16)],
    ['16 bytes in 8 characters', 'é'.repeat(8)],
    ['"."', '.'],
    ['".."', '..'],
    ['a slash', 'a/b'],
    ['a colon', 'eth0:1'],
    ['a newline', 'eth0\nlink del lo'],
    ['a space', 'eth 0'],
    ['a next-line (U+0085)', 'eth\u00850'],
    ['a comment', 'lo#junk'],
    ['a quote', '"eth0'],
    ['a backslash', 'eth\\0'],
    ['a NUL', 'eth\u00000'],
  ])('refuses %s', (_what, name) => expect(ifNameProblem(name)).toBeDefined());
});

describe('host veth names', () => {
  it('are ours by their shape, stable, and differ by container and interface', () => {
    expect(hostIfName('c1', 'eth0')).toMatch(HOST_IF_PATTERN);
    expect(hostIfName('c1', 'eth0')).toBe(hostIfName('c1', 'eth0'));
    expect(hostIfName('c1', 'eth0')).not.toBe(hostIfName('c1', 'net1'));
    expect(hostIfName('c1', 'eth0')).not.toBe(hostIfName('c2', 'eth0'));
  });
});
