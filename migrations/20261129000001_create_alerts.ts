import type { Knex } from 'knex';

/**
 * Alert history. Decimals are numeric(38,18): 18 decimal places (Uphold's precision) and 20 integer digits, so prices
 * up to 10^12 and the change percent of a tiny reference price both fit without overflow or rounding.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('alerts', (t) => {
    t.uuid('id').primary();
    t.text('bot_id').notNullable();
    t.text('pair').notNullable();
    t.text('direction').notNullable();
    t.decimal('price', 38, 18).notNullable();
    t.decimal('reference_price', 38, 18).notNullable();
    t.decimal('change_percent', 38, 18).notNullable();
    t.decimal('threshold_percent', 38, 18).notNullable();
    t.timestamp('observed_at', { useTz: true }).notNullable();
    t.jsonb('config').notNullable();
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE alerts ADD CONSTRAINT alerts_direction_check CHECK (direction IN ('up', 'down'))`);
  // The analysts' main access paths: newest first, overall and per pair; id breaks ties for keyset pagination.
  await knex.raw('CREATE INDEX alerts_observed_at_idx ON alerts (observed_at DESC, id DESC)');
  await knex.raw('CREATE INDEX alerts_pair_observed_at_idx ON alerts (pair, observed_at DESC, id DESC)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('alerts');
}
