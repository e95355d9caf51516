// The allocations on disk, so that an agent restarted (or killed) keeps every running pod's address.
// Written atomically: a temporary file, fsync, rename, fsync of the directory.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Allocation } from './store.ts';

const FORMAT = 1;

export interface Checkpoint {
  load(): Allocation[];
  save(allocations: Allocation[]): void;
}

export class FileCheckpoint implements Checkpoint {
  constructor(private readonly file: string) {
    mkdirSync(dirname(file), { recursive: true });
  }

  load(): Allocation[] {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const data = JSON.parse(text) as { format?: number; allocations?: Allocation[] };
    if (data.format !== FORMAT || !Array.isArray(data.allocations)) {
      throw new Error(`checkpoint ${this.file} is not in format ${FORMAT}; move it away to start afresh`);
    }
    return data.allocations;
  }

  save(allocations: Allocation[]): void {
    const temp = `${this.file}.tmp`;
    const fd = openSync(temp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify({ format: FORMAT, allocations }));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, this.file);
    const dir = openSync(dirname(this.file), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }
}
