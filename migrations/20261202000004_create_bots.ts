import type { Knex } from 'knex';

/**
 * Runtime bots as desired state, and the audit trail of every change to them.
 *
 * `bots` is the source of truth for what is watched: the master mirrors its `source = 'api'` rows into Redis for the
 * generic workers; `source = 'compose'` rows are the bots docker-compose declares (workers started with PAIR), recorded
 * from their heartbeats so the API can show them and refuse to change them. `version` starts at 1 and grows by one on
 * every change (workers and alerts carry it). `threshold_percent` is the exact decimal text the worker's config schema
 * normalised ("0.01"), never a float.
 *
 * `bot_audit` gets one row per change, written in the same transaction as the change, with the row before and after
 * (null before a create, null after a delete; a `fleet-remove` keeps the removed heartbeat as `before`). The actor is a token name, `cli:<user>` or `anonymous`, never a token.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('bots', (t) => {
    t.text('bot_id').primary();
    t.text('pair').notNullable();
    t.integer('interval_ms').notNullable();
    t.text('threshold_percent').notNullable();
    t.text('price_field').notNullable();
    t.text('reference_mode').notNullable();
    t.boolean('enabled').notNullable().defaultTo(true);
    t.text('source').notNullable().defaultTo('api');
    // The compose service that declares a compose bot; null for runtime bots.
    t.text('service');
    t.bigInteger('version').notNullable().defaultTo(1);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('created_by').notNullable();
    t.text('updated_by').notNullable();
  });
  await knex.raw(`ALTER TABLE bots ADD CONSTRAINT bots_source_check CHECK (source IN ('api', 'compose'))`);
  await knex.raw(`ALTER TABLE bots ADD CONSTRAINT bots_price_field_check CHECK (price_field IN ('ask', 'bid', 'mid'))`);
  await knex.raw(`ALTER TABLE bots ADD CONSTRAINT bots_reference_mode_check CHECK (reference_mode IN ('first', 'last-alert'))`);
  await knex.raw(`ALTER TABLE bots ADD CONSTRAINT bots_version_check CHECK (version >= 1)`);
  await knex.raw(`ALTER TABLE bots ADD CONSTRAINT bots_threshold_check CHECK (threshold_percent ~ '^[0-9]+([.][0-9]+){0,1}$')`);

  await knex.schema.createTable('bot_audit', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('actor').notNullable();
    t.text('action').notNullable();
    // Not a foreign key: the audit outlives a deleted bot.
    t.text('bot_id').notNullable();
    t.jsonb('before');
    t.jsonb('after');
  });
  await knex.raw(`ALTER TABLE bot_audit ADD CONSTRAINT bot_audit_action_check CHECK (action IN ('create', 'update', 'pause', 'resume', 'delete', 'compose-sync', 'fleet-remove'))`);
  // GET /audit pages newest first by id (keyset), overall and per bot.
  await knex.raw('CREATE INDEX bot_audit_bot_id_idx ON bot_audit (bot_id, id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('bot_audit');
  await knex.schema.dropTable('bots');
}
