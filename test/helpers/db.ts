import { randomBytes } from 'node:crypto';
import { createDb, dropDatabase, ensureDatabase, migrateLatest, type Knex } from '../../shared/platform/db';

/** The server tests run against. Override with TEST_PG_URL (a URL without a database path). */
export const TEST_PG_SERVER = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  readonly db: Knex;
  drop(): Promise<void>;
}

/** A fresh, migrated database for one test file; `drop()` removes it (closing leftover connections). */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `tw_test_${randomBytes(6).toString('hex')}`;
  const url = `${TEST_PG_SERVER}/${name}`;
  await ensureDatabase(url);
  const db = createDb(url, { poolMax: 5, applicationName: 'tickwatch-test' });
  if (options.migrate !== false) await migrateLatest(db);
  return {
    url,
    name,
    db,
    async drop() {
      await db.destroy();
      await dropDatabase(url);
    },
  };
}
