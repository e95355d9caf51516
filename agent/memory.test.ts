// trim() of the agent's addon, in a process of its own: C-heap memory freed below the heap's top stays
// resident until it is trimmed.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nativePaths } from './datapath/native/load.ts';

const PROGRAM = `
const addon = { exports: {} };
process.dlopen(addon, process.argv[1]);
const anon = () => Number(/RssAnon:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
// 64 KB each: below glibc's mmap threshold, so they come from its heap; the last one keeps the top in use.
const top = (() => Array.from({ length: 3000 }, () => new Uint8Array(64 * 1024).fill(1)).at(-1))();
gc();
gc();
// V8 frees the buffers' memory a little after the collection, off the main thread.
setTimeout(() => {
  const before = anon();
  const released = addon.exports.trim();
  console.log(JSON.stringify({ before, after: anon(), released, top: top.length }));
}, 300);
`;

describe('trimming the C heap', () => {
  it('gives freed memory back to the kernel', () => {
    const addon = nativePaths('netns').find((p) => existsSync(p))!;
    const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', PROGRAM, addon], { encoding: 'utf8' })) as { before: number; after: number; released: boolean };
    expect(out.released).toBe(true);
    // About 190 MB were freed; most of it must leave.
    expect(out.before - out.after).toBeGreaterThan(100);
  });
});
