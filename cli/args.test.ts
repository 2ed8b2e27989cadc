import { parseCommandLine, UsageError } from './args';

/** Command-line parsing: the API's filters under flag names, and clear refusals. */

const NOW = Date.parse('2026-11-29T12:00:00Z');

describe('parseCommandLine', () => {
  it('lists alerts by default with the API filters, a 50-row table and relative times resolved', () => {
    const { command } = parseCommandLine(['--pair', 'btc-usd', '--pair', 'ETH-USD,XRP-USD', '--since', '1h', '--min-change', '0.5'], NOW);
    expect(command).toEqual({
      kind: 'alerts',
      filter: { pairs: ['BTC-USD', 'ETH-USD', 'XRP-USD'], direction: undefined, since: { iso: '2026-11-29T11:00:00.000Z', ms: NOW - 3_600_000 }, until: undefined, minChange: '0.5' },
      ordering: '-observed_at',
      limit: 50,
      format: 'table',
    });
  });

  it('exports everything in csv and json unless --limit says otherwise', () => {
    expect(parseCommandLine(['--format', 'csv'], NOW).command).toMatchObject({ limit: 'all', format: 'csv' });
    expect(parseCommandLine(['--format', 'json', '--limit', '20'], NOW).command).toMatchObject({ limit: 20, format: 'json' });
  });

  it('reads stats windows and connection flags', () => {
    const { command, connection } = parseCommandLine(['stats', '--window', '2h', '--database-url', 'postgres://x@h/db'], NOW);
    expect(command).toEqual({ kind: 'stats', since: '2026-11-29T10:00:00.000Z', until: undefined, window: '2h', pairs: [], format: 'table' });
    expect(connection.DATABASE_URL).toBe('postgres://x@h/db');
  });

  it('reads fleet remove with its bot id', () => {
    expect(parseCommandLine(['fleet', 'remove', 'btc-usd-1'], NOW).command).toEqual({ kind: 'fleet-remove', botId: 'btc-usd-1' });
  });

  it.each([
    [['--since', 'yesterday'], /^--since "yesterday" is invalid: expected an ISO-8601/],
    [['--min-change', 'lots'], /^--min-change "lots" is invalid/],
    [['--direction', 'sideways'], /^--direction "sideways" is invalid: expected one of up, down/],
    [['--colour', 'red'], /Unknown option '--colour'/],
    [['--format', 'xml'], /^--format "xml" is invalid: expected one of table, csv, json/],
    [['--limit', '0'], /^--limit "0" is invalid/],
    [['--since', '2h', '--until', '3h'], /^--until "3h" is invalid: expected a time after since/],
    [['stats', '--window', '1h', '--since', '2h'], /^--window "1h" is invalid: expected either window or since\/until/],
    [['stats', '--format', 'csv'], /^--format "csv" is invalid: expected one of table, json/],
    [['fleet', '--pair', 'BTC-USD'], /^--pair cannot be used with fleet/],
    [['explode'], /unknown command "explode"/],
    [['fleet', 'remove'], /^fleet remove takes one bot id, got: none/],
    [['fleet', 'remove', 'a', 'b'], /^fleet remove takes one bot id, got: a b/],
    [['fleet', 'remove', 'no spaces!'], /^bot id "no spaces!" is invalid/],
    [['fleet', 'remove', 'bot-1', '--format', 'json'], /^--format cannot be used with fleet remove/],
  ])('refuses %j naming the flag', (args, message) => {
    expect(() => parseCommandLine(args, NOW)).toThrow(UsageError);
    expect(() => parseCommandLine(args, NOW)).toThrow(message);
  });
});
