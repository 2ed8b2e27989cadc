import { renderSlack } from './chat-format';
import { answerExcerpt, DEFAULT_CHAT_TIMEOUT_MS, postChatJson, retryAfterHeaderMs, urlSecretForms } from './chat-http';
import { DeliveryError, type ChannelSender } from './notifier';

export interface SlackSenderOptions {
  /** Per request. @defaultValue 5000 */
  readonly timeoutMs?: number;
}

/**
 * Slack incoming webhooks (`target.url`, whose path is the secret): one POST `{text, blocks}` per notification (see
 * renderSlack for the limits). Slack answers `ok`, or an error code as plain text (`invalid_payload`, `no_service`,
 * `channel_is_archived`, ...): 429 is transient with its `Retry-After`, 408 and 5xx transient, any other 4xx permanent
 * (the same payload to the same URL will not start working by itself). Slack gives no message id: the delivery id is it.
 */
export function createSlackSender(options: SlackSenderOptions = {}): ChannelSender<'slack'> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CHAT_TIMEOUT_MS;
  return {
    kind: 'slack',
    async send(target, alerts, { summary, heldFor, deliveryId }) {
      const answer = await postChatJson({ service: 'slack', url: target.url, body: renderSlack(alerts, { summary, heldFor }), timeoutMs, secrets: urlSecretForms(target.url) });
      if (answer.status >= 200 && answer.status < 300) return { messageId: deliveryId };
      const said = answerExcerpt(answer.text);
      const message = `slack answered HTTP ${answer.status}${said ? `: ${said}` : ''}`;
      if (answer.status === 429) throw new DeliveryError(message, true, { retryAfterMs: retryAfterHeaderMs(answer.headers.get('retry-after')) });
      throw new DeliveryError(message, answer.status === 408 || answer.status >= 500);
    },
    async close() {},
  };
}
