// What the benchmarks share: a median, and a CNI executable timed as a runtime on a lab node runs it.
import { spawn } from 'node:child_process';
import { childEnv } from '../lab/sh.ts';

export function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs `exe` in the node's network namespace with CNI variables and `stdin`; returns ms and output. */
export function timed(nodeNs: string, exe: string, env: Record<string, string>, stdin: string): Promise<{ ms: number; code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('nsenter', [`--net=/var/run/netns/${nodeNs}`, exe], { env: { ...childEnv(), ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, code: code ?? -1, out }));
    child.stdin.end(stdin);
  });
}
