import { userInfo } from 'node:os';
import { parseDesiredBot } from '../shared/contract/bots';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { runCli } from '../test/helpers/cli';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';

/** `npm run alerts -- bots ...` as a real process: the bots table through the API's repository and checks, and the mirror. */

let tdb: TestDatabase;
let tr: TestRedis;

beforeAll(async () => {
  [tdb, tr] = await Promise.all([createTestDatabase(), createTestRedis()]);
});

afterAll(async () => {
  await tr?.cleanup();
  await tdb?.drop();
});

const cli = (args: string[]) => runCli({ DATABASE_URL: tdb.url, REDIS_URL: tr.url, REDIS_KEY_PREFIX: tr.prefix }, args);

async function mirrored(botId: string) {
  const text = await tr.redis.hget(tr.keys.desiredBots, botId);
  if (text === null) return null;
  const parsed = parseDesiredBot(text);
  return parsed.ok ? parsed.bot : null;
}

describe('npm run alerts -- bots', () => {
  const actor = `cli:${userInfo().username}`;

  it('adds a bot with the worker defaults, recorded as cli:<user>, and mirrors it', async () => {
    const { code, out } = await cli(['bots', 'add', 'btc-usd', '--threshold', '0.5']);
    expect(out).toContain('added bot BTC-USD (BTC-USD, every 5000 ms, threshold 0.5 %, ask, last-alert) version 1');
    expect(code).toBe(0);
    expect(await mirrored('BTC-USD')).toMatchObject({ version: 1, thresholdPercent: '0.5', enabled: true });
    const row = await tdb.db('bots').where({ bot_id: 'BTC-USD' }).first();
    expect(row).toMatchObject({ created_by: actor, source: 'api' });
  });

  it('changes, pauses and resumes it, each a new version in the table, the mirror and the audit', async () => {
    expect((await cli(['bots', 'set', 'BTC-USD', '--interval-ms', '2000', '--price-field', 'mid'])).out).toContain('changed bot BTC-USD (BTC-USD, every 2000 ms, threshold 0.5 %, mid, last-alert) version 2');
    expect((await cli(['bots', 'pause', 'BTC-USD'])).out).toContain('paused bot BTC-USD');
    expect(await mirrored('BTC-USD')).toMatchObject({ version: 3, enabled: false, intervalMs: 2000, priceField: 'mid' });
    expect((await cli(['bots', 'resume', 'BTC-USD'])).out).toContain('version 4');
    const audit = await tdb.db('bot_audit').select('action', 'actor').orderBy('id');
    expect(audit).toEqual(['create', 'update', 'pause', 'resume'].map((action) => ({ action, actor })));
  });

  it('lists bots as a table and as JSON in the API wire shape', async () => {
    const table = await cli(['bots', 'list']);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/BTC-USD.*enabled.*2000.*0\.5.*mid.*last-alert.*api.*4/);
    const json = await cli(['bots', 'list', '--format', 'json']);
    expect(JSON.parse(json.out)).toEqual([expect.objectContaining({ bot_id: 'BTC-USD', version: 4, updated_by: actor })]);
  });

  it.each([
    [['bots', 'add', 'BTCUSD'], /pair "BTCUSD" is invalid: expected a pair such as BTC-USD/],
    [['bots', 'add', 'ETH-USD', '--interval-ms', '50'], /--interval-ms 50 is invalid: expected an integer from 100 to 86400000/],
    [['bots', 'add', 'ETH-USD', '--interval-ms', 'soon'], /--interval-ms "soon" is invalid: expected an integer from 100 to 86400000/],
    [['bots', 'add', 'ETH-USD', '--threshold', '0'], /--threshold "0" is invalid: expected a plain decimal percent greater than 0/],
    [['bots', 'add', 'ETH-USD', '--price-field', 'last'], /--price-field "last" is invalid: expected one of ask, bid, mid/],
    [['bots', 'add', 'ETH-USD', '--reference-mode', 'x'], /--reference-mode "x" is invalid: expected one of first, last-alert/],
    [['bots', 'add', 'ETH-USD', '--bot-id', 'a b'], /--bot-id "a b" is invalid/],
    [['bots', 'set', 'BTC-USD'], /needs at least one of/],
    [['bots', 'pause', 'BTC-USD', '--threshold', '1'], /--threshold cannot be used with bots pause/],
    [['bots', 'fly'], /bots takes one of list, add, set, pause, resume, remove/],
  ])('refuses %j with exit 2 naming the flag, changing nothing', async (args, message) => {
    const { code, out } = await cli(args);
    expect(out).toMatch(message);
    expect(code).toBe(2);
    expect(await tdb.db('bots').count({ n: '*' }).first()).toEqual({ n: '1' });
  });

  it('exits 1 naming the problem for an unknown bot and a taken id', async () => {
    const unknown = await cli(['bots', 'pause', 'nobody']);
    expect(unknown.code).toBe(1);
    expect(unknown.out).toContain('no bot with id nobody');
    const taken = await cli(['bots', 'add', 'BTC-USD']);
    expect(taken.code).toBe(1);
    expect(taken.out).toContain('a bot with id BTC-USD exists already');
  });

  it('removes it from the table and the mirror', async () => {
    const { code, out } = await cli(['bots', 'remove', 'BTC-USD']);
    expect(code).toBe(0);
    expect(out).toContain('removed bot BTC-USD');
    expect(await mirrored('BTC-USD')).toBeNull();
    expect((await cli(['bots', 'list'])).out).toContain('No bots yet');
  });
});
