import type { Knex } from '../../shared/platform/db';
import type { ReceiverKind } from '../../shared/read-model/receiver-settings';
import { targetLabel } from '../../shared/read-model/receiver-settings';
import type { ReceiverRecord, ReceiversRepository } from '../../shared/read-model/receivers-repository';
import { receiverMatches } from './routing';

/** Why a row waits past its due time; such rows go out in one summary. */
export type HeldFor = 'quiet_hours' | 'email_cap';

/**
 * One delivery lane: a receiver and one of its destinations (the label stored in `notifications.target`: an email
 * address, a URL's scheme and host, a chat). Messages of one lane go out one at a time, in order, from one master.
 */
export interface Lane {
  readonly receiverId: string;
  readonly target: string;
}

/** A pending notification row of a lane. */
export interface NotificationRow {
  readonly id: string;
  readonly alertIds: string[];
  readonly attempts: number;
  readonly heldFor: HeldFor | null;
  readonly nextAttemptAt: Date;
  /** Stamped on the first attempt of the message carrying this row; null before it. */
  readonly deliveryId: string | null;
}

/** The destinations of a receiver: one per address for an email `to` listing several, else its one target. */
export function receiverDestinations(receiver: ReceiverRecord): string[] {
  if (receiver.kind === 'email') {
    return String((receiver.target as { to: string }).to)
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  }
  return [targetLabel(receiver.kind, receiver.target)];
}

/** How long after it is stored a row is due: the receiver's digest or group wait, whichever is longer (ms). */
export function groupDelayMs(receiver: ReceiverRecord): number {
  return Math.max(receiver.digestSeconds * 1000, receiver.groupWaitMs);
}

export interface Outbox {
  /**
   * Writes, inside the ingest transaction `trx`, one pending row per (alert, matching receiver, destination) for the
   * alerts `alertIds` that no silence muted (`alerts.silenced_by` is set by then, in the same transaction). Returns the
   * rows written.
   */
  enqueue(trx: Knex.Transaction, alertIds: readonly string[]): Promise<number>;
  /** Lanes with a due pending row, of receivers of these kinds, oldest due first. */
  dueLanes(kinds: readonly ReceiverKind[], limit: number): Promise<Lane[]>;
  /**
   * Takes the transaction-scoped advisory lock of a lane without waiting: only one master sends on a lane at a time,
   * which keeps a message's rows together and a receiver's messages in order.
   */
  tryLockLane(trx: Knex.Transaction, lane: Lane): Promise<boolean>;
  /**
   * Locks the lane's pending rows (`FOR UPDATE SKIP LOCKED`), oldest first: only those of `deliveryId` when given, only
   * those no attempt has carried yet with `unstamped`.
   */
  claim(trx: Knex.Transaction, lane: Lane, options: { limit: number; deliveryId?: string; unstamped?: boolean }): Promise<NotificationRow[]>;
  /** The delivery id of the lane's oldest already-attempted pending message whose retry is due, or null. */
  firstDueDeliveryId(trx: Knex.Transaction, lane: Lane): Promise<string | null>;
  /** Marks rows as one message with this delivery id (committed before the send, so a retry after a crash reuses it). */
  stamp(trx: Knex.Transaction, ids: readonly string[], deliveryId: string): Promise<void>;
  /** Mails sent to an address in the last hour (whichever receiver sent them), and when the oldest of them was sent. */
  sentInLastHour(trx: Knex.Transaction, address: string): Promise<{ count: number; oldest: Date | null }>;
  markSent(trx: Knex.Transaction, ids: readonly string[], messageId: string): Promise<void>;
  /** Records a failed attempt: back to pending at `retryAt`, or `failed` for good when `retryAt` is null. */
  markAttemptFailed(trx: Knex.Transaction, ids: readonly string[], error: string, retryAt: Date | null): Promise<void>;
  /** Makes no pending row of the lane due before `until` (the receiver asked us to wait: Retry-After). */
  deferLane(trx: Knex.Transaction, lane: Lane, until: Date): Promise<void>;
  /** Holds rows back until `until` (quiet hours, the hourly email cap); they then go out in one summary. */
  holdBack(trx: Knex.Transaction, ids: readonly string[], until: Date, reason: HeldFor): Promise<void>;
}

interface Row {
  id: string;
  alert_ids: string[];
  attempts: number;
  held_for: HeldFor | null;
  held_back: boolean;
  next_attempt_at: Date;
  delivery_id: string | null;
}

interface AlertRoute {
  id: string;
  pair: string;
  direction: 'up' | 'down';
  change_percent: string;
}

export function createOutbox(db: Knex, receivers: ReceiversRepository): Outbox {
  return {
    async enqueue(trx, alertIds) {
      if (alertIds.length === 0) return 0;
      const all = await receivers.records(trx);
      if (all.length === 0) return 0;
      const result = await trx.raw<{ rows: AlertRoute[] }>(
        'SELECT id, pair, direction, change_percent::text AS change_percent FROM alerts WHERE id = ANY(?::uuid[]) AND silenced_by IS NULL ORDER BY observed_at, id',
        [[...alertIds]],
      );
      const rows: Record<string, unknown>[] = [];
      for (const a of result.rows) {
        for (const r of all) {
          if (!receiverMatches(r.match, { pair: a.pair, direction: a.direction, changePercent: a.change_percent })) continue;
          for (const target of receiverDestinations(r)) {
            rows.push({
              alert_ids: [a.id],
              receiver_id: r.id,
              receiver_name: r.name,
              channel: r.kind,
              target,
              next_attempt_at: trx.raw('now() + make_interval(secs => ?)', [groupDelayMs(r) / 1000]),
            });
          }
        }
      }
      for (let i = 0; i < rows.length; i += 1000) await trx('notifications').insert(rows.slice(i, i + 1000));
      return rows.length;
    },
    async dueLanes(kinds, limit) {
      if (kinds.length === 0) return [];
      const rows: { receiver_id: string; target: string }[] = await db('notifications')
        .select('receiver_id', 'target')
        .where('status', 'pending')
        .whereNotNull('receiver_id')
        .whereIn('channel', [...kinds])
        .where('next_attempt_at', '<=', db.fn.now())
        .groupBy('receiver_id', 'target')
        .orderByRaw('min(next_attempt_at)')
        .limit(limit);
      return rows.map((r) => ({ receiverId: r.receiver_id, target: r.target }));
    },
    async tryLockLane(trx, lane) {
      const result = await trx.raw<{ rows: { locked: boolean }[] }>('SELECT pg_try_advisory_xact_lock(hashtextextended(?, 0)) AS locked', [`tickwatch:notify:${lane.receiverId}:${lane.target}`]);
      return result.rows[0]?.locked === true;
    },
    async claim(trx, lane, options) {
      const q = trx('notifications')
        .select('id', 'alert_ids', 'attempts', 'held_for', 'held_back', 'next_attempt_at', 'delivery_id')
        .where({ receiver_id: lane.receiverId, target: lane.target, status: 'pending' })
        .orderBy('id')
        .limit(options.limit)
        .forUpdate()
        .skipLocked();
      if (options.deliveryId !== undefined) q.where('delivery_id', options.deliveryId);
      if (options.unstamped) q.whereNull('delivery_id');
      const rows: Row[] = await q;
      return rows.map((r) => ({
        id: String(r.id),
        alertIds: r.alert_ids,
        attempts: r.attempts,
        // Rows from before receivers existed only knew the email cap.
        heldFor: r.held_for ?? (r.held_back ? 'email_cap' : null),
        nextAttemptAt: r.next_attempt_at,
        deliveryId: r.delivery_id,
      }));
    },
    async firstDueDeliveryId(trx, lane) {
      const row = await trx('notifications')
        .select('delivery_id')
        .where({ receiver_id: lane.receiverId, target: lane.target, status: 'pending' })
        .whereNotNull('delivery_id')
        .where('next_attempt_at', '<=', trx.fn.now())
        .orderBy('id')
        .first();
      return (row?.delivery_id as string | undefined) ?? null;
    },
    async stamp(trx, ids, deliveryId) {
      await trx('notifications').whereIn('id', [...ids]).update({ delivery_id: deliveryId });
    },
    async sentInLastHour(trx, address) {
      const [row] = await trx('notifications')
        .where({ channel: 'email', target: address, status: 'sent' })
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
    async deferLane(trx, lane, until) {
      await trx('notifications')
        .where({ receiver_id: lane.receiverId, target: lane.target, status: 'pending' })
        .where('next_attempt_at', '<', until)
        .update({ next_attempt_at: until });
    },
    async holdBack(trx, ids, until, reason) {
      await trx('notifications').whereIn('id', [...ids]).update({ held_back: true, held_for: reason, next_attempt_at: until });
    },
  };
}
