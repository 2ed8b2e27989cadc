import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';
import { createDb, dropDatabase, ensureDatabase, migrateLatest, type Knex } from '../shared/platform/db';
import { createTestRedis, type TestRedis } from '../test/helpers/redis';

/** Where the bench runs: the same local services the tests use. */
export interface BenchTargets {
  /** A Postgres server URL without a database path. */
  readonly pgServer: string;
  readonly redisUrl: string;
}

export function benchTargets(env: NodeJS.ProcessEnv = process.env): BenchTargets {
  return {
    pgServer: (env.BENCH_PG_URL ?? env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, ''),
    redisUrl: env.BENCH_REDIS_URL ?? env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  };
}

export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  readonly db: Knex;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
  /** Closes the pool only (a cached database stays). */
  close(): Promise<void>;
}

/** Opens (creating and migrating if needed) the database `name`. */
export async function openDatabase(targets: BenchTargets, name: string, poolMax = 10): Promise<BenchDatabase> {
  const url = `${targets.pgServer}/${name}`;
  await ensureDatabase(url);
  const db = createDb(url, { poolMax, applicationName: 'tickwatch-bench' });
  await migrateLatest(db);
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= db.destroy());
  return {
    name,
    url,
    db,
    close,
    async drop() {
      await close();
      await dropDatabase(url);
    },
  };
}

/** A fresh, migrated database with a random name for one bench section. */
export function freshDatabase(targets: BenchTargets, label: string, poolMax = 10): Promise<BenchDatabase> {
  return openDatabase(targets, `tw_bench_${label}_${randomBytes(4).toString('hex')}`, poolMax);
}

/**
 * Name of the cached 1M-row API database: keyed by the migrations present, so a schema change builds a new one.
 * Older cached databases of this kind are dropped when a new one is built.
 */
export async function cachedDatabaseName(kind: string, rows: number): Promise<string> {
  const files = (await readdir(path.join(__dirname, '..', 'migrations'))).filter((f) => /\.(ts|js)$/.test(f)).sort();
  const version = createHash('sha256').update(files.join('\n')).digest('hex').slice(0, 10);
  return `tw_bench_cache_${kind}_${rows}_${version}`;
}

/** Drops the cached databases of `kind` other than `keep`. */
export async function dropStaleCaches(targets: BenchTargets, kind: string, keep: string): Promise<string[]> {
  const admin = new Client({ connectionString: `${targets.pgServer}/postgres` });
  await admin.connect();
  let stale: string[];
  try {
    const found = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`tw_bench_cache_${kind}_%`]);
    stale = found.rows.map((r) => r.datname).filter((n) => n !== keep);
  } finally {
    await admin.end();
  }
  for (const name of stale) await dropDatabase(`${targets.pgServer}/${name}`);
  return stale;
}

/** A section's own key prefix on the shared Redis (deleted by `cleanup()`). */
export type BenchRedis = TestRedis;

/** A random key prefix on the shared Redis, for one section. */
export function benchRedis(targets: BenchTargets): Promise<BenchRedis> {
  return createTestRedis({ url: targets.redisUrl, label: 'bench' });
}
