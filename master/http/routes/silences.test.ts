import type { FastifyInstance } from 'fastify';
import { loadMasterConfig } from '../../../shared/config/master-config';
import { createLogger } from '../../../shared/platform/logger';
import { createSilencesRepository } from '../../../shared/read-model/silences-repository';
import { makeAlert } from '../../../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../../test/helpers/redis';
import { createAlertRepository } from '../../ingest/alert-repository';
import { createMetrics } from '../../metrics';
import { createApiServer } from '../server';

/**
 * The silences API against a real Postgres: create (201, operator only), every refusal a named 400, list by state on a
 * pinned clock, expire now (404, idempotent), and the alerts a silence muted through GET /alerts, its filters and CSV.
 */

const OPERATOR = 'operator-token-a1b2c3d4e5f6';
const ANALYST = 'analyst-token-z9y8x7w6v5u4';
const BOB = 'ops2-token-q1w2e3r4t5y6u7';
const config = loadMasterConfig({ API_TOKENS: `alice:analyst:${ANALYST},bob:operator:${BOB}`, API_TOKEN: OPERATOR });

const T0 = Date.parse('2026-11-29T12:00:00Z');
const H = 3_600_000;
let clock = T0;

let tdb: TestDatabase;
let tr: TestRedis;
let app: FastifyInstance;

const as = (token: string) => ({ authorization: `Bearer ${token}` });
const op = as(OPERATOR);

beforeAll(async () => {
  [tdb, tr] = await Promise.all([createTestDatabase(), createTestRedis()]);
  app = await createApiServer({
    db: tdb.db,
    redis: tr.redis,
    keys: tr.keys,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger({ name: 'silences-test', level: 'silent' }),
    apiToken: config.api.token,
    apiTokens: config.api.tokens,
    authMaxFailures: 10_000,
    now: () => clock,
  });
});

afterAll(async () => {
  await app?.close();
  await tr?.cleanup();
  await tdb?.drop();
});

const post = (payload: unknown, headers = op) => app.inject({ method: 'POST', url: '/silences', headers, payload: payload as object });
const count = async () => Number((await tdb.db('silences').count({ n: '*' }).first())?.n);

describe('POST /silences', () => {
  afterEach(() => {
    clock = T0;
  });

  it('creates an active silence starting now for the given duration (201), recording who', async () => {
    const res = await post({ matchers: { pair: 'btc-usd' }, duration: '1h', comment: 'exchange maintenance' });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      matchers: { pair: 'BTC-USD' },
      starts_at: '2026-11-29T12:00:00.000Z',
      ends_at: '2026-11-29T13:00:00.000Z',
      comment: 'exchange maintenance',
      created_by: 'operator',
      created_at: '2026-11-29T12:00:00.000Z',
      expired_at: null,
      expired_by: null,
      state: 'active',
    });
    expect(res.headers.location).toBe(`/silences/${body.id}`);
    expect((await app.inject({ url: `/silences/${body.id}`, headers: as(ANALYST) })).json()).toEqual(body);
  });

  it('creates a pending one with a future start and an explicit end', async () => {
    const res = await post({ matchers: { bot_id: 'eth-1', direction: 'down' }, starts_at: '2026-11-29T14:00:00Z', ends_at: '2026-11-29T16:00:00+01:00', comment: 'planned' }, as(BOB));
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ matchers: { bot_id: 'eth-1', direction: 'down' }, starts_at: '2026-11-29T14:00:00.000Z', ends_at: '2026-11-29T15:00:00.000Z', state: 'pending', created_by: 'bob' });
  });

  it('refuses an analyst (403) and a caller without a token (401), storing nothing', async () => {
    const before = await count();
    const analyst = await post({ matchers: { pair: 'BTC-USD' }, duration: '1h', comment: 'x' }, as(ANALYST));
    expect(analyst.statusCode).toBe(403);
    expect(analyst.json()).toMatchObject({ error: 'forbidden', required_scope: 'operator' });
    const anonymous = await app.inject({ method: 'POST', url: '/silences', payload: { matchers: { pair: 'BTC-USD' }, duration: '1h', comment: 'x' } });
    expect(anonymous.statusCode).toBe(401);
    expect(await count()).toBe(before);
  });

  it.each<[string, unknown, string]>([
    ['empty matchers (a silence must match something specific)', { matchers: {}, duration: '1h', comment: 'x' }, 'matchers'],
    ['no matchers', { duration: '1h', comment: 'x' }, 'matchers'],
    ['an unknown matcher', { matchers: { pair: 'BTC-USD', severity: 'high' }, duration: '1h', comment: 'x' }, 'matchers.severity'],
    ['a bad pair', { matchers: { pair: 'BTC/USD' }, duration: '1h', comment: 'x' }, 'matchers.pair'],
    ['a bad direction', { matchers: { direction: 'flat' }, duration: '1h', comment: 'x' }, 'matchers.direction'],
    ['a bad bot id', { matchers: { bot_id: '' }, duration: '1h', comment: 'x' }, 'matchers.bot_id'],
    ['no end', { matchers: { pair: 'BTC-USD' }, comment: 'x' }, 'ends_at'],
    ['both ends_at and duration', { matchers: { pair: 'BTC-USD' }, duration: '1h', ends_at: '2026-11-29T13:00:00Z', comment: 'x' }, 'duration'],
    ['a duration outside the grammar', { matchers: { pair: 'BTC-USD' }, duration: '1 hour', comment: 'x' }, 'duration'],
    ['a numeric duration', { matchers: { pair: 'BTC-USD' }, duration: 3600, comment: 'x' }, 'duration'],
    ['an end before the start', { matchers: { pair: 'BTC-USD' }, starts_at: '2026-11-29T13:00:00Z', ends_at: '2026-11-29T12:30:00Z', comment: 'x' }, 'ends_at'],
    ['an end already past', { matchers: { pair: 'BTC-USD' }, ends_at: '2026-11-29T11:00:00Z', comment: 'x' }, 'ends_at'],
    ['a start that is not a time', { matchers: { pair: 'BTC-USD' }, starts_at: 'now', duration: '1h', comment: 'x' }, 'starts_at'],
    ['no comment', { matchers: { pair: 'BTC-USD' }, duration: '1h' }, 'comment'],
    ['an empty comment', { matchers: { pair: 'BTC-USD' }, duration: '1h', comment: '' }, 'comment'],
    ['an unknown field', { matchers: { pair: 'BTC-USD' }, duration: '1h', comment: 'x', receivers: ['bob'] }, 'receivers'],
    ['a body that is not an object', ['BTC-USD'], 'body'],
  ])('refuses %s with a 400 naming the field', async (_, payload, parameter) => {
    const before = await count();
    const res = await post(payload);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'bad_request', parameter, allowed: expect.anything(), message: expect.stringContaining(parameter) });
    expect(await count()).toBe(before);
  });

  it('refuses an unknown query parameter', async () => {
    const res = await app.inject({ method: 'POST', url: '/silences?force=1', headers: op, payload: { matchers: { pair: 'BTC-USD' }, duration: '1h', comment: 'x' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ parameter: 'force' });
  });
});

describe('GET /silences and DELETE /silences/{id}', () => {
  let active: string;
  let pending: string;

  beforeAll(async () => {
    await tdb.db('silences').del();
    clock = T0;
    active = (await post({ matchers: { pair: 'SOL-USD' }, duration: '2h', comment: 'active' })).json().id;
    // Created a second later, so "newest first" has one answer (ties are broken by id, which is random).
    clock = T0 + 1000;
    pending = (await post({ matchers: { pair: 'ADA-USD' }, starts_at: '2026-11-29T13:00:00Z', duration: '1h', comment: 'pending' })).json().id;
    clock = T0;
  });

  const ids = async (query = '') => {
    const res = await app.inject({ url: `/silences${query}`, headers: as(ANALYST) });
    expect(res.statusCode).toBe(200);
    return (res.json().silences as { id: string; state: string }[]).map((s) => `${s.state}:${s.id}`);
  };

  it('lists by state at the server clock, newest first, analysts included', async () => {
    expect(await ids('?state=active')).toEqual([`active:${active}`]);
    expect(await ids('?state=pending')).toEqual([`pending:${pending}`]);
    expect(await ids('?state=expired')).toEqual([]);
    expect(await ids()).toEqual([`pending:${pending}`, `active:${active}`]);
    clock = T0 + 1.5 * H;
    expect(await ids('?state=active')).toEqual([`active:${pending}`, `active:${active}`]);
    clock = T0 + 2.5 * H;
    expect(await ids('?state=expired')).toEqual([`expired:${pending}`, `expired:${active}`]);
    clock = T0;
  });

  it.each([
    ['?state=muted', 'state'],
    ['?limit=0', 'limit'],
    ['?limit=5000', 'limit'],
    ['?pair=BTC-USD', 'pair'],
  ])('refuses %s with a 400 naming %s', async (query, parameter) => {
    const res = await app.inject({ url: `/silences${query}`, headers: op });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'bad_request', parameter });
  });

  it('expires an active silence now, keeping its window and recording who; a second DELETE answers it unchanged', async () => {
    clock = T0 + 10 * 60_000;
    const res = await app.inject({ method: 'DELETE', url: `/silences/${active}`, headers: as(BOB) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: active, state: 'expired', ends_at: '2026-11-29T14:00:00.000Z', expired_at: '2026-11-29T12:10:00.000Z', expired_by: 'bob' });
    clock = T0 + 20 * 60_000;
    const again = await app.inject({ method: 'DELETE', url: `/silences/${active}`, headers: op });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ state: 'expired', expired_at: '2026-11-29T12:10:00.000Z', expired_by: 'bob' });
    expect(await ids('?state=active')).toEqual([]);
    // Not a hard delete: the row stays, listed as expired.
    expect(await ids('?state=expired')).toEqual([`expired:${active}`]);
    clock = T0;
  });

  it('expires a pending silence so that it never becomes active', async () => {
    const res = await app.inject({ method: 'DELETE', url: `/silences/${pending}`, headers: op });
    expect(res.json()).toMatchObject({ state: 'expired', expired_by: 'operator' });
    clock = T0 + 1.5 * H;
    expect(await ids('?state=active')).toEqual([]);
    clock = T0;
  });

  it('answers 404 for an unknown id, 400 for a malformed one, 403 for an analyst', async () => {
    const unknown = await app.inject({ method: 'DELETE', url: '/silences/0b6f2f4e-3c1a-4d5e-9f00-1a2b3c4d5e6f', headers: op });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'not_found' });
    expect((await app.inject({ url: '/silences/0b6f2f4e-3c1a-4d5e-9f00-1a2b3c4d5e6f', headers: op })).statusCode).toBe(404);
    const malformed = await app.inject({ method: 'DELETE', url: '/silences/not-a-uuid', headers: op });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json()).toMatchObject({ error: 'bad_request', parameter: 'id' });
    const analyst = await app.inject({ method: 'DELETE', url: `/silences/${active}`, headers: as(ANALYST) });
    expect(analyst.statusCode).toBe(403);
  });

  it('documents every silences route and its schemas in the OpenAPI document', async () => {
    const doc = (await app.inject({ url: '/openapi.json', headers: op })).json();
    expect(Object.keys(doc.paths['/silences'])).toEqual(expect.arrayContaining(['post', 'get']));
    expect(Object.keys(doc.paths['/silences/{id}'])).toEqual(expect.arrayContaining(['get', 'delete']));
    const created = doc.paths['/silences'].post.responses['201'].content['application/json'].schema;
    expect(created.required).toEqual(expect.arrayContaining(['matchers', 'starts_at', 'ends_at', 'state', 'created_by', 'expired_by']));
    expect(doc.paths['/silences'].post.requestBody.content['application/json'].schema.required).toEqual(['matchers', 'comment']);
    const alertItem = doc.paths['/alerts'].get.responses['200'].content['application/json'].schema.properties.items.items;
    expect(alertItem.required).toContain('silenced_by');
    expect(doc.paths['/alerts'].get.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['silenced', 'silenced_by']));
  });
});

describe('the alerts a silence muted, through GET /alerts', () => {
  let silence: string;
  const muted = makeAlert({ pair: 'XRP-USD', botId: 'xrp-1', observedAt: '2026-11-29T12:05:00.000Z' });
  const before = makeAlert({ pair: 'XRP-USD', botId: 'xrp-1', observedAt: '2026-11-29T11:55:00.000Z' });
  const other = makeAlert({ pair: 'DOT-USD', botId: 'dot-1', observedAt: '2026-11-29T12:06:00.000Z' });

  beforeAll(async () => {
    clock = T0;
    silence = (await post({ matchers: { pair: 'XRP-USD' }, duration: '1h', comment: 'xrp noisy' })).json().id;
    // What the ingest does: insert, then mark in the same transaction.
    await tdb.db.transaction(async (trx) => {
      await createAlertRepository(tdb.db).insertMany([muted, before, other], trx);
      const marked = await createSilencesRepository(tdb.db).markSilenced(trx, [muted, before, other]);
      expect([...marked]).toEqual([[muted.id, silence]]);
    });
  });

  const list = async (query: string) => {
    const res = await app.inject({ url: `/alerts${query}`, headers: as(ANALYST) });
    expect(res.statusCode).toBe(200);
    return res.json().items as { id: string; silenced_by: string | null }[];
  };

  it('shows silenced_by on the list and on the alert; alerts observed outside the window or not matching stay unsilenced', async () => {
    const items = await list('?pair=XRP-USD,DOT-USD&ordering=observed_at');
    expect(items.map((a) => [a.id, a.silenced_by])).toEqual([
      [before.id, null],
      [muted.id, silence],
      [other.id, null],
    ]);
    expect((await app.inject({ url: `/alerts/${muted.id}`, headers: op })).json()).toMatchObject({ id: muted.id, silenced_by: silence });
  });

  it('filters on silenced=true|false and silenced_by, and refuses bad values naming the parameter', async () => {
    expect((await list('?silenced=true')).map((a) => a.id)).toEqual([muted.id]);
    expect((await list('?silenced=false&pair=XRP-USD,DOT-USD')).map((a) => a.id).sort()).toEqual([before.id, other.id].sort());
    expect((await list(`?silenced_by=${silence.toUpperCase()}`)).map((a) => a.id)).toEqual([muted.id]);
    expect(await list('?silenced_by=0b6f2f4e-3c1a-4d5e-9f00-1a2b3c4d5e6f')).toEqual([]);
    for (const [query, parameter] of [
      ['?silenced=yes', 'silenced'],
      ['?silenced_by=xrp', 'silenced_by'],
      [`?silenced=false&silenced_by=${silence}`, 'silenced'],
    ]) {
      const res = await app.inject({ url: `/alerts${query}`, headers: op });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: 'bad_request', parameter });
    }
  });

  it('exports silenced_by as the last CSV column, with the same filter', async () => {
    const res = await app.inject({ url: '/alerts.csv?silenced=true', headers: op });
    expect(res.statusCode).toBe(200);
    const [header, row, ...rest] = res.body.trimEnd().split('\n');
    expect(header!.split(',').at(-1)).toBe('silenced_by');
    expect(row!.endsWith(`,${silence}`)).toBe(true);
    expect(row).toContain(muted.id);
    expect(rest).toEqual([]);
  });
});
