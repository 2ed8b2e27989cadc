import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';
import { createDb, dropDatabase, ensureDatabase, migrateLatest, type Knex } from '../../shared/platform/db';

/** The server tests run against. Override with TEST_PG_URL (a URL without a database path). */
export const TEST_PG_SERVER = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';

const MIGRATIONS_DIR = path.join(__dirname, '..', '..', 'migrations');

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  readonly db: Knex;
  /** Closes the pool and drops the database; safe to call twice. */
  drop(): Promise<void>;
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

async function withAdmin<T>(work: (admin: Client) => Promise<T>): Promise<T> {
  const admin = new Client({ connectionString: `${TEST_PG_SERVER}/postgres`, application_name: 'tickwatch-test-admin' });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

/**
 * The template's name: a hash of the migration files (names and contents), so a changed or added migration gets a new
 * template and an unchanged tree reuses the one built by an earlier run.
 */
export async function templateDatabaseName(): Promise<string> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).sort();
  const hash = createHash('sha256');
  for (const file of files) hash.update(file).update('\0').update(await readFile(path.join(MIGRATIONS_DIR, file))).update('\0');
  return `tw_tpl_${hash.digest('hex').slice(0, 16)}`;
}

/**
 * Makes sure the migrated template exists, building it at most once across every jest worker and run: under an
 * advisory lock (two workers starting at once wait for one build), migrated under a temporary name and renamed only
 * when complete (an interrupted build never leaves a half-migrated template behind). The template refuses connections,
 * since CREATE DATABASE ... TEMPLATE fails while anyone is connected to it.
 */
async function ensureTemplate(): Promise<string> {
  const name = await templateDatabaseName();
  await withAdmin(async (admin) => {
    await admin.query('SELECT pg_advisory_lock(hashtext($1))', [name]);
    try {
      if ((await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount) return;
      const building = `${name}_b${randomBytes(3).toString('hex')}`;
      await admin.query(`CREATE DATABASE ${quoteIdent(building)}`);
      try {
        const db = createDb(`${TEST_PG_SERVER}/${building}`, { poolMax: 1, applicationName: 'tickwatch-test-template' });
        try {
          await migrateLatest(db);
        } finally {
          await db.destroy();
        }
        await admin.query(`ALTER DATABASE ${quoteIdent(building)} RENAME TO ${quoteIdent(name)}`);
      } catch (err) {
        await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(building)} WITH (FORCE)`);
        throw err;
      }
      await admin.query(`ALTER DATABASE ${quoteIdent(name)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
    } finally {
      await admin.query('SELECT pg_advisory_unlock(hashtext($1))', [name]);
    }
  });
  return name;
}

let template: Promise<string> | undefined;

/**
 * A fresh database for one test file, cloned from the migrated template (`CREATE DATABASE ... TEMPLATE`, a file copy,
 * instead of running every migration per file); `migrate: false` gives an empty one. `drop()` removes it (closing
 * leftover connections).
 */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `tw_test_${randomBytes(6).toString('hex')}`;
  const url = `${TEST_PG_SERVER}/${name}`;
  if (options.migrate === false) {
    await ensureDatabase(url);
  } else {
    template ??= ensureTemplate().catch((err: unknown) => {
      template = undefined;
      throw err;
    });
    const source = await template;
    await withAdmin((admin) => admin.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(source)}`));
  }
  const db = createDb(url, { poolMax: 5, applicationName: 'tickwatch-test' });
  let dropped: Promise<void> | undefined;
  return {
    url,
    name,
    db,
    drop() {
      dropped ??= (async () => {
        // The database goes even when the pool fails to close (DROP ... WITH (FORCE) ends leftover connections); the
        // pool's error is reported after.
        const closeError: unknown = await db.destroy().then(() => undefined, (err: unknown) => err ?? new Error('pool close failed'));
        await dropDatabase(url);
        if (closeError !== undefined) throw closeError;
      })();
      return dropped;
    },
  };
}
