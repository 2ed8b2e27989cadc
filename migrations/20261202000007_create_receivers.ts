import type { Knex } from 'knex';

/**
 * Receivers (who gets which alerts, and how), and the outbox rows they get.
 *
 * `receivers` holds one row per receiver: its `kind` (email, webhook, slack, discord, telegram), its `target` (where
 * to send, secrets included: the API masks them and the logs never carry them), its `match` (`{pairs?, directions?,
 * min_change?}`; an empty object matches every alert), its `quiet_hours` (`{start: "HH:MM", end: "HH:MM", tz}` or null)
 * and its grouping windows. `source = 'config'` rows are the receivers the master builds from MAIL_TO / WEBHOOK_URL
 * (named `default`): every master rewrites them from its configuration at start, and the API refuses to change them.
 *
 * `notifications` keeps its rows and columns (older rows stay readable: they carry a whole ingest batch in `alert_ids`
 * and no receiver). From now on the master writes one row per (alert, receiver), with:
 * - `receiver_id` and `receiver_name` (the name is copied so a deleted receiver's deliveries still say whose they were;
 *   no foreign key, so deleting a receiver keeps its history);
 * - `delivery_id`, stamped and committed on the first attempt of the message that carries the row: the rows sharing a
 *   delivery id are one message, retried together with that same id after a failure or a crash, so a receiver that
 *   sees the id twice drops the second;
 * - `held_for`: why the row waits past its due time (`quiet_hours` or `email_cap`); such rows go out in one summary.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('receivers', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('name').notNullable().unique();
    t.text('kind').notNullable();
    t.jsonb('target').notNullable();
    t.jsonb('match').notNullable().defaultTo('{}');
    t.jsonb('quiet_hours');
    t.integer('digest_seconds').notNullable().defaultTo(0);
    t.integer('group_wait_ms').notNullable().defaultTo(0);
    t.text('source').notNullable().defaultTo('api');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('created_by').notNullable();
    t.text('updated_by').notNullable();
  });
  await knex.raw(`ALTER TABLE receivers ADD CONSTRAINT receivers_kind_check CHECK (kind IN ('email', 'webhook', 'slack', 'discord', 'telegram'))`);
  await knex.raw(`ALTER TABLE receivers ADD CONSTRAINT receivers_source_check CHECK (source IN ('api', 'config'))`);
  await knex.raw(`ALTER TABLE receivers ADD CONSTRAINT receivers_name_check CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$')`);
  await knex.raw('ALTER TABLE receivers ADD CONSTRAINT receivers_digest_seconds_check CHECK (digest_seconds BETWEEN 0 AND 86400)');
  await knex.raw('ALTER TABLE receivers ADD CONSTRAINT receivers_group_wait_ms_check CHECK (group_wait_ms BETWEEN 0 AND 3600000)');

  await knex.schema.alterTable('notifications', (t) => {
    t.uuid('receiver_id');
    t.text('receiver_name');
    t.text('delivery_id');
    t.text('held_for');
  });
  await knex.raw('ALTER TABLE notifications DROP CONSTRAINT notifications_channel_check');
  await knex.raw(`ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check CHECK (channel IN ('email', 'webhook', 'slack', 'discord', 'telegram'))`);
  await knex.raw(`ALTER TABLE notifications ADD CONSTRAINT notifications_held_for_check CHECK (held_for IN ('quiet_hours', 'email_cap'))`);
  // The delivery loop's scan and claim: pending rows per receiver and target, oldest due first.
  await knex.raw(`CREATE INDEX notifications_receiver_due_idx ON notifications (receiver_id, target, next_attempt_at) WHERE status = 'pending'`);
  // The rows of one message (a retry resends exactly them).
  await knex.raw('CREATE INDEX notifications_delivery_id_idx ON notifications (delivery_id) WHERE delivery_id IS NOT NULL');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS notifications_delivery_id_idx');
  await knex.raw('DROP INDEX IF EXISTS notifications_receiver_due_idx');
  await knex.raw('ALTER TABLE notifications DROP CONSTRAINT notifications_held_for_check');
  await knex.raw('ALTER TABLE notifications DROP CONSTRAINT notifications_channel_check');
  await knex.raw(`ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check CHECK (channel IN ('email', 'webhook'))`);
  await knex.schema.alterTable('notifications', (t) => {
    t.dropColumn('held_for');
    t.dropColumn('delivery_id');
    t.dropColumn('receiver_name');
    t.dropColumn('receiver_id');
  });
  await knex.schema.dropTable('receivers');
}
