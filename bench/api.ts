import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import Fastify, { type FastifyInstance } from 'fastify';
import { Pool } from 'pg';
import Redis from 'ioredis';
import { createDb } from '../shared/platform/db';
import { createLogger } from '../shared/platform/logger';
import { createApiServer } from '../master/http/server';
import { createMetrics } from '../master/metrics';
import type { Section, SectionContext } from './context';
import { insertFixtureAlerts } from '../test/helpers/fixtures';
import { figure } from './report';
import { medianIndex } from './stats';
import { benchRedis, cachedDatabaseName, dropStaleCaches, freshDatabase, openDatabase, type BenchDatabase } from './resources';

/** Fills `alerts` with `rows` fixture rows (the API's own fixture generator: 4 pairs over the last 7 days), by COPY. */
async function fillFixture(ctx: SectionContext, db: BenchDatabase, rows: number): Promise<void> {
  const chunk = 250_000;
  for (let done = 0, seed = 1; done < rows; done += chunk, seed++) {
    const count = Math.min(chunk, rows - done);
    // Chunks cover consecutive slices of the week so the rows stay spread in time as one run would.
    const end = new Date(Date.now() - ((rows - done - count) / rows) * 7 * 86_400_000);
    const start = new Date(Date.now() - ((rows - done) / rows) * 7 * 86_400_000);
    await insertFixtureAlerts(db.db, { count, seed, start, end, analyze: done + count >= rows });
    ctx.log(`api: fixture ${done + count}/${rows} rows`);
  }
}

/** The 1M-row database: reused when a cached one for the current migrations already holds the rows. */
async function apiDatabase(ctx: SectionContext, rows: number): Promise<{ db: BenchDatabase; reused: boolean; release(): Promise<void> }> {
  if (!ctx.options.cacheApiDb || ctx.options.quick) {
    const db = await freshDatabase(ctx.targets, 'api');
    await fillFixture(ctx, db, rows);
    return { db, reused: false, release: () => db.drop() };
  }
  const name = await cachedDatabaseName('api', rows);
  const stale = await dropStaleCaches(ctx.targets, 'api', name);
  if (stale.length) ctx.log(`api: dropped stale cached databases ${stale.join(', ')}`);
  const db = await openDatabase(ctx.targets, name);
  const [row] = (await db.db('alerts').count<{ count: string }[]>('* as count')) as { count: string }[];
  const reused = Number(row?.count) === rows;
  if (!reused) {
    await db.db.raw('TRUNCATE alerts');
    await fillFixture(ctx, db, rows);
  }
  return { db, reused, release: () => db.close() };
}

interface Load {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  readonly non2xx: number;
  readonly errors: number;
}

/** Drives `url` with autocannon from a worker thread (so the load generator does not share the server's event loop). */
async function load(url: string, seconds: number, connections = 10): Promise<Load> {
  const result = await autocannon({ url, connections, duration: seconds, workers: 1 });
  return {
    rps: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

/**
 * A bare fastify + pg handler: runs exactly the statements the real API ran for the same request (captured from its
 * knex), and sends the rows as they come. The ceiling for the API's own work (validation, mapping, cursors).
 */
async function bareServer(dbUrl: string, statements: readonly { sql: string; bindings: unknown[] }[], poolMax: number) {
  const pool = new Pool({ connectionString: dbUrl, max: poolMax });
  const app = Fastify({ logger: false });
  app.get('/alerts', async () => {
    let rows: unknown[] = [];
    for (const s of statements) rows = (await pool.query(s.sql, s.bindings)).rows;
    return { items: rows };
  });
  return { app, close: async () => (await app.close(), await pool.end()) };
}

/** The plan Postgres picks for a captured statement (shows the index serving the page). */
async function explain(dbUrl: string, statement: { sql: string; bindings: unknown[] }): Promise<string> {
  const pool = new Pool({ connectionString: dbUrl, max: 1 });
  try {
    const { rows } = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${statement.sql}`, statement.bindings);
    return rows.map((l) => l['QUERY PLAN']).join('\n');
  } finally {
    await pool.end();
  }
}

export const apiSection: Section = async (ctx) => {
  const rows = ctx.options.quick ? 100_000 : 1_000_000;
  const seconds = ctx.options.quick ? 4 : 10;
  const poolMax = 10;
  const started = Date.now();
  const { db, reused, release } = await apiDatabase(ctx, rows);
  ctx.log(`api: ${rows} rows ${reused ? 'reused from the cached database' : 'built'} (${db.name}) in ${Math.round((Date.now() - started) / 1000)} s`);
  const r = await benchRedis(ctx.targets);
  const logger = createLogger({ name: 'bench-api', level: 'warn', pretty: false });
  const apiRedis = new Redis(ctx.targets.redisUrl);
  const closers: (() => Promise<unknown>)[] = [];
  try {
    // The real API, built by its own factory over the same database, with its own pool.
    const apiDb = createDb(db.url, { poolMax, applicationName: 'tickwatch-bench-api' });
    closers.push(() => apiDb.destroy());
    const app = await createApiServer({ db: apiDb, redis: apiRedis, keys: r.keys, metrics: createMetrics({ defaultMetrics: false }), logger });
    closers.push(() => app.close());
    const base = await listen(app);

    const since = new Date(Date.now() - 3 * 24 * 3600 * 1000).toISOString();
    const path = `/alerts?pair=BTC-USD&direction=up&min_change=0.05&since=${encodeURIComponent(since)}&limit=50`;
    // Capture the SQL the API runs for this request, in pg's positional form, for the bare handler.
    const statements: { sql: string; bindings: unknown[] }[] = [];
    const capture = (q: { sql: string; bindings?: unknown[] }) => {
      const client = apiDb.client as { positionBindings(sql: string): string; prepBindings(b: unknown[]): unknown[] };
      statements.push({ sql: client.positionBindings(q.sql), bindings: client.prepBindings(q.bindings ?? []) });
    };
    apiDb.on('query', capture);
    const probe = await fetch(`${base}${path}`);
    apiDb.off('query', capture);
    const probeBody = (await probe.json()) as { items?: unknown[] };
    if (probe.status !== 200 || !Array.isArray(probeBody.items) || probeBody.items.length === 0) {
      throw new Error(`GET ${path} answered ${probe.status} with ${JSON.stringify(probeBody).slice(0, 300)}`);
    }
    const plan = await explain(db.url, statements.at(-1)!);

    const bare = await bareServer(db.url, statements, poolMax);
    closers.push(bare.close);
    const bareBase = await listen(bare.app);

    ctx.log(`api: warming up, then ${seconds} s per measurement`);
    await load(`${base}${path}`, 2);
    await load(`${bareBase}${path}`, 2);
    // Short runs, alternated, so drift in the machine's load hits both alike; the ratio is the median of the pairs'.
    const pairCount = ctx.options.quick ? 2 : 6;
    const slice = Math.max(1, Math.round(seconds / 2));
    const apiRuns: Load[] = [];
    const bareRuns: Load[] = [];
    for (let i = 0; i < pairCount; i++) {
      apiRuns.push(await load(`${base}${path}`, slice));
      bareRuns.push(await load(`${bareBase}${path}`, slice));
    }
    const pairRatios = apiRuns.map((run, i) => run.rps / bareRuns[i]!.rps);
    const medianPair = medianIndex(pairRatios);
    const summary = (runs: Load[]) => ({
      rps: runs[medianPair]!.rps,
      meanRps: runs.reduce((a, b) => a + b.rps, 0) / runs.length,
      p99Ms: Math.max(...runs.map((x) => x.p99Ms)),
      non2xx: runs.reduce((a, b) => a + b.non2xx, 0),
      errors: runs.reduce((a, b) => a + b.errors, 0),
    });
    const api = summary(apiRuns);
    const bareLoad = summary(bareRuns);
    ctx.log(`api: GET /alerts ${Math.round(api.rps)} rps vs bare ${Math.round(bareLoad.rps)} rps (median of ${pairCount} pairs; ratios ${pairRatios.map((x) => x.toFixed(2)).join(', ')}); GET /stats`);

    const statsPath = '/stats?window=20m';
    const statsProbe = await fetch(`${base}${statsPath}`);
    if (statsProbe.status !== 200) throw new Error(`GET ${statsPath} answered ${statsProbe.status}: ${(await statsProbe.text()).slice(0, 300)}`);
    await load(`${base}${statsPath}`, 2, 50);
    const stats = await load(`${base}${statsPath}`, seconds, 50);

    return {
      figures: [
        figure({
          section: 'api',
          name: `GET /alerts filtered page, ${rows} rows`,
          value: api.rps,
          unit: 'rps',
          baseline: { name: 'bare fastify+pg, same SQL', value: bareLoad.rps },
          target: { text: '>= 0.9x bare', min: 0.9, ofRatio: true },
          note: `the pair with the median ratio of ${pairCount} alternated ${slice} s pairs (${pairRatios.map((x) => x.toFixed(2)).join(', ')})`,
        }),
        figure({ section: 'api', name: 'GET /alerts p99 (10 connections)', value: api.p99Ms, unit: 'ms', baseline: { name: 'bare p99', value: bareLoad.p99Ms } }),
        figure({ section: 'api', name: 'GET /stats?window=20m', value: stats.rps, unit: 'rps', target: { text: '>= 10k rps', min: 10_000 } }),
        figure({ section: 'api', name: 'GET /stats p99 (50 connections)', value: stats.p99Ms, unit: 'ms' }),
      ],
      details: { rows, reusedCachedDb: reused, database: db.name, path, statements, plan, pairRatios, api: apiRuns, bare: bareRuns, stats, errors: { api: api.non2xx + api.errors, bare: bareLoad.non2xx + bareLoad.errors } },
    };
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    apiRedis.disconnect();
    await r.cleanup();
    await release();
  }
};
