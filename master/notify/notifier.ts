import type { StoredAlert } from '../ingest/alert-repository';
import type { OutboxChannel } from './outbox';

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

/** The kinds of receiver a notification can go to. */
export const RECEIVER_KINDS = ['email', 'webhook', 'slack', 'discord', 'telegram'] as const;
export type ReceiverKind = (typeof RECEIVER_KINDS)[number];

/** Where each kind of receiver sends: the receiver's `target` object (secrets included: never logged, never returned). */
export interface ReceiverTargets {
  readonly email: { readonly to: string };
  readonly webhook: { readonly url: string; readonly secret?: string };
  readonly slack: { readonly url: string };
  readonly discord: { readonly url: string };
  readonly telegram: { readonly bot_token: string; readonly chat_id: string };
}

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
    options: { readonly summary: boolean; readonly deliveryId: string; readonly receiverName: string },
  ): Promise<{ messageId: string }>;
  close(): Promise<void>;
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
