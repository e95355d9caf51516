import { describe, expect, it } from 'vitest';
import { parseGoDuration } from './go-duration.ts';

describe('Go durations', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1m0s', 60_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['2h45m10s', 9_910_000],
    ['0', 0],
  ])('reads %s', (text, ms) => expect(parseGoDuration(text)).toBe(ms));
  it.each(['', '5', 'm', '1d', '-1s', '1 h', '1hx'])('refuses %j', (text) => expect(parseGoDuration(text)).toBeUndefined());
});
