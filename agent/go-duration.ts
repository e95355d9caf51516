// Go's time.Duration text, as TKE's flags and ip-masq-agent's config write it: 60s, 1m0s, 1h30m, 500ms, 1.5h.
// (A sign, and units below a millisecond, are not durations anyone sets here.)

const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const;
const WHOLE = /^(\d+(\.\d+)?(h|ms|m|s))+$/;

/** Milliseconds, or undefined when `text` is not such a duration. */
export function parseGoDuration(text: string): number | undefined {
  // Go's one unitless duration.
  if (text === '0') return 0;
  if (!WHOLE.test(text)) return undefined;
  let total = 0;
  for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) total += Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS];
  return Math.round(total);
}
