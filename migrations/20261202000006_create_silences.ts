import type { Knex } from 'knex';

/**
 * Silences (Alertmanager's semantics: they mute notifications, never detection or history), and the alert column that
 * records which silence muted an alert.
 *
 * `matchers` is an object of equality matchers `{pair?, bot_id?, direction?}` with at least one of them: an empty
 * matcher would mute everything, which is what stopping the notifier is for, so it is refused here as well as by the API.
 * A silence covers alerts observed in `[starts_at, ends_at)`; expiring one early (DELETE /silences/{id}) keeps the window
 * it was created with and records `expired_at` (the effective end becomes the earlier of the two) and `expired_by`, so the
 * table is its own audit trail: who muted what, why, and who lifted it. Rows are never deleted.
 *
 * `alerts.silenced_by` is set once, when the alert is inserted, to the silence active at the alert's `observed_at`; the
 * notifier skips alerts where it is not null. The column is nullable with no default, so adding it rewrites nothing.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('silences', (t) => {
    t.uuid('id').primary();
    t.jsonb('matchers').notNullable();
    t.timestamp('starts_at', { useTz: true }).notNullable();
    t.timestamp('ends_at', { useTz: true }).notNullable();
    t.text('comment').notNullable();
    // A token name, `cli:<user>` or `anonymous`, never a token (as in bot_audit).
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expired_at', { useTz: true });
    t.text('expired_by');
  });
  await knex.raw(`ALTER TABLE silences ADD CONSTRAINT silences_window_check CHECK (ends_at > starts_at)`);
  await knex.raw(`ALTER TABLE silences ADD CONSTRAINT silences_comment_check CHECK (length(btrim(comment)) > 0)`);
  await knex.raw(`ALTER TABLE silences ADD CONSTRAINT silences_expired_check CHECK ((expired_at IS NULL) = (expired_by IS NULL))`);
  // An object holding only the known keys, at least one of them, each a non-empty string; direction is up or down.
  await knex.raw(`ALTER TABLE silences ADD CONSTRAINT silences_matchers_check CHECK (
    jsonb_typeof(matchers) = 'object'
    AND matchers <> '{}'::jsonb
    AND matchers - 'pair' - 'bot_id' - 'direction' = '{}'::jsonb
    AND (matchers->'pair' IS NULL OR (jsonb_typeof(matchers->'pair') = 'string' AND matchers->>'pair' <> ''))
    AND (matchers->'bot_id' IS NULL OR (jsonb_typeof(matchers->'bot_id') = 'string' AND matchers->>'bot_id' <> ''))
    AND (matchers->'direction' IS NULL OR matchers->>'direction' IN ('up', 'down'))
  )`);
  // Ingest and GET /silences?state=active|pending look for silences that have not ended yet: the expired history grows,
  // the live set stays small.
  await knex.raw('CREATE INDEX silences_ends_at_idx ON silences (ends_at)');

  await knex.schema.alterTable('alerts', (t) => {
    t.uuid('silenced_by').nullable().references('id').inTable('silences');
  });
  // GET /alerts?silenced=true lists newest first among the (few) silenced alerts; silenced=false uses the existing time
  // indexes, since most alerts are not silenced. The second index serves silenced_by=<id> and the foreign key's checks.
  await knex.raw('CREATE INDEX alerts_silenced_observed_at_idx ON alerts (observed_at DESC, id DESC) WHERE silenced_by IS NOT NULL');
  await knex.raw('CREATE INDEX alerts_silenced_by_idx ON alerts (silenced_by, observed_at DESC, id DESC) WHERE silenced_by IS NOT NULL');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS alerts_silenced_by_idx');
  await knex.raw('DROP INDEX IF EXISTS alerts_silenced_observed_at_idx');
  await knex.schema.alterTable('alerts', (t) => {
    t.dropColumn('silenced_by');
  });
  await knex.schema.dropTable('silences');
}
