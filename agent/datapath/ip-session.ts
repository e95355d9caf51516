// One long-lived `ip -force -batch -` for the agent's own namespace: commands go down its stdin as they
// come, so an ADD or a DEL pays no process start for its host side (about 2 ms each here).
// To learn where a batch ends, each is followed by a command that must fail, naming a device that cannot
// exist; its error arrives on stderr after the batch's own errors, in order, on the same stream.
//
// iproute2 caches name → index inside its process and never looks again: a link deleted and made anew
// under the same name (a pod's veth after DEL and ADD, the next ENI given the same ethN) would be
// addressed by its old index ("No such device") for as long as the process lives. So a batch names the
// links it touches; the session remembers the index each had, and starts a fresh process when one changed.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const MAX_REMEMBERED_LINKS = 4096;

/** A link's index in the agent's namespace, or undefined when there is no such link. */
export type IndexOf = (link: string) => number | undefined;

/** Through sysfs, a few microseconds: /sys of the agent's own namespace (the DaemonSet and the lab mount it so). */
export function sysfsIndexOf(link: string): number | undefined {
  try {
    return Number(readFileSync(`/sys/class/net/${link}/ifindex`, 'utf8'));
  } catch {
    return undefined;
  }
}

export class IpSession {
  private child?: ChildProcess;
  private stderr = '';
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private waiting?: { marker: string; done: (errors: string) => void; fail: (err: Error) => void };
  /** the index of each link the current process has been told about (and so may have cached) */
  private readonly seen = new Map<string, number | undefined>();

  constructor(private readonly indexOf: IndexOf = sysfsIndexOf) {}

  /**
   * Runs `lines`, which address the links named in `links` by name; resolves with what ip said went wrong
   * ('' when nothing did). Batches run one at a time.
   */
  run(lines: string[], links: string[] = []): Promise<string> {
    const result = this.queue.then(() => {
      this.forgetStale(links);
      return this.runNow(lines);
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** A link the process knew under another index (or not at all, now) means its cache is stale: start afresh. */
  private forgetStale(links: string[]): void {
    const now = links.map((link) => [link, this.indexOf(link)] as const);
    const stale = now.some(([link, index]) => this.seen.has(link) && this.seen.get(link) !== index);
    // Past a few thousand names (pods come and go), a fresh process is cheaper than remembering them all.
    if (this.child && (stale || this.seen.size > MAX_REMEMBERED_LINKS)) this.close();
    for (const [link, index] of now) this.seen.set(link, index);
  }

  close(): void {
    this.child?.stdin?.end();
    this.child = undefined;
    this.seen.clear();
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.fail(new Error('the ip session was closed during a batch'));
  }

  private runNow(lines: string[]): Promise<string> {
    const child = this.child ?? this.start();
    const marker = `ecnimark${(this.seq = (this.seq + 1) % 1_000_000)}`;
    return new Promise((done, fail) => {
      this.waiting = { marker, done, fail };
      child.stdin!.write(`${lines.join('\n')}\nlink show dev ${marker}\n`);
    });
  }

  private start(): ChildProcess {
    const child = spawn('ip', ['-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child = child;
    this.stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      if (this.child !== child) return;
      this.stderr += chunk.toString();
      this.settle();
    });
    const gone = (why: string) => {
      // An old process (closed, replaced) ending is no news for the batch of the current one.
      if (this.child !== child) return;
      this.child = undefined;
      this.seen.clear();
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.fail(new Error(`the ip session ended (${why}) during a batch`));
    };
    child.on('error', (err) => gone(err.message));
    child.on('exit', (code, signal) => gone(`exit ${code ?? signal}`));
    child.stdin!.on('error', () => undefined);
    return child;
  }

  /** When the marker's error and its "Command failed" line are in, the batch is over. */
  private settle(): void {
    const waiting = this.waiting;
    if (!waiting) return;
    const at = this.stderr.indexOf(`"${waiting.marker}"`);
    if (at < 0) return;
    const lineStart = this.stderr.lastIndexOf('\n', at) + 1;
    const failedLine = /Command failed [^\n]*\n/.exec(this.stderr.slice(at));
    if (!failedLine) return;
    const end = at + failedLine.index + failedLine[0].length;
    const errors = this.stderr.slice(0, lineStart).trim();
    this.stderr = this.stderr.slice(end);
    this.waiting = undefined;
    waiting.done(errors);
  }
}
