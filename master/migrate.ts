import { config as loadDotenv } from 'dotenv';
import { loadVariables } from '../shared/platform/config';
import { createDb, ensureDatabase, migrateLatest } from '../shared/platform/db';
import { ConfigError, describeError } from '../shared/platform/errors';
import { DATABASE_VARIABLES } from '../shared/config/master-config';

/** `npm run db:migrate`: creates the database named in DATABASE_URL if missing and applies pending migrations. */
async function main(): Promise<void> {
  loadDotenv({ quiet: true });
  let databaseUrl: string;
  try {
    databaseUrl = loadVariables(DATABASE_VARIABLES, process.env, process.argv.slice(2)).DATABASE_URL;
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.message : describeError(err)}\n`);
    process.exit(2);
  }
  const shown = new URL(databaseUrl);
  if (shown.password) shown.password = '***';
  let created: boolean;
  try {
    created = await ensureDatabase(databaseUrl);
  } catch (err) {
    const code = err instanceof ConfigError ? 2 : 1;
    process.stderr.write(`db:migrate: cannot prepare the database of DATABASE_URL=${shown.toString()}: ${describeError(err)}\n`);
    process.exit(code);
  }
  if (created) process.stdout.write(`created database ${shown.pathname.slice(1)}\n`);
  const db = createDb(databaseUrl, { poolMax: 1, applicationName: 'tickwatch-migrate' });
  try {
    const applied = await migrateLatest(db);
    process.stdout.write(applied.length ? `applied ${applied.length} migration(s):\n${applied.map((a) => `  ${a}`).join('\n')}\n` : 'database schema already up to date\n');
  } catch (err) {
    process.stderr.write(`db:migrate failed: ${describeError(err)}\n`);
    process.exitCode = 1;
  } finally {
    await db.destroy();
  }
}

void main();
