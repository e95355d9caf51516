import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { offerAgentCall } from './agent-call.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(`${tmpdir()}/eni-agent-call-`);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("the plugin's addon beside the agent's socket", () => {
  const built = () => readFileSync('dist/native/agent-call.node');

  it('is put there, readable by the plugin, and left alone once it is right', () => {
    expect(offerAgentCall(`${dir}/agent.sock`)).toBeUndefined();
    const file = `${dir}/eni-cni-agent-call.node`;
    expect(readFileSync(file).equals(built())).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o644);
    const written = statSync(file).ino;
    expect(offerAgentCall(`${dir}/agent.sock`)).toBeUndefined();
    expect(statSync(file).ino).toBe(written);
    writeFileSync(file, 'stale');
    expect(offerAgentCall(`${dir}/agent.sock`)).toBeUndefined();
    expect(readFileSync(file).equals(built())).toBe(true);
  });

  it('says why when it cannot be put there', () => {
    expect(offerAgentCall(`${dir}/missing/agent.sock`)).toMatch(/cannot put the plugin's agent-call.node at .*missing.* \(ENOENT\); the plugin will use Node's socket/);
  });
});
