import type { StoredAlert } from '../ingest/alert-repository';
import type { OutboxChannel } from './outbox';

/** A failed send. `transient` failures are retried with backoff; the others mark the notification failed at once. */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
  constructor(
    message: string,
    readonly transient: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Sends one notification (one email digest, one webhook call) about some alerts. */
export interface Notifier {
  readonly channel: OutboxChannel;
  /**
   * Resolves with an id for the message sent; rejects with a DeliveryError. `notificationIds` are the outbox rows this
   * message delivers: the same on every retry of them, so a receiver can drop a delivery it already processed.
   */
  send(target: string, alerts: readonly StoredAlert[], options: { summary: boolean; notificationIds: readonly string[] }): Promise<{ messageId: string }>;
  close(): Promise<void>;
}
