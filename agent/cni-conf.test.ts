import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CniConfKeeper, installCniConf, readCniConf, shadowingConfs } from './cni-conf.ts';

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
    // A copy a crash left behind, with the wrong mode: replaced, not reused.
    writeFileSync(join(dir, '10-eni-cni.conflist.eni-cni-tmp'), 'half', { mode: 0o600 });
    expect(installCniConf(source, dir)).toEqual({ path: join(dir, '10-eni-cni.conflist'), written: true });
    expect(readFileSync(join(dir, '10-eni-cni.conflist'), 'utf8')).toBe(CONFLIST);
    expect(statSync(join(dir, '10-eni-cni.conflist')).mode & 0o777).toBe(0o644);
    expect(readdirSync(dir).sort()).toEqual(['05-other.conflist', '10-eni-cni.conflist']);
    expect(readFileSync(join(dir, '05-other.conflist'), 'utf8')).toBe('another plugin');
  });

  it('writes nothing when the conflist is there as it is, and puts it back when it was deleted', () => {
    writeFileSync(source, CONFLIST);
    installCniConf(source, dir);
    const before = statSync(join(dir, '10-eni-cni.conflist')).ino;
    expect(installCniConf(source, dir).written).toBe(false);
    expect(statSync(join(dir, '10-eni-cni.conflist')).ino).toBe(before);
    rmSync(join(dir, '10-eni-cni.conflist'));
    expect(installCniConf(source, dir).written).toBe(true);
    expect(readFileSync(join(dir, '10-eni-cni.conflist'), 'utf8')).toBe(CONFLIST);
  });

  it.each([
    ['not JSON', '{"plugins": [', /10-eni-cni\.conflist is not eni-cni's conflist: not JSON/],
    ['without plugins', '{"cniVersion": "1.0.0", "name": "eni-cni"}', /no "plugins" list/],
    ['another plugin first', JSON.stringify({ cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'ptp' }] }), /first plugin is "ptp", not "eni-cni"/],
  ])('refuses a conflist %s, naming the file, and leaves the dir as it was', (_what, text, error) => {
    writeFileSync(source, text);
    writeFileSync(join(dir, '10-eni-cni.conflist'), CONFLIST);
    expect(() => readCniConf(source)).toThrow(error);
    expect(() => installCniConf(source, dir)).toThrow(error);
    expect(readdirSync(dir)).toEqual(['10-eni-cni.conflist']);
    expect(readFileSync(join(dir, '10-eni-cni.conflist'), 'utf8')).toBe(CONFLIST);
  });

  it('names the source it cannot read and the target it cannot write, leaving no copy behind', () => {
    expect(() => installCniConf(source, dir)).toThrow(`the CNI network configuration ${source} cannot be read`);
    writeFileSync(source, CONFLIST);
    expect(() => installCniConf(source, join(root, 'missing'))).toThrow(`as ${join(root, 'missing', '10-eni-cni.conflist')}`);
    expect(readdirSync(join(root, 'config'))).toEqual(['10-eni-cni.conflist']);
  });

  it('finds the configurations a runtime would read before ours', () => {
    for (const f of ['00-multus.conf', '10-containerd-net.conflist', '99-loopback.conf', 'README', '10-eni-cni.conflist']) writeFileSync(join(dir, f), '{}');
    expect(shadowingConfs(dir, '10-eni-cni.conflist')).toEqual(['00-multus.conf', '10-containerd-net.conflist']);
    expect(shadowingConfs(join(root, 'missing'), '10-eni-cni.conflist')).toEqual([]);
  });

  it('keeps it installed: puts it back, says once when it cannot, and warns when another sorts first', () => {
    const said: string[] = [];
    const keeper = new CniConfKeeper({ source, dir }, (level, message) => said.push(`${level}: ${message}`));
    writeFileSync(source, CONFLIST);
    keeper.keep();
    keeper.keep();
    expect(said).toEqual([`info: installed the CNI network configuration ${join(dir, '10-eni-cni.conflist')}`]);
    rmSync(join(dir, '10-eni-cni.conflist'));
    keeper.keep();
    expect(readFileSync(join(dir, '10-eni-cni.conflist'), 'utf8')).toBe(CONFLIST);
    // The ConfigMap turned bad: not ready, said once, the installed one left as it was.
    writeFileSync(source, '{');
    keeper.keep();
    keeper.keep();
    expect(keeper.problem()).toMatch(/is not eni-cni's conflist: not JSON/);
    expect(said.filter((s) => s.startsWith('error:'))).toHaveLength(1);
    expect(readFileSync(join(dir, '10-eni-cni.conflist'), 'utf8')).toBe(CONFLIST);
    writeFileSync(source, CONFLIST);
    writeFileSync(join(dir, '00-other.conflist'), '{}');
    keeper.keep();
    keeper.keep();
    expect(keeper.problem()).toBeUndefined();
    expect(said.filter((s) => s.startsWith('warn:'))).toEqual([`warn: the runtime reads 00-other.conflist in ${dir} before eni-cni's conflist ${join(dir, '10-eni-cni.conflist')}: pods get that network, not eni-cni's`]);
  });
});
