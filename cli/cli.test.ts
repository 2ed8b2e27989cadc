import { writeBotStatus } from '../shared/contract/fleet-status';
import { WIRE_ALERT_FIELDS } from '../shared/read-model/alert-wire';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { generateFixtureAlerts, copyAlerts, insertAlerts, type FixtureAlert } from '../test/helpers/fixtures';
import { startService } from '../test/helpers/process';
import { runCli } from '../test/helpers/cli';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';

/** `npm run alerts` as a real process against a fixture database and Redis. */

let tdb: TestDatabase;
let tr: TestRedis;
let rows: FixtureAlert[];
const NOW = Date.now();

beforeAll(async () => {
  [tdb, tr] = await Promise.all([createTestDatabase(), createTestRedis()]);
  rows = [...generateFixtureAlerts({ count: 400, start: new Date(NOW - 2 * 3_600_000), end: new Date(NOW - 1000), seed: 5 })];
  await copyAlerts(tdb.db, rows);
});

afterAll(async () => {
  await tr?.cleanup();
  await tdb?.drop();
});

const cli = (args: string[]) => runCli({ DATABASE_URL: tdb.url, REDIS_URL: tr.url, REDIS_KEY_PREFIX: tr.prefix }, args);

const lastHourBtc = () =>
  rows
    .filter((a) => a.pair === 'BTC-USD' && Date.parse(a.observed_at) >= NOW - 3_600_000)
    .sort((a, b) => Date.parse(b.observed_at) - Date.parse(a.observed_at) || (a.id < b.id ? 1 : -1));

describe('npm run alerts', () => {
  it('prints a readable table of the newest matching alerts by default', async () => {
    const { code, out } = await cli(['--pair', 'BTC-USD', '--since', '1h', '--limit', '5']);
    expect(code).toBe(0);
    const expected = lastHourBtc().slice(0, 5);
    for (const a of expected) expect(out).toContain(a.id);
    expect(out).toContain('change %');
    expect(out).toContain('5 alert(s)');
    // Newest first.
    expect(out.indexOf(expected[0]!.id)).toBeLessThan(out.indexOf(expected[4]!.id));
  });

  it('exports every matching row as CSV with --format csv', async () => {
    // An absolute since: the process starts a moment after NOW, and a relative one would move the window's edge.
    const { code, out } = await cli(['--pair', 'btc-usd', '--since', new Date(NOW - 3_600_000).toISOString(), '--format', 'csv']);
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines[0]).toBe('id,bot_id,pair,direction,price,reference_price,change_percent,threshold_percent,observed_at,config,received_at,silenced_by');
    expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual(lastHourBtc().map((a) => a.id));
  });

  it('escapes a cell that would start a spreadsheet formula in --format csv, and keeps negative changes numbers', async () => {
    const [base] = [...generateFixtureAlerts({ count: 1, start: new Date(NOW - 5 * 3_600_000), end: new Date(NOW - 4 * 3_600_000), seed: 9 })];
    const hostile = { ...base!, pair: 'ZZZ-USD', bot_id: '=HYPERLINK("http://evil")', direction: 'down' as const, change_percent: '-0.1' };
    await insertAlerts(tdb.db, [hostile]);
    const { code, out } = await cli(['--pair', 'zzz-usd', '--since', new Date(NOW - 6 * 3_600_000).toISOString(), '--format', 'csv']);
    expect(code).toBe(0);
    const row = out.trim().split('\n')[1]!;
    expect(row.startsWith(`${hostile.id},"'=HYPERLINK(""http://evil"")",ZZZ-USD,down,`)).toBe(true);
    expect(row).toContain(',-0.1,');
  });

  it('prints a JSON array of full alerts with --format json', async () => {
    const { code, out } = await cli(['--direction', 'down', '--min-change', '0.2', '--ordering=change_percent', '--format', 'json']);
    expect(code).toBe(0);
    const items = JSON.parse(out) as { id: string; change_percent: string; direction: string }[];
    const expected = rows.filter((a) => a.direction === 'down' && Math.abs(Number(a.change_percent)) >= 0.2).sort((a, b) => Number(a.change_percent) - Number(b.change_percent));
    expect(items.map((i) => i.id)).toEqual(expected.map((a) => a.id));
    expect(items[0]).toMatchObject({ direction: 'down', change_percent: expect.stringMatching(/^-0\.\d+$/) });
    // The API's wire alert, field for field (GET /alerts, /events and the webhook body use the same).
    for (const item of items) expect(Object.keys(item)).toEqual([...WIRE_ALERT_FIELDS]);
  });

  it('prints statistics per pair over a window', async () => {
    const { code, out } = await cli(['stats', '--window', '30m', '--format', 'json']);
    expect(code).toBe(0);
    const stats = JSON.parse(out) as { overall: { count: number }; pairs: { pair: string; count: number }[]; window: string };
    const inWindow = rows.filter((a) => Date.parse(a.observed_at) >= NOW - 30 * 60_000);
    // The CLI's clock runs a little after NOW, so the window may have lost an alert or two at its start.
    expect(stats.overall.count).toBeLessThanOrEqual(inWindow.length);
    expect(stats.overall.count).toBeGreaterThan(inWindow.length - 5);
    expect(stats.window).toBe('30m');
  });

  it('lists the fleet with stale bots marked', async () => {
    const config = { botId: 'sol-1', pair: 'SOL-EUR', intervalMs: 5000, thresholdPercent: '0.01', priceField: 'ask' as const, referenceMode: 'first' as const, tickerBaseUrl: 'http://127.0.0.1:9999' };
    const old = new Date(Date.now() - 600_000).toISOString();
    await writeBotStatus(tr.redis, tr.keys, {
      botId: 'sol-1', pair: 'SOL-EUR', status: 'ok', lastPrice: '140.5', lastFetchAt: old, consecutiveErrors: 0, startedAt: old, heartbeatAt: old,
      ttlMs: 15_000, rateLimited: false, effectiveIntervalMs: 5000, alertsPublished: 1, alertsDropped: 0, alertsQueued: 0, config,
    });
    const { code, out } = await cli(['fleet']);
    expect(code).toBe(0);
    expect(out).toMatch(/sol-1\s*│\s*SOL-EUR\s*│\s*STALE \(ok\)/);
    expect(out).toContain('140.5');
  });

  it('shows control characters from a bot id and a ticker error as visible escapes, never raw', async () => {
    const botId = 'evil\u001b[2J\u009b31m\u202ebot';
    const config = { botId: 'evil-bot', pair: 'XRP-EUR', intervalMs: 5000, thresholdPercent: '0.01', priceField: 'ask' as const, referenceMode: 'first' as const, tickerBaseUrl: 'http://127.0.0.1:9999' };
    const now = new Date().toISOString();
    await writeBotStatus(tr.redis, tr.keys, {
      botId, pair: 'XRP-EUR', status: 'degraded', consecutiveErrors: 3, lastError: 'bad\r\u001b]0;pwned\u0007 answer', startedAt: now, heartbeatAt: now,
      ttlMs: 15_000, rateLimited: false, effectiveIntervalMs: 5000, alertsPublished: 0, alertsDropped: 0, alertsQueued: 0, config,
    });
    const { code, out } = await cli(['fleet']);
    expect(code).toBe(0);
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(out).toContain('evil\\u001b[2J\\u009b31m\\u202ebot');
    expect(out).toContain('bad\\u000d\\u001b]0;pwned\\u0007 answer');
  });

  it('removes a bot from the fleet with fleet remove, and exits 1 naming an unknown one', async () => {
    const config = { botId: 'gone-1', pair: 'ETH-USD', intervalMs: 5000, thresholdPercent: '0.01', priceField: 'ask' as const, referenceMode: 'first' as const, tickerBaseUrl: 'http://127.0.0.1:9999' };
    const at = new Date().toISOString();
    await writeBotStatus(tr.redis, tr.keys, {
      botId: 'gone-1', pair: 'ETH-USD', status: 'stopped', consecutiveErrors: 0, startedAt: at, heartbeatAt: at,
      ttlMs: 15_000, rateLimited: false, effectiveIntervalMs: 5000, alertsPublished: 0, alertsDropped: 0, alertsQueued: 0, config,
    });
    const removed = await cli(['fleet', 'remove', 'gone-1']);
    expect(removed).toMatchObject({ code: 0, out: expect.stringContaining('removed bot gone-1 from the fleet') });
    expect((await cli(['fleet'])).out).not.toContain('gone-1');
    const unknown = await cli(['fleet', 'remove', 'gone-1']);
    expect(unknown).toMatchObject({ code: 1, out: expect.stringContaining('no bot has reported with id gone-1') });
  });

  it('exits 1 with one line naming the failure when the database is unreachable', async () => {
    const proc = startService('cli/main.ts', { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/tickwatch' }, ['--limit', '1']);
    expect(await proc.exited).toBe(1);
    expect(proc.output().trim()).toMatch(/^alerts: .*ECONNREFUSED/);
  });

  it('exits 2 with a clear message for a bad flag value', async () => {
    const { code, out } = await cli(['--since', 'yesterday']);
    expect(code).toBe(2);
    expect(out).toMatch(/--since "yesterday" is invalid: expected an ISO-8601/);
  });
});
