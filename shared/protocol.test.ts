// The plugin's reading of the agent's answers: what the agent writes is read back as it was; anything
// else is refused naming the field, as a schema would.
import { describe, expect, it } from 'vitest';
import { ok, readResponse, refuse } from './protocol.ts';

const attachment = { address: '10.0.16.5', gateway: '169.254.1.1', mac: '0a:58:0a:00:10:05', hostIf: 'eni0123456789a', eniId: 'eni-1' };

describe('reading the agent\'s answer', () => {
  it.each([
    ['an ADD answer', ok({ attachment })],
    ['a whole-ENI ADD answer', ok({ attachment: { address: '10.0.16.9', gateway: '10.0.16.1', mac: '20:90:6f:00:00:09', hostIf: '', eniId: 'eni-2', prefix: 24 } })],
    ['a STATUS answer', ok({ ready: false })],
    ['a GC answer', ok({ released: 3 })],
    ['a refusal', refuse('no-address', 'no free address for pod shop/web-0')],
  ])('reads back %s as the agent wrote it', (_what, answer) => {
    expect(readResponse(JSON.stringify(answer), 'the answer')).toEqual({ ok: true, value: answer });
  });

  it('leaves out what a newer agent adds', () => {
    const newer = { v: 2, ok: true, attachment: { ...attachment, mtu: 9000 }, trace: 'x' };
    expect(readResponse(JSON.stringify(newer), 'the answer')).toEqual({ ok: true, value: { v: 2, ok: true, attachment } });
  });

  it.each([
    ['not JSON', '{', 'is not JSON'],
    ['an array', '[]', 'at (top)'],
    ['no version', '{"ok":true}', 'at v'],
    ['ok a string', '{"v":1,"ok":"yes"}', 'at ok'],
    ['an attachment without a MAC', JSON.stringify({ v: 1, ok: true, attachment: { ...attachment, mac: 7 } }), 'at attachment.mac'],
    ['a prefix beyond 32', JSON.stringify({ v: 1, ok: true, attachment: { ...attachment, prefix: 33 } }), 'at attachment.prefix'],
    ['ready a number', '{"v":1,"ok":true,"ready":1}', 'at ready'],
    ['released a string', '{"v":1,"ok":true,"released":"2"}', 'at released'],
    ['an error without a message', '{"v":1,"ok":false,"error":{"code":"internal"}}', 'at error.message'],
    ['an error code that is not a string', '{"v":1,"ok":false,"error":{"code":5,"message":"m"}}', 'at error.code'],
  ])('refuses %s, saying where', (_what, line, where) => {
    const read = readResponse(line, 'the answer to add');
    expect(read.ok).toBe(false);
    expect(!read.ok && read.message).toContain(where);
  });
});
