// The node's NodeENIConfig as the agent's supply sees it (NecPort): the newest version the informer or a
// write has shown, a way to wait for one, and status writes. Every new version tells `onChange`.
import type { Nec } from './nec.ts';
import type { NecPort } from '../supply/nec-supply.ts';

/** Merge-patches the NEC's status (conditional on `resourceVersion` when given) and answers the NEC written. */
export type PatchNecStatus = (status: Record<string, unknown>, resourceVersion?: string) => Promise<Nec>;

export class NodeNec implements NecPort {
  private latest: Nec | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly patch: PatchNecStatus,
    private readonly onChange: () => void,
  ) {}

  current(): Nec | undefined {
    return this.latest;
  }

  /** A version of the NEC was seen (the informer, or a write's answer); older ones than the newest are ignored. */
  seen(nec: Nec | undefined): void {
    const version = (n: Nec | undefined) => Number(n?.metadata?.resourceVersion ?? 0);
    if (nec && this.latest && version(nec) < version(this.latest)) return;
    this.latest = nec;
    for (const wake of [...this.waiters]) wake();
    this.onChange();
  }

  until(ok: (nec: Nec | undefined) => boolean): Promise<Nec> {
    if (ok(this.latest)) return Promise.resolve(this.latest!);
    return new Promise((resolve) => {
      const wake = () => {
        if (!ok(this.latest)) return;
        this.waiters.delete(wake);
        resolve(this.latest!);
      };
      this.waiters.add(wake);
    });
  }

  async patchStatus(status: Record<string, unknown>, resourceVersion?: string): Promise<void> {
    this.seen(await this.patch(status, resourceVersion));
  }
}
