import { randomBytes } from 'node:crypto';
import { parseAlertMessage, type AlertMessage } from '../shared/contract/alert';
import { ALERT_CONSUMER_GROUP, createRedisKeys } from '../shared/contract/redis-keys';
import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis, deleteKeysWithPrefix, duplicateRedis, scanKeys, subscribeSharded, type Redis } from '../shared/platform/redis';
import { createRateBudget } from '../worker/rate-budget';
import { createDeadLetters } from './ingest/dead-letter';
import { createMetrics } from './metrics';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { startRedisCluster, type TestRedisCluster } from '../test/helpers/redis-cluster';
import { waitFor } from '../test/helpers/wait';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';

/**
 * Workers and the master on a real Redis Cluster (3 primaries, 3 replicas): the alerts of two pairs, whose keys live
 * in different slots, reach Postgres once each, and live subscribers get them on the sharded channel `alerts:<PAIR>`.
 */
describe('on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let t: TestDatabase;
  let sim: TickerSimulator;
  let redis: Redis;
  let subscriber: Redis;
  const prefix = `c${randomBytes(4).toString('hex')}:`;
  const keys = createRedisKeys(prefix);
  const processes: ServiceProcess[] = [];
  const channelMessages: { channel: string; alert: AlertMessage }[] = [];
  const OPERATOR_TOKEN = randomBytes(16).toString('hex');
  let api = '';
  let streamMaster: ServiceProcess | undefined;

  beforeAll(async () => {
    [cluster, t] = await Promise.all([startRedisCluster(), createTestDatabase()]);
    sim = await createTickerSimulator({
      rateLimit: 0,
      // 100 -> 101 up 1 %; 101 -> 99.99 down 1 % (last-alert reference); 2000 -> 2010 up 0.5 %.
      // SOL-USD (a runtime bot) alternates for good: every poll but the first alerts.
      script: { repeat: false, pairs: { 'BTC-USD': ['100', '101', '101', '99.99'], 'ETH-USD': ['2000', '2010'], 'SOL-USD': Array.from({ length: 400 }, (_, i) => (i % 2 ? '101' : '100')), 'ADA-USD': Array.from({ length: 400 }, (_, i) => (i % 2 ? '1.01' : '1')), 'MAX-USD': Array.from({ length: 400 }, (_, i) => (i % 2 ? '11' : '10')) } },
    });
    const logger = createLogger({ name: 'cluster-test', level: 'silent' });
    redis = createRedis({ url: 'redis://127.0.0.1:6379', clusterNodes: cluster.nodesVar.split(',') }, logger, { name: 'cluster-test' });
    subscriber = duplicateRedis(redis, 'cluster-test-sub', { subscriber: true });
    subscriber.on('smessage', (channel: string, message: string) => {
      const parsed = parseAlertMessage(message);
      if (parsed.ok) channelMessages.push({ channel, alert: parsed.alert });
    });
    await subscribeSharded(subscriber, [keys.alertChannel('BTC-USD'), keys.alertChannel('ETH-USD')]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGTERM')));
    await closeRedis(subscriber);
    await closeRedis(redis);
    await sim?.close();
    await cluster?.destroy();
    await t?.drop();
  });

  const common = () => ({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: cluster.nodesVar, REDIS_KEY_PREFIX: prefix, LOG_LEVEL: 'info' });

  it('stores every alert once, the pairs in slots of their own, and SPUBLISHes each on its channel', async () => {
    const master = startService('master/main.ts', { ...common(), DATABASE_URL: t.url, API_HOST: '127.0.0.1', API_PORT: '0', API_TOKENS: `ops:operator:${OPERATOR_TOKEN}` });
    processes.push(master);
    streamMaster = master;
    await master.waitForOutput('master started', 30_000);
    api = /master started; API on (http:\/\/[^\s"]+)/.exec(master.output())![1]!;
    for (const pair of ['BTC-USD', 'ETH-USD']) {
      processes.push(
        startService('worker/main.ts', { ...common(), PAIR: pair, FETCH_INTERVAL_MS: '100', OSCILLATION_PERCENT: '0.01', TICKER_BASE_URL: sim.url, TICKER_RATE_LIMIT_PER_MIN: '0', TICKER_FETCH: 'pair' }),
      );
    }

    const rows = await waitFor('three rows', async () => {
      const found = await t.db('alerts').orderBy('observed_at');
      return found.length >= 3 ? found : null;
    }, { timeoutMs: 40_000 });
    expect(rows.map((r) => [r.pair, r.direction, Number(r.price), Number(r.reference_price)]).sort()).toEqual([
      ['BTC-USD', 'down', 99.99, 101],
      ['BTC-USD', 'up', 101, 100],
      ['ETH-USD', 'up', 2010, 2000],
    ]);

    // The streams carry their pair's tag, and each is in the slot its tag names.
    for (const pair of ['BTC-USD', 'ETH-USD']) {
      expect(keys.alertStream(pair)).toBe(`${prefix}stream:alerts:{${pair}}`);
      expect(await redis.xlen(keys.alertStream(pair))).toBeGreaterThanOrEqual(pair === 'BTC-USD' ? 2 : 1);
    }
    const btc = await cluster.primaryFor(keys.alertStream('BTC-USD'));
    expect(await cluster.primaryFor(keys.ticks('BTC-USD'))).toBe(btc);

    // Live subscribers (SSUBSCRIBE) saw each alert, with the stored id.
    await waitFor('three sharded messages', () => channelMessages.length >= 3);
    expect(channelMessages.map((m) => m.alert.id).sort()).toEqual(rows.map((r) => r.id).sort());
    expect(new Set(channelMessages.map((m) => m.channel))).toEqual(new Set([`${prefix}alerts:BTC-USD`, `${prefix}alerts:ETH-USD`]));

    // The container health check reads the bot's heartbeat from the cluster.
    const health = startService('worker/health.ts', { ...common(), PAIR: 'BTC-USD' });
    expect(await health.exited).toBe(0);
    expect(health.output()).toMatch(/healthy: bot BTC-USD is ok/);

    // Nothing more arrives later: no row is stored twice.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await t.db('alerts').count({ n: '*' }).first()).toEqual({ n: '3' });
  }, 90_000);

  it('a generic worker claims a runtime bot under its pair\'s lease and publishes fenced alerts, stored once; max_alerts holds', async () => {
    const res = await fetch(`${api}/bots`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ bot_id: 'sol', pair: 'SOL-USD', interval_ms: 200, threshold_percent: '0.5' }),
    });
    expect(res.status).toBe(201);
    processes.push(startService('worker/main.ts', { ...common(), WORKER_ID: 'gw1', TICKER_BASE_URL: sim.url, TICKER_RATE_LIMIT_PER_MIN: '0', TICKER_FETCH: 'pair' }));
    const rows = await waitFor('five SOL-USD rows', async () => {
      const found = await t.db('alerts').where({ pair: 'SOL-USD' });
      return found.length >= 5 ? found : null;
    }, { timeoutMs: 40_000 });
    expect(rows.every((r) => r.bot_id === 'sol')).toBe(true);
    // The lease lives in the pair's slot, beside the stream the fenced script adds to.
    expect(await redis.get(keys.botLease('sol', 'SOL-USD'))).toMatch(/^gw1:\d+$/);
    expect(await cluster.primaryFor(keys.botLease('sol', 'SOL-USD'))).toBe(await cluster.primaryFor(keys.alertStream('SOL-USD')));
    const health = startService('worker/health.ts', { ...common(), WORKER_ID: 'gw1' });
    expect(await health.exited).toBe(0);
    expect(health.output()).toMatch(/healthy: worker gw1 is holding bot sol/);
    const ids = (await t.db('alerts').where({ pair: 'SOL-USD' }).select('id')).map((r) => r.id as string);
    expect(new Set(ids).size).toBe(ids.length);

    // A bot with max_alerts: its rule state (in the pair's slot) is checked in the script that adds to the stream.
    const capped = await fetch(`${api}/bots`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ bot_id: 'max', pair: 'MAX-USD', interval_ms: 200, threshold_percent: '0.5', max_alerts: 2 }),
    });
    expect(capped.status).toBe(201);
    processes.push(startService('worker/main.ts', { ...common(), WORKER_ID: 'gw2', TICKER_BASE_URL: sim.url, TICKER_RATE_LIMIT_PER_MIN: '0', TICKER_FETCH: 'pair' }));
    const maxRows = async () => Number((await t.db('alerts').where({ pair: 'MAX-USD' }).count({ n: '*' }).first())?.n);
    await waitFor('two MAX-USD rows', async () => (await maxRows()) >= 2, { timeoutMs: 30_000 });
    // Every poll would alert: a third row would show by now if the cap were not held.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await maxRows()).toBe(2);
    expect(await redis.hget(keys.ruleState('MAX-USD', 'max'), 'published')).toBe('2');
  }, 60_000);

  it('a DELIVERY=pubsub master with PAIRS=* SSUBSCRIBEs to every pair, also one that appears later', async () => {
    // The stream master steps aside: every row from now on comes through the sharded channels.
    expect(await streamMaster!.stop('SIGTERM')).toBe(0);
    const count = async (pair: string) => Number((await t.db('alerts').where({ pair }).count({ n: '*' }).first())?.n);
    const solBefore = await count('SOL-USD');
    const master = startService('master/main.ts', { ...common(), DATABASE_URL: t.url, API_HOST: '127.0.0.1', API_PORT: '0', DELIVERY: 'pubsub', CONSUMER_NAME: 'pubsub-master' });
    processes.push(master);
    await master.waitForOutput('master started', 30_000);
    // SOL-USD's runtime bot keeps alerting: its channel was subscribed at start.
    await waitFor('SOL-USD alerts through the sharded channel', async () => (await count('SOL-USD')) >= solBefore + 3, { timeoutMs: 20_000 });
    // A pair whose first worker starts now: found in the pairs set at the next re-read.
    processes.push(startService('worker/main.ts', { ...common(), PAIR: 'ADA-USD', FETCH_INTERVAL_MS: '200', OSCILLATION_PERCENT: '0.5', TICKER_BASE_URL: sim.url, TICKER_RATE_LIMIT_PER_MIN: '0', TICKER_FETCH: 'pair' }));
    await waitFor('ADA-USD alerts through the sharded channel', async () => (await count('ADA-USD')) >= 3, { timeoutMs: 30_000 });
  }, 90_000);

  it('the rate budget, dead letters and prefix scans work across the cluster slots', async () => {
    const logger = createLogger({ name: 'cluster-test', level: 'silent' });
    // The budget and its pause share a tag: the reserve script runs (a CROSSSLOT refusal would fall back to local mode).
    for (const group of ['default', 'eu-west']) {
      const budget = createRateBudget({ redis, keys, group, limit: 600, windowMs: 1000, logger });
      const grant = await budget.acquire(new AbortController().signal);
      expect(grant).toMatchObject({ mode: 'shared', aborted: false });
    }
    // A dead letter for an entry of a pair's stream: recorded and the entry acknowledged, in two slots.
    const stream = keys.alertStream('DLQ-USD');
    await redis.xgroup('CREATE', stream, ALERT_CONSUMER_GROUP, '0', 'MKSTREAM');
    const entryId = await redis.xadd(stream, '*', 'alert', 'not json');
    await redis.xreadgroup('GROUP', ALERT_CONSUMER_GROUP, 'c1', 'STREAMS', stream, '>');
    await createDeadLetters({ redis, keys, logger, metrics: createMetrics({ defaultMetrics: false }) }).add({ reason: 'not json', source: 'stream', stream, entryId: entryId!, payload: 'not json' }, { group: ALERT_CONSUMER_GROUP });
    expect(((await redis.xpending(stream, ALERT_CONSUMER_GROUP)) as [number])[0]).toBe(0);
    expect(await redis.xlen(keys.deadLetterStream)).toBe(1);
    // SCAN on every primary: keys of every slot are found, and deleted.
    const scratch = `${prefix}scratch:`;
    const many = Array.from({ length: 30 }, (_, i) => `${scratch}${i}`);
    await Promise.all(many.map((k) => redis.set(k, '1')));
    expect((await scanKeys(redis, `${scratch}*`)).sort()).toEqual([...many].sort());
    await deleteKeysWithPrefix(redis, scratch);
    expect(await scanKeys(redis, `${scratch}*`)).toEqual([]);
  });
});
