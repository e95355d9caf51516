// Prometheus text exposition, read strictly by the tests that scrape /metrics.
export type Samples = Map<string, number>;

/**
 * The exposition text, parsed strictly: every line a comment (# HELP / # TYPE) or `name{labels} value`.
 * Answers the samples by `name{labels}`, labels sorted.
 */
export function parsePrometheus(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    const labels = (m[2] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? [];
    samples.set(`${m[1]}{${[...labels].sort().join(',')}}`, Number(m[3]));
  }
  return samples;
}


/** A sample's value by `name{labels}` (labels sorted); 0 when absent, as a counter not yet moved. */
export const sample = (s: Samples, key: string): number => s.get(key) ?? 0;
