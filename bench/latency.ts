import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis, type Redis } from '../shared/platform/redis';
import { createAlertPublisher, type AlertPublisher } from '../worker/publisher';
import { makeAlert } from '../test/helpers/alerts';
import { createTickerSimulator } from '../sim/simulator';
import { listenForCommits, nowMs } from './commit-listener';
import type { Section, SectionContext } from './context';
import { spawnEntry, startBenchMaster, type BenchProcess } from './processes';
import { figure } from './report';
import { benchRedis, freshDatabase, type BenchDatabase, type BenchRedis } from './resources';
import { round, summarize } from './stats';
import { sleep } from '../shared/platform/retry';

/** Simulated workers sharing the steady load (1k alerts/s comes from a fleet: 20 bots at 50 alerts/s each). */
const PUBLISHERS = 20;

/**
 * The worker's own publisher (worker/publisher.ts) on a fail-fast connection, exactly as worker/main.ts builds it: the
 * alert is queued and sent in the worker's MULTI (PUBLISH + XADD + SADD), one at a time, in order.
 */
export function workerPublisher(ctx: SectionContext, r: BenchRedis): { publisher: AlertPublisher; redis: Redis; close(): Promise<void> } {
  const logger = createLogger({ name: 'bench-publisher', level: 'warn', pretty: false });
  const redis = createRedis(ctx.targets.redisUrl, logger, { name: 'bench-publisher', failFast: true });
  const publisher = createAlertPublisher({ redis, keys: r.keys, streamMaxLen: 1_000_000, queueMax: 100_000, logger });
  return {
    publisher,
    redis,
    async close() {
      await publisher.flush(5000);
      publisher.close();
      await closeRedis(redis);
    },
  };
}

export async function waitUntilReady(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('redis not ready within 10 s')), 10_000);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Steady load: `rate` alerts per second for `seconds`, each stamped at the moment it is built (the stand-in for "the
 * ticker answered"), published in the worker's MULTI, ingested by the real master process, and timed to the commit of
 * its row (NOTIFY at commit, see commit-listener.ts).
 */
async function steady(ctx: SectionContext, rate: number, seconds: number, warmupSeconds: number) {
  const db = await freshDatabase(ctx.targets, 'latency');
  const r = await benchRedis(ctx.targets);
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  // Split of each latency: answer -> in Redis (the MULTI's PUBLISH is delivered at EXEC) and in Redis -> committed.
  const inRedisAt = new Map<string, number>();
  const toRedis: number[] = [];
  const redisToCommit: number[] = [];
  const worstBySlot: number[] = [];
  const subscriber = r.redis.duplicate();
  subscriber.on('pmessage', (_pattern: string, _channel: string, message: string) => {
    const at = nowMs();
    const id = /"id":"([0-9a-f-]{36})"/.exec(message)?.[1];
    if (id) inRedisAt.set(id, at);
  });
  await subscriber.psubscribe(r.keys.alertChannelPattern);
  let committed = 0;
  let measureFrom = Number.POSITIVE_INFINITY;
  const listener = await listenForCommits(db, (ids, at) => {
    for (const id of ids) {
      const sent = sentAt.get(id);
      if (sent === undefined) continue;
      sentAt.delete(id);
      committed += 1;
      const reached = inRedisAt.get(id);
      inRedisAt.delete(id);
      if (sent >= measureFrom) {
        latencies.push(at - sent);
        // Worst latency per 100 ms of send time: shows whether slow commits are periodic (a loop's chores) or random.
        const slot = Math.floor((sent - measureFrom) / 100);
        worstBySlot[slot] = Math.max(worstBySlot[slot] ?? 0, Math.round(at - sent));
        if (reached !== undefined) {
          toRedis.push(reached - sent);
          redisToCommit.push(at - reached);
        }
      }
    }
  });
  const master = startBenchMaster(ctx, db, r);
  // A fleet, not one bot: each simulated worker has its own connection and publisher (one MULTI in flight each).
  const fleet = Array.from({ length: PUBLISHERS }, () => workerPublisher(ctx, r));
  const pairs = Array.from({ length: PUBLISHERS }, (_, i) => `LAT${i}-USD`);
  const queued = () => fleet.reduce((a, f) => a + f.publisher.stats().queued, 0);
  try {
    await Promise.all(fleet.map((f) => waitUntilReady(f.redis)));
    // Ready when a probe alert on every pair has come back committed: the master has found every stream (it looks for
    // new pairs every few seconds) and is reading them all, so start-up is not measured as latency.
    const probes = fleet.map((f, i) => {
      const probe = makeAlert({ pair: pairs[i]! });
      sentAt.set(probe.id, nowMs());
      f.publisher.publish(probe);
      return probe;
    });
    for (let i = 0; probes.some((p) => sentAt.has(p.id)); i++) {
      if (master.child.exitCode !== null) throw new Error(`master exited:\n${master.output().slice(-2000)}`);
      if (i > 600) throw new Error(`master did not store the probe alerts within 30 s:\n${master.output().slice(-2000)}`);
      await sleep(50);
    }
    committed = 0;
    ctx.log(`latency: ${rate} alerts/s for ${warmupSeconds + seconds} s (first ${warmupSeconds} s are warm-up)`);
    const start = nowMs();
    measureFrom = start + warmupSeconds * 1000;
    const end = start + (warmupSeconds + seconds) * 1000;
    let sent = 0;
    // Fixed-rate schedule: whenever the loop wakes, send what is due by now (usually one or two alerts).
    let maxQueued = 0;
    while (nowMs() < end) {
      maxQueued = Math.max(maxQueued, queued());
      const due = Math.floor(((nowMs() - start) / 1000) * rate);
      while (sent < due) {
        const alert = makeAlert({ pair: pairs[sent % PUBLISHERS]!, observedAt: new Date().toISOString() });
        sentAt.set(alert.id, nowMs());
        fleet[sent % PUBLISHERS]!.publisher.publish(alert);
        sent += 1;
      }
      await sleep(1);
    }
    let unpublished = 0;
    for (const f of fleet) unpublished += await f.publisher.flush(10_000);
    const deadline = Date.now() + 30_000;
    while (sentAt.size > 0 && Date.now() < deadline) await sleep(20);
    const achievedRate = (sent * 1000) / (end - start);
    return { sent, committed, missing: sentAt.size, publishers: { count: PUBLISHERS, published: fleet.reduce((a, f) => a + f.publisher.stats().published, 0), unpublished, maxQueued }, achievedRate, latency: summarize(latencies), answerToRedis: summarize(toRedis), redisToCommit: summarize(redisToCommit), worstPer100ms: Array.from(worstBySlot, (v) => v ?? 0) };
  } finally {
    for (const f of fleet) await f.close();
    subscriber.disconnect();
    await master.stop();
    await listener.close();
    await r.cleanup();
    await db.drop();
  }
}

/**
 * End to end with a real worker process: the simulator alternates two prices so every poll alerts; latency is the
 * row's observedAt (the worker's stamp when the answer arrived, millisecond precision) to its commit.
 */
async function realWorker(ctx: SectionContext, seconds: number) {
  const db = await freshDatabase(ctx.targets, 'latency_e2e');
  const r = await benchRedis(ctx.targets);
  const pair = 'E2E-USD';
  const sim = await createTickerSimulator({ rateLimit: 0, script: { repeat: true, pairs: { [pair]: ['100', '101'] } } });
  const latencies: number[] = [];
  const pending: { ids: string[]; at: number }[] = [];
  const listener = await listenForCommits(db, (ids, at) => void pending.push({ ids, at }));
  const master = startBenchMaster(ctx, db, r);
  let worker: BenchProcess | undefined;
  try {
    await master.waitForOutput('master started', 60_000);
    worker = spawnEntry('worker/main.ts', {
      PAIR: pair,
      FETCH_INTERVAL_MS: '100',
      OSCILLATION_PERCENT: '0.5',
      TICKER_BASE_URL: sim.url,
      REDIS_URL: ctx.targets.redisUrl,
      REDIS_KEY_PREFIX: r.prefix,
      TICKER_RATE_LIMIT_PER_MIN: '0',
      LOG_LEVEL: 'info',
    });
    await worker.waitForOutput('worker started', 60_000);
    await sleep((seconds + 2) * 1000);
    await worker.stop();
    // Let the last alerts land: wait until the row count stops moving.
    let last = -1;
    for (let i = 0; i < 30; i++) {
      const [row] = (await db.db('alerts').count<{ n: string }[]>('* as n')) as { n: string }[];
      if (Number(row?.n) === last) break;
      last = Number(row?.n);
      await sleep(500);
    }
    const rows = await db.db('alerts').select('id', 'observed_at');
    const observed = new Map(rows.map((row: { id: string; observed_at: Date }) => [row.id, row.observed_at.getTime()]));
    for (const { ids, at } of pending) for (const id of ids) if (observed.has(id)) latencies.push(at - observed.get(id)!);
    // The first seconds include both processes starting; keep the last `seconds` worth.
    const kept = latencies.slice(-Math.floor(seconds * 10));
    return { alerts: rows.length, latency: summarize(kept) };
  } finally {
    await worker?.stop();
    await master.stop();
    await listener.close();
    await sim.close();
    await r.cleanup();
    await db.drop();
  }
}

export const latencySection: Section = async (ctx) => {
  const seconds = ctx.options.quick ? 10 : 30;
  const load = await steady(ctx, 1000, seconds, ctx.options.quick ? 2 : 5);
  ctx.log(`latency: p50 ${round(load.latency.p50)} ms p99 ${round(load.latency.p99)} ms; real worker end to end`);
  const e2e = await realWorker(ctx, ctx.options.quick ? 5 : 15);
  if (load.missing > 0) throw new Error(`${load.missing} of ${load.sent} alerts were never committed`);
  return {
    figures: [
      figure({ section: 'latency', name: `answer -> committed row, p50, at ${round(load.achievedRate)} alerts/s`, value: load.latency.p50, unit: 'ms' }),
      figure({
        section: 'latency',
        name: `answer -> committed row, p99, at ${round(load.achievedRate)} alerts/s`,
        value: load.latency.p99,
        unit: 'ms',
        target: { text: '<= 25 ms', max: 25 },
        note: `${load.latency.count} alerts; max ${round(load.latency.max)} ms`,
      }),
      figure({
        section: 'latency',
        name: '  of which answer -> in Redis (publisher), p99',
        value: load.answerToRedis.p99,
        unit: 'ms',
        note: `p50 ${round(load.answerToRedis.p50)} ms; 20 publishers in the bench process`,
      }),
      figure({
        section: 'latency',
        name: '  of which in Redis -> committed (master), p99',
        value: load.redisToCommit.p99,
        unit: 'ms',
        note: `p50 ${round(load.redisToCommit.p50)} ms`,
      }),
      figure({
        section: 'latency',
        name: 'real worker (10 alerts/s), observedAt -> commit, p99',
        value: e2e.latency.p99,
        unit: 'ms',
        note: `p50 ${round(e2e.latency.p50)} ms, ${e2e.latency.count} alerts, ms clock`,
      }),
    ],
    details: { steady: load, realWorker: e2e },
  };
};
