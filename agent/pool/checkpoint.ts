// The allocations on disk, so that an agent restarted (or killed) keeps every running pod's address, and
// the addresses still cooling down after a DEL, so that a restart does not hand them out early.
// Written atomically: a temporary file, then renamed over the old one, so that a reader (the agent after a
// restart) finds the old state or the new, never half of one. Not fsynced: what it must survive is the
// agent's own death (SIGKILL, OOM, an upgrade), which the page cache outlives; a crash of the machine takes
// every pod's namespace and veth with it, and its state dir (/run) is a tmpfs there.
// Written off the main thread: the state is taken (serialized) when `save` is called, the file is written
// on libuv's pool meanwhile (in one hop, by the agent's addon), so an ADD plumbs its pod while its address is being written down, and answers
// once both are done. Saves that come while a write is under way are folded into the next one.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { replaceWithFs, type ReplaceFile } from './replace-file.ts';
import type { Allocation } from './store.ts';

/** 2 added `cooling`; format 1 files are still read. */
const FORMAT = 2;

export interface CheckpointState {
  allocations: Allocation[];
  /** address → ms since the epoch until which it rests */
  cooling: Record<string, number>;
}

export interface Checkpoint {
  load(): CheckpointState;
  /** Writes `state` as it is now; resolves once it (or a later state) is on file, rejects if that write failed. */
  save(state: CheckpointState): Promise<void>;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export class FileCheckpoint implements Checkpoint {
  /** the newest state not yet being written, and who waits for it */
  private next: { text: string; waiters: Waiter[] } | undefined;
  /** the write under way, if any */
  private writing: Promise<void> | undefined;

  constructor(
    private readonly file: string,
    private readonly o: {
      /** called after each write that reached the file */
      onWritten?: () => void;
      /** how the file is replaced: the agent's addon in the agent (replace-file.ts) */
      replace?: ReplaceFile;
    } = {},
  ) {
    mkdirSync(dirname(file), { recursive: true });
  }

  load(): CheckpointState {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { allocations: [], cooling: {} };
      throw err;
    }
    const data = JSON.parse(text) as { format?: number; allocations?: Allocation[]; cooling?: Record<string, number> };
    if ((data.format !== 1 && data.format !== FORMAT) || !Array.isArray(data.allocations)) {
      throw new Error(`checkpoint ${this.file} is not in format 1 or ${FORMAT}; move it away to start afresh`);
    }
    return { allocations: data.allocations, cooling: data.cooling ?? {} };
  }

  save({ allocations, cooling }: CheckpointState): Promise<void> {
    const text = JSON.stringify({ format: FORMAT, allocations, cooling });
    const done = new Promise<void>((resolve, reject) => {
      const waiter = { resolve, reject };
      if (this.next) {
        this.next.text = text;
        this.next.waiters.push(waiter);
      } else this.next = { text, waiters: [waiter] };
    });
    this.writing ??= this.writeAll();
    return done;
  }

  /** Resolves once no write is under way or waiting (the agent stopping). */
  async settled(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async writeAll(): Promise<void> {
    const replace = this.o.replace ?? replaceWithFs;
    for (let batch = this.next; batch; batch = this.next) {
      this.next = undefined;
      try {
        await replace(this.file, batch.text);
        this.o.onWritten?.();
        for (const w of batch.waiters) w.resolve();
      } catch (err) {
        const failed = new Error(`writing the checkpoint ${this.file}: ${(err as Error).message}`, { cause: err });
        for (const w of batch.waiters) w.reject(failed);
      }
    }
    // In the same step as the loop's last look at `next`: a save from now on starts a writer of its own.
    this.writing = undefined;
  }
}
