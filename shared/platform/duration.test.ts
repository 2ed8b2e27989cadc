import { parseDuration } from './duration';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['90s', 90_000],
    ['20m', 1_200_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    ['1m30s', 90_000],
    ['1h0m5s', 3_605_000],
    ['1.5s', 1500],
    ['250us', 0],
    [' 10s ', 10_000],
  ])('reads %j as %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', 'soon', '10', 's', '1y', '10 s', '1h-5m', '-5m', '5m garbage', '12345678s', '1e3s'])('refuses %j', (text) =>
    expect(parseDuration(text)).toBeNull(),
  );
});
