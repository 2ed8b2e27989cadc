import type { StoredAlert } from '../ingest/alert-repository';
import type { ReceiverKind, ReceiverTargets } from '../../shared/read-model/receiver-settings';

/** A failed send. `transient` failures are retried with backoff; the others mark the notification failed at once. */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
  /** How long the receiver asked us to wait before the next attempt (HTTP 429 Retry-After and its equivalents). */
  readonly retryAfterMs: number | undefined;
  constructor(
    message: string,
    readonly transient: boolean,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

// The receiver kinds and targets are the read model's (the API and the CLI check them too); re-exported for the senders.
export { RECEIVER_KINDS, type ReceiverKind, type ReceiverTargets } from '../../shared/read-model/receiver-settings';
/**
 * Sends one message about some alerts to one receiver of its kind. Rejects with a DeliveryError (with `retryAfterMs`
 * when the service said how long to wait). `deliveryId` is the same on every retry of the same message, so a receiver
 * that sees it twice can drop the second; `summary` marks a digest of alerts that were held back (quiet hours, caps).
 */
export interface ChannelSender<K extends ReceiverKind = ReceiverKind> {
  readonly kind: K;
  send(
    target: ReceiverTargets[K],
    alerts: readonly StoredAlert[],
    options: {
      readonly summary: boolean;
      readonly deliveryId: string;
      readonly receiverName: string;
      /** Why a summary's alerts were held (for its wording); absent when `summary` is false. */
      readonly heldFor?: 'quiet_hours' | 'email_cap';
    },
  ): Promise<{ messageId: string }>;
  close(): Promise<void>;
}
