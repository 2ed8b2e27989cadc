import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import Redis from 'ioredis';
import { createDb, ensureDatabase, migrateLatest } from '../shared/platform/db';
import { createLogger } from '../shared/platform/logger';
import { createRedisKeys } from '../shared/contract/redis-keys';
import { insertFixtureAlerts } from '../test/helpers/fixtures';
import { createMetrics } from '../master/metrics';
import { createApiServer } from '../master/http/server';

/**
 * Measures the API at scale: fills a dedicated database with `--rows` fixture alerts (once; reused while the count
 * matches), serves the API on a local port and drives each scenario with autocannon from a worker thread.
 *
 *   node --import tsx bench/api-server.ts [--rows 1000000] [--seconds 10] [--connections 20]
 *   BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/tw_api_bench)
 */

const { values } = parseArgs({
  options: { rows: { type: 'string', default: '1000000' }, seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '20' } },
});
const ROWS = Number(values.rows);
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const DB_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tw_api_bench';

async function main(): Promise<void> {
  await ensureDatabase(DB_URL);
  const db = createDb(DB_URL, { poolMax: 10, applicationName: 'tickwatch-api-bench' });
  await migrateLatest(db);
  const [row] = (await db('alerts').count<{ count: string }[]>('* as count')) as { count: string }[];
  if (Number(row?.count) !== ROWS) {
    console.log(`filling ${ROWS} fixture alerts (30 days, 4 pairs) ...`);
    const t = Date.now();
    await db.raw('TRUNCATE alerts');
    const chunk = 250_000;
    const spanMs = 30 * 86_400_000;
    const now = Date.now();
    for (let done = 0, seed = 1; done < ROWS; done += chunk, seed++) {
      const count = Math.min(chunk, ROWS - done);
      const start = new Date(now - spanMs + (done / ROWS) * spanMs);
      const end = new Date(now - spanMs + ((done + count) / ROWS) * spanMs);
      await insertFixtureAlerts(db, { count, seed, start, end, analyze: done + count >= ROWS });
      console.log(`  ${done + count} rows (${Math.round((Date.now() - t) / 1000)} s)`);
    }
  }

  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const app = await createApiServer({
    db,
    redis,
    keys: createRedisKeys('bench-api:'),
    metrics: createMetrics(),
    logger: createLogger({ name: 'api-bench', level: 'warn' }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  // A cursor deep into a filtered listing: keyset pages must cost the same at any depth.
  let cursor: string | null = null;
  for (let page = 0; page < 200; page++) {
    const url: string = `/alerts?pair=BTC-USD&direction=up&limit=1000${cursor ? `&cursor=${cursor}` : ''}`;
    const body = (await app.inject({ url })).json() as { next_cursor: string | null };
    cursor = body.next_cursor;
  }

  const scenarios: [string, string][] = [
    // The machine's ceiling for any fastify route here (no database): puts the other figures in proportion.
    ['baseline: GET /health', '/health'],
    ['filtered page: pair + direction', '/alerts?pair=BTC-USD&direction=up&limit=50'],
    ['filtered page: pair + since + min_change', '/alerts?pair=ETH-USD&since=7d&min_change=0.1&limit=50'],
    ['two pairs by -change_percent', '/alerts?pair=ETH-USD,SOL-EUR&ordering=-change_percent&limit=50'],
    ['deep cursor page (200k rows in)', `/alerts?pair=BTC-USD&direction=up&limit=50&cursor=${cursor}`],
    ['stats window=20m', '/stats?window=20m'],
    ['stats window=7d', '/stats?window=7d'],
  ];
  const results: Record<string, unknown>[] = [];
  for (const [name, path] of scenarios) {
    const r = await autocannon({ url: `${base}${path}`, connections: CONNECTIONS, duration: SECONDS, workers: 1 });
    const line = { scenario: name, rps: Math.round(r.requests.average), p50_ms: r.latency.p50, p99_ms: r.latency.p99, requests: r.requests.total, non_2xx: r.non2xx, errors: r.errors + r.timeouts };
    console.log(JSON.stringify(line));
    results.push(line);
  }
  console.table(results);
  await app.close();
  redis.disconnect();
  await db.destroy();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
