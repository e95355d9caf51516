// `npm run build`: TypeScript entry points -> standalone Node executables (single executable applications).
// The CNI plugin runs on hosts without Node and sits on every pod's start-up path, so it ships as one file
// that carries its own Node. See hack/build/README.md.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { chmod, copyFile, constants, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

export interface Target {
  /** Shown in messages. */
  name: string;
  /** The TypeScript entry point. */
  entry: string;
  /** The executable to write. */
  outfile: string;
  /** Store V8's compiled code of the bundle in the binary (see TARGETS for when it pays). Default false. */
  useCodeCache?: boolean;
  /** Only native addons (esbuild cannot bundle `.node` files); everything else is bundled. */
  external?: string[];
  /** Modules replaced in the bundle (esbuild's alias): a package's own addon loader, say. */
  alias?: Record<string, string>;
  /** Native addons the program loads from dist/native (beside dist/bin: agent/datapath/native/load.ts). */
  addons?: Addon[];
  /** Constants defined in the bundle as the SHA-256 (hex) of a file built before it: name -> file. */
  digests?: Record<string, string>;
}

/**
 * A native addon at dist/native/<name>.node: built from `dir` (binding.gyp and <name>.c) with node-gyp
 * against the local Node headers, or copied from a package's `prebuilt` binary.
 */
export type Addon = { name: string; dir: string } | { name: string; prebuilt: string };

/** setns(2) and netlink requests off the main thread, for the agent's netlink datapath (agent/datapath/netlink.ts). */
const NETNS: Addon = { name: 'netns', dir: 'agent/datapath/native' };
/** The plugin's synchronous request to the agent (cni-plugin/native/agent-call.c), an asset of its executable. */
const AGENT_CALL: Addon = { name: 'agent-call', dir: 'cni-plugin/native' };
/** netlink@0.3.0's prebuilt N-API binary for this machine. */
const NETLINK: Addon = { name: 'netlink', prebuilt: `node_modules/netlink/prebuilds/linux-${process.arch}/node.napi.node` };

export interface BuildResult {
  name: string;
  outfile: string;
  bundleBytes: number;
  binaryBytes: number;
  ms: number;
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * useCodeCache stores V8's compiled top-level code in the binary. Measured here (2 cores, medians of 40 starts,
 * NODE_EXTRA_CA_CERTS unset): a 1.3 MB bundle of the project's dependencies (commander, execa, pino, zod, the VPC
 * client) starts in 58 ms with it and 81 ms without; the empty program in 15 ms either way. The price is about
 * 0.45 MB of binary for that bundle (nothing for the empty one), and V8 quietly ignores the cache and compiles
 * as usual if run with different V8 flags. So:
 * - eni-cni: on. It starts on every pod's ADD and DEL.
 * - eni-agent: on. A long-running daemon, but pods on a (re)booted node wait for it to come up.
 * - eni-ipamd: off. A long-running Deployment no pod waits on at its start; a standby replica is up long before it leads.
 * - empty-node: on, like the plugin, so that it is the floor of exactly the same build (it makes no difference there).
 */
export const TARGETS: Target[] = [
  {
    name: 'eni-cni',
    entry: 'cni-plugin/main.ts',
    outfile: 'dist/bin/eni-cni',
    useCodeCache: true,
    addons: [AGENT_CALL],
    // The plugin loads the addon the agent puts beside its socket, found by this digest (cni-plugin/agent-call.ts).
    digests: { AGENT_CALL_SHA256: 'dist/native/agent-call.node' },
  },
  {
    name: 'eni-agent',
    entry: 'agent/main.ts',
    outfile: 'dist/bin/eni-agent',
    useCodeCache: true,
    addons: [NETNS, NETLINK],
    alias: { 'node-gyp-build': './agent/datapath/native/node-gyp-build.cjs' },
  },
  { name: 'eni-ipamd', entry: 'agent/ipamd/main.ts', outfile: 'dist/bin/eni-ipamd', useCodeCache: false },
  { name: 'eni-cnictl', entry: 'agent/ctl/main.ts', outfile: 'dist/bin/eni-cnictl', useCodeCache: true },
  { name: 'empty-node', entry: 'hack/bench/empty.ts', outfile: 'dist/bench/empty-node', useCodeCache: true },
];

const SENTINEL_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const POSTJECT_CLI = createRequire(import.meta.url).resolve('postject/dist/cli.js');

/** Runs a command; a failure names the target, the command and what it printed. */
function run(target: string, cmd: string, args: string[]): Promise<void> {
  const shown = [cmd, ...args].join(' ');
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (err) => fail(new Error(`${target}: \`${shown}\` could not start: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) done();
      else fail(new Error(`${target}: \`${shown}\` failed (${signal ?? `exit ${code}`}): ${output.trim()}`));
    });
  });
}

/**
 * Puts a native addon at dist/native/<name>.node: a prebuilt one copied, or one built in a copy under
 * dist/native (the sources stay clean) with npm's own node-gyp and the local Node headers (nothing is
 * downloaded).
 */
export async function buildAddon(addon: Addon, cwd = ROOT): Promise<string> {
  const out = resolve(cwd, 'dist/native', `${addon.name}.node`);
  await mkdir(dirname(out), { recursive: true });
  if ('prebuilt' in addon) {
    await copyFile(resolve(cwd, addon.prebuilt), out);
    return out;
  }
  const work = resolve(cwd, 'dist/native', addon.name);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  for (const file of ['binding.gyp', `${addon.name}.c`]) await copyFile(resolve(cwd, addon.dir, file), join(work, file));
  // npm's node-gyp, beside the Node that runs this (npm sets npm_config_node_gyp for its scripts).
  const nodeGyp = process.env.npm_config_node_gyp ?? join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  if (!existsSync(nodeGyp)) throw new Error(`${addon.name}: npm's node-gyp is not at ${nodeGyp}`);
  const nodedir = resolve(dirname(process.execPath), '..');
  if (!existsSync(join(nodedir, 'include/node/node_api.h'))) throw new Error(`${addon.name}: no Node headers in ${nodedir}/include/node`);
  await run(addon.name, process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, `--directory=${work}`]);
  await copyFile(join(work, 'build/Release', `${addon.name}.node`), out);
  return out;
}

/** Builds one target; relative paths are taken from `cwd` (default: the repository root). */
export async function buildTarget(target: Target, cwd = ROOT): Promise<BuildResult> {
  const started = performance.now();
  for (const addon of target.addons ?? []) await buildAddon(addon, cwd);
  const entry = resolve(cwd, target.entry);
  const outfile = resolve(cwd, target.outfile);
  const work = await mkdtemp(join(tmpdir(), `sea-${target.name}-`));
  // Staged beside the outfile and renamed over it: never a half-written binary, and no ETXTBSY if the old one runs.
  const staged = `${outfile}.partial`;
  try {
    const bundle = join(work, 'main.cjs');
    try {
      await esbuild.build({
        entryPoints: [entry],
        outfile: bundle,
        bundle: true,
        packages: 'bundle',
        platform: 'node',
        target: 'node20',
        format: 'cjs', // the SEA main script is run as CommonJS
        minify: true,
        keepNames: true, // error and class names stay readable in logs (and `constructor.name` keeps working)
        treeShaking: true,
        sourcemap: false,
        external: target.external ?? [],
        alias: target.alias ?? {},
        define: Object.fromEntries(
          await Promise.all(Object.entries(target.digests ?? {}).map(async ([name, file]) => [name, JSON.stringify(createHash('sha256').update(await readFile(resolve(cwd, file))).digest('hex'))])),
        ),
        // In CommonJS output import.meta is empty: a `import.meta.url === argv[1]` main check would silently never run.
        logOverride: { 'empty-import-meta': 'error' },
        logLevel: 'warning', // esbuild prints its own warnings and errors with file and line
        // The SEA's own `require` loads only built-in modules and, for anything else, prints a 4-line warning to
        // stderr on every start: the Tencent Cloud SDK probes optional packages (`encoding`, `supports-color`)
        // in try/catch. A real require (relative to the binary) makes those fail quietly as under plain node, and
        // lets an external native addon load from beside the binary. The banner goes above esbuild's
        // "use strict" and would demote it, so it carries its own: the sources are ES modules, strict anyway.
        banner: { js: '"use strict";require=require("module").createRequire(__filename);' },
      });
    } catch {
      throw new Error(`${target.name}: esbuild could not bundle ${target.entry} (its errors are printed above)`);
    }

    const blob = join(work, 'sea.blob');
    const config = join(work, 'sea-config.json');
    await writeFile(
      config,
      JSON.stringify({
        main: bundle,
        output: blob,
        disableExperimentalSEAWarning: true, // stderr of a CNI plugin ends up in kubelet's logs on every call
        useSnapshot: false, // fails on Node 20 once `http` is loaded at snapshot time
        useCodeCache: target.useCodeCache ?? false,
      }),
    );
    // The blob must come from the very Node binary it is injected into.
    await run(target.name, process.execPath, ['--experimental-sea-config', config]);

    await mkdir(dirname(outfile), { recursive: true });
    await copyFile(process.execPath, staged, constants.COPYFILE_FICLONE); // a reflink where the filesystem can
    await chmod(staged, 0o755);
    // Linux needs no signature removal (only macOS and Windows sign node).
    await run(target.name, process.execPath, [POSTJECT_CLI, staged, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SENTINEL_FUSE]);
    await rename(staged, outfile);

    return {
      name: target.name,
      outfile,
      bundleBytes: (await stat(bundle)).size,
      binaryBytes: (await stat(outfile)).size,
      ms: Math.round(performance.now() - started),
    };
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(staged, { force: true });
  }
}

/** Builds the targets one after another, skipping (with a message) those whose entry does not exist yet. */
export async function build(targets: Target[] = TARGETS, cwd = ROOT): Promise<BuildResult[]> {
  const results: BuildResult[] = [];
  for (const target of targets) {
    if (!existsSync(resolve(cwd, target.entry))) {
      console.log(`${target.name}: skipped, ${target.entry} does not exist yet`);
      continue;
    }
    const result = await buildTarget(target, cwd);
    const kb = (result.bundleBytes / 1024).toFixed(1);
    const mb = (result.binaryBytes / 1024 / 1024).toFixed(1);
    console.log(`${target.name}: ${relative(process.cwd(), result.outfile)}  bundle ${kb} KB, binary ${mb} MB, ${result.ms} ms`);
    results.push(result);
  }
  return results;
}

const invokedAsScript = process.argv[1] !== undefined && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
if (invokedAsScript) {
  build().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
