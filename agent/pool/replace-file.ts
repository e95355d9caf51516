// Replacing a file whole: the new text written to <file>.tmp, then renamed over <file>, so that a reader
// finds the old text or the new, never half of one; a replacement that fails leaves no temporary file, and
// a link planted at the temporary name is not followed. Two ways, one contract.
import { constants } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { getSystemErrorName } from 'node:util';
import { loadNative } from '../datapath/native/load.ts';

export type ReplaceFile = (file: string, text: string) => Promise<void>;

/** With node:fs: back on the main thread after each of open, write, close and rename. */
export const replaceWithFs: ReplaceFile = async (file, text) => {
  try {
    await writeFile(`${file}.tmp`, text, { mode: 0o600, flag: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW });
    await rename(`${file}.tmp`, file);
  } catch (err) {
    await rm(`${file}.tmp`, { force: true }).catch(() => undefined);
    throw err;
  }
};

/**
 * With the agent's addon: all four steps on one worker thread, and one return to the main thread. What an
 * ADD answers after (agent/pool/checkpoint.ts), while its main thread is busy plumbing the pod.
 */
export const replaceNatively: ReplaceFile = async (file, text) => {
  const { replaceFile } = loadNative('netns') as { replaceFile(path: string, data: Buffer): Promise<number> };
  const errno = await replaceFile(file, Buffer.from(text));
  if (errno !== 0) throw Object.assign(new Error(`${getSystemErrorName(-errno)}: cannot replace ${file}`), { errno: -errno });
};
