import { createHash } from 'node:crypto';
import type { Knex } from '../../shared/platform/db';
import { describeError } from '../../shared/platform/errors';
import type { Logger } from '../../shared/platform/logger';
import type { AlertRepository } from '../ingest/alert-repository';
import { backoffDelay } from '../../shared/platform/retry';
import { createLoop } from '../../shared/platform/loop';
import type { ReceiverKind, ReceiverTarget } from '../../shared/read-model/receiver-settings';
import type { ReceiverRecord, ReceiversRepository } from '../../shared/read-model/receivers-repository';
import type { MasterMetrics } from '../metrics';
import { DeliveryError, type ChannelSender } from './notifier';
import type { HeldFor, Lane, NotificationRow, Outbox } from './outbox';
import { quietPeriodEnd } from './routing';

export interface NotificationDeliveryDeps {
  readonly db: Knex;
  readonly outbox: Outbox;
  readonly repository: AlertRepository;
  readonly receivers: ReceiversRepository;
  /** One sender per kind this master can deliver; rows of other kinds wait for a master that has one. */
  readonly senders: readonly ChannelSender[];
  readonly logger: Logger;
  readonly metrics: MasterMetrics;
  /** Attempts before a notification is marked failed (NOTIFY_MAX_ATTEMPTS). */
  readonly maxAttempts: number;
  /** Most emails per address per hour (EMAIL_MAX_PER_HOUR). */
  readonly emailMaxPerHour: number;
  /** Idle poll interval: how late past its due time a row may go out. @defaultValue 1000 */
  readonly pollMs?: number;
  /** First retry delay; doubles per attempt. @defaultValue 2000 */
  readonly retryBaseMs?: number;
  /** @defaultValue 600000 (10 minutes) */
  readonly retryMaxMs?: number;
  /** The clock quiet hours are judged by (tests pin it). @defaultValue () => new Date() */
  readonly now?: () => Date;
}

export interface NotificationDelivery {
  start(): void;
  /** Sends due rows now instead of at the next poll (called after an ingest commit queued some). */
  wake(): void;
  /** Stops polling and waits for the send in flight. Idempotent (the same promise). */
  stop(): Promise<void>;
}

/** Rows (alerts) one message carries at most; the senders shorten what they list to their service's limits. */
export const ROWS_PER_MESSAGE = 1000;
/** Messages one lane may send in one pass of the loop. */
const MESSAGES_PER_LANE_PASS = 10;
/** Longest Retry-After honoured as given. */
const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * The delivery id of the message carrying these outbox rows: `notification-<row id>` for one row (one alert for one
 * receiver), `notifications-<32 hex>` (a digest of the sorted row ids) for a grouped message. It is stamped on the
 * rows before the first attempt, so every retry, by any master and after any crash, sends the same id.
 */
export function deliveryIdFor(notificationIds: readonly string[]): string {
  if (notificationIds.length === 1) return `notification-${notificationIds[0]}`;
  return `notifications-${createHash('sha256').update([...notificationIds].sort().join(',')).digest('hex').slice(0, 32)}`;
}

/** A message ready to go: its rows stamped with its delivery id (committed), and how to send it. */
interface Prepared {
  readonly receiver: ReceiverRecord;
  readonly sender: ChannelSender;
  readonly deliveryId: string;
  readonly heldFor: HeldFor | null;
}

/**
 * The outbox delivery loop, lane by lane (a lane is a receiver and one destination). Per lane:
 * 1. prepare (one transaction): take the lane's advisory lock (one master per lane), lock its pending rows
 *    `FOR UPDATE SKIP LOCKED`, and pick the next message: the rows of an earlier attempt whose retry is due (same
 *    delivery id), or else every row no attempt has carried yet once the oldest is due (the receiver's group wait /
 *    digest window). During the
 *    receiver's quiet hours, or past the hourly email cap, the rows are held until it ends instead; held rows go out as
 *    one summary. The chosen rows are stamped with their delivery id and committed before anything is sent.
 * 2. send (a second transaction, under the lock again): lock the stamped rows, send, mark them sent, or record the
 *    failure and its retry time (the receiver's Retry-After when it gave one, else exponential backoff).
 * A crash mid-send rolls back step 2 only: the rows stay pending with their delivery id, and whichever master takes the
 * lane next resends the same message with the same id (at-least-once; receivers dedupe on the id).
 */
export function createNotificationDelivery(deps: NotificationDeliveryDeps): NotificationDelivery {
  const log = deps.logger.child({ component: 'notify' });
  const pollMs = deps.pollMs ?? 1000;
  const retryBaseMs = deps.retryBaseMs ?? 2000;
  const retryMaxMs = deps.retryMaxMs ?? 600_000;
  const now = deps.now ?? (() => new Date());
  const byKind = new Map<ReceiverKind, ChannelSender>(deps.senders.map((s) => [s.kind, s]));
  const kinds = [...byKind.keys()];

  /** What a lane's sender is given: the receiver's target, with the lane's own address for an email receiver. */
  const sendTarget = (receiver: ReceiverRecord, lane: Lane): ReceiverTarget => (receiver.kind === 'email' ? { to: lane.target } : receiver.target);

  const isDue = (rows: readonly NotificationRow[]) => rows.some((r) => r.nextAttemptAt.getTime() <= Date.now() + 50);

  async function prepare(lane: Lane): Promise<Prepared | null> {
    return deps.db.transaction(async (trx) => {
      if (!(await deps.outbox.tryLockLane(trx, lane))) return null;
      const receiver = await deps.receivers.record(lane.receiverId, trx);
      if (!receiver) {
        const orphans = await deps.outbox.claim(trx, lane, { limit: ROWS_PER_MESSAGE });
        if (orphans.length === 0) return null;
        await deps.outbox.markAttemptFailed(trx, orphans.map((r) => r.id), 'the receiver was removed before delivery', null);
        log.warn({ receiverId: lane.receiverId, notifications: orphans.length }, 'notifications of a removed receiver marked failed');
        return null;
      }
      const sender = byKind.get(receiver.kind);
      if (!sender) return null;
      const rlog = log.child({ receiver: receiver.name, kind: receiver.kind, target: lane.target });

      // A message already attempted goes again as it was (the same rows under the same delivery id) once its retry is
      // due; the rows no attempt has carried yet form the next message, each on its own retry schedule.
      const stamped = await deps.outbox.firstDueDeliveryId(trx, lane);
      const rows = await deps.outbox.claim(trx, lane, stamped === null ? { limit: ROWS_PER_MESSAGE, unstamped: true } : { limit: ROWS_PER_MESSAGE, deliveryId: stamped });
      // Re-checked under the lock: another master may have sent them since dueLanes() looked.
      if (rows.length === 0 || !isDue(rows)) return null;
      const ids = rows.map((r) => r.id);

      const judgedAt = now();
      const quietEnd = receiver.quietHours ? quietPeriodEnd(receiver.quietHours, judgedAt) : null;
      if (quietEnd) {
        // As a delay from the quiet-hours clock, so the rows fall due on the database's clock when the period ends.
        const quietUntil = new Date(Date.now() + (quietEnd.getTime() - judgedAt.getTime()));
        await deps.outbox.holdBack(trx, ids, quietUntil, 'quiet_hours');
        if (!rows.every((r) => r.heldFor === 'quiet_hours')) rlog.info({ until: quietUntil.toISOString(), notifications: ids.length }, 'quiet hours: holding notifications until they end');
        deps.metrics.notifications.inc({ channel: receiver.kind, status: 'held' }, ids.length);
        return null;
      }
      if (receiver.kind === 'email') {
        const sent = await deps.outbox.sentInLastHour(trx, lane.target);
        if (sent.count >= deps.emailMaxPerHour) {
          const until = new Date((sent.oldest?.getTime() ?? Date.now()) + 3600_000);
          await deps.outbox.holdBack(trx, ids, until, 'email_cap');
          if (!rows.every((r) => r.heldFor === 'email_cap')) rlog.warn({ until: until.toISOString(), maxPerHour: deps.emailMaxPerHour }, 'hourly email limit reached; holding alerts back for one summary');
          deps.metrics.notifications.inc({ channel: receiver.kind, status: 'held' }, ids.length);
          return null;
        }
      }
      const deliveryId = stamped ?? deliveryIdFor(ids);
      if (stamped === null) await deps.outbox.stamp(trx, ids, deliveryId);
      const heldFor = rows.find((r) => r.heldFor !== null)?.heldFor ?? null;
      return { receiver, sender, deliveryId, heldFor };
    });
  }

  async function send(lane: Lane, message: Prepared): Promise<void> {
    const { receiver, sender, deliveryId, heldFor } = message;
    await deps.db.transaction(async (trx) => {
      // Another master may hold the lane now; it sends this same message (same rows, same id) itself.
      if (!(await deps.outbox.tryLockLane(trx, lane))) return;
      const rows = await deps.outbox.claim(trx, lane, { limit: ROWS_PER_MESSAGE, deliveryId });
      if (rows.length === 0 || !isDue(rows)) return;
      const ids = rows.map((r) => r.id);
      const rlog = log.child({ receiver: receiver.name, kind: receiver.kind, target: lane.target, deliveryId });
      const alerts = await deps.repository.findByIds([...new Set(rows.flatMap((r) => r.alertIds))], trx);
      const summary = heldFor !== null;
      try {
        const { messageId } = await sender.send(sendTarget(receiver, lane) as never, alerts, { summary, deliveryId, receiverName: receiver.name, heldFor: heldFor ?? undefined });
        await deps.outbox.markSent(trx, ids, messageId);
        deps.metrics.notifications.inc({ channel: receiver.kind, status: 'sent' }, ids.length);
        rlog.info({ alerts: alerts.length, messageId, summary }, `${receiver.kind} notification sent`);
      } catch (err) {
        const failure = err instanceof DeliveryError ? err : new DeliveryError(describeError(err), true, { cause: err });
        const attempts = Math.max(...rows.map((r) => r.attempts)) + 1;
        const giveUp = !failure.transient || attempts >= deps.maxAttempts;
        // The receiver's own Retry-After wins over our backoff, up to an hour (a receiver cannot park rows for days).
        const waitMs = failure.retryAfterMs !== undefined ? Math.min(failure.retryAfterMs, MAX_RETRY_AFTER_MS) : backoffDelay(attempts, retryBaseMs, retryMaxMs);
        const retryAt = giveUp ? null : new Date(Date.now() + waitMs);
        await deps.outbox.markAttemptFailed(trx, ids, failure.message, retryAt);
        // A receiver that said how long to wait gets nothing at all before then, not even the lane's other messages.
        if (retryAt && failure.retryAfterMs !== undefined) await deps.outbox.deferLane(trx, lane, retryAt);
        deps.metrics.notifications.inc({ channel: receiver.kind, status: giveUp ? 'failed' : 'retry' }, ids.length);
        if (giveUp) rlog.error({ attempts, reason: failure.message, transient: failure.transient }, `${receiver.kind} notification failed for good`);
        else rlog.warn({ attempts, reason: failure.message, retryAt: retryAt!.toISOString(), retryAfterMs: failure.retryAfterMs }, `${receiver.kind} notification failed; will retry`);
      }
    });
  }

  /** Every message of the lane that is due, a few at most per pass (so one busy lane cannot starve the others). */
  async function deliverLane(lane: Lane): Promise<void> {
    for (let i = 0; i < MESSAGES_PER_LANE_PASS && loop.active; i++) {
      const message = await prepare(lane);
      if (!message) return;
      await send(lane, message);
    }
  }

  async function pass(): Promise<void> {
    const due = await deps.outbox.dueLanes(kinds, 50);
    for (const lane of due) {
      if (!loop.active) return;
      await deliverLane(lane);
    }
  }

  const loop = createLoop({
    async round() {
      await pass();
      return pollMs;
    },
    onError(err, failures) {
      if (failures === 1) log.warn({ err: describeError(err) }, 'notification delivery failed (database unavailable?); retrying');
    },
    onRecover: () => log.info('notification delivery resumed'),
    backoff: { baseMs: 500, maxMs: 10_000 },
  });

  return {
    start() {
      if (kinds.length > 0) loop.start();
    },
    wake: () => loop.wake(),
    stop: () => loop.stop(),
  };
}
