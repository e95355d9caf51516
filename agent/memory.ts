// The agent's resident memory. Its budget (100 MB on a full node) is tight for a Node process, and glibc
// keeps what the C heap frees resident for reuse: start-up alone leaves about 10 MB of it.
import { loadNative } from './datapath/native/load.ts';

/** Gives the C heap's freed pages back to the kernel; true when there were any. Takes well under a millisecond. */
export function trimCHeap(): boolean {
  return (loadNative('netns') as { trim(): boolean }).trim();
}
