import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { config as loadDotenv } from 'dotenv';
import pino from 'pino';
import { from as copyFrom } from 'pg-copy-streams';
import type { PoolClient } from 'pg';
import { serializeAlert, type AlertMessage } from '../shared/contract/alert';
import { createDb, dropDatabase, ensureDatabase, migrateLatest, type Knex } from '../shared/platform/db';
import { createLogger } from '../shared/platform/logger';
import { loadMasterConfig } from '../shared/config/master-config';
import { createRedis, deleteKeysWithPrefix, duplicateRedis } from '../shared/platform/redis';
import { createRedisKeys } from '../shared/contract/redis-keys';
import { createAlertRepository, toAlertRow } from '../master/ingest/alert-repository';
import { createMaster } from '../master/app';
import { alertCopyLine, alertCopySql } from '../shared/read-model/alert-table';
import { benchAlerts } from './alerts';

/**
 * `node --import tsx bench/measure-ingest.ts [--alerts 50000] [--pairs 5] [--batch 1000] [--skip-strategies]`
 *
 * Measures, on a scratch database and Redis prefix (both removed afterwards):
 *  1. insert strategies for one batch size, each idempotent (ON CONFLICT DO NOTHING RETURNING id): knex's multi-row
 *     VALUES insert, COPY into a temporary table + INSERT ... SELECT, and the repository's own `insertMany` (`repository`:
 *     unnest arrays below 64 rows, COPY into its staging table above);
 *  2. the master end to end: streams pre-filled with N alerts, master started, time until all N rows are committed
 *     (per-alert log lines go to /dev/null at info level, so their cost is included);
 *  3. lone-alert latency: XADD of one alert -> its announcement on the stored-alerts channel (published right after commit).
 * Uses DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432) and REDIS_URL.
 */
async function main(): Promise<void> {
  loadDotenv({ quiet: true });
  const { values } = parseArgs({ options: { alerts: { type: 'string', default: '50000' }, pairs: { type: 'string', default: '5' }, batch: { type: 'string', default: '1000' }, 'skip-strategies': { type: 'boolean', default: false } } });
  const total = Number(values.alerts);
  const pairCount = Number(values.pairs);
  const batch = Number(values.batch);
  const server = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  server.pathname = `/tw_measure_${randomBytes(4).toString('hex')}`;
  const databaseUrl = server.toString();
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = `measure${randomBytes(4).toString('hex')}:`;
  const keys = createRedisKeys(prefix);
  const quiet = createLogger({ name: 'measure', level: 'warn' });
  const redis = createRedis(redisUrl, quiet, { name: 'measure' });
  const pairs = Array.from({ length: pairCount }, (_, i) => `P${i}-USD`);

  await ensureDatabase(databaseUrl);
  const db = createDb(databaseUrl, { poolMax: 4 });
  try {
    await migrateLatest(db);
    const out = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);

    // 1. Insert strategies.
    for (const method of values['skip-strategies'] ? [] : (['values', 'copy', 'repository', 'values', 'copy', 'repository'] as const)) {
      const alerts = benchAlerts(Number(process.env.MEASURE_STRATEGY_ALERTS ?? 20_000), pairs);
      const started = process.hrtime.bigint();
      for (let i = 0; i < alerts.length; i += batch) {
        const chunk = alerts.slice(i, i + batch);
        await db.transaction((trx) => (method === 'values' ? valuesInsert(trx, chunk) : method === 'copy' ? copyInsert(trx, chunk) : createAlertRepository(db).insertMany(chunk, trx)));
      }
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      out({ measure: 'insert-strategy', method, alerts: alerts.length, batch, ms: Math.round(ms), alertsPerSecond: Math.round((alerts.length / ms) * 1000) });
    }
    await db('alerts').delete();

    // 2. The master on a pre-filled stream.
    const alerts = benchAlerts(total, pairs);
    for (let i = 0; i < alerts.length; i += 2000) {
      const pipeline = redis.pipeline();
      for (const a of alerts.slice(i, i + 2000)) pipeline.xadd(keys.alertStream(a.pair), '*', 'alert', serializeAlert(a));
      await pipeline.exec();
    }
    await redis.sadd(keys.pairsSet, ...pairs);
    const config = loadMasterConfig({ DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix, API_HOST: '127.0.0.1', API_PORT: '0', INGEST_BATCH_MAX: String(batch) });
    const logger = createLogger({ name: 'master', level: 'info', destination: pino.destination({ dest: '/dev/null', sync: true }) });
    const started = Date.now();
    const master = await createMaster({ config, logger });
    const startupMs = Date.now() - started;
    for (;;) {
      const [row] = await db('alerts').count<{ n: string }[]>('* as n');
      if (Number(row?.n) >= total) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    const ms = Date.now() - started;
    out({ measure: 'master-burst', alerts: total, pairs: pairCount, batch, startupMs, totalMs: ms, alertsPerSecond: Math.round((total / ms) * 1000), alertsPerSecondAfterStartup: Math.round((total / (ms - startupMs)) * 1000) });

    // 3. Lone-alert latency.
    const sub = duplicateRedis(redis, 'measure-sub');
    await sub.subscribe(keys.storedAlertsChannel);
    const latencies: number[] = [];
    for (let i = 0; i < 30; i++) {
      const [alert] = benchAlerts(1, pairs);
      const seen = new Promise<void>((resolve) => {
        const onMessage = (_c: string, message: string) => {
          if (message.includes(alert!.id)) {
            sub.off('message', onMessage);
            resolve();
          }
        };
        sub.on('message', onMessage);
      });
      const t0 = process.hrtime.bigint();
      await redis.xadd(keys.alertStream(alert!.pair), '*', 'alert', serializeAlert(alert!));
      await seen;
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await new Promise((res) => setTimeout(res, 20));
    }
    latencies.sort((a, b) => a - b);
    out({ measure: 'lone-alert-latency', samples: latencies.length, p50Ms: round(latencies[15]!), p90Ms: round(latencies[27]!), maxMs: round(latencies[29]!) });
    sub.disconnect();
    await master.close();
  } finally {
    await db.destroy();
    await dropDatabase(databaseUrl);
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
  }
}

const round = (n: number) => Math.round(n * 100) / 100;

/** knex's multi-row VALUES insert (11 parameters per row). */
async function valuesInsert(trx: Knex.Transaction, alerts: readonly AlertMessage[]): Promise<string[]> {
  const rows: { id: string }[] = await trx('alerts').insert(alerts.map(toAlertRow)).onConflict('id').ignore().returning('id');
  return rows.map((r) => r.id);
}

/** The alternative strategy: COPY the batch into a temp table, then one INSERT ... SELECT with ON CONFLICT. */
async function copyInsert(trx: Knex.Transaction, alerts: readonly AlertMessage[]): Promise<string[]> {
  await trx.raw('CREATE TEMP TABLE IF NOT EXISTS alerts_in (LIKE alerts INCLUDING DEFAULTS) ON COMMIT DELETE ROWS');
  const client = (await trx.client.acquireConnection()) as PoolClient;
  try {
    // knex pins the transaction to one connection; acquireConnection inside it returns that same connection.
    const stream = client.query(copyFrom(alertCopySql('alerts_in')));
    const text = alerts.map((a) => alertCopyLine(toAlertRow(a))).join('');
    await new Promise<void>((resolve, reject) => {
      stream.on('finish', resolve);
      stream.on('error', reject);
      stream.end(text);
    });
  } finally {
    await trx.client.releaseConnection(client);
  }
  const result = await trx.raw<{ rows: { id: string }[] }>('INSERT INTO alerts SELECT * FROM alerts_in ON CONFLICT (id) DO NOTHING RETURNING id');
  return result.rows.map((r) => r.id);
}

main().catch((err: unknown) => {
  process.stderr.write(`measure-ingest failed: ${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
