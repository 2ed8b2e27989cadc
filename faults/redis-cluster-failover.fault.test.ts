import { randomUUID } from 'node:crypto';
import { parseAlertMessage, type AlertMessage } from '../shared/contract/alert';
import { createRedisKeys } from '../shared/contract/redis-keys';
import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis, duplicateRedis, subscribeSharded, type Redis } from '../shared/platform/redis';
import { createTickerSimulator, type TickerSimulator } from '../sim/simulator';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db';
import { startService, type ServiceProcess } from '../test/helpers/process';
import { startRedisCluster, type ClusterNode, type TestRedisCluster } from '../test/helpers/redis-cluster';
import { waitFor } from '../test/helpers/wait';
import { createAlertPublisher } from '../worker/publisher';
import { printFigures } from './figures';

/**
 * Three real workers and a real master on a real Redis Cluster (3 primaries, 3 replicas, cluster-node-timeout 1 s).
 * Mid-flow the primary that owns the busy pair's slot is SIGKILLed: its replica must take over, the workers and the
 * master must carry on by themselves, and every alert a worker raised must be stored exactly once. With
 * REDIS_WAIT_REPLICAS=1 the promoted replica, alone in its shard, cannot acknowledge a WAIT: the busy pair's alerts stay
 * queued in its worker (never counted as published) until the killed node is started again 3 s later and rejoins as
 * its replica. Before the fault, the cost of WAIT is measured: 200 alerts published with and without it.
 */
const PAIRS = ['CFA-USD', 'CFB-USD', 'CFC-USD'];
const BUSY = PAIRS[0]!;
const RESTART_AFTER_MS = 3_000;

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe('when the primary of a busy pair is killed on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let database: TestDatabase;
  let sim: TickerSimulator;
  let redis: Redis;
  let subscriber: Redis | undefined;
  const services: ServiceProcess[] = [];
  const keys = createRedisKeys(`cf${randomUUID().slice(0, 6)}:`);
  const logger = createLogger({ name: 'cluster-fault', level: 'silent' });

  beforeAll(async () => {
    [cluster, database] = await Promise.all([startRedisCluster({ nodeTimeoutMs: 1000 }), createTestDatabase()]);
    // Every valid answer alternates 100 and 101: with a 0.5 % threshold in last-alert mode, every poll but the first alerts.
    sim = await createTickerSimulator({ rateLimit: 0, script: { repeat: true, pairs: Object.fromEntries(PAIRS.map((p) => [p, ['100', '101']])) } });
    redis = createRedis({ url: 'redis://127.0.0.1:6379', clusterNodes: cluster.nodesVar.split(',') }, logger, { name: 'cluster-fault' });
  }, 60_000);
  afterAll(async () => {
    for (const s of services) await s.stop('SIGKILL');
    await closeRedis(subscriber);
    await closeRedis(redis);
    await sim?.close();
    await cluster?.destroy();
    await database?.drop();
  });

  /** Publishes `n` alerts one after another with this publisher setting; the latency of each, in ms. */
  async function measurePublish(waitReplicas: number, n: number): Promise<number[]> {
    const ms: number[] = [];
    const publisher = createAlertPublisher({ redis, keys, streamMaxLen: 10_000, queueMax: n, logger, waitReplicas, waitMs: 500, onPublished: (_a, t) => ms.push(t) });
    const pair = `CFW${waitReplicas}-USD`;
    for (let i = 0; i < n; i++) {
      publisher.publish({
        id: randomUUID(), botId: pair, pair, direction: 'up', price: '101', referencePrice: '100', changePercent: '1', thresholdPercent: '0.5',
        priceField: 'ask', referenceMode: 'last-alert', observedAt: new Date().toISOString(),
        config: { botId: pair, pair, intervalMs: 200, thresholdPercent: '0.5', priceField: 'ask', referenceMode: 'last-alert', tickerBaseUrl: sim.url },
      } as unknown as AlertMessage);
      await publisher.flush(5_000);
    }
    publisher.close();
    return ms;
  }

  it('fails over, everyone carries on by themselves, and every alert is stored exactly once', async () => {
    const withWait = await measurePublish(1, 200);
    const withoutWait = await measurePublish(0, 200);

    const env = { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: cluster.nodesVar, REDIS_KEY_PREFIX: keys.prefix };
    // Only the test's own pairs: the two measurement streams above are not the workers'.
    const master = startService('master/main.ts', { ...env, LOG_LEVEL: 'info', PAIRS: PAIRS.join(','), DATABASE_URL: database.url, API_HOST: '127.0.0.1', API_PORT: '0', NOTIFY: 'log' });
    services.push(master);
    await master.waitForOutput('master started', 30_000);
    const workers = PAIRS.map((pair) =>
      startService('worker/main.ts', {
        ...env,
        // debug: each published alert is logged with its publish latency (from being raised: queueing and retries included).
        LOG_LEVEL: 'debug',
        PAIR: pair,
        FETCH_INTERVAL_MS: pair === BUSY ? '100' : '250',
        OSCILLATION_PERCENT: '0.5',
        TICKER_BASE_URL: sim.url,
        TICKER_RATE_LIMIT_PER_MIN: '0',
        TICKER_FETCH: 'pair',
        REDIS_WAIT_REPLICAS: '1',
        REDIS_WAIT_MS: '500',
      }),
    );
    services.push(...workers);
    // A live subscriber of the busy pair's sharded channel, whose shard is the one about to lose its primary.
    const heard: number[] = [];
    subscriber = duplicateRedis(redis, 'cluster-fault-sub', { subscriber: true });
    subscriber.on('smessage', () => heard.push(Date.now()));
    await subscribeSharded(subscriber, [keys.alertChannel(BUSY)]);
    const stored = async () => Number(((await database.db('alerts').count('* as n')) as { n: string }[])[0]!.n);
    await waitFor('alerts to flow before the kill', async () => (await stored()) >= 30, { timeoutMs: 30_000 });

    const victim: ClusterNode = await cluster.primaryFor(keys.alertStream(BUSY));
    const storedBeforeKill = await stored();
    await cluster.kill(victim);
    const killedAt = Date.now();

    // Failover: another node serves the busy pair's slot as primary.
    const promoted = await waitFor('a replica to be promoted', async () => {
      const now = await cluster.primaryFor(keys.alertStream(BUSY)).catch(() => null);
      return now && now.port !== victim.port ? now : null;
    }, { timeoutMs: 20_000, intervalMs: 50 });
    const failoverMs = Date.now() - killedAt;
    expect(await cluster.roleOf(promoted)).toBe('master');

    // The other pairs' workers never stopped: their primaries are alive. The master keeps storing them meanwhile.
    const storedAtFailover = await stored();
    await waitFor('the master to store other pairs after the failover', async () => (await stored()) > storedAtFailover + 5, { timeoutMs: 15_000 });

    await new Promise((r) => setTimeout(r, Math.max(0, RESTART_AFTER_MS - (Date.now() - killedAt))));
    await cluster.restart(victim);
    const restartedAt = Date.now();
    await waitFor('the killed node to rejoin as a replica', async () => (await cluster.roleOf(victim)) === 'slave', { timeoutMs: 20_000, intervalMs: 50 });
    await cluster.waitHealthy();

    // The busy pair's worker: an alert added after the node came back (entry ids carry Redis's clock in ms).
    const busyRecoveryMs = await waitFor('the busy pair published again', async () => {
      const [entry] = await redis.xrevrange(keys.alertStream(BUSY), '+', '-', 'COUNT', 1);
      const at = entry ? Number(entry[0].split('-')[0]) : 0;
      return at >= restartedAt ? at - restartedAt : undefined;
    }, { timeoutMs: 20_000, intervalMs: 20 });
    // The subscriber follows the channel's shard to its new primary by itself.
    const subscriberBackMs = await waitFor('the subscriber to hear the busy pair again', () => {
      const at = heard.find((t) => t >= restartedAt);
      return at === undefined ? undefined : at - restartedAt;
    }, { timeoutMs: 20_000, intervalMs: 20 });
    // The master: a row committed for the busy pair after the failover.
    await waitFor('the master to store the busy pair again', async () => {
      const [row] = (await database.db('alerts').where({ pair: BUSY }).max('received_at as at')) as { at: Date | null }[];
      return row?.at && row.at.getTime() >= restartedAt ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 50 });

    await new Promise((r) => setTimeout(r, 1_000));
    for (const w of workers) expect(await w.stop('SIGTERM')).toBe(0);

    // Produced: every alert a worker raised, by the id it logged; published: the ones the publisher counted as such.
    const produced = new Set<string>();
    const publishMs: number[] = [];
    for (const w of workers) {
      for (const m of w.output().matchAll(/"alertId":"([0-9a-f-]{36})"[^\n]*price oscillation alert/g)) produced.add(m[1]!);
      for (const m of w.output().matchAll(/"publishMs":(\d+)[^\n]*alert published/g)) publishMs.push(Number(m[1]));
    }
    await waitFor('every produced alert to be stored', async () => (await stored()) >= produced.size, { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 1_000));
    const { rows } = await database.db.raw<{ rows: { matched: string; total: string; distinct_ids: string }[] }>(
      'SELECT (SELECT count(*) FROM alerts WHERE id = ANY(?::uuid[])) AS matched, (SELECT count(*) FROM alerts) AS total, (SELECT count(DISTINCT id) FROM alerts) AS distinct_ids',
      [[...produced]],
    );
    // Entries added twice to a stream (a retry after a WAIT that came back short, or after a lost reply): stored once.
    let streamEntries = 0;
    const streamIds = new Set<string>();
    for (const pair of PAIRS) {
      for (const [, fields] of await redis.xrange(keys.alertStream(pair), '-', '+')) {
        streamEntries++;
        const parsed = parseAlertMessage(fields[fields.indexOf('alert') + 1]!);
        if (parsed.ok) streamIds.add(parsed.alert.id);
      }
    }
    const total = Number(rows[0]!.total);
    const masterAlive = master.child.exitCode === null;
    printFigures(
      'redis-cluster-failover',
      {
        produced: produced.size,
        stored: total,
        lost: produced.size - Number(rows[0]!.matched),
        duplicates: total - Number(rows[0]!.distinct_ids),
        stream_reentries: streamEntries - streamIds.size,
        stored_before_kill: storedBeforeKill,
        failover_ms: failoverMs,
        busy_pair_back_after_restart_ms: busyRecoveryMs,
        subscriber_back_after_restart_ms: subscriberBackMs,
        publish_p50_ms: percentile(publishMs, 50),
        publish_p99_ms: percentile(publishMs, 99),
        publish_max_ms: Math.max(...publishMs),
        wait_p50_ms: percentile(withWait, 50),
        wait_p99_ms: percentile(withWait, 99),
        nowait_p50_ms: percentile(withoutWait, 50),
        nowait_p99_ms: percentile(withoutWait, 99),
      },
      `3 primaries + 3 replicas, cluster-node-timeout 1000; SIGKILL of the busy pair's primary, restarted ${RESTART_AFTER_MS} ms later; REDIS_WAIT_REPLICAS=1 REDIS_WAIT_MS=500; master ${masterAlive ? 'stayed up' : 'EXITED'}`,
    );
    expect(produced.size).toBeGreaterThan(storedBeforeKill);
    expect(Number(rows[0]!.matched)).toBe(produced.size);
    expect(total).toBe(produced.size);
    expect(total).toBe(Number(rows[0]!.distinct_ids));
    expect(masterAlive).toBe(true);
  }, 120_000);
});
