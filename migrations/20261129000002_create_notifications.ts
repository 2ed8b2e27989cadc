import type { Knex } from 'knex';

/**
 * The notification outbox. The master writes one row per (channel, target) for every ingest transaction that stored new
 * alerts, in that same transaction, so a committed alert always has its notifications and a rolled-back one never does.
 * A delivery loop sends due rows (`status = 'pending' AND next_attempt_at <= now()`), claiming them with
 * `FOR UPDATE SKIP LOCKED` so that with several masters each row is sent by exactly one of them.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('notifications', (t) => {
    t.bigIncrements('id').primary();
    // The alerts this notification is about (one ingest batch). Not a foreign key: arrays cannot be one, and alerts are
    // never deleted by the master.
    t.specificType('alert_ids', 'uuid[]').notNullable();
    t.text('channel').notNullable();
    // Email: the recipient address. Webhook: the receiver's origin (the full URL may carry a secret and stays in config).
    t.text('target').notNullable();
    t.text('status').notNullable().defaultTo('pending');
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('last_error');
    // True once the hourly email cap held this row back; it then goes out in the summary mail.
    t.boolean('held_back').notNullable().defaultTo(false);
    // Id of the mail or webhook delivery that carried this row (several rows share one digest).
    t.text('message_id');
    t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('sent_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check CHECK (channel IN ('email', 'webhook'))`);
  await knex.raw(`ALTER TABLE notifications ADD CONSTRAINT notifications_status_check CHECK (status IN ('pending', 'sent', 'failed'))`);
  await knex.raw(`ALTER TABLE notifications ADD CONSTRAINT notifications_alert_ids_check CHECK (cardinality(alert_ids) > 0)`);
  // The delivery loop's scan: due pending rows, per channel and target.
  await knex.raw(`CREATE INDEX notifications_due_idx ON notifications (channel, target, next_attempt_at) WHERE status = 'pending'`);
  // The hourly email cap counts recent sends per recipient.
  await knex.raw(`CREATE INDEX notifications_sent_idx ON notifications (channel, target, sent_at) WHERE status = 'sent'`);
  // "Which notifications carried alert X?" (API, operators, tests).
  await knex.raw('CREATE INDEX notifications_alert_ids_idx ON notifications USING gin (alert_ids)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('notifications');
}
