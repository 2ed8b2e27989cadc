import type { FastifyInstance } from 'fastify';
import { createDb, type Knex } from '../../../shared/platform/db';
import { createLogger } from '../../../shared/platform/logger';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/db';
import { insertFixtureAlerts } from '../../../test/helpers/fixtures';
import { createTestRedis, type TestRedis } from '../../../test/helpers/redis';
import { waitFor } from '../../../test/helpers/wait';
import { createMetrics } from '../../metrics';
import { createApiServer } from '../server';

/**
 * GET /stats and /stats/timeseries cost: capped ranges, and a cache keyed by the effective query in front of Postgres.
 * Queries are counted from knex's own `query` events on the API's pool.
 */

let tdb: TestDatabase;
let tr: TestRedis;
let apiDb: Knex;
const statsQueries: string[] = [];

async function api(options: { cacheTtlMs?: number } = {}): Promise<FastifyInstance> {
  return createApiServer({
    db: apiDb,
    redis: tr.redis,
    keys: tr.keys,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger({ name: 'stats-test', level: 'silent' }),
    statsCacheTtlMs: options.cacheTtlMs ?? 60_000,
  });
}

beforeAll(async () => {
  [tdb, tr] = await Promise.all([createTestDatabase(), createTestRedis()]);
  await insertFixtureAlerts(tdb.db, { count: 500, seed: 11, start: new Date(Date.now() - 3_600_000) });
  // A short statement timeout, so a query blocked behind a lock fails quickly and for sure.
  apiDb = createDb(tdb.url, { poolMax: 4, statementTimeoutMs: 500 });
  apiDb.on('query', (q: { sql: string }) => {
    if (/\bfrom\s+"?alerts\b/i.test(q.sql)) statsQueries.push(q.sql);
  });
});

afterAll(async () => {
  await apiDb?.destroy();
  await tr?.cleanup();
  await tdb?.drop();
});

beforeEach(() => {
  statsQueries.length = 0;
});

describe('the stats cache', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await api();
  });
  afterAll(async () => app?.close());

  it('answers concurrent identical requests with one query', async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, () => app.inject('/stats?window=45m')));
    expect(answers.map((a) => a.statusCode)).toEqual(Array(10).fill(200));
    expect(new Set(answers.map((a) => a.body)).size).toBe(1);
    expect(statsQueries).toHaveLength(1);
  });

  it('keys on the effective window: 90m, 1h30m and 5400s are one entry, each answered with its own spelling', async () => {
    const spellings = ['90m', '1h30m', '5400s'];
    const bodies = [];
    for (const w of spellings) {
      const res = await app.inject(`/stats?window=${w}`);
      expect(res.statusCode).toBe(200);
      bodies.push(res.json() as { window: string; overall: unknown; since: string });
    }
    expect(statsQueries).toHaveLength(1);
    expect(bodies.map((b) => b.window)).toEqual(spellings);
    expect(new Set(bodies.map((b) => JSON.stringify([b.overall, b.since]))).size).toBe(1);
  });

  it('keys on the pairs as a set: the same pairs in another order or case are one entry', async () => {
    await app.inject('/stats?window=50m&pair=BTC-USD,ETH-USD');
    await app.inject('/stats?window=50m&pair=eth-usd&pair=btc-usd');
    expect(statsQueries).toHaveLength(1);
    await app.inject('/stats?window=50m&pair=ETH-USD');
    expect(statsQueries).toHaveLength(2);
  });

  it('caches the timeseries by its effective range too', async () => {
    const until = new Date().toISOString();
    const since = new Date(Date.now() - 2 * 3_600_000).toISOString();
    const a = await app.inject(`/stats/timeseries?bucket=10m&since=${since}&until=${until}`);
    const b = await app.inject(`/stats/timeseries?bucket=600s&until=${until}&since=${since}`);
    expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
    expect((b.json() as { bucket: string }).bucket).toBe('600s');
    expect(statsQueries).toHaveLength(1);
  });

  it('does not keep a failed query: the next request queries again', async () => {
    // Another session holds the table: the API's statement is cancelled by its statement timeout.
    const trx = await tdb.db.transaction();
    try {
      await trx.raw('LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE');
      const blocked = await app.inject('/stats?window=55m');
      expect(blocked.statusCode).toBe(503);
      expect(blocked.json()).toEqual({ error: 'query_timeout', message: expect.stringMatching(/API_STATEMENT_TIMEOUT_MS/) });
    } finally {
      await trx.rollback();
    }
    const after = await app.inject('/stats?window=55m');
    expect(after.statusCode).toBe(200);
    expect(statsQueries).toHaveLength(2);
  });
});

describe('when the cache entry expires', () => {
  it('queries again', async () => {
    const app = await api({ cacheTtlMs: 50 });
    try {
      await app.inject('/stats?window=40m');
      expect(statsQueries).toHaveLength(1);
      await waitFor('a fresh query once the entry expired', async () => {
        await app.inject('/stats?window=40m');
        return statsQueries.length >= 2;
      });
    } finally {
      await app.close();
    }
  });
});

describe('range caps', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await api();
  });
  afterAll(async () => app?.close());

  it.each(['3660d', '3659d', '32d', '745h', '5w'])('refuses window=%s beyond 31d with a 400 naming it, without a query', async (window) => {
    const res = await app.inject(`/stats?window=${window}`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'bad_request', parameter: 'window', value: window, allowed: expect.stringMatching(/at most 31d/) });
    expect(statsQueries).toEqual([]);
  });

  it('accepts exactly 31d', async () => {
    expect((await app.inject('/stats?window=31d')).statusCode).toBe(200);
  });

  it('refuses since/until more than 31d apart, and since alone more than 31d ago', async () => {
    const long = await app.inject('/stats?since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:01Z');
    expect(long.statusCode).toBe(400);
    expect(long.json()).toMatchObject({ parameter: 'since', value: '2026-01-01T00:00:00Z', allowed: expect.stringMatching(/at most 31d before until \(2026-02-01T00:00:01.000Z\)/) });
    const old = await app.inject('/stats?since=40d');
    expect(old.json()).toMatchObject({ parameter: 'since', value: '40d' });
    expect((await app.inject('/stats?since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z')).statusCode).toBe(200);
    expect(statsQueries).toHaveLength(1);
  });

  it('refuses a timeseries range over 31d, and too many buckets within it', async () => {
    const long = await app.inject('/stats/timeseries?bucket=1d&since=2026-01-01T00:00:00Z&until=2026-03-01T00:00:00Z');
    expect(long.statusCode).toBe(400);
    expect(long.json()).toMatchObject({ error: 'bad_request', parameter: 'since', allowed: expect.stringMatching(/at most 31d/) });
    const fine = await app.inject('/stats/timeseries?bucket=1m&since=2026-01-01T00:00:00Z&until=2026-01-31T00:00:00Z');
    expect(fine.statusCode).toBe(400);
    expect(fine.json()).toMatchObject({ parameter: 'bucket', allowed: expect.stringMatching(/at most 10000 buckets/) });
    expect(statsQueries).toEqual([]);
  });
});
