import { renderDiscord } from './chat-format';
import {
  answerExcerpt,
  createPartLedger,
  DEFAULT_CHAT_TIMEOUT_MS,
  postChatJson,
  retryAfterHeaderMs,
  retryAfterSecondsMs,
  urlSecretForms,
  type ChatAnswer,
} from './chat-http';
import { DeliveryError, type ChannelSender } from './notifier';

export interface DiscordSenderOptions {
  /** Per request. @defaultValue 5000 */
  readonly timeoutMs?: number;
}

/** Discord's error JSON (`{message, code, errors?}`) or its 429 body (`{message, retry_after, global}`), as one line. */
function discordReason(answer: ChatAnswer): string {
  const body = answer.json as { message?: unknown; code?: unknown; errors?: unknown } | undefined;
  if (body && typeof body.message === 'string') {
    const code = typeof body.code === 'number' ? ` (code ${body.code})` : '';
    const errors = body.errors === undefined ? '' : `: ${answerExcerpt(JSON.stringify(body.errors))}`;
    return `${body.message}${code}${errors}`;
  }
  return answerExcerpt(answer.text);
}

/**
 * Discord webhooks (`target.url`, whose path carries the webhook token): POST `{content, embeds}` with `?wait=true`,
 * so Discord answers the message (its id becomes the message id). A notification too big for one message goes as
 * several (renderDiscord); a retry resumes at the first part Discord did not accept. 429 is transient with the body's
 * `retry_after` (seconds, fractional; else the Retry-After header), 408 and 5xx transient, any other 4xx permanent
 * (400 Invalid Form Body, 401 Invalid Webhook Token, 404 Unknown Webhook: sending again will not change them).
 */
export function createDiscordSender(options: DiscordSenderOptions = {}): ChannelSender<'discord'> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CHAT_TIMEOUT_MS;
  const ledger = createPartLedger();
  return {
    kind: 'discord',
    async send(target, alerts, { summary, heldFor, deliveryId }) {
      const secrets = urlSecretForms(target.url);
      let url: URL;
      try {
        url = new URL(target.url);
      } catch {
        throw new DeliveryError('discord webhook URL is not a valid URL', false);
      }
      url.searchParams.set('wait', 'true');
      const parts = renderDiscord(alerts, { summary, heldFor });
      // Keyed by target too: the same delivery id for another webhook has sent nothing there.
      const ids = await ledger.send(`${deliveryId} ${target.url}`, parts, async (message, i) => {
        const answer = await postChatJson({ service: 'discord', url: url.toString(), body: message, timeoutMs, secrets: [...secrets, ...urlSecretForms(url.toString())] });
        if (answer.status >= 200 && answer.status < 300) {
          const id = (answer.json as { id?: unknown } | undefined)?.id;
          return typeof id === 'string' ? id : `${deliveryId}-${i + 1}`;
        }
        const which = parts.length > 1 ? ` (message ${i + 1} of ${parts.length})` : '';
        const reason = `discord answered HTTP ${answer.status}${which}: ${discordReason(answer)}`;
        if (answer.status === 429) {
          const retryAfterMs = retryAfterSecondsMs((answer.json as { retry_after?: unknown } | undefined)?.retry_after) ?? retryAfterHeaderMs(answer.headers.get('retry-after'));
          throw new DeliveryError(reason, true, { retryAfterMs });
        }
        throw new DeliveryError(reason, answer.status === 408 || answer.status >= 500);
      });
      return { messageId: ids.join(',') };
    },
    async close() {},
  };
}
