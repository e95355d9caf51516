// The plugin's native request to the agent (cni-plugin/native/agent-call.c): every way an exchange can end
// gives the same answer or CNI error as over Node's socket, with listeners in another process (the call
// blocks this one). Then the executable as a runtime runs it: it loads the addon the agent put beside the
// socket only when the file is byte for byte its own asset and the directory root's alone.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { fromFile } from '../cni-plugin/agent-call.ts';
import { askAgent } from '../cni-plugin/agent-client.ts';
import { CniCode, type CniError } from '../shared/cni.ts';
import { agentCallFile } from '../shared/protocol.ts';

const REPO = new URL('..', import.meta.url).pathname;
const call = fromFile(`${REPO}dist/native/agent-call.node`);
const ATTACHMENT = { address: '10.0.16.5', gateway: '169.254.1.1', mac: '0a:58:0a:00:10:05', hostIf: 'eni0123456789a', eniId: 'eni-1' };
let dir: string;
let listener: ChildProcess | undefined;

/** A listener in a process of its own: `answer` says how it treats each connection. */
async function listen(answer: 'ok' | 'line-then-open' | 'hang-up' | 'silent' | 'flood'): Promise<string> {
  const socket = `${dir}/agent.sock`;
  const script = `const ATTACHMENT = ${JSON.stringify(ATTACHMENT)};
    const net = require('node:net');
    require('node:fs').rmSync(${JSON.stringify(socket)}, { force: true });
    const answer = ${JSON.stringify(answer)};
    net.createServer({ allowHalfOpen: true }, (s) => {
      if (answer === 'hang-up') return s.destroy();
      s.on('data', () => {});
      if (answer === 'flood') return s.end('x'.repeat(2 * 1024 * 1024));
      const line = JSON.stringify({ v: 1, ok: true, ready: true, attachment: ATTACHMENT }) + '\\n';
      if (answer === 'ok') s.on('end', () => s.end(line));
      // Answers, and keeps its side open (as the agent does until its next turn of the event loop).
      if (answer === 'line-then-open') s.on('end', () => s.write(line));
    }).listen(${JSON.stringify(socket)}, () => process.stdout.write('up\\n'));`;
  listener = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => listener!.stdout!.once('data', () => resolve()));
  return socket;
}

beforeEach(() => {
  dir = mkdtempSync(`${tmpdir()}/eni-cni-call-`);
  chmodSync(dir, 0o755);
});
afterEach(() => {
  listener?.kill('SIGKILL');
  listener = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const add = { op: 'add', containerId: 'c0ffee', netns: '/var/run/netns/cni-1', ifName: 'eth0' } as never;
const both = [
  ['natively', call],
  ["over Node's socket", undefined],
] as const;

describe.each(both)('asking the agent %s', (_how, how) => {
  const failure = (socket: string, timeoutMs = 1000) => askAgent(socket, add, timeoutMs, how).then(() => undefined, (e: CniError) => e);

  it('reads the answer', async () => {
    const socket = await listen('ok');
    expect(await askAgent(socket, add, 1000, how)).toMatchObject({ ok: true, attachment: ATTACHMENT });
  });

  it('takes the answer at the end of its line, without waiting for the agent to close', async () => {
    const socket = await listen('line-then-open');
    expect(await askAgent(socket, add, 1000, how)).toMatchObject({ ok: true, attachment: ATTACHMENT });
  });

  it('says try again later, naming the socket and the container, when nothing listens, when it hangs up, when it is silent', async () => {
    expect((await failure(`${dir}/agent.sock`))?.message).toBe(`cannot reach the agent at ${dir}/agent.sock to add for container c0ffee: ENOENT; try again later`);
    const socket = await listen('hang-up');
    const hungUp = await failure(socket);
    expect(hungUp?.code).toBe(CniCode.TryAgainLater);
    expect(hungUp?.message).toMatch(/add for container c0ffee.*; try again later$/);
    listener!.kill('SIGKILL');
    await listen('silent');
    expect((await failure(socket, 200))?.message).toBe(`the agent at ${socket} did not answer add for container c0ffee within 200 ms; try again later`);
  });

  it('calls a file that is not a socket, or a listener that floods it, a configuration error', async () => {
    writeFileSync(`${dir}/agent.sock`, 'not a socket');
    const notSocket = await failure(`${dir}/agent.sock`);
    expect(notSocket?.code).toBe(CniCode.InvalidConfig);
    expect(notSocket?.message).toContain('is not a unix socket');
    rmSync(`${dir}/agent.sock`);
    const flood = await failure(await listen('flood'));
    expect(flood?.code).toBe(CniCode.InvalidConfig);
    expect(flood?.message).toMatch(/longer than 1048576 bytes: not the agent's/);
  });
});

describe('the executable', () => {
  const addon = () => readFileSync(`${REPO}dist/native/agent-call.node`);
  /** Where the executable looks: named by the digest of the addon it was built with. */
  const beside = () => agentCallFile(`${dir}/agent.sock`, createHash('sha256').update(addon()).digest('hex'));
  /**
   * Whether the plugin, asked for its STATUS by a silent agent, has the addon beside the socket loaded while
   * it waits: its memory map says, whatever its answer (Node's socket answers the same).
   */
  async function loadsIt(): Promise<boolean> {
    const socket = await listen('silent');
    const plugin = execa(`${REPO}dist/bin/eni-cni`, [], { env: { CNI_COMMAND: 'STATUS' }, extendEnv: false, input: JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 'eni-cni', agentSocket: socket }), reject: false });
    try {
      // Waiting on the socket by then, either way: the silent agent never answers.
      await new Promise((r) => setTimeout(r, 300));
      return readFileSync(`/proc/${plugin.pid}/maps`, 'utf8').includes(beside());
    } finally {
      plugin.kill('SIGKILL');
      await plugin;
    }
  }

  it('loads the addon the agent put beside its socket, named by the digest it was built with', async () => {
    writeFileSync(beside(), addon());
    expect(await loadsIt()).toBe(true);
  });

  it('loads nothing else there, nothing from a directory others may write to, and writes nothing', async () => {
    // Another build's addon under another digest is not looked at; a file of the name that is no addon does not load.
    writeFileSync(agentCallFile(`${dir}/agent.sock`, '0123456789abcdef'), addon());
    expect(await loadsIt()).toBe(false);
    listener!.kill('SIGKILL');
    writeFileSync(beside(), 'planted');
    expect(await loadsIt()).toBe(false);
    expect(readFileSync(beside(), 'utf8')).toBe('planted');
    listener!.kill('SIGKILL');
    writeFileSync(beside(), addon());
    chmodSync(dir, 0o777);
    expect(await loadsIt()).toBe(false);
    rmSync(beside());
    listener!.kill('SIGKILL');
    chmodSync(dir, 0o755);
    expect(await loadsIt()).toBe(false);
    expect(existsSync(beside())).toBe(false);
  });
});
