import { createTestDatabase, type TestDatabase } from '../../test/helpers/db';
import { assertSchemaCurrent, createDb, ensureDatabase, SchemaBehindError } from './db';

describe('database schema', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase({ migrate: false });
  });
  afterAll(() => t?.drop());

  it('refuses a database whose migrations are pending, then accepts it once migrated', async () => {
    await expect(assertSchemaCurrent(t.db)).rejects.toThrow(SchemaBehindError);
    await expect(assertSchemaCurrent(t.db)).rejects.toThrow(/npm run db:migrate/);
    await t.db.migrate.latest();
    await expect(assertSchemaCurrent(t.db)).resolves.toBeUndefined();
  });

  it('stores 18-decimal prices and 10^12 prices exactly', async () => {
    const row = {
      id: '6f1c1f4e-9a57-4c1e-8f0e-2b7d3c9a1e11',
      bot_id: 'b',
      pair: 'BTC-USD',
      direction: 'up',
      price: '999999999999.123456789012345678',
      reference_price: '0.000000012345678912',
      change_percent: '8100000000000000.000000000000000001',
      threshold_percent: '0.01',
      observed_at: new Date(),
      config: {},
    };
    await t.db('alerts').insert(row);
    const stored = await t.db('alerts').where({ id: row.id }).first();
    expect(stored.price).toBe(row.price);
    expect(stored.reference_price).toBe(row.reference_price);
    expect(stored.change_percent).toBe(row.change_percent);
  });

  it('creates a missing database once and leaves an existing one alone', async () => {
    const url = `${t.url}_x`;
    expect(await ensureDatabase(url)).toBe(true);
    expect(await ensureDatabase(url)).toBe(false);
    const db = createDb(`${url.replace(/\/[^/]+$/, '')}/postgres`);
    await db.raw(`DROP DATABASE "${t.name}_x"`);
    await db.destroy();
  });
});
