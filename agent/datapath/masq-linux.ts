// Keeps the masquerade rules of masq.ts in place: applies them at start, again every resync interval
// (so a flushed table heals), and whenever the config file's content changes. A config file that does
// not parse is reported and the rules in force stay. Pods with an EIP are exempted by address on top of the
// config's NonMasqueradeSrcCIDRs (TKE makes users add each one by hand): their traffic leaves with the EIP.
import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { defaultMasqConfig, MASQ_JUMPS, masqRestoreInput, parseMasqConfig, type MasqConfig } from './masq.ts';
import { MASQ_MARK, RULE_PREF } from './plan.ts';

export class Masquerade {
  private config: MasqConfig;
  private lastText: string | undefined;
  private timer?: NodeJS.Timeout;
  /** addresses of pods with an EIP, never masqueraded */
  private readonly exempt = new Set<string>();
  /** one iptables-restore at a time, the last one saying what is wanted now */
  private applying: Promise<void> = Promise.resolve();

  constructor(
    private readonly options: { file?: string | undefined; vpcCidr: string; log: (level: 'info' | 'error', message: string) => void },
  ) {
    this.config = defaultMasqConfig(options.vpcCidr);
  }

  async start(): Promise<void> {
    await this.resync();
    const loop = async () => {
      await this.resync().catch((err: Error) => this.options.log('error', `masquerade: ${err.message}`));
      this.timer = setTimeout(loop, Math.min(this.config.resyncIntervalMs, 10_000));
    };
    this.timer = setTimeout(loop, Math.min(this.config.resyncIntervalMs, 10_000));
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  current(): MasqConfig {
    return this.config;
  }

  /** Exempts a pod's address from masquerade (it has an EIP), or no longer; returns once the rules say so. */
  async setExempt(address: string, exempt: boolean): Promise<void> {
    if (exempt === this.exempt.has(address)) return;
    if (exempt) this.exempt.add(address);
    else this.exempt.delete(address);
    await this.resync();
  }

  exempted(): string[] {
    return [...this.exempt];
  }

  /** Reads the config file if it changed, and puts the rules in place. */
  resync(): Promise<void> {
    const run = this.applying.catch(() => undefined).then(() => this.apply());
    this.applying = run;
    return run;
  }

  private async apply(): Promise<void> {
    this.readConfig();
    const config = { ...this.config, nonMasqueradeSrcCIDRs: [...this.config.nonMasqueradeSrcCIDRs, ...[...this.exempt].map((a) => `${a}/32`)] };
    await execa('iptables-restore', ['-w', '--noflush'], { input: masqRestoreInput(config) });
    for (const jump of MASQ_JUMPS) {
      const present = await execa('iptables', ['-w', '-t', jump.table, '-C', jump.chain, ...jump.rule], { reject: false });
      if (present.exitCode !== 0) await execa('iptables', ['-w', '-t', jump.table, '-A', jump.chain, ...jump.rule]);
    }
    const rules = await execa('ip', ['rule', 'show', 'pref', String(RULE_PREF.masquerade)]);
    if (!rules.stdout.includes('fwmark')) {
      await execa('ip', ['rule', 'add', 'fwmark', `${MASQ_MARK}/${MASQ_MARK}`, 'lookup', 'main', 'pref', String(RULE_PREF.masquerade)]);
    }
  }

  private readConfig(): void {
    const { file } = this.options;
    if (!file) return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      text = '';
    }
    if (text === this.lastText) return;
    this.lastText = text;
    try {
      this.config = text === '' ? defaultMasqConfig(this.options.vpcCidr) : parseMasqConfig(text, file, this.options.vpcCidr);
      this.options.log('info', `masquerade: keeping ${this.config.nonMasqueradeCIDRs.join(', ')} unmasqueraded (from ${file})`);
    } catch (err) {
      this.options.log('error', `masquerade: ${(err as Error).message}; the rules in force stay`);
    }
  }
}
