import http from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializeAlertBatch } from '../../shared/contract/alert';
import { writeBotStatus } from '../../shared/contract/fleet-status';
import { createLogger } from '../../shared/platform/logger';
import type { AlertItem, AlertQueries } from '../../shared/read-model/alert-queries';
import { WIRE_ALERT_FIELDS } from '../../shared/read-model/alert-wire';
import { makeAlert } from '../../test/helpers/alerts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../test/helpers/redis';
import { waitFor } from '../../test/helpers/wait';
import { startWebhookReceiver, type TestWebhookReceiver } from '../../test/helpers/webhook';
import { createAlertRepository } from '../ingest/alert-repository';
import { createMetrics } from '../metrics';
import { createWebhookSender } from '../notify/webhook-notifier';
import { FLEET_SCHEMA, NOTIFICATION_SCHEMA, STATS_SCHEMA, TIMESERIES_SCHEMA } from './openapi';
import { alertRoutes } from './routes/alerts';
import { toFleetItem } from '../../shared/read-model/fleet-view';
import { createApiServer } from './server';
import { API_AJV_OPTIONS, isValidationError, validationBadRequest } from './validation';

/**
 * One wire shape for the alert on every interface a client sees, and route schemas that are enforced: requests are
 * validated by them (a refusal is the API's 400 naming the parameter) and answers are serialised by them (exactly the
 * documented fields).
 */

const SNAKE_CASE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
const keysOf = (schema: { properties: object }) => Object.keys(schema.properties).sort();

let t: TestDatabase;
let r: TestRedis;
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  [t, r] = await Promise.all([createTestDatabase({ migrate: true }), createTestRedis()]);
  app = await createApiServer({
    db: t.db,
    redis: r.redis,
    keys: r.keys,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger({ name: 'wire-shape-test', level: 'silent' }),
  });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app?.close();
  await r?.cleanup();
  await t?.drop();
});

async function get(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await app.inject({ method: 'GET', url: path });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

/** Opens /events and resolves with the first alert frame's data, once `publish` has run after the stream is ready. */
function firstEventAlert(publish: () => Promise<unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/events`, (res) => {
      let text = '';
      let published = false;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (!published && text.includes('event: ready')) {
          published = true;
          publish().catch(reject);
        }
        const frame = /event: alert\nid: [^\n]+\ndata: ([^\n]+)\n\n/.exec(text);
        if (frame) {
          req.destroy();
          resolve(JSON.parse(frame[1] as string) as Record<string, unknown>);
        }
      });
    });
    req.on('error', (err) => {
      if (!req.destroyed) reject(err);
    });
  });
}

describe('the alert on every interface', () => {
  let hook: TestWebhookReceiver;
  beforeAll(async () => {
    hook = await startWebhookReceiver();
  });
  afterAll(() => hook?.stop());

  it('has the same fields and values in GET /alerts, GET /alerts/{id}, /events and the webhook body', async () => {
    // Digits and a time the message spells differently from the table: the wire shape is the table's rendering.
    const alert = makeAlert({ pair: 'ETH-USD', direction: 'down', changePercent: '-1.250000000000000000', price: '2970.500', referencePrice: '3007.6' });
    const repository = createAlertRepository(t.db);
    await repository.insertMany([alert]);

    const listed = ((await get('/alerts?pair=ETH-USD')).body.items as Record<string, unknown>[])[0] as Record<string, unknown>;
    const { notifications, ...one } = (await get(`/alerts/${alert.id}`)).body;
    const live = await firstEventAlert(() => r.redis.publish(r.keys.storedAlertsChannel, serializeAlertBatch([alert])));
    await createWebhookSender({ timeoutMs: 5000 }).send({ url: hook.url }, await repository.findByIds([alert.id]), { summary: false, deliveryId: 'notification-1', receiverName: 'default' });
    const [call] = await hook.waitForRequests(1);
    const payload = call!.json as { alerts: Record<string, unknown>[] };
    const webhook = payload.alerts[0] as Record<string, unknown>;

    expect(notifications).toEqual([]);
    for (const shape of [listed, one, live, webhook]) expect(Object.keys(shape)).toEqual([...WIRE_ALERT_FIELDS]);
    expect(listed).toEqual({
      id: alert.id,
      bot_id: alert.botId,
      pair: 'ETH-USD',
      direction: 'down',
      price: '2970.5',
      reference_price: '3007.6',
      change_percent: '-1.25',
      threshold_percent: '0.01',
      observed_at: alert.observedAt,
      config: alert.config,
      received_at: expect.any(String),
      silenced_by: null,
    });
    expect(one).toEqual(listed);
    expect(webhook).toEqual(listed);
    // The live feed hears the announcement (the alert message), which does not carry the row's received_at.
    expect(live).toEqual({ ...listed, received_at: null });
    expect(Object.keys(payload).sort()).toEqual(['alerts', 'delivery_id', 'sent_at', 'text']);
  });

  it('names the fields of /ticks and /fleet the way /alerts does (snake_case, bot_id, reference_price)', async () => {
    await r.redis.xadd(r.keys.ticks('ETH-USD'), '*', 'price', '2970.5', 'ask', '2970.5', 'bid', '2970.1', 'at', new Date().toISOString(), 'botId', 'bot-eth-usd');
    const ticks = (await get('/ticks?pair=ETH-USD')).body.items as Record<string, unknown>[];
    expect(ticks).toHaveLength(1);
    expect(Object.keys(ticks[0]!).sort()).toEqual(['ask', 'at', 'bid', 'bot_id', 'price']);

    const alert = makeAlert({ pair: 'ETH-USD' });
    const now = new Date().toISOString();
    await writeBotStatus(r.redis, r.keys, {
      botId: alert.botId,
      pair: 'ETH-USD',
      status: 'ok',
      lastPrice: '2970.5',
      lastFetchAt: now,
      lastPriceAt: now,
      referencePrice: '3007.6',
      consecutiveErrors: 0,
      startedAt: now,
      heartbeatAt: now,
      ttlMs: 60_000,
      rateLimited: false,
      effectiveIntervalMs: 5000,
      alertsPublished: 1,
      alertsDropped: 0,
      alertsQueued: 0,
      config: alert.config,
    });
    const bots = (await get('/fleet')).body.bots as Record<string, unknown>[];
    const bot = bots.find((b) => b.bot_id === alert.botId) as Record<string, unknown>;
    expect(Object.keys(bot).sort()).toEqual(keysOf(FLEET_SCHEMA.properties.bots.items));
    expect(Object.keys(bot).every((k) => SNAKE_CASE.test(k))).toBe(true);
    expect(bot).toMatchObject({ bot_id: alert.botId, pair: 'ETH-USD', reference_price: '3007.6', config: alert.config });
  });
});

describe('answers carry exactly the documented fields', () => {
  it('documents every field the code builds for a bot, a notification and the statistics', async () => {
    const now = new Date().toISOString();
    const alert = makeAlert();
    const bot = toFleetItem({
      botId: alert.botId, pair: alert.pair, status: 'ok', consecutiveErrors: 0, startedAt: now, heartbeatAt: now, ttlMs: 1000, rateLimited: false,
      effectiveIntervalMs: 5000, alertsPublished: 0, alertsDropped: 0, alertsQueued: 0, config: alert.config, stale: false,
    });
    expect(Object.keys(bot).sort()).toEqual(keysOf(FLEET_SCHEMA.properties.bots.items));
    expect([...FLEET_SCHEMA.properties.bots.items.required].sort()).toEqual(keysOf(FLEET_SCHEMA.properties.bots.items));

    const stored = makeAlert();
    await createAlertRepository(t.db).insertMany([stored]);
    await t.db('notifications').insert({ alert_ids: [stored.id], channel: 'email', target: 'ops@example.com', status: 'pending', attempts: 0 });
    const notifications = (await get(`/alerts/${stored.id}`)).body.notifications as Record<string, unknown>[];
    expect(notifications.map((n) => Object.keys(n).sort())).toEqual([keysOf(NOTIFICATION_SCHEMA)]);

    const stats = (await get('/stats?window=1h')).body;
    expect(Object.keys(stats).sort()).toEqual(keysOf(STATS_SCHEMA));
    expect(Object.keys(stats.overall as object).sort()).toEqual(keysOf(STATS_SCHEMA.properties.overall));
    const series = (await get('/stats/timeseries?bucket=1h&since=2h')).body;
    expect(Object.keys(series).sort()).toEqual(keysOf(TIMESERIES_SCHEMA));
    expect(Object.keys((series.points as object[])[0]!).sort()).toEqual(keysOf(TIMESERIES_SCHEMA.properties.points.items));
  });

  it('serialises with the response schema: a field the schema does not document never leaves the server, config stays whole', async () => {
    const item = {
      id: '6f1c1f4e-9a57-4c1e-8f0e-2b7d3c9a1e11',
      bot_id: 'btc-bot',
      pair: 'BTC-USD',
      direction: 'up',
      price: '51250.5',
      reference_price: '50000',
      change_percent: '2.501',
      threshold_percent: '0.01',
      observed_at: '2026-11-29T12:00:00.000Z',
      config: { botId: 'btc-bot', intervalMs: 5000, nested: { any: ['thing'] } },
      received_at: '2026-11-29T12:00:00.020Z',
      silenced_by: null,
      internal_row_version: 7,
    } as AlertItem;
    // Queries passed in: the route plugin alone, built as the API builds it.
    const queries = { listAlerts: async () => ({ items: [item], nextCursor: null }) } as unknown as AlertQueries;
    const routes = Fastify({ ajv: API_AJV_OPTIONS });
    routes.setErrorHandler((err, req, reply) => (isValidationError(err) ? reply.code(400).send(validationBadRequest(err, req).toJSON()) : reply.send(err)));
    await routes.register(alertRoutes, { queries, now: Date.now });
    try {
      const res = await routes.inject('/alerts');
      expect(res.statusCode).toBe(200);
      const [served] = (res.json() as { items: Record<string, unknown>[] }).items;
      expect(Object.keys(served!)).toEqual([...WIRE_ALERT_FIELDS]);
      expect(served!.config).toEqual(item.config);
    } finally {
      await routes.close();
    }
  });
});

describe('the route schemas validate requests', () => {
  it.each([
    // [url, parameter, value, what allowed says]
    ['/alerts?limit=1&limit=2', 'limit', ['1', '2'], /^a single value: an integer from 1 to 1000$/],
    ['/alerts?direction=up&direction=down', 'direction', ['up', 'down'], /^a single value: one of up, down$/],
    ['/alerts?min_change=%200.5', 'min_change', ' 0.5', /non-negative plain decimal/],
    ['/alerts?cursor=not*base64', 'cursor', 'not*base64', /next_cursor/],
    [`/alerts?${Array.from({ length: 51 }, (_, i) => `pair=A${i}-USD`).join('&')}`, 'pair', expect.any(Array), /up to 50 pairs/],
    ['/alerts/urn:uuid:6f1c1f4e-9a57-4c1e-8f0e-2b7d3c9a1e11', 'id', 'urn:uuid:6f1c1f4e-9a57-4c1e-8f0e-2b7d3c9a1e11', /^a UUID/],
    ['/alerts/6f1c1f4e-9a57-4c1e-8f0e-2b7d3c9a1e11?verbose=1', 'verbose', '1', /no query parameters/],
    ['/stats?window=20m&colour=red', 'colour', 'red', /window/],
  ])('%s answers 400 naming %s', async (path, parameter, value, allowed) => {
    const { status, body } = await get(path);
    expect(status).toBe(400);
    expect(body).toEqual({ error: 'bad_request', parameter, value, allowed: expect.anything(), message: expect.stringContaining(`${parameter}=`) });
    expect([body.allowed].flat().join(', ')).toMatch(allowed);
  });

  it('lists the known parameter names when one is unknown', async () => {
    const { status, body } = await get('/stats/timeseries?buckets=1m');
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'bad_request', parameter: 'buckets', value: '1m', allowed: ['bucket', 'since', 'until', 'pair', 'direction'] });
  });

  it('answers a repeated pair like a comma list (a repeatable parameter is one string or a list)', async () => {
    const repeated = await get('/alerts?pair=BTC-USD&pair=ETH-USD');
    const comma = await get('/alerts?pair=BTC-USD,ETH-USD');
    expect(repeated.status).toBe(200);
    expect(repeated.body).toEqual(comma.body);
  });
});
