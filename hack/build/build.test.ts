// Builds a real single executable from a tiny entry and runs it: the whole esbuild -> SEA blob -> postject path.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build, buildTarget } from './build.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'build-test-'));
  // Two modules, so bundling is exercised too; stdin and argv as a CNI plugin gets them.
  await writeFile(join(dir, 'shout.ts'), `export const shout = (s: string): string => s.toUpperCase();\n`);
  await writeFile(
    join(dir, 'main.ts'),
    `import { readFileSync } from 'node:fs';
import { isSea } from 'node:sea';
import { shout } from './shout.ts';
const input: string = readFileSync(0, 'utf8');
// An optional package probed in try/catch, as the Tencent Cloud SDK does: must fail quietly.
let optional = 'absent';
try { require('surely-not-an-installed-package'); optional = 'present'; } catch { /* absent */ }
process.stdout.write(JSON.stringify({ args: process.argv.slice(2), input: shout(input), optional, sea: isSea() }));
process.exitCode = 3;
`,
  );
  await writeFile(join(dir, 'broken.ts'), `const x: number = ;\n`);
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true }); // the binary is ~100 MB
});

describe('build', () => {
  it('makes an executable that runs without node, reading argv and stdin and setting the exit code', async () => {
    const result = await buildTarget({ name: 'tiny', entry: 'main.ts', outfile: 'out/tiny', useCodeCache: true }, dir);
    expect(result.outfile).toBe(join(dir, 'out/tiny'));
    expect(result.bundleBytes).toBeGreaterThan(0);
    expect(result.binaryBytes).toBeGreaterThan(result.bundleBytes);

    const env: NodeJS.ProcessEnv = { ...process.env, PATH: '/nonexistent' }; // no node to fall back on
    delete env.NODE_EXTRA_CA_CERTS;
    const run = spawnSync(result.outfile, ['ADD', '--flag'], { env, input: 'hello pod' });
    expect(run.error).toBeUndefined();
    expect(run.stderr.toString()).toBe(''); // no experimental-feature warning, no SEA require() warning
    expect(JSON.parse(run.stdout.toString())).toEqual({ args: ['ADD', '--flag'], input: 'HELLO POD', optional: 'absent', sea: true });
    expect(run.status).toBe(3);
  }, 120_000);

  it('skips a target whose entry does not exist yet', async () => {
    expect(await build([{ name: 'later', entry: 'missing.ts', outfile: 'out/later' }], dir)).toEqual([]);
  });

  it('names the target when bundling fails', async () => {
    await expect(buildTarget({ name: 'broken', entry: 'broken.ts', outfile: 'out/broken' }, dir)).rejects.toThrow(
      /^broken: esbuild could not bundle broken\.ts/,
    );
  });
});
