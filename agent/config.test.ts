// The agent's flags as an operator writes them: TKE's Go-style durations, and TKE's ipamd flags put on the
// agent by mistake, which are refused naming the component they belong to.
import { describe, expect, it } from 'vitest';
import { agentCommand, type AgentConfig } from './config.ts';

async function parse(args: string[]): Promise<AgentConfig> {
  let config: AgentConfig | undefined;
  await agentCommand(async (c) => {
    config = c;
  })
    .exitOverride()
    .configureOutput({ writeErr: () => undefined })
    .parseAsync(['node', 'eni-agent', ...args]);
  return config!;
}

describe('agent flags', () => {
  it('takes Go-style durations, as TKE writes them', async () => {
    const config = await parse(['--gc-interval', '1h', '--release-period', '1m30s', '--ip-cooldown', '500ms', '--add-wait', '2m']);
    expect(config).toMatchObject({ gcIntervalMs: 3_600_000, releasePeriodMs: 90_000, cooldownMs: 500, addWaitMs: 120_000 });
  });

  it.each([['--claim-expired-duration=1h'], ['--enable-ownerref'], ['--eni-min-warm-target=1'], ['--eni-max-warm-target', '1']])(
    'refuses %s, naming tke-eni-ipamd as its component',
    async (...args) => {
      await expect(parse(args)).rejects.toThrow(/a flag of tke-eni-ipamd \(kubectl edit deploy tke-eni-ipamd -n kube-system\), not of the node agent tke-eni-agent/);
    },
  );

  it('refuses a cool-down as long as the ADD wait', async () => {
    await expect(parse(['--ip-cooldown', '30s', '--add-wait', '30s'])).rejects.toThrow('--ip-cooldown');
  });

  it('takes the conflist to install with the dir it goes into, never one without the other', async () => {
    expect((await parse(['--cni-conf-source=/etc/eni-cni/10-eni-cni.conflist', '--cni-conf-dir=/host/etc/cni/net.d'])).cniConf).toEqual({ source: '/etc/eni-cni/10-eni-cni.conflist', dir: '/host/etc/cni/net.d' });
    expect((await parse([])).cniConf).toBeUndefined();
    await expect(parse(['--cni-conf-source=/etc/eni-cni/10-eni-cni.conflist'])).rejects.toThrow('--cni-conf-source and --cni-conf-dir go together');
    await expect(parse(['--cni-conf-dir=/host/etc/cni/net.d'])).rejects.toThrow('--cni-conf-source and --cni-conf-dir go together');
  });
});
