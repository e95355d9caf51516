// `tsx hack/bench/startup.ts [--runs N] EXECUTABLE [ARGS...]`: how long a program takes from spawn to exit.
// Runs it N times (default 30) after one unmeasured warm-up and prints the median and p90 wall time in ms.
// NODE_EXTRA_CA_CERTS is removed from its environment: it adds ~38 ms to every Node start here, and kubelet
// and containerd do not pass it to a CNI plugin.
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface StartupStats {
  runs: number;
  medianMs: number;
  p90Ms: number;
  samplesMs: number[];
}

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function measureStartup(executable: string, args: string[] = [], runs = 30): StartupStats {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const once = (): number => {
    const started = process.hrtime.bigint();
    const result = spawnSync(executable, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (result.error) throw new Error(`\`${executable} ${args.join(' ')}\` could not start: ${result.error.message}`);
    if (result.status !== 0) {
      const how = result.signal ?? `exit ${result.status}`;
      throw new Error(`\`${executable} ${args.join(' ')}\` failed (${how}): ${result.stderr.toString().trim()}`);
    }
    return ms;
  };
  once(); // warm-up: page cache, first-run effects
  const samplesMs = Array.from({ length: runs }, once);
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { runs, medianMs: percentile(sorted, 50), p90Ms: percentile(sorted, 90), samplesMs };
}

const invokedAsScript = process.argv[1] !== undefined && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
if (invokedAsScript) {
  const argv = process.argv.slice(2);
  let runs = 30;
  if (argv[0] === '--runs') {
    runs = Number(argv[1]);
    argv.splice(0, 2);
  }
  const [executable, ...args] = argv;
  if (!executable || !Number.isInteger(runs) || runs < 1) {
    console.error('usage: tsx hack/bench/startup.ts [--runs N] EXECUTABLE [ARGS...]');
    process.exit(2);
  }
  try {
    const stats = measureStartup(executable, args, runs);
    console.log(`${executable}: median ${stats.medianMs.toFixed(1)} ms, p90 ${stats.p90Ms.toFixed(1)} ms (${runs} runs)`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
