import { userInfo } from 'node:os';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { runCli } from '../test/helpers/cli';

/** `npm run alerts -- silences ...` as a real process: the silences table through the API's repository and checks. */

let tdb: TestDatabase;

beforeAll(async () => {
  tdb = await createTestDatabase();
});

afterAll(async () => {
  await tdb?.drop();
});

const cli = (args: string[]) => runCli({ DATABASE_URL: tdb.url }, args);

describe('npm run alerts -- silences', () => {
  const actor = `cli:${userInfo().username}`;
  let id: string;

  it('adds an active silence recorded as cli:<user>', async () => {
    const { code, out } = await cli(['silences', 'add', '--pair', 'eth-usd', '--direction', 'down', '--duration', '2h', '--comment', 'ETH feed upgrade']);
    expect(out).toMatch(/^added silence [0-9a-f-]{36} \(pair=ETH-USD direction=down, .* to .*\) active$/m);
    expect(code).toBe(0);
    const row = await tdb.db('silences').first();
    expect(row).toMatchObject({ matchers: { pair: 'ETH-USD', direction: 'down' }, comment: 'ETH feed upgrade', created_by: actor, expired_at: null });
    expect(row.ends_at.getTime() - row.starts_at.getTime()).toBe(2 * 3_600_000);
    id = row.id;
  });

  it('adds a pending one as JSON in the API shape', async () => {
    const start = new Date(Date.now() + 3_600_000).toISOString();
    const { code, out } = await cli(['silences', 'add', '--bot-id', 'btc-1', '--starts-at', start, '--duration', '30m', '--comment', 'later', '--format', 'json']);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ matchers: { bot_id: 'btc-1' }, starts_at: start, state: 'pending', created_by: actor });
  });

  it('lists them, by state too', async () => {
    const all = await cli(['silences', 'list']);
    expect(all.code).toBe(0);
    expect(all.out).toMatch(/pair=ETH-USD direction=down.*active.*ETH feed upgrade/);
    expect(all.out).toMatch(/bot_id=btc-1.*pending/);
    const active = await cli(['silences', 'list', '--state', 'active', '--format', 'json']);
    expect(JSON.parse(active.out).map((s: { id: string }) => s.id)).toEqual([id]);
  });

  it.each([
    [['silences', 'add', '--duration', '1h', '--comment', 'x'], /a silence needs at least one matcher: --pair, --bot-id or --direction/],
    [['silences', 'add', '--pair', 'BTCUSD', '--duration', '1h', '--comment', 'x'], /--pair "BTCUSD" is invalid: expected a pair such as BTC-USD/],
    [['silences', 'add', '--pair', 'BTC-USD', '--duration', 'forever', '--comment', 'x'], /--duration "forever" is invalid: expected a duration such as 30m/],
    [['silences', 'add', '--pair', 'BTC-USD', '--comment', 'x'], /--ends-at is required: expected ends_at or duration/],
    [['silences', 'add', '--pair', 'BTC-USD', '--duration', '1h'], /--comment is required: expected a non-empty text/],
    [['silences', 'add', '--pair', 'BTC-USD', '--ends-at', '1h', '--comment', 'x'], /--ends-at "1h" is invalid: expected an ISO-8601 date-time/],
    [['silences', 'add', '--pair', 'BTC-USD', '--duration', '1h', '--comment', 'x', '--state', 'active'], /--state cannot be used with silences add/],
    [['silences', 'list', '--state', 'muted'], /--state "muted" is invalid: expected one of pending, active, expired/],
    [['silences', 'expire', 'nope'], /silence id "nope" is invalid: expected a UUID/],
    [['silences', 'mute'], /silences takes one of list, add, expire/],
    [['--state', 'active'], /--state cannot be used with the alert list/],
  ])('refuses %j with exit 2 naming the flag, changing nothing', async (args, message) => {
    const { code, out } = await cli(args);
    expect(out).toMatch(message);
    expect(code).toBe(2);
    expect(await tdb.db('silences').count({ n: '*' }).first()).toEqual({ n: '2' });
  });

  it('expires one now (exit 0), says so again without changing it, and exits 1 for an unknown id', async () => {
    const first = await cli(['silences', 'expire', id]);
    expect(first.code).toBe(0);
    expect(first.out).toContain(`expired silence ${id}`);
    const row = await tdb.db('silences').where({ id }).first();
    expect(row).toMatchObject({ expired_by: actor });
    const again = await cli(['silences', 'expire', id.toUpperCase()]);
    expect(again.code).toBe(0);
    expect(again.out).toContain('was already expired');
    expect((await tdb.db('silences').where({ id }).first()).expired_at).toEqual(row.expired_at);
    const unknown = await cli(['silences', 'expire', '0b6f2f4e-3c1a-4d5e-9f00-1a2b3c4d5e6f']);
    expect(unknown.code).toBe(1);
    expect(unknown.out).toContain('no silence has id 0b6f2f4e-3c1a-4d5e-9f00-1a2b3c4d5e6f');
    expect((await cli(['silences', 'list', '--state', 'expired', '--format', 'json'])).out).toContain(id);
  });

  it('filters the alert list on --silenced', async () => {
    const { code, out } = await cli(['--silenced', 'true', '--format', 'json']);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual([]);
    const bad = await cli(['--silenced', 'maybe']);
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/--silenced "maybe" is invalid: expected one of true, false/);
  });
});
