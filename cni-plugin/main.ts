// eni-cni: the CNI plugin the container runtime executes for every pod.
import { readFileSync } from 'node:fs';
import { dispatch } from './dispatch.ts';

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

void dispatch({ env: process.env, stdin: readStdin(), write: (text) => process.stdout.write(text) }).then((code) => {
  process.exitCode = code;
});
