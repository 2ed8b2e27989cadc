import { serializeDesiredBot } from '../shared/contract/bots';
import { readBotStatus } from '../shared/contract/fleet-status';
import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis, type Redis } from '../shared/platform/redis';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';
import { waitFor } from '../test/helpers/wait';
import { describeAlert, readAlertStream, workerConfig } from '../test/helpers/worker-streams';
import { claimLease } from './bot-lease';
import { createWorker, type BotHold } from './worker';

const logger = createLogger({ name: 'test', level: 'silent' });

/** A runtime bot acts only under its lease: no request past the local deadline, no publish without the token. */
describe('a runtime bot fenced by its lease', () => {
  let t: TestRedis;
  let sim: TickerSimulator;
  let redis: Redis;
  beforeAll(async () => {
    t = await createTestRedis();
    sim = await createTickerSimulator({ pairs: {}, rateLimit: 0, volatilityPercent: '0' });
    redis = createRedis(t.url, logger, { name: 'fence-test', failFast: true });
  });
  afterAll(async () => {
    await closeRedis(redis);
    await sim?.close();
    await t?.cleanup();
  });

  const runtime = async (pair: string, botId: string) => {
    await t.redis.hset(
      t.keys.desiredBots,
      botId,
      serializeDesiredBot({ botId, pair, intervalMs: 100, thresholdPercent: '0.1', priceField: 'ask', referenceMode: 'last-alert', enabled: true, version: 1 }),
    );
    const grant = (await claimLease(t.redis, t.keys, botId, 'me', 10_000))!;
    let valid = true;
    const hold: BotHold = { version: 1, leaseKey: t.keys.botLease(botId, pair), token: grant.token, generation: grant.generation, valid: () => valid };
    const config = workerConfig({ PAIR: pair, BOT_ID: botId, FETCH_INTERVAL_MS: '100', OSCILLATION_PERCENT: '0.1', TICKER_BASE_URL: sim.url, REDIS_URL: t.url, REDIS_KEY_PREFIX: t.prefix, TICKER_RATE_LIMIT_PER_MIN: '0', WORKER_ID: 'me', TICKER_FETCH: 'pair' });
    const worker = createWorker({ config, logger, redis, hold, flushTimeoutMs: 500 });
    return { worker, grant, expire: () => (valid = false) };
  };

  it('a bot started with PAIR reports source compose, its worker and service, and no version or lease', async () => {
    sim.setPrice('PIN-USD', '10');
    const config = workerConfig({ PAIR: 'PIN-USD', FETCH_INTERVAL_MS: '100', TICKER_BASE_URL: sim.url, REDIS_URL: t.url, REDIS_KEY_PREFIX: t.prefix, TICKER_RATE_LIMIT_PER_MIN: '0', WORKER_ID: 'pinned-1', COMPOSE_SERVICE: 'worker-btc', TICKER_FETCH: 'pair' });
    const worker = createWorker({ config, logger, redis });
    await worker.start();
    try {
      const status = await waitFor('a heartbeat', () => readBotStatus(t.redis, t.keys, 'PIN-USD'));
      expect(status).toMatchObject({ workerId: 'pinned-1', source: 'compose', service: 'worker-btc' });
      expect(status.botVersion).toBeUndefined();
      expect(status.leaseGeneration).toBeUndefined();
      expect(sim.requestLog.filter((e) => e.path.endsWith('/PIN-USD')).map((e) => e.userAgent)).toContain('tickwatch-worker/pinned-1');
    } finally {
      await worker.stop();
    }
  });

  it('past its local lease deadline the bot sends no request', async () => {
    sim.setPrice('DEAD-USD', '10');
    const { worker, expire } = await runtime('DEAD-USD', 'dead');
    await worker.start();
    try {
      await waitFor('three polls', () => sim.countRequests('DEAD-USD') >= 3);
      expire();
      const at = sim.countRequests('DEAD-USD');
      // Another bot of the same test polls meanwhile: by its tenth poll the expired one would have polled too.
      sim.setPrice('LIVE2-USD', '10');
      const other = await runtime('LIVE2-USD', 'live2');
      await other.worker.start();
      await waitFor('ten polls of the other bot', () => sim.countRequests('LIVE2-USD') >= 10);
      await other.worker.stop();
      // At most the request already past its check when the deadline passed.
      expect(sim.countRequests('DEAD-USD')).toBeLessThanOrEqual(at + 1);
    } finally {
      await worker.stop({ leaseLost: true });
    }
  });

  it('an alert is published only while the lease holds its token', async () => {
    sim.setPrice('FENCE-USD', '100');
    const { worker, grant } = await runtime('FENCE-USD', 'fence');
    await worker.start();
    try {
      await waitFor('the reference', () => worker.status().referencePrice === '100');
      sim.setPrice('FENCE-USD', '101');
      await waitFor('the first alert', async () => (await readAlertStream(t.redis, t.keys, 'FENCE-USD')).length === 1);
      // Another worker takes the lease (ours expired while we were, say, stalled): our next alert must not go out.
      await t.redis.set(t.keys.botLease('fence', 'FENCE-USD'), `other:${grant.generation + 1}`, 'PX', 10_000);
      sim.setPrice('FENCE-USD', '103');
      await waitFor('the refused alert counted', () => worker.status().alertsDropped === 1);
      expect((await readAlertStream(t.redis, t.keys, 'FENCE-USD')).map(describeAlert)).toEqual(['up 101 vs 100']);
      expect(worker.status()).toMatchObject({ alertsPublished: 1, alertsDropped: 1, source: 'api', workerId: 'me', botVersion: 1, leaseGeneration: grant.generation });
    } finally {
      await worker.stop({ leaseLost: true });
    }
  });
});
