// `npm run image` as an operator runs it after `npm run build`: the image is made from scratch, says its
// size, and every program and tool the manifests run works inside it.
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARCHIVE, IMAGE } from '../hack/build/image.ts';
import { REPO } from '../hack/lab/node-agent.ts';

let built: { stdout: string; stderr: string; exitCode?: number | undefined };
let container: string | undefined;
const inImage = (...args: string[]) => execa('buildah', ['run', '--isolation', 'chroot', container!, '--', ...args], { reject: false });

beforeAll(async () => {
  built = await execa('npx', ['tsx', 'hack/build/image.ts'], { cwd: REPO, reject: false });
  if (built.exitCode === 0) container = (await execa('buildah', ['from', IMAGE])).stdout.trim();
}, 240_000);
afterAll(async () => {
  if (container) await execa('buildah', ['rm', container], { reject: false });
});

describe('npm run image', () => {
  it('builds the tag the manifests name and prints its size', () => {
    expect(built.exitCode, built.stderr).toBe(0);
    expect(built.stdout).toMatch(new RegExp(`image: ${IMAGE.replace(/[/.]/g, '\\$&')}, \\d+(\\.\\d+)? [kMG]B`));
    expect(existsSync(ARCHIVE)).toBe(true);
  });

  it('holds the four programs, and the tools the agent and the install step run', async () => {
    for (const program of ['eni-agent', 'eni-ipamd', 'eni-cnictl']) {
      const r = await inImage(`/opt/eni-cni/bin/${program}`, '--help');
      expect(r.exitCode, `${program}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('Usage:');
    }
    const version = await execa('buildah', ['run', '--isolation', 'chroot', '--env', 'CNI_COMMAND=VERSION', container!, '--', '/opt/eni-cni/bin/eni-cni'], { input: '{"cniVersion":"1.0.0"}', reject: false });
    expect(JSON.parse(version.stdout).supportedVersions).toContain('1.0.0');
    for (const [tool, says] of [['ip', 'iproute2'], ['iptables', 'iptables v'], ['iptables-restore', 'iptables-restore v'], ['nsenter', 'util-linux']] as const) {
      const r = await inImage(tool, tool === 'ip' ? '-V' : '--version');
      expect(r.exitCode, `${tool}: ${r.stderr}`).toBe(0);
      expect(r.stdout, tool).toContain(says);
    }
    // The install step's shell, with what its script uses, and /var/run where the agent's paths expect it.
    const sh = await inImage('/bin/sh', '-c', 'cp /opt/eni-cni/bin/portmap /tmp/p && chmod 0755 /tmp/p && mv /tmp/p /tmp/q && test -x /tmp/q && cd /var/run && pwd -P');
    expect(sh.exitCode, sh.stderr).toBe(0);
    expect(sh.stdout.trim()).toBe('/run');
  });
});
