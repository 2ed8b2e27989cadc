import type { Knex } from 'knex';

/**
 * The alert rule of each bot (worker/rules.ts): `rule` (`reference`, today's, or `window` with `window_ms`),
 * `pending_polls`, `cooldown_ms`, `max_alerts` (null: unlimited) and `expires_at` (null: never). Existing bots get the
 * defaults, which are exactly their behaviour before these columns.
 *
 * `bot_audit` gains the actions `exhausted` and `expired`: the master (actor `system`) disabled a runtime bot that used
 * up its `max_alerts` or passed its `expires_at`.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('bots', (t) => {
    t.text('rule').notNullable().defaultTo('reference');
    t.integer('window_ms');
    t.integer('pending_polls').notNullable().defaultTo(1);
    t.bigInteger('cooldown_ms').notNullable().defaultTo(0);
    t.integer('max_alerts');
    t.timestamp('expires_at', { useTz: true });
  });
  await knex.raw(`ALTER TABLE bots ADD CONSTRAINT bots_rule_check CHECK (rule IN ('reference', 'window'))`);
  await knex.raw(`ALTER TABLE bots ADD CONSTRAINT bots_window_ms_check CHECK (window_ms IS NULL OR window_ms BETWEEN 1 AND 86400000)`);
  await knex.raw(`ALTER TABLE bots ADD CONSTRAINT bots_window_needs_length_check CHECK (rule <> 'window' OR window_ms IS NOT NULL)`);
  await knex.raw(`ALTER TABLE bots ADD CONSTRAINT bots_pending_polls_check CHECK (pending_polls BETWEEN 1 AND 1000)`);
  await knex.raw(`ALTER TABLE bots ADD CONSTRAINT bots_cooldown_ms_check CHECK (cooldown_ms BETWEEN 0 AND 2592000000)`);
  await knex.raw(`ALTER TABLE bots ADD CONSTRAINT bots_max_alerts_check CHECK (max_alerts IS NULL OR max_alerts >= 1)`);
  await knex.raw('ALTER TABLE bot_audit DROP CONSTRAINT bot_audit_action_check');
  await knex.raw(
    `ALTER TABLE bot_audit ADD CONSTRAINT bot_audit_action_check CHECK (action IN ('create', 'update', 'pause', 'resume', 'delete', 'compose-sync', 'fleet-remove', 'exhausted', 'expired'))`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DELETE FROM bot_audit WHERE action IN ('exhausted', 'expired')`);
  await knex.raw('ALTER TABLE bot_audit DROP CONSTRAINT bot_audit_action_check');
  await knex.raw(`ALTER TABLE bot_audit ADD CONSTRAINT bot_audit_action_check CHECK (action IN ('create', 'update', 'pause', 'resume', 'delete', 'compose-sync', 'fleet-remove'))`);
  await knex.schema.alterTable('bots', (t) => {
    t.dropColumn('rule');
    t.dropColumn('window_ms');
    t.dropColumn('pending_polls');
    t.dropColumn('cooldown_ms');
    t.dropColumn('max_alerts');
    t.dropColumn('expires_at');
  });
}
