import { userInfo } from 'node:os';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { runCli } from '../test/helpers/cli';

/** `npm run alerts -- receivers ...` as a real process: the receivers table through the API's repository and checks. */

let tdb: TestDatabase;

beforeAll(async () => {
  tdb = await createTestDatabase();
});

afterAll(async () => {
  await tdb?.drop();
});

const cli = (args: string[]) => runCli({ DATABASE_URL: tdb.url }, args);

describe('npm run alerts -- receivers', () => {
  const actor = `cli:${userInfo().username}`;
  const TOKEN = '123456789:AAHcliSecretTelegramToken_77Qx';

  it('adds an email receiver for some pairs with quiet hours, recorded as cli:<user>', async () => {
    const { code, out } = await cli(['receivers', 'add', 'alice', '--kind', 'email', '--to', 'alice@example.com', '--pair', 'btc-usd,eth-usd', '--quiet-hours', '22:00-07:00', '--tz', 'Europe/Lisbon']);
    expect(out).toMatch(/^added receiver alice \(email\)$/m);
    expect(code).toBe(0);
    expect(await tdb.db('receivers').where({ name: 'alice' }).first()).toMatchObject({
      kind: 'email',
      target: { to: 'alice@example.com' },
      match: { pairs: ['BTC-USD', 'ETH-USD'] },
      quiet_hours: { start: '22:00', end: '07:00', tz: 'Europe/Lisbon' },
      created_by: actor,
    });
  });

  it('adds a Telegram receiver and lists every receiver with the token masked', async () => {
    const add = await cli(['receivers', 'add', 'bob', '--kind', 'telegram', '--bot-token', TOKEN, '--chat-id', '424242', '--pair', 'ETH-USD', '--min-change', '1', '--group-wait-ms', '5000']);
    expect(add.code).toBe(0);
    const table = await cli(['receivers', 'list']);
    expect(table.code).toBe(0);
    const bobLine = table.out.split('\n').find((l) => l.includes('bob')) ?? '';
    for (const cell of ['telegram', '123456789:(hidden) 424242', 'ETH-USD >= 1%', '5000 ms', 'api', actor]) expect(bobLine).toContain(cell);
    const json = await cli(['receivers', 'list', '--format', 'json']);
    expect(JSON.parse(json.out).map((r: { name: string }) => r.name)).toEqual(['alice', 'bob']);
    expect(table.out + json.out + add.out).not.toContain('AAHcliSecretTelegramToken_77Qx');
  });

  it('changes and removes one', async () => {
    const set = await cli(['receivers', 'set', 'alice', '--quiet-hours', 'none', '--pair', 'all', '--direction', 'down']);
    expect(set.code).toBe(0);
    expect(await tdb.db('receivers').where({ name: 'alice' }).first()).toMatchObject({ quiet_hours: null, match: { directions: ['down'] } });
    const removed = await cli(['receivers', 'remove', 'bob']);
    expect(removed.out).toMatch(/^removed receiver bob$/m);
    expect(await tdb.db('receivers').where({ name: 'bob' }).first()).toBeUndefined();
    const again = await cli(['receivers', 'remove', 'bob']);
    expect(again.code).toBe(1);
    expect(again.out).toMatch(/no receiver named bob/);
  });

  it.each([
    [['receivers', 'add', 'x', '--kind', 'email', '--to', 'nope'], /--to "nope" is invalid: expected one email address/],
    [['receivers', 'add', 'x', '--kind', 'email', '--to', 'a@b.c', '--quiet-hours', '22:00-07:00', '--tz', 'Mars/Base'], /--tz "Mars\/Base" is invalid: expected an IANA time zone/],
    [['receivers', 'add', 'x', '--kind', 'pager'], /--kind "pager" is invalid/],
    [['receivers', 'set', 'alice', '--url', 'https://example.com/x'], /--url "\(not shown\)" is invalid: expected one of --to/],
    [['receivers', 'add', 'x', '--kind', 'email', '--to', 'a@b.c', '--state', 'active'], /--state cannot be used with receivers add/],
    [['--to', 'a@b.c'], /--to cannot be used with the alert list/],
  ])('refuses %j with exit 2 naming the flag', async (args, message) => {
    const { code, out } = await cli(args);
    expect(code).toBe(2);
    expect(out).toMatch(message);
  });
});
