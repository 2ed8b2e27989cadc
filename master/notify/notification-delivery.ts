import type { Knex } from '../../shared/platform/db';
import { describeError } from '../../shared/platform/errors';
import type { Logger } from '../../shared/platform/logger';
import type { AlertRepository } from '../ingest/alert-repository';
import { backoffDelay } from '../../shared/platform/retry';
import { createLoop } from '../../shared/platform/loop';
import type { MasterMetrics } from '../metrics';
import { DeliveryError, type Notifier } from './notifier';
import type { Outbox, OutboxChannel } from './outbox';

export interface NotificationDeliveryDeps {
  readonly db: Knex;
  readonly outbox: Outbox;
  readonly repository: AlertRepository;
  readonly notifiers: readonly Notifier[];
  readonly logger: Logger;
  readonly metrics: MasterMetrics;
  /** Attempts before a notification is marked failed (NOTIFY_MAX_ATTEMPTS). */
  readonly maxAttempts: number;
  /** Most emails per recipient per hour (EMAIL_MAX_PER_HOUR). */
  readonly emailMaxPerHour: number;
  /** Idle poll interval: how late past its due time a row may go out. @defaultValue 1000 */
  readonly pollMs?: number;
  /** First retry delay; doubles per attempt. @defaultValue 2000 */
  readonly retryBaseMs?: number;
  /** @defaultValue 600000 (10 minutes) */
  readonly retryMaxMs?: number;
}

export interface NotificationDelivery {
  start(): void;
  /** Sends due rows now instead of at the next poll (called after an ingest commit queued some). */
  wake(): void;
  /** Stops polling and waits for the send in flight. Idempotent (the same promise). */
  stop(): Promise<void>;
}

/** Rows merged into one email digest at most. */
const EMAIL_ROWS_PER_DIGEST = 1000;

/**
 * The outbox delivery loop. Each pass finds (channel, target) pairs with due rows and, per target, in ONE transaction:
 * takes the target's advisory lock (one master per target), locks the rows `FOR UPDATE SKIP LOCKED`, sends, and marks
 * them sent, or records the failure with its backoff. A crash mid-send rolls the claim back, so the row is sent again
 * later (at-least-once delivery; webhook receivers can dedupe on delivery_id/alert ids).
 */
export function createNotificationDelivery(deps: NotificationDeliveryDeps): NotificationDelivery {
  const log = deps.logger.child({ component: 'notify' });
  const pollMs = deps.pollMs ?? 1000;
  const retryBaseMs = deps.retryBaseMs ?? 2000;
  const retryMaxMs = deps.retryMaxMs ?? 600_000;
  const byChannel = new Map<OutboxChannel, Notifier>(deps.notifiers.map((n) => [n.channel, n]));
  const channels = [...byChannel.keys()];

  async function deliverTarget(channel: OutboxChannel, target: string): Promise<void> {
    const notifier = byChannel.get(channel)!;
    await deps.db.transaction(async (trx) => {
      if (!(await deps.outbox.tryLockTarget(trx, channel, target))) return;
      const rows =
        channel === 'email'
          ? await deps.outbox.claim(trx, channel, target, { dueOnly: false, limit: EMAIL_ROWS_PER_DIGEST })
          : await deps.outbox.claim(trx, channel, target, { dueOnly: true, limit: 1 });
      // Re-checked under the lock: another master may have sent them since dueTargets() looked.
      if (rows.length === 0 || !rows.some((r) => r.nextAttemptAt.getTime() <= Date.now() + 50)) return;
      const ids = rows.map((r) => r.id);
      const tlog = log.child({ channel, target, notifications: ids.length });

      let summary = false;
      if (channel === 'email') {
        const sent = await deps.outbox.sentInLastHour(trx, channel, target);
        if (sent.count >= deps.emailMaxPerHour) {
          const until = new Date((sent.oldest?.getTime() ?? Date.now()) + 3600_000);
          await deps.outbox.holdBack(trx, ids, until);
          if (!rows.every((r) => r.heldBack)) tlog.warn({ until: until.toISOString(), maxPerHour: deps.emailMaxPerHour }, 'hourly email limit reached; holding alerts back for one summary');
          deps.metrics.notifications.inc({ channel, status: 'held' }, ids.length);
          return;
        }
        summary = rows.some((r) => r.heldBack);
      }

      const alertIds = [...new Set(rows.flatMap((r) => r.alertIds))];
      const alerts = await deps.repository.findByIds(alertIds, trx);
      try {
        const { messageId } = await notifier.send(target, alerts, { summary, notificationIds: ids });
        await deps.outbox.markSent(trx, ids, messageId);
        deps.metrics.notifications.inc({ channel, status: 'sent' }, ids.length);
        tlog.info({ alerts: alerts.length, messageId, summary }, `${channel} notification sent`);
      } catch (err) {
        const failure = err instanceof DeliveryError ? err : new DeliveryError(describeError(err), true, { cause: err });
        const attempts = Math.max(...rows.map((r) => r.attempts)) + 1;
        const giveUp = !failure.transient || attempts >= deps.maxAttempts;
        const retryAt = giveUp ? null : new Date(Date.now() + backoffDelay(attempts, retryBaseMs, retryMaxMs));
        await deps.outbox.markAttemptFailed(trx, ids, failure.message, retryAt);
        deps.metrics.notifications.inc({ channel, status: giveUp ? 'failed' : 'retry' }, ids.length);
        if (giveUp) tlog.error({ attempts, reason: failure.message, transient: failure.transient }, `${channel} notification failed for good`);
        else tlog.warn({ attempts, reason: failure.message, retryAt: retryAt!.toISOString() }, `${channel} notification failed; will retry`);
      }
    });
  }

  async function pass(): Promise<void> {
    const due = await deps.outbox.dueTargets(channels, 50);
    for (const { channel, target } of due) {
      if (!loop.active) return;
      await deliverTarget(channel, target);
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
      if (channels.length > 0) loop.start();
    },
    wake: () => loop.wake(),
    stop: () => loop.stop(),
  };
}
