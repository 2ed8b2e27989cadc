import { parseCommandLine, UsageError } from './args';

/** The rule flags of `bots add` / `bots set`: the same checks as the API, refusals naming the flag. */

const parse = (...argv: string[]) => parseCommandLine(argv, Date.parse('2026-12-02T12:00:00Z')).command;

describe('bots add and set with rule flags', () => {
  it('bots add takes every rule setting, integers as numbers', () => {
    expect(parse('bots', 'add', 'BTC-USD', '--rule', 'window', '--window-ms', '600000', '--pending-polls', '3', '--cooldown-ms', '60000', '--max-alerts', '1', '--expires-at', '2027-01-01T00:00:00Z')).toEqual({
      kind: 'bots-add',
      bot: expect.objectContaining({ pair: 'BTC-USD', rule: 'window', window_ms: 600_000, pending_polls: 3, cooldown_ms: 60_000, max_alerts: 1, expires_at: '2027-01-01T00:00:00.000Z' }),
    });
  });

  it('bots set takes none to clear a limit, and a rule flag alone is a change', () => {
    expect(parse('bots', 'set', 'BTC-USD', '--max-alerts', 'none', '--expires-at', 'none')).toEqual({ kind: 'bots-set', botId: 'BTC-USD', patch: { max_alerts: null, expires_at: null } });
    expect(parse('bots', 'set', 'BTC-USD', '--cooldown-ms', '0')).toEqual({ kind: 'bots-set', botId: 'BTC-USD', patch: { cooldown_ms: 0 } });
  });

  it.each([
    [['--rule', 'window'], /^--window-ms null is invalid: expected the length of the window in ms, from 1 to 86400000 \(required with rule window\)/],
    [['--pending-polls', '0'], /^--pending-polls 0 is invalid: expected an integer from 1 to 1000/],
    [['--cooldown-ms', 'soon'], /^--cooldown-ms "soon" is invalid/],
    [['--max-alerts', 'none-ish'], /^--max-alerts "none-ish" is invalid/],
    [['--expires-at', 'tomorrow'], /^--expires-at "tomorrow" is invalid: expected an ISO-8601 time with a zone/],
  ])('bots add %j is a usage error naming the flag', (flags, message) => {
    expect(() => parse('bots', 'add', 'BTC-USD', ...flags)).toThrow(UsageError);
    expect(() => parse('bots', 'add', 'BTC-USD', ...flags)).toThrow(message);
  });
});
