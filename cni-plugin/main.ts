// eni-cni: the CNI plugin the container runtime executes for every pod.
import { readFileSync, writeSync } from 'node:fs';
import { dispatch } from './dispatch.ts';

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The answer, written straight to fd 1. Not process.stdout: making that stream costs about 3 ms of the
 * plugin's start-up here (bench:add), on every pod's ADD and DEL. A pipe that Node made non-blocking may
 * take it in parts, or say EAGAIN when full; the answer is a few hundred bytes, so this seldom loops.
 */
function writeOut(text: string): void {
  let bytes = Buffer.from(text);
  while (bytes.length > 0) {
    try {
      bytes = bytes.subarray(writeSync(1, bytes));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }
}

void dispatch({ env: process.env, stdin: readStdin(), write: writeOut }).then((code) => {
  // At once: the answer is written (synchronously) and nothing else is pending. Node's orderly ending of
  // an idle process (its heap unmapped piece by piece, its threads woken and joined) costs about 1.7 ms
  // (an empty executable, medians of 60) that the runtime would wait for on every pod's ADD and DEL.
  process.exit(code);
});
