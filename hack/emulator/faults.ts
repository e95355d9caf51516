// Fault injection for tests: fail the Nth call of an action with a given code, add latency, or carry a
// call out and then drop its answer (the case that makes a client retry a call that already happened).
import { z } from 'zod';

export const FaultSpec = z.strictObject({
  /** action name, or "*" for every action */
  action: z.string().min(1),
  /** the first call (counted from when the fault is added, 1-based) that the fault hits */
  nth: z.number().int().positive().default(1),
  /** how many calls in a row it hits; 0 means every call from the nth on */
  times: z.number().int().nonnegative().default(1),
  effect: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('error'), code: z.string().min(1), message: z.string().default('injected fault') }),
    z.strictObject({ kind: z.literal('latency'), ms: z.number().nonnegative() }),
    z.strictObject({ kind: z.literal('drop') }),
  ]),
});

export type FaultInput = z.input<typeof FaultSpec>;
export type Fault = z.infer<typeof FaultSpec> & { id: number; seen: number; hits: number };
export type FaultEffect = Fault['effect'];

export class Faults {
  private faults: Fault[] = [];
  private nextId = 1;

  add(input: FaultInput): Fault {
    const fault: Fault = { ...FaultSpec.parse(input), id: this.nextId++, seen: 0, hits: 0 };
    this.faults.push(fault);
    return fault;
  }

  clear(): void {
    this.faults = [];
  }

  list(): readonly Fault[] {
    return this.faults;
  }

  /** Counts a call of `action` against every fault and returns the effects that hit it. */
  effectsFor(action: string): FaultEffect[] {
    const effects: FaultEffect[] = [];
    for (const fault of this.faults) {
      if (fault.action !== '*' && fault.action !== action) continue;
      fault.seen++;
      const inWindow = fault.seen >= fault.nth && (fault.times === 0 || fault.seen < fault.nth + fault.times);
      if (inWindow) {
        fault.hits++;
        effects.push(fault.effect);
      }
    }
    return effects;
  }
}

/** Requests per second per action, counted in one-second windows of the emulator's clock. */
export class RateLimiter {
  private readonly windows = new Map<string, { second: number; count: number }>();

  constructor(private readonly limits: Readonly<Record<string, number>>) {}

  limitOf(action: string): number {
    return this.limits[action] ?? this.limits.default ?? Infinity;
  }

  /** Counts the call; false when it is over the action's limit for the current second. */
  admit(action: string, nowMs: number): boolean {
    const second = Math.floor(nowMs / 1000);
    const window = this.windows.get(action);
    if (!window || window.second !== second) {
      this.windows.set(action, { second, count: 1 });
      return true;
    }
    window.count++;
    return window.count <= this.limitOf(action);
  }
}
