// One long-lived `ip -force -batch -` for the agent's own namespace: commands go down its stdin as they
// come, so an ADD or a DEL pays no process start for its host side (about 2 ms each here).
// To learn where a batch ends, each is followed by a command that must fail, naming a device that cannot
// exist; its error arrives on stderr after the batch's own errors, in order, on the same stream.
import { type ChildProcess, spawn } from 'node:child_process';

export class IpSession {
  private child?: ChildProcess;
  private stderr = '';
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private waiting?: { marker: string; done: (errors: string) => void; fail: (err: Error) => void };

  /** Runs `lines`; resolves with what ip said went wrong ('' when nothing did). Batches run one at a time. */
  run(lines: string[]): Promise<string> {
    const result = this.queue.then(() => this.runNow(lines));
    this.queue = result.catch(() => undefined);
    return result;
  }

  close(): void {
    this.child?.stdin?.end();
    this.child = undefined;
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
