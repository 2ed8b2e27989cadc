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
  /** Resolves with an id for the message sent; rejects with a DeliveryError. */
  send(target: string, alerts: readonly StoredAlert[], options: { summary: boolean }): Promise<{ messageId: string }>;
  close(): Promise<void>;
}
