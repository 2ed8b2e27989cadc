import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { loadMasterConfig } from '../../../shared/config/master-config';
import { createLogger } from '../../../shared/platform/logger';
import { createReceiversRepository } from '../../../shared/read-model/receivers-repository';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../../test/helpers/redis';
import { createMetrics } from '../../metrics';
import { createApiServer } from '../server';

/** The receivers API against a real Postgres: create, read, change, remove; named refusals; roles; secrets masked. */

const OPERATOR = 'operator-token-r1c2v3r4s5';
const ANALYST = 'analyst-token-r9c8v7r6s5';
const config = loadMasterConfig({ API_TOKENS: `ana:analyst:${ANALYST}`, API_TOKEN: OPERATOR });

const SLACK_PATH = 'T000/B000/slackSecretPath8Hq2';
const HOOK_SECRET = 'hook-signing-secret-5Tz1';
const BOT_TOKEN = '123456789:AAHsecretTelegramToken_x9Lm4';

let tdb: TestDatabase;
let tr: TestRedis;
let app: FastifyInstance;
const logLines: string[] = [];
const as = (token: string) => ({ authorization: `Bearer ${token}` });
const op = as(OPERATOR);

beforeAll(async () => {
  [tdb, tr] = await Promise.all([createTestDatabase(), createTestRedis()]);
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  app = await createApiServer({
    db: tdb.db,
    redis: tr.redis,
    keys: tr.keys,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger({ name: 'receivers-test', level: 'debug', destination: sink }),
    apiToken: config.api.token,
    apiTokens: config.api.tokens,
    authMaxFailures: 10_000,
  });
});

afterAll(async () => {
  await app?.close();
  await tr?.cleanup();
  await tdb?.drop();
});

describe('POST /receivers', () => {
  it('adds an email receiver with its defaults (201): match everything, no quiet hours, no wait', async () => {
    const res = await app.inject({ method: 'POST', url: '/receivers', headers: op, payload: { name: 'alice', kind: 'email', target: { to: 'alice@example.com' }, match: { pairs: ['btc-usd'] } } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({
      name: 'alice',
      kind: 'email',
      target: { to: 'alice@example.com' },
      match: { pairs: ['BTC-USD'] },
      quiet_hours: null,
      digest_seconds: 0,
      group_wait_ms: 0,
      source: 'api',
      created_by: 'operator',
      updated_by: 'operator',
    });
    expect(res.json().id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('masks every secret of a target in its answers, and never logs them', async () => {
    const made = await Promise.all([
      app.inject({ method: 'POST', url: '/receivers', headers: op, payload: { name: 'team-slack', kind: 'slack', target: { url: `https://hooks.slack.example/services/${SLACK_PATH}` } } }),
      app.inject({ method: 'POST', url: '/receivers', headers: op, payload: { name: 'hook', kind: 'webhook', target: { url: 'https://hooks.example.com/in?key=abcdefgh123', secret: HOOK_SECRET } } }),
      app.inject({ method: 'POST', url: '/receivers', headers: op, payload: { name: 'bob', kind: 'telegram', target: { bot_token: BOT_TOKEN, chat_id: -1001234 }, match: { pairs: ['ETH-USD'], min_change: 1 } } }),
    ]);
    expect(made.map((r) => r.statusCode)).toEqual([201, 201, 201]);
    expect(made[0]!.json().target).toEqual({ url: 'https://hooks.slack.example/(hidden)' });
    expect(made[1]!.json().target).toEqual({ url: 'https://hooks.example.com/(hidden)', secret: '(hidden)' });
    expect(made[2]!.json()).toMatchObject({ target: { bot_token: '123456789:(hidden)', chat_id: '-1001234' }, match: { pairs: ['ETH-USD'], min_change: '1' } });

    const list = await app.inject({ method: 'GET', url: '/receivers', headers: as(ANALYST) });
    expect(list.statusCode).toBe(200);
    const text = list.body + made.map((r) => r.body).join('') + logLines.join('');
    for (const secret of [SLACK_PATH, 'slackSecretPath8Hq2', HOOK_SECRET, 'abcdefgh123', BOT_TOKEN, 'AAHsecretTelegramToken_x9Lm4']) expect(text).not.toContain(secret);
    expect(list.json().receivers.map((r: { name: string }) => r.name)).toEqual(expect.arrayContaining(['alice', 'bob', 'hook', 'team-slack']));
    expect(logLines.join('')).toContain('receiver created');
    // The real target is kept for delivery.
    const stored = await tdb.db('receivers').where({ name: 'bob' }).first();
    expect(stored.target).toEqual({ bot_token: BOT_TOKEN, chat_id: '-1001234' });
  });

  it.each([
    [{ name: 'x', kind: 'pager', target: {} }, 'kind', 'pager'],
    [{ name: 'x', kind: 'email', target: { to: 'not-an-address' } }, 'target.to', 'not-an-address'],
    [{ name: 'x', kind: 'webhook', target: { url: 'ftp://example.com/hook' } }, 'target.url', '(not shown)'],
    [{ name: 'x', kind: 'telegram', target: { bot_token: 'nope', chat_id: '1' } }, 'target.bot_token', '(not shown)'],
    [{ name: 'x', kind: 'telegram', target: { bot_token: BOT_TOKEN, chat_id: 'abc' } }, 'target.chat_id', 'abc'],
    [{ name: 'x', kind: 'email', target: { to: 'a@b.c', cc: 'd@e.f' } }, 'target.cc', '(not shown)'],
    [{ name: 'x', kind: 'email', target: { to: 'a@b.c' }, quiet_hours: { start: '22:00', end: '07:00', tz: 'Mars/Olympus' } }, 'quiet_hours.tz', 'Mars/Olympus'],
    [{ name: 'x', kind: 'email', target: { to: 'a@b.c' }, quiet_hours: { start: '25:00', end: '07:00', tz: 'UTC' } }, 'quiet_hours.start', '25:00'],
    [{ name: 'x', kind: 'email', target: { to: 'a@b.c' }, quiet_hours: { start: '07:00', end: '07:00', tz: 'UTC' } }, 'quiet_hours.end', '07:00'],
    [{ name: 'x', kind: 'email', target: { to: 'a@b.c' }, match: { min_change: '-1' } }, 'match.min_change', '-1'],
    [{ name: 'x', kind: 'email', target: { to: 'a@b.c' }, match: { pairs: ['BTCUSD'] } }, 'match.pairs', ['BTCUSD']],
    [{ name: 'x', kind: 'email', target: { to: 'a@b.c' }, match: { directions: ['sideways'] } }, 'match.directions', ['sideways']],
    [{ name: 'x', kind: 'email', target: { to: 'a@b.c' }, group_wait_ms: -1 }, 'group_wait_ms', -1],
    [{ name: 'x', kind: 'email', target: { to: 'a@b.c' }, digest_seconds: 1.5 }, 'digest_seconds', 1.5],
    [{ name: 'default', kind: 'email', target: { to: 'a@b.c' } }, 'name', 'default'],
    [{ name: 'bad name', kind: 'email', target: { to: 'a@b.c' } }, 'name', 'bad name'],
    [{ name: 'x', kind: 'email', target: { to: 'a@b.c' }, colour: 'red' }, 'colour', 'red'],
  ])('refuses %j with a 400 naming %s', async (payload, parameter, value) => {
    const res = await app.inject({ method: 'POST', url: '/receivers', headers: op, payload });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'bad_request', parameter, value });
    expect(typeof res.json().allowed).not.toBe('undefined');
  });

  it('answers 409 taken for a name that exists', async () => {
    const res = await app.inject({ method: 'POST', url: '/receivers', headers: op, payload: { name: 'alice', kind: 'email', target: { to: 'other@example.com' } } });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ error: 'conflict', reason: 'taken', receiver: 'alice' });
  });

  it('refuses writes without the operator scope (403) and changes nothing', async () => {
    const res = await app.inject({ method: 'POST', url: '/receivers', headers: as(ANALYST), payload: { name: 'eve', kind: 'email', target: { to: 'eve@example.com' } } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ error: 'forbidden', required_scope: 'operator' });
    const patch = await app.inject({ method: 'PATCH', url: '/receivers/alice', headers: as(ANALYST), payload: { group_wait_ms: 5 } });
    const del = await app.inject({ method: 'DELETE', url: '/receivers/alice', headers: as(ANALYST) });
    expect([patch.statusCode, del.statusCode]).toEqual([403, 403]);
    expect(await tdb.db('receivers').where({ name: 'eve' }).first()).toBeUndefined();
    expect((await tdb.db('receivers').where({ name: 'alice' }).first()).group_wait_ms).toBe(0);
    const noToken = await app.inject({ method: 'GET', url: '/receivers' });
    expect(noToken.statusCode).toBe(401);
  });
});

describe('GET, PATCH and DELETE /receivers/{name or id}', () => {
  it('reads one by name or by id, and 404s an unknown one', async () => {
    const byName = await app.inject({ method: 'GET', url: '/receivers/alice', headers: as(ANALYST) });
    expect(byName.statusCode).toBe(200);
    const byId = await app.inject({ method: 'GET', url: `/receivers/${byName.json().id}`, headers: as(ANALYST) });
    expect(byId.json()).toEqual(byName.json());
    const missing = await app.inject({ method: 'GET', url: '/receivers/nobody', headers: as(ANALYST) });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'not_found' });
    const bad = await app.inject({ method: 'GET', url: '/receivers/a%20b', headers: as(ANALYST) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ parameter: 'receiver', value: 'a b' });
  });

  it('changes quiet hours, match and grouping, and checks a new target against the current kind', async () => {
    const res = await app.inject({
      method: 'PATCH',
      url: '/receivers/alice',
      headers: op,
      payload: { quiet_hours: { start: '22:00', end: '07:00', tz: 'Europe/Lisbon' }, match: { pairs: ['BTC-USD', 'ETH-USD'], directions: ['up'] }, group_wait_ms: 2000 },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ quiet_hours: { start: '22:00', end: '07:00', tz: 'Europe/Lisbon' }, match: { pairs: ['BTC-USD', 'ETH-USD'], directions: ['up'] }, group_wait_ms: 2000 });
    const wrongTarget = await app.inject({ method: 'PATCH', url: '/receivers/alice', headers: op, payload: { target: { url: 'https://example.com/x' } } });
    expect(wrongTarget.statusCode).toBe(400);
    expect(wrongTarget.json()).toMatchObject({ parameter: 'target.url' });
    const kindWithoutTarget = await app.inject({ method: 'PATCH', url: '/receivers/alice', headers: op, payload: { kind: 'webhook' } });
    expect(kindWithoutTarget.json()).toMatchObject({ parameter: 'target' });
    const cleared = await app.inject({ method: 'PATCH', url: '/receivers/alice', headers: op, payload: { quiet_hours: null } });
    expect(cleared.json().quiet_hours).toBeNull();
    expect((await app.inject({ method: 'PATCH', url: '/receivers/nobody', headers: op, payload: { group_wait_ms: 1 } })).statusCode).toBe(404);
  });

  it('refuses to change or remove a receiver built from the configuration (409 config)', async () => {
    await createReceiversRepository(tdb.db).syncConfig([{ name: 'default', kind: 'email', target: { to: 'ops@example.com' }, digestSeconds: 60 }]);
    const list = await app.inject({ method: 'GET', url: '/receivers', headers: op });
    expect(list.json().receivers.find((r: { name: string }) => r.name === 'default')).toMatchObject({ source: 'config', kind: 'email', digest_seconds: 60, created_by: 'config' });
    const patch = await app.inject({ method: 'PATCH', url: '/receivers/default', headers: op, payload: { group_wait_ms: 1 } });
    const del = await app.inject({ method: 'DELETE', url: '/receivers/default', headers: op });
    for (const res of [patch, del]) {
      expect(res.statusCode).toBe(409);
      expect(res.json()).toMatchObject({ error: 'conflict', reason: 'config', receiver: 'default' });
    }
  });

  it('removes a receiver (204), then 404s it', async () => {
    const del = await app.inject({ method: 'DELETE', url: '/receivers/team-slack', headers: op });
    expect(del.statusCode).toBe(204);
    expect((await app.inject({ method: 'GET', url: '/receivers/team-slack', headers: op })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: '/receivers/team-slack', headers: op })).statusCode).toBe(404);
  });

  it('documents the routes in the OpenAPI document', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json', headers: op })).json();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/receivers', '/receivers/{receiver}']));
    expect(Object.keys(doc.paths['/receivers/{receiver}'])).toEqual(expect.arrayContaining(['get', 'patch', 'delete']));
  });
});
