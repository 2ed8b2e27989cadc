import { readdir } from 'node:fs/promises';
import path from 'node:path';
import knex, { type Knex } from 'knex';
import { Client } from 'pg';
import { ConfigError } from './errors';
import type { Logger } from './logger';

export type { Knex };

const MIGRATIONS_DIR = path.join(__dirname, '..', '..', 'migrations');
const RUNNING_TS = __filename.endsWith('.ts');

interface MigrationFile {
  readonly file: string;
}

/**
 * Migrations from `migrations/`: the `.ts` sources under tsx and jest, the compiled `.js` in the image. Each is recorded
 * under its source name (`<name>.ts`) either way, so a database migrated with `npm run db:migrate` is current for the
 * compiled image and the other way round (knex would otherwise see different names and call the directory corrupt).
 */
const migrationSource: Knex.MigrationSource<MigrationFile> = {
  async getMigrations() {
    const extension = RUNNING_TS ? '.ts' : '.js';
    const files = await readdir(MIGRATIONS_DIR);
    return files
      .filter((f) => f.endsWith(extension) && !f.endsWith('.d.ts'))
      .sort()
      .map((file) => ({ file }));
  },
  getMigrationName: (migration) => migration.file.replace(/\.js$/, '.ts'),
  getMigration: async (migration) => (await import(path.join(MIGRATIONS_DIR, migration.file))) as Knex.Migration,
};

/** Knex migration settings shared by `npm run db:migrate`, the master's schema check and the tests. */
export const migrationConfig: Knex.MigratorConfig = {
  migrationSource,
  tableName: 'knex_migrations',
};

export interface DbOptions {
  /** @defaultValue 10 */
  readonly poolMax?: number;
  /** @defaultValue "tickwatch" */
  readonly applicationName?: string;
  readonly logger?: Logger;
  /**
   * Postgres `statement_timeout` of every connection of this pool (ms): a statement running longer is cancelled by the
   * server with SQLSTATE 57014 (see `isStatementTimeout`). @defaultValue none
   */
  readonly statementTimeoutMs?: number;
  /** Longest wait for a free connection before a `KnexTimeoutError`. @defaultValue 10000 */
  readonly acquireTimeoutMs?: number;
  /**
   * Longest a new connection may take to be established (TCP, TLS, startup) before it fails with "Connection terminated
   * due to connection timeout": a server that accepts nothing, or a network that drops packets, costs this, not minutes.
   * @defaultValue none (the operating system's TCP timeout)
   */
  readonly connectTimeoutMs?: number;
  /**
   * Client-side limit on one query (ms), "Query read timeout" past it: unlike `statementTimeoutMs`, which the server
   * enforces, it also holds when the server has stopped answering on a connection already open. @defaultValue none
   */
  readonly queryTimeoutMs?: number;
}

/**
 * A knex instance over PostgreSQL. Numeric columns come back as exact strings (pg's default).
 * `logger`: knex's own warnings (one multi-line console warning per failed connection attempt during an outage) go to
 * it at debug level instead of the console; the services log outages once themselves.
 */
export function createDb(databaseUrl: string, options: DbOptions = {}): Knex {
  const log = options.logger?.child({ component: 'knex' });
  return knex({
    client: 'pg',
    connection: {
      connectionString: databaseUrl,
      application_name: options.applicationName ?? 'tickwatch',
      // Sent in the startup packet, so it holds from the first statement of every connection, pooled or new.
      ...(options.statementTimeoutMs !== undefined && { statement_timeout: options.statementTimeoutMs }),
      ...(options.connectTimeoutMs !== undefined && { connectionTimeoutMillis: options.connectTimeoutMs }),
      ...(options.queryTimeoutMs !== undefined && { query_timeout: options.queryTimeoutMs }),
    },
    pool: { min: 0, max: options.poolMax ?? 10, idleTimeoutMillis: 30_000, ...(options.queryTimeoutMs !== undefined && { afterCreate: closeOnReadTimeout }) },
    acquireConnectionTimeout: options.acquireTimeoutMs ?? 10_000,
    migrations: migrationConfig,
    ...(log && {
      log: {
        warn: (message: unknown) => log.debug({ knex: String(message).split('\n')[0] }, 'knex warning'),
        error: (message: unknown) => log.debug({ knex: String(message).split('\n')[0] }, 'knex error'),
        deprecate: (method: unknown, alternative: unknown) => log.debug({ method, alternative }, 'knex deprecation'),
        debug: (message: unknown) => log.trace({ knex: message }, 'knex debug'),
      },
    }),
  });
}

/**
 * Closes a connection whose query got no answer within `query_timeout`: pg gives up waiting but keeps the connection,
 * and every later query on it would queue behind the answer it still owes. Closed, the pool drops it on its next
 * acquire and opens a new one.
 */
function closeOnReadTimeout(connection: Client, done: (err: Error | null, connection: Client) => void): void {
  const query = connection.query.bind(connection) as (...args: unknown[]) => unknown;
  (connection as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const callback = args[args.length - 1];
    if (typeof callback === 'function') {
      args[args.length - 1] = (err: Error | null, result: unknown) => {
        if (err?.message === 'Query read timeout') (connection as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
        (callback as (err: Error | null, result: unknown) => void)(err, result);
      };
    }
    return query(...args);
  };
  done(null, connection);
}

/** True for a statement Postgres cancelled because it ran past `statement_timeout` (SQLSTATE 57014, query_canceled). */
export function isStatementTimeout(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === '57014';
}

/**
 * True when `err` says the database could not be reached or went away (refused, reset, timed out connecting or reading,
 * shutting down, starting up, out of connection slots, no free pool connection in time): the query itself was fine.
 */
export function isDatabaseUnreachable(err: unknown): boolean {
  const e = err as { code?: string; name?: string; message?: string } | null;
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'EPIPE', '57P01', '57P02', '57P03', '53300'].includes(e?.code ?? '') ||
    e?.name === 'KnexTimeoutError' ||
    /Connection terminated|Query read timeout|not queryable/i.test(e?.message ?? '')
  );
}

/** Creates the database named in `databaseUrl` if it does not exist (connecting to the `postgres` maintenance database). */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(name)) {
    throw new ConfigError(`DATABASE_URL names database "${name}": expected 1-63 letters, digits, "_" or "-"`);
  }
  const admin = new URL(databaseUrl);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE "${name}"`);
    } catch (err) {
      // Another process created it first.
      if ((err as { code?: string }).code !== '42P04') throw err;
      return false;
    }
    return true;
  } finally {
    await client.end();
  }
}

/** Drops the database named in `databaseUrl` (if it exists), closing its other connections first. For tests and tools. */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, ''));
  const admin = new URL(databaseUrl);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** Applies every pending migration; returns the names applied. */
export async function migrateLatest(db: Knex): Promise<string[]> {
  const [, applied] = (await db.migrate.latest(migrationConfig)) as [number, string[]];
  return applied;
}

/** Thrown when the database schema is older than this code expects. */
export class SchemaBehindError extends Error {
  override readonly name = 'SchemaBehindError';
}

/** Refuses to go on when migrations are pending: the master never runs against a schema it does not know. */
export async function assertSchemaCurrent(db: Knex): Promise<void> {
  const [, pending] = (await db.migrate.list(migrationConfig)) as [unknown[], { file: string }[]];
  if (pending.length > 0) {
    const names = pending.map((p) => p.file ?? String(p)).join(', ');
    throw new SchemaBehindError(`the database schema is behind: ${pending.length} migration(s) pending (${names}). Run \`npm run db:migrate\` first.`);
  }
}
