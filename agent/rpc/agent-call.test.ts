import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentCallFile } from '../../shared/protocol.ts';
import { offerAgentCall } from './agent-call.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(`${tmpdir()}/eni-agent-call-`);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("the plugin's addon beside the agent's socket", () => {
  const built = () => readFileSync('dist/native/agent-call.node');
  const named = () => agentCallFile(`${dir}/agent.sock`, createHash('sha256').update(built()).digest('hex'));

  it('is put there under its digest, readable by the plugin, and left alone once it is right', () => {
    expect(offerAgentCall(`${dir}/agent.sock`)).toBeUndefined();
    const file = named();
    expect(file).toMatch(/\/eni-cni-agent-call-[0-9a-f]{16}\.node$/);
    expect(readFileSync(file).equals(built())).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o644);
    const written = statSync(file).ino;
    expect(offerAgentCall(`${dir}/agent.sock`)).toBeUndefined();
    expect(statSync(file).ino).toBe(written);
    writeFileSync(file, 'stale');
    expect(offerAgentCall(`${dir}/agent.sock`)).toBeUndefined();
    expect(readFileSync(file).equals(built())).toBe(true);
  });

  it("takes away earlier versions' files, and nothing else", () => {
    for (const name of ['eni-cni-agent-call-0123456789abcdef.node', 'eni-cni-agent-call.node', 'other.node', 'eni-cni-agent-call-notes.txt', 'eni-cni-agent-call-0123456789abcdef.node.4242.tmp']) writeFileSync(`${dir}/${name}`, 'x');
    // A directory of such a name is nobody's addon: it stays, and stops nothing.
    mkdirSync(`${dir}/eni-cni-agent-call-fedcba9876543210.node`);
    expect(offerAgentCall(`${dir}/agent.sock`)).toBeUndefined();
    expect(existsSync(`${dir}/eni-cni-agent-call-fedcba9876543210.node`)).toBe(true);
    expect(existsSync(`${dir}/eni-cni-agent-call-0123456789abcdef.node.4242.tmp`)).toBe(false);
    expect(existsSync(`${dir}/eni-cni-agent-call-0123456789abcdef.node`)).toBe(false);
    expect(existsSync(`${dir}/eni-cni-agent-call.node`)).toBe(false);
    expect(existsSync(`${dir}/other.node`)).toBe(true);
    expect(existsSync(`${dir}/eni-cni-agent-call-notes.txt`)).toBe(true);
    expect(existsSync(named())).toBe(true);
  });

  it('says why when it cannot be put there', () => {
    expect(offerAgentCall(`${dir}/missing/agent.sock`)).toMatch(/cannot put the plugin's agent-call.node at .*missing.* \(ENOENT\); the plugin will use Node's socket/);
  });
});
