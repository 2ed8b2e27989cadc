import type { Knex } from '../../shared/platform/db';

export type OutboxChannel = 'email' | 'webhook';

/** One destination that gets a notification row for every ingest transaction that stores new alerts. */
export interface OutboxTarget {
  readonly channel: OutboxChannel;
  /** Email: the recipient. Webhook: the receiver's origin (never the full URL, which may carry a secret). */
  readonly target: string;
  /** Seconds before the row is due: the email digest window, 0 for webhooks. */
  readonly delaySeconds: number;
}

/** A claimed notification row. */
export interface NotificationRow {
  readonly id: string;
  readonly alertIds: string[];
  readonly attempts: number;
  readonly heldBack: boolean;
  readonly nextAttemptAt: Date;
}

/** The outbox rows the master writes for its configuration. */
export function outboxTargets(options: { email?: { to: readonly string[]; digestSeconds: number }; webhook?: { url: string } }): OutboxTarget[] {
  const targets: OutboxTarget[] = [];
  for (const to of options.email?.to ?? []) targets.push({ channel: 'email', target: to, delaySeconds: options.email!.digestSeconds });
  if (options.webhook) targets.push({ channel: 'webhook', target: webhookTarget(options.webhook.url), delaySeconds: 0 });
  return targets;
}

/** The part of a webhook URL that is safe to store and show. */
export function webhookTarget(url: string): string {
  return new URL(url).origin;
}

export interface Outbox {
  /** Writes one pending row per target about `alertIds`, inside the ingest transaction `trx`. */
  enqueue(trx: Knex.Transaction, alertIds: readonly string[]): Promise<number>;
  /** (channel, target) pairs with at least one due pending row, oldest first. */
  dueTargets(channels: readonly OutboxChannel[], limit: number): Promise<{ channel: OutboxChannel; target: string }[]>;
  /**
   * Takes the transaction-scoped advisory lock of one (channel, target) without waiting: only one master sends to a
   * target at a time, which keeps email digests whole and webhook calls in order.
   */
  tryLockTarget(trx: Knex.Transaction, channel: OutboxChannel, target: string): Promise<boolean>;
  /**
   * Locks pending rows of a target (`FOR UPDATE SKIP LOCKED`). `dueOnly` restricts them to rows due now; email takes every
   * pending row of the recipient so alerts that arrived within the digest window go out together.
   */
  claim(trx: Knex.Transaction, channel: OutboxChannel, target: string, options: { dueOnly: boolean; limit: number }): Promise<NotificationRow[]>;
  /** Mails sent to a recipient in the last hour, and when the oldest of them was sent. */
  sentInLastHour(trx: Knex.Transaction, channel: OutboxChannel, target: string): Promise<{ count: number; oldest: Date | null }>;
  markSent(trx: Knex.Transaction, ids: readonly string[], messageId: string): Promise<void>;
  /** Records a failed attempt: back to pending at `retryAt`, or `failed` for good when `retryAt` is null. */
  markAttemptFailed(trx: Knex.Transaction, ids: readonly string[], error: string, retryAt: Date | null): Promise<void>;
  /** Holds rows back (hourly email cap) until `until`; they then go out in one summary. */
  holdBack(trx: Knex.Transaction, ids: readonly string[], until: Date): Promise<void>;
}

interface Row {
  id: string;
  alert_ids: string[];
  attempts: number;
  held_back: boolean;
  next_attempt_at: Date;
}

export function createOutbox(db: Knex, targets: readonly OutboxTarget[]): Outbox {
  return {
    async enqueue(trx, alertIds) {
      if (targets.length === 0 || alertIds.length === 0) return 0;
      const rows = targets.map((t) => ({
        alert_ids: [...alertIds],
        channel: t.channel,
        target: t.target,
        next_attempt_at: trx.raw("now() + make_interval(secs => ?)", [t.delaySeconds]),
      }));
      await trx('notifications').insert(rows);
      return rows.length;
    },
    async dueTargets(channels, limit) {
      if (channels.length === 0) return [];
      return db('notifications')
        .select('channel', 'target')
        .where('status', 'pending')
        .whereIn('channel', [...channels])
        .where('next_attempt_at', '<=', db.fn.now())
        .groupBy('channel', 'target')
        .orderByRaw('min(next_attempt_at)')
        .limit(limit);
    },
    async tryLockTarget(trx, channel, target) {
      const result = await trx.raw<{ rows: { locked: boolean }[] }>('SELECT pg_try_advisory_xact_lock(hashtextextended(?, 0)) AS locked', [`tickwatch:notify:${channel}:${target}`]);
      return result.rows[0]?.locked === true;
    },
    async claim(trx, channel, target, options) {
      const q = trx('notifications')
        .select('id', 'alert_ids', 'attempts', 'held_back', 'next_attempt_at')
        .where({ channel, target, status: 'pending' })
        .orderBy('id')
        .limit(options.limit)
        .forUpdate()
        .skipLocked();
      if (options.dueOnly) q.where('next_attempt_at', '<=', trx.fn.now());
      const rows: Row[] = await q;
      return rows.map((r) => ({ id: String(r.id), alertIds: r.alert_ids, attempts: r.attempts, heldBack: r.held_back, nextAttemptAt: r.next_attempt_at }));
    },
    async sentInLastHour(trx, channel, target) {
      const [row] = await trx('notifications')
        .where({ channel, target, status: 'sent' })
        .where('sent_at', '>', trx.raw("now() - interval '1 hour'"))
        .select(trx.raw('count(DISTINCT message_id)::int AS count'), trx.raw('min(sent_at) AS oldest'));
      return { count: Number(row?.count ?? 0), oldest: row?.oldest ?? null };
    },
    async markSent(trx, ids, messageId) {
      await trx('notifications')
        .whereIn('id', [...ids])
        .update({ status: 'sent', sent_at: trx.fn.now(), message_id: messageId, attempts: trx.raw('attempts + 1'), last_error: null });
    },
    async markAttemptFailed(trx, ids, error, retryAt) {
      await trx('notifications')
        .whereIn('id', [...ids])
        .update({ status: retryAt ? 'pending' : 'failed', attempts: trx.raw('attempts + 1'), last_error: error.slice(0, 1000), next_attempt_at: retryAt ?? trx.fn.now() });
    },
    async holdBack(trx, ids, until) {
      await trx('notifications').whereIn('id', [...ids]).update({ held_back: true, next_attempt_at: until });
    },
  };
}
