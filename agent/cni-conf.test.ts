import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { installCniConf } from './cni-conf.ts';

const CONFLIST = JSON.stringify({ cniVersion: '1.0.0', name: 'eni-cni', plugins: [{ type: 'eni-cni', agentSocket: '/run/eni-cni/agent.sock' }, { type: 'portmap' }] });

describe('installing the CNI network configuration', () => {
  let root = '';
  let source = '';
  let dir = '';
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'eni-cni-conf-'));
    source = join(root, 'config', '10-eni-cni.conflist');
    dir = join(root, 'net.d');
    mkdirSync(join(root, 'config'));
    mkdirSync(dir);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('puts the conflist into the dir under its own name, replacing an older one, with nothing left beside it', () => {
    writeFileSync(source, CONFLIST);
    writeFileSync(join(dir, '10-eni-cni.conflist'), '{"old": true}');
    writeFileSync(join(dir, '05-other.conflist'), 'another plugin');
    expect(installCniConf(source, dir)).toBe(join(dir, '10-eni-cni.conflist'));
    expect(readFileSync(join(dir, '10-eni-cni.conflist'), 'utf8')).toBe(CONFLIST);
    expect(statSync(join(dir, '10-eni-cni.conflist')).mode & 0o777).toBe(0o644);
    expect(readdirSync(dir).sort()).toEqual(['05-other.conflist', '10-eni-cni.conflist']);
    expect(readFileSync(join(dir, '05-other.conflist'), 'utf8')).toBe('another plugin');
  });

  it.each([
    ['not JSON', '{"plugins": [', /10-eni-cni\.conflist is not eni-cni's conflist: not JSON/],
    ['without plugins', '{"cniVersion": "1.0.0", "name": "eni-cni"}', /no "plugins" list/],
    ['another plugin first', JSON.stringify({ cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'ptp' }] }), /first plugin is "ptp", not "eni-cni"/],
  ])('refuses a conflist %s, naming the file, and leaves the dir as it was', (_what, text, error) => {
    writeFileSync(source, text);
    writeFileSync(join(dir, '10-eni-cni.conflist'), CONFLIST);
    expect(() => installCniConf(source, dir)).toThrow(error);
    expect(readdirSync(dir)).toEqual(['10-eni-cni.conflist']);
    expect(readFileSync(join(dir, '10-eni-cni.conflist'), 'utf8')).toBe(CONFLIST);
  });

  it('names the source it cannot read and the target it cannot write', () => {
    expect(() => installCniConf(source, dir)).toThrow(`the CNI network configuration ${source} cannot be read`);
    writeFileSync(source, CONFLIST);
    expect(() => installCniConf(source, join(root, 'missing'))).toThrow(`as ${join(root, 'missing', '10-eni-cni.conflist')}`);
  });
});
