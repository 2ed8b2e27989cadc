import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createDb } from '../../shared/platform/db';
import { writeBotStatus, type BotStatus } from '../../shared/contract/fleet-status';
import { createLogger } from '../../shared/platform/logger';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { insertFixtureAlerts } from '../../test/helpers/fixtures';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { createMetrics } from '../metrics';
import { createApiServer, type ApiDeps } from './server';

/** Auth, readiness, fleet status, metrics and the OpenAPI document, against real Postgres and Redis. */

const TOKEN = 'correct-horse-battery-staple';
const logger = createLogger({ name: 'api-test', level: 'silent' });
let tdb: TestDatabase;
let tr: TestRedis;
const apps: FastifyInstance[] = [];

async function makeApp(overrides: Partial<ApiDeps> = {}): Promise<FastifyInstance> {
  const app = await createApiServer({ db: tdb.db, redis: tr.redis, keys: tr.keys, metrics: createMetrics({ defaultMetrics: false }), logger, ...overrides });
  apps.push(app);
  return app;
}

beforeAll(async () => {
  [tdb, tr] = await Promise.all([createTestDatabase(), createTestRedis()]);
  await insertFixtureAlerts(tdb.db, { count: 200, end: new Date() });
});

afterAll(async () => {
  for (const app of apps) await app.close();
  await tr?.cleanup();
  await tdb?.drop();
});

describe('when API_TOKEN is set', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    // Many wrong tokens from one address on purpose; the failed-attempt limit has its own tests (security.test.ts).
    app = await makeApp({ apiToken: TOKEN, authMaxFailures: 1000 });
  });

  it.each(['/alerts', '/alerts.csv', '/stats', '/stats/timeseries', '/fleet', '/metrics', '/openapi.json', '/alerts/00000000-0000-4000-8000-000000000000', '/no-such-path'])(
    '%s answers 401 without the token and with a wrong one',
    async (url) => {
      const none = await app.inject({ url });
      expect(none.statusCode).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(none.json()).toMatchObject({ error: 'unauthorized' });
      const wrong = await app.inject({ url, headers: { authorization: `Bearer ${TOKEN}x` } });
      expect(wrong.statusCode).toBe(401);
      const short = await app.inject({ url, headers: { authorization: 'Bearer c' } });
      expect(short.statusCode).toBe(401);
    },
  );

  it('serves data with Authorization: Bearer <token>', async () => {
    const res = await app.inject({ url: '/alerts?limit=5', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(200);
    expect((res.json() as { items: unknown[] }).items).toHaveLength(5);
  });

  it('keeps /health and /ready open for probes', async () => {
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/ready' })).statusCode).toBe(200);
  });

  it('does not accept the token as a query parameter outside /events', async () => {
    const res = await app.inject({ url: `/alerts?token=${TOKEN}` });
    expect(res.statusCode).toBe(401);
  });

  it('opens the live feed /events with a ticket from POST /events/ticket, never with the token in the URL', async () => {
    expect((await app.inject({ url: `/events?token=${TOKEN}` })).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/events/ticket' })).statusCode).toBe(401);
    const issued = await app.inject({ method: 'POST', url: '/events/ticket', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(issued.statusCode).toBe(200);
    const { ticket } = issued.json() as { ticket: string };
    // The stream never ends, so read just its status line over a real socket.
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: `/events?ticket=${ticket}` }, (res) => {
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
    });
    expect(status).toBe(200);
  });
});

describe('when API_TOKEN is not set', () => {
  it('serves every endpoint without a token', async () => {
    const app = await makeApp();
    for (const url of ['/alerts', '/stats', '/fleet', '/metrics', '/openapi.json']) {
      expect({ url, status: (await app.inject({ url })).statusCode }).toEqual({ url, status: 200 });
    }
  });
});

describe('GET /ready', () => {
  it('answers 200 when Postgres and Redis answer', async () => {
    const app = await makeApp();
    const res = await app.inject({ url: '/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', postgres: 'ok', redis: 'ok' });
  });

  it('answers 503 naming Postgres when it is unreachable, and data routes answer 503 rather than 500', async () => {
    // Port 1 on loopback: nothing listens there, so every connection is refused.
    const deadDb = createDb('postgres://postgres@127.0.0.1:1/tickwatch', { poolMax: 1, logger });
    try {
      const app = await makeApp({ db: deadDb });
      const res = await app.inject({ url: '/ready' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ status: 'not ready', redis: 'ok', postgres: expect.stringMatching(/^down: /) });
      const alerts = await app.inject({ url: '/alerts' });
      expect(alerts.statusCode).toBe(503);
      expect(alerts.json()).toMatchObject({ error: 'unavailable' });
    } finally {
      await deadDb.destroy();
    }
  });
});

describe('GET /fleet', () => {
  const snapshot = (botId: string, pair: string) => ({
    botId,
    pair,
    intervalMs: 5000,
    thresholdPercent: '0.01',
    priceField: 'ask' as const,
    referenceMode: 'first' as const,
    tickerBaseUrl: 'http://127.0.0.1:9999',
  });
  const status = (botId: string, pair: string, heartbeatAt: number, extra: Partial<BotStatus> = {}): BotStatus => ({
    botId,
    pair,
    status: 'ok',
    lastPrice: '65000.12',
    lastFetchAt: new Date(heartbeatAt).toISOString(),
    lastPriceAt: new Date(heartbeatAt).toISOString(),
    referencePrice: '64990',
    consecutiveErrors: 0,
    startedAt: new Date(heartbeatAt - 60_000).toISOString(),
    heartbeatAt: new Date(heartbeatAt).toISOString(),
    ttlMs: 15_000,
    rateLimited: false,
    effectiveIntervalMs: 5000,
    alertsPublished: 3,
    alertsDropped: 0,
    alertsQueued: 0,
    config: snapshot(botId, pair),
    ...extra,
  });

  it('shows live bots as fresh and a bot whose heartbeat expired as stale', async () => {
    const now = Date.now();
    await writeBotStatus(tr.redis, tr.keys, status('btc-1', 'BTC-USD', now));
    await writeBotStatus(tr.redis, tr.keys, status('eth-1', 'ETH-USD', now - 120_000, { status: 'degraded', consecutiveErrors: 4, lastError: 'ticker answered 503', ttlMs: 50 }));
    // Let the stale bot's live hash expire: only its last-seen copy remains.
    await new Promise((r) => setTimeout(r, 120));
    const app = await makeApp();
    const res = await app.inject({ url: '/fleet' });
    expect(res.statusCode).toBe(200);
    const bots = (res.json() as { bots: Record<string, unknown>[] }).bots;
    expect(bots.map((b) => [b.bot_id, b.stale])).toEqual([
      ['btc-1', false],
      ['eth-1', true],
    ]);
    expect(bots[1]).toMatchObject({ pair: 'ETH-USD', status: 'degraded', consecutive_errors: 4, last_error: 'ticker answered 503', last_price: '65000.12' });
    expect(bots[0]).toMatchObject({ last_fetch_at: new Date(now).toISOString(), rate_limited: false, config: { botId: 'btc-1' } });
  });
});

describe('GET /metrics', () => {
  it('exposes the master registry with HTTP durations labelled by route', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.alertsIngested.inc({ pair: 'BTC-USD' }, 3);
    const app = await makeApp({ metrics });
    await app.inject({ url: '/alerts?limit=1' });
    await app.inject({ url: '/alerts/not-a-uuid' });
    const res = await app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toContain('tickwatch_alerts_ingested_total{pair="BTC-USD"} 3');
    expect(res.body).toMatch(/tickwatch_http_request_duration_seconds_count\{method="GET",route="\/alerts",status="200"\} 1/);
    expect(res.body).toMatch(/tickwatch_http_request_duration_seconds_count\{method="GET",route="\/alerts\/:id",status="400"\} 1/);
    expect(res.body).toContain('tickwatch_notifications_total');
  });
});

describe('OpenAPI', () => {
  it('documents every endpoint with its parameters, and serves a browsable view at /docs', async () => {
    const app = await makeApp();
    const doc = (await app.inject({ url: '/openapi.json' })).json() as { openapi: string; paths: Record<string, { get: { parameters?: { name: string }[] } }> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/alerts', '/alerts.csv', '/alerts/{id}', '/stats', '/stats/timeseries', '/fleet', '/health', '/ready', '/metrics']));
    expect(doc.paths['/alerts']?.get.parameters?.map((p) => p.name)).toEqual(['pair', 'direction', 'since', 'until', 'min_change', 'silenced', 'silenced_by', 'ordering', 'limit', 'cursor']);
    const ui = await app.inject({ url: '/docs/' });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toContain('swagger');
  });
});
