import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { Client } from 'pg';
import Redis from 'ioredis';
import { from as copyFrom } from 'pg-copy-streams';
import { parseAlertMessage, serializeAlert, type AlertMessage } from '../shared/contract/alert';
import { ALERT_CONSUMER_GROUP } from '../shared/contract/redis-keys';
import { fillStreams } from '../test/helpers/alerts';
import { benchAlerts, benchPairs, COPY_COLUMNS, copyLine } from './alerts';
import type { Section, SectionContext } from './context';
import { startBenchMaster } from './processes';
import { sampleProcess } from './proc-stat';
import { figure } from './report';
import { benchRedis, freshDatabase, type BenchDatabase, type BenchRedis } from './resources';
import { medianIndex, msSince } from './stats';
import { sleep } from '../shared/platform/retry';


/**
 * Alerts the master has acknowledged (it acks only after the commit), from the consumer group's counters: cheap to
 * poll every few milliseconds, unlike count(*) over a growing table, which would compete with the ingest it watches.
 */
async function acknowledged(r: BenchRedis, pairs: readonly string[]): Promise<number> {
  const pipeline = r.redis.pipeline();
  for (const pair of pairs) pipeline.xinfo('GROUPS', r.keys.alertStream(pair));
  let acked = 0;
  for (const [err, groups] of (await pipeline.exec()) ?? []) {
    if (err) continue;
    for (const g of groups as unknown[][]) {
      const fields = new Map<string, unknown>();
      for (let i = 0; i + 1 < g.length; i += 2) fields.set(String(g[i]), g[i + 1]);
      if (fields.get('name') !== ALERT_CONSUMER_GROUP) continue;
      acked += Number(fields.get('entries-read') ?? 0) - Number(fields.get('pending') ?? 0);
    }
  }
  return acked;
}

/**
 * The real path: the streams are filled first (as workers would have, while the master was away), then the real master
 * process (`node --import tsx master/main.ts`, DELIVERY=stream) drains them into Postgres. Timed from the first batch
 * acknowledged (after its commit) to the last (the master's start-up is not ingest); then the rows are verified.
 */
async function measureMaster(ctx: SectionContext, db: BenchDatabase, r: BenchRedis, alerts: readonly AlertMessage[], replicas = 1) {
  ctx.log(`ingest: filling ${alerts.length} alerts into the durable streams`);
  await fillStreams(r.redis, r.keys, alerts);
  // Replicas are masters sharing the consumer group under their own names, as a scaled deployment runs them.
  const masters = Array.from({ length: replicas }, (_, i) =>
    startBenchMaster(ctx, db, r, {
      LOG_LEVEL: process.env.BENCH_MASTER_LOG_LEVEL ?? 'info',
      CONSUMER_NAME: `bench-master-${i + 1}`,
      // What-if knob for finding the limit (see README); the default is the master's own default.
      ...(process.env.BENCH_INGEST_BATCH_MAX ? { INGEST_BATCH_MAX: process.env.BENCH_INGEST_BATCH_MAX } : {}),
    }),
  );
  const cpuMsOfMasters = async () => (await Promise.all(masters.map((m) => sampleProcess(m.pid)))).reduce((sum, sample) => sum + sample.cpuMs, 0);
  try {
    ctx.log(`ingest: ${replicas} master(s), pid ${masters.map((m) => m.pid).join(', ')}, draining`);
    let first: bigint | undefined;
    let firstCount = 0;
    let cpuAtFirst = 0;
    let lastProgress = Date.now();
    let last = 0;
    const pairs = [...new Set(alerts.map((a) => a.pair))];
    for (;;) {
      for (const master of masters) {
        if (master.child.exitCode !== null) throw new Error(`master exited (${master.child.exitCode}):\n${master.output().slice(-2000)}`);
      }
      const n = await acknowledged(r, pairs);
      if (n > 0 && first === undefined) {
        first = process.hrtime.bigint();
        firstCount = n;
        cpuAtFirst = await cpuMsOfMasters();
      }
      if (n !== last) lastProgress = Date.now();
      last = n;
      if (n >= alerts.length) break;
      if (Date.now() - lastProgress > 60_000) throw new Error(`ingest stalled at ${n}/${alerts.length} rows:\n${masters[0]!.output().slice(-2000)}`);
      await sleep(n > 0 ? 10 : 50);
    }
    const elapsedMs = msSince(first!);
    const cpuMs = (await cpuMsOfMasters()) - cpuAtFirst;
    // Exactly once: every produced id is stored, nothing else is, and the group has nothing left pending.
    const ids = alerts.map((a) => a.id);
    const stored = await db.db.raw<{ rows: { matched: string; total: string; distinct_ids: string }[] }>(
      'SELECT (SELECT count(*) FROM alerts WHERE id = ANY(?::uuid[])) AS matched, (SELECT count(*) FROM alerts) AS total, (SELECT count(DISTINCT id) FROM alerts) AS distinct_ids',
      [ids],
    );
    const row = stored.rows[0]!;
    let pending = 0;
    for (const pair of pairs) {
      // Acks follow commits: wait briefly for the last batch's XACK.
      for (let i = 0; i < 50; i++) {
        const [count] = (await r.redis.xpending(r.keys.alertStream(pair), ALERT_CONSUMER_GROUP)) as [number, ...unknown[]];
        if (count === 0) break;
        if (i === 49) pending += count;
        else await sleep(20);
      }
    }
    const deadLetters = await r.redis.xlen(r.keys.deadLetterStream);
    const duplicates = Number(row.total) - Number(row.distinct_ids);
    const lost = alerts.length - Number(row.matched);
    if (lost !== 0 || duplicates !== 0 || Number(row.total) !== alerts.length) {
      throw new Error(`ingest was not exactly once: ${alerts.length} produced, ${row.matched} of them stored, ${row.total} rows, ${duplicates} duplicates`);
    }
    return {
      alertsPerSecond: ((alerts.length - firstCount) * 1000) / elapsedMs,
      elapsedMs,
      masterCpuMsPer1k: (cpuMs * 1000) / (alerts.length - firstCount),
      ackedAtFirstPoll: firstCount,
      stored: Number(row.total),
      duplicates,
      lost,
      pendingAfter: pending,
      deadLetters,
    };
  } finally {
    await Promise.all(masters.map((m) => m.stop('SIGTERM', 15_000)));
  }
}

/** The ceiling: one COPY of the same rows (built with the master's own row mapping) into the same, empty table. */
async function measureCopy(db: BenchDatabase, alerts: readonly AlertMessage[]) {
  const client = new Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('TRUNCATE alerts');
    const start = process.hrtime.bigint();
    const source = Readable.from((function* () {
      // Chunks of lines, so the stream is not one string per row.
      let buffer = '';
      for (const alert of alerts) {
        buffer += copyLine(alert);
        if (buffer.length > 64 * 1024) {
          yield buffer;
          buffer = '';
        }
      }
      if (buffer) yield buffer;
    })());
    await pipeline(source, client.query(copyFrom(`COPY alerts (${COPY_COLUMNS}) FROM STDIN`)));
    const elapsedMs = msSince(start);
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM alerts');
    if (Number(rows[0]!.n) !== alerts.length) throw new Error(`COPY stored ${rows[0]!.n} of ${alerts.length}`);
    return { alertsPerSecond: (alerts.length * 1000) / elapsedMs, elapsedMs };
  } finally {
    await client.end();
  }
}

/**
 * The seed's design: SUBSCRIBE to the pairs' pub/sub channels and INSERT each alert on its own, one after another
 * (autocommit). Timed from the first message received to the last row committed.
 */
async function measureNaive(ctx: SectionContext, db: BenchDatabase, r: BenchRedis, alerts: readonly AlertMessage[]) {
  const client = new Client({ connectionString: db.url });
  await client.connect();
  const subscriber = new Redis(ctx.targets.redisUrl);
  try {
    await client.query('TRUNCATE alerts');
    const channels = [...new Set(alerts.map((a) => a.pair))].map((p) => r.keys.alertChannel(p));
    await subscriber.subscribe(...channels);
    let first: bigint | undefined;
    let inserted = 0;
    let chain = Promise.resolve();
    const done = new Promise<void>((resolve, reject) => {
      subscriber.on('message', (_channel: string, message: string) => {
        first ??= process.hrtime.bigint();
        chain = chain.then(async () => {
          const parsed = parseAlertMessage(message);
          if (!parsed.ok) return;
          const a = parsed.alert;
          await client.query(
            `INSERT INTO alerts (${COPY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING`,
            [a.id, a.botId, a.pair, a.direction, a.price, a.referencePrice, a.changePercent, a.thresholdPercent, a.observedAt, JSON.stringify(a.config)],
          );
          inserted += 1;
          if (inserted === alerts.length) resolve();
        }, reject);
      });
    });
    const publisher = r.redis;
    for (let i = 0; i < alerts.length; i += 500) {
      const p = publisher.pipeline();
      for (const a of alerts.slice(i, i + 500)) p.publish(r.keys.alertChannel(a.pair), serializeAlert(a));
      await p.exec();
    }
    await Promise.race([done, sleep(300_000).then(() => Promise.reject(new Error(`naive consumer stored ${inserted}/${alerts.length} in 5 minutes`)))]);
    const elapsedMs = msSince(first!);
    return { alertsPerSecond: (alerts.length * 1000) / elapsedMs, elapsedMs, count: alerts.length };
  } finally {
    subscriber.disconnect();
    await client.end();
  }
}

/** One round: the master (or `replicas` masters) on fresh streams and a fresh database, then COPY into the same table. */
async function measureRound(ctx: SectionContext, alerts: readonly AlertMessage[], replicas: number) {
  const db = await freshDatabase(ctx.targets, 'ingest');
  const r = await benchRedis(ctx.targets);
  try {
    const master = await measureMaster(ctx, db, r, alerts, replicas);
    const copy = await measureCopy(db, alerts);
    ctx.log(`ingest: ${replicas} master(s) ${Math.round(master.alertsPerSecond)} alerts/s, COPY ${Math.round(copy.alertsPerSecond)} alerts/s: ${(master.alertsPerSecond / copy.alertsPerSecond).toFixed(3)}x`);
    return { master, copy, ratio: master.alertsPerSecond / copy.alertsPerSecond };
  } finally {
    await r.cleanup();
    await db.drop();
  }
}

/** The round with the median ratio (rounds are paired: each master run has its own COPY run right after it). */
function medianRound<T extends { ratio: number }>(rounds: readonly T[]): T {
  return rounds[medianIndex(rounds.map((r) => r.ratio))]!;
}

export const ingestSection: Section = async (ctx) => {
  const count = ctx.options.quick ? 10_000 : 100_000;
  // One INSERT per alert is slow enough that a sample measures its rate as well as the full count would.
  const naiveCount = Math.min(count, ctx.options.quick ? 3_000 : 20_000);
  // This machine is shared: load moves between two back-to-back runs, so the ratio is taken over interleaved rounds.
  const roundCount = ctx.options.quick ? 1 : 3;
  const pairs = benchPairs(10);
  const alerts = benchAlerts(count, pairs);
  const single: Awaited<ReturnType<typeof measureRound>>[] = [];
  const scaled: Awaited<ReturnType<typeof measureRound>>[] = [];
  for (let i = 0; i < roundCount; i++) {
    single.push(await measureRound(ctx, alerts, 1));
    scaled.push(await measureRound(ctx, alerts, 2));
  }
  const one = medianRound(single);
  const two = medianRound(scaled);
  const ratios = (rounds: readonly { ratio: number }[]) => rounds.map((x) => x.ratio.toFixed(3)).join(', ');

  ctx.log(`ingest: naive pub/sub + INSERT baseline (${naiveCount} alerts)`);
  const db = await freshDatabase(ctx.targets, 'ingest');
  const r = await benchRedis(ctx.targets);
  let naive: Awaited<ReturnType<typeof measureNaive>>;
  try {
    naive = await measureNaive(ctx, db, r, alerts.slice(0, naiveCount));
  } finally {
    await r.cleanup();
    await db.drop();
  }
  return {
    figures: [
      figure({
        section: 'ingest',
        name: `master, ${count} alerts from streams, exactly once`,
        value: one.master.alertsPerSecond,
        unit: 'alerts/s',
        baseline: { name: 'raw COPY', value: one.copy.alertsPerSecond },
        target: { text: '>= 0.5x COPY', min: 0.5, ofRatio: true },
        note: `median of ${roundCount} paired rounds (ratios ${ratios(single)}); master CPU ${one.master.masterCpuMsPer1k.toFixed(1)} ms per 1k alerts`,
      }),
      figure({
        section: 'ingest',
        name: `2 master replicas (one consumer group), ${count} alerts`,
        value: two.master.alertsPerSecond,
        unit: 'alerts/s',
        baseline: { name: 'raw COPY', value: two.copy.alertsPerSecond },
        note: `median of ${roundCount} paired rounds (ratios ${ratios(scaled)}); how ingest scales past one master's core`,
      }),
      figure({
        section: 'ingest',
        name: `master vs naive SUBSCRIBE + 1 INSERT/alert (${naiveCount})`,
        value: one.master.alertsPerSecond,
        unit: 'alerts/s',
        baseline: { name: 'naive', value: naive.alertsPerSecond },
      }),
    ],
    details: { count, pairs: pairs.length, rounds: { single, scaled }, master: one.master, copy: one.copy, replicas2: two.master, naive },
  };
};
