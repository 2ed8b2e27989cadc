import type { FastifyInstance } from 'fastify';
import { writeBotStatus, type BotStatus } from '../../../shared/contract/fleet-status';
import { createLogger } from '../../../shared/platform/logger';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/db';
import { createTestRedis, type TestRedis } from '../../../test/helpers/redis';
import { createMetrics } from '../../metrics';
import { createApiServer } from '../server';

/** GET /fleet's retention of gone bots and DELETE /fleet/{bot_id}, against a real Redis (heartbeats as workers write them). */

const TOKEN = 'fleet-test-token-0123456789';
const HOUR = 3_600_000;
let tdb: TestDatabase;
let tr: TestRedis;
let app: FastifyInstance;

function heartbeat(botId: string, status: BotStatus['status'], ageMs: number, ttlMs = 15_000): BotStatus {
  const at = new Date(Date.now() - ageMs).toISOString();
  return {
    botId,
    pair: 'BTC-USD',
    status,
    consecutiveErrors: 0,
    startedAt: at,
    heartbeatAt: at,
    ttlMs,
    rateLimited: false,
    effectiveIntervalMs: 5000,
    alertsPublished: 0,
    alertsDropped: 0,
    alertsQueued: 0,
    config: { botId, pair: 'BTC-USD', intervalMs: 5000, thresholdPercent: '0.01', priceField: 'ask', referenceMode: 'first', tickerBaseUrl: 'http://127.0.0.1:9999' },
  };
}

const auth = { authorization: `Bearer ${TOKEN}` };
const listed = async () => ((await app.inject({ url: '/fleet', headers: auth })).json() as { bots: { bot_id: string }[] }).bots.map((b) => b.bot_id);

beforeAll(async () => {
  [tdb, tr] = await Promise.all([createTestDatabase(), createTestRedis()]);
  app = await createApiServer({
    db: tdb.db,
    redis: tr.redis,
    keys: tr.keys,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger({ name: 'fleet-test', level: 'silent' }),
    apiToken: TOKEN,
    fleetRetentionMs: 2 * HOUR,
  });
});

afterAll(async () => {
  await app?.close();
  await tr?.cleanup();
  await tdb?.drop();
});

describe('GET /fleet with FLEET_RETENTION 2h', () => {
  it('keeps running and recently gone bots, and forgets bots stopped or expired longer ago', async () => {
    await writeBotStatus(tr.redis, tr.keys, heartbeat('running', 'ok', 1000));
    await writeBotStatus(tr.redis, tr.keys, heartbeat('stopped-recently', 'stopped', HOUR));
    await writeBotStatus(tr.redis, tr.keys, heartbeat('expired-recently', 'ok', HOUR));
    // A stopped bot's live hash can outlive the retention if its TTL is long: it is gone all the same.
    await writeBotStatus(tr.redis, tr.keys, heartbeat('stopped-long-ago', 'stopped', 3 * HOUR, 24 * HOUR));
    await writeBotStatus(tr.redis, tr.keys, heartbeat('expired-long-ago', 'unhealthy', 3 * HOUR));

    expect((await listed()).sort()).toEqual(['expired-recently', 'running', 'stopped-recently']);
    // Forgotten in Redis too, so the fleet does not grow with every bot that ever ran.
    expect((await tr.redis.hkeys(tr.keys.botsLastSeen)).sort()).toEqual(['expired-recently', 'running', 'stopped-recently']);
    expect(await tr.redis.exists(tr.keys.botStatus('stopped-long-ago'))).toBe(0);
  });

  it('lists a forgotten bot again as soon as it reports', async () => {
    await writeBotStatus(tr.redis, tr.keys, heartbeat('expired-long-ago', 'ok', 0));
    expect(await listed()).toContain('expired-long-ago');
  });
});

describe('DELETE /fleet/{bot_id}', () => {
  it('removes a bot at once (204), then answers 404 for it', async () => {
    await writeBotStatus(tr.redis, tr.keys, heartbeat('to-remove', 'ok', 1000));
    expect(await listed()).toContain('to-remove');
    const removed = await app.inject({ method: 'DELETE', url: '/fleet/to-remove', headers: auth });
    expect(removed.statusCode).toBe(204);
    expect(removed.body).toBe('');
    expect(await listed()).not.toContain('to-remove');
    expect(await tr.redis.exists(tr.keys.botStatus('to-remove'))).toBe(0);
    // The removal is an operator's change: the audit names who did it and keeps the heartbeat removed.
    const audit = (await app.inject({ url: '/audit?bot_id=to-remove', headers: auth })).json() as { items: { actor: string; action: string; before: { bot_id: string; status: string } | null; after: unknown }[] };
    expect(audit.items).toHaveLength(1);
    expect(audit.items[0]).toMatchObject({ actor: 'operator', action: 'fleet-remove', before: { bot_id: 'to-remove', status: 'ok' }, after: null });
    const again = await app.inject({ method: 'DELETE', url: '/fleet/to-remove', headers: auth });
    expect(again.statusCode).toBe(404);
    expect(again.json()).toEqual({ error: 'not_found', message: 'no bot has reported with id to-remove' });
  });

  it('needs the API token', async () => {
    await writeBotStatus(tr.redis, tr.keys, heartbeat('guarded', 'ok', 1000));
    const res = await app.inject({ method: 'DELETE', url: '/fleet/guarded' });
    expect(res.statusCode).toBe(401);
    expect(await listed()).toContain('guarded');
  });

  it('refuses an id no bot could have with a 400 naming bot_id', async () => {
    const res = await app.inject({ method: 'DELETE', url: `/fleet/${encodeURIComponent('no spaces!')}`, headers: auth });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'bad_request', parameter: 'bot_id', value: 'no spaces!' });
  });
});
