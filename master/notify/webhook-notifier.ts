import { createHash } from 'node:crypto';
import { describeError } from '../../shared/platform/errors';
import { scrubSecrets } from '../../shared/platform/secrets';
import { renderWebhook, signWebhookBody, SIGNATURE_HEADER } from './notification-format';
import { DeliveryError, type Notifier } from './notifier';

export interface WebhookNotifierOptions {
  readonly url: string;
  /** Key of the HMAC-SHA256 signature header; without it requests go unsigned. */
  readonly secret?: string;
  readonly timeoutMs: number;
  /** For tests: the clock stamped into `sent_at`. */
  readonly now?: () => Date;
}

/** HTTP classification: 408, 429 and 5xx are worth retrying; any other non-2xx answer will not change by itself. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * The delivery id of a webhook call: `notification-<outbox row id>` for one row (the delivery loop sends one row per
 * webhook call), a digest of the row ids otherwise. Stable across retries of the same rows, so receivers dedupe on it.
 */
export function webhookDeliveryId(notificationIds: readonly string[]): string {
  if (notificationIds.length === 1) return `notification-${notificationIds[0]}`;
  return `notifications-${createHash('sha256').update([...notificationIds].sort().join(',')).digest('hex').slice(0, 32)}`;
}

/**
 * Webhook calls: a JSON POST of the alerts with a Slack-compatible `text`, signed with
 * `X-Tickwatch-Signature: sha256=<hex HMAC-SHA256(raw body, WEBHOOK_SECRET)>`.
 */
export function createWebhookNotifier(options: WebhookNotifierOptions): Notifier {
  const now = options.now ?? (() => new Date());
  // What a receiver's answer or a network error may echo: the URL's path and query (often a token) and the signing key.
  const { pathname, search } = new URL(options.url);
  const secrets = [options.url, `${pathname}${search}`, pathname.length > 1 ? pathname.slice(1) : '', search, options.secret ?? ''];
  return {
    channel: 'webhook',
    async send(_target, alerts, { notificationIds }) {
      const deliveryId = webhookDeliveryId(notificationIds);
      const body = JSON.stringify(renderWebhook(alerts, deliveryId, now()));
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'tickwatch-master',
        'x-tickwatch-delivery': deliveryId,
      };
      if (options.secret) headers[SIGNATURE_HEADER.toLowerCase()] = signWebhookBody(body, options.secret);
      let response: Response;
      try {
        response = await fetch(options.url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(options.timeoutMs) });
      } catch (err) {
        const timedOut = (err as Error).name === 'TimeoutError';
        const reason = timedOut ? `no answer within ${options.timeoutMs} ms` : scrubSecrets(describeError((err as { cause?: unknown }).cause ?? err), secrets);
        throw new DeliveryError(`webhook request failed: ${reason}`, true, { cause: err });
      }
      // Drain the body so the connection can be reused; its content only matters for the error message.
      const answer = scrubSecrets(await response.text().catch(() => ''), secrets).slice(0, 200).replace(/\s+/g, ' ');
      if (response.status >= 200 && response.status < 300) return { messageId: deliveryId };
      throw new DeliveryError(`webhook answered HTTP ${response.status}${answer ? `: ${answer}` : ''}`, isTransientStatus(response.status));
    },
    async close() {},
  };
}
