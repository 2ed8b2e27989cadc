import { describeError } from '../../shared/platform/errors';
import { scrubSecrets } from '../../shared/platform/secrets';
import { renderWebhook, signWebhookBody, SIGNATURE_HEADER } from './notification-format';
import { targetSecrets } from '../../shared/read-model/receiver-settings';
import { retryAfterHeaderMs } from './chat-http';
import { deliveryIdFor } from './notification-delivery';
import { DeliveryError, type ChannelSender } from './notifier';

export interface WebhookSenderOptions {
  /** How long one request may take (WEBHOOK_TIMEOUT_MS). */
  readonly timeoutMs: number;
  /** For tests: the clock stamped into `sent_at`. */
  readonly now?: () => Date;
}

/** HTTP classification: 408, 429 and 5xx are worth retrying; any other non-2xx answer will not change by itself. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** The delivery id of a webhook call (the delivery loop's, see deliveryIdFor): kept under its first name. */
export const webhookDeliveryId = deliveryIdFor;

/**
 * Webhook calls, one sender for every webhook receiver: a JSON POST of the alerts with a Slack-compatible `text` to the
 * receiver's `url`, signed with `X-Tickwatch-Signature: sha256=<hex HMAC-SHA256(raw body, secret)>` when the receiver
 * has a `secret`, carrying the message's delivery id (`X-Tickwatch-Delivery` and `delivery_id`). A 429 or 503 with
 * `Retry-After` is retried no sooner than it says.
 */
export function createWebhookSender(options: WebhookSenderOptions): ChannelSender<'webhook'> {
  const now = options.now ?? (() => new Date());
  return {
    kind: 'webhook',
    async send(target, alerts, { deliveryId }) {
      // What a receiver's answer or a network error may echo: the URL's path and query (often a token) and the signing key.
      const secrets = targetSecrets('webhook', target);
      const body = JSON.stringify(renderWebhook(alerts, deliveryId, now()));
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'tickwatch-master',
        'x-tickwatch-delivery': deliveryId,
      };
      if (target.secret) headers[SIGNATURE_HEADER.toLowerCase()] = signWebhookBody(body, target.secret);
      let response: Response;
      try {
        response = await fetch(target.url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(options.timeoutMs) });
      } catch (err) {
        const timedOut = (err as Error).name === 'TimeoutError';
        const reason = timedOut ? `no answer within ${options.timeoutMs} ms` : scrubSecrets(describeError((err as { cause?: unknown }).cause ?? err), secrets);
        throw new DeliveryError(`webhook request failed: ${reason}`, true, { cause: new Error(reason) });
      }
      // Drain the body so the connection can be reused; its content only matters for the error message.
      const answer = scrubSecrets(await response.text().catch(() => ''), secrets).slice(0, 200).replace(/\s+/g, ' ');
      if (response.status >= 200 && response.status < 300) return { messageId: deliveryId };
      const retryAfterMs = response.status === 429 || response.status === 503 ? retryAfterHeaderMs(response.headers.get('retry-after')) : undefined;
      throw new DeliveryError(`webhook answered HTTP ${response.status}${answer ? `: ${answer}` : ''}`, isTransientStatus(response.status), { retryAfterMs });
    },
    async close() {},
  };
}
