// The allocations on disk, so that an agent restarted (or killed) keeps every running pod's address, and
// the addresses still cooling down after a DEL, so that a restart does not hand them out early.
// Written atomically: a temporary file, then renamed over the old one, so that a reader (the agent after a
// restart) finds the old state or the new, never half of one. Not fsynced: what it must survive is the
// agent's own death (SIGKILL, OOM, an upgrade), which the page cache outlives; a crash of the machine takes
// every pod's namespace and veth with it, and its state dir (/run) is a tmpfs there. Two fsyncs cost about
// 1.5 ms of every ADD and DEL on a disk (bench:add's agent_allocate_ms).
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
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
  save(state: CheckpointState): void;
}

export class FileCheckpoint implements Checkpoint {
  constructor(private readonly file: string) {
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

  save({ allocations, cooling }: CheckpointState): void {
    const temp = `${this.file}.tmp`;
    const fd = openSync(temp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify({ format: FORMAT, allocations, cooling }));
    } finally {
      closeSync(fd);
    }
    renameSync(temp, this.file);
  }
}
