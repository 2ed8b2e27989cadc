import { renderTelegram } from './chat-format';
import { answerExcerpt, createPartLedger, DEFAULT_CHAT_TIMEOUT_MS, postChatJson, retryAfterSecondsMs, urlSecretForms, type ChatAnswer } from './chat-http';
import { DeliveryError, type ChannelSender } from './notifier';

/** The real Bot API; TELEGRAM_API_BASE points elsewhere (a local stand-in in tests). */
export const DEFAULT_TELEGRAM_API_BASE = 'https://api.telegram.org';

/** What a bot token may hold (Telegram's are `<digits>:<35 letters, digits, _ or ->`): nothing that could leave the URL path. */
const BOT_TOKEN_RE = /^[A-Za-z0-9:_-]{1,200}$/;

export interface TelegramSenderOptions {
  /** Bot API base URL, without the `/bot<token>` part. @defaultValue "https://api.telegram.org" */
  readonly apiBase?: string;
  /** Per request. @defaultValue 5000 */
  readonly timeoutMs?: number;
}

/** The Bot API's error body `{ok: false, error_code, description, parameters?}`, as one line. */
function telegramReason(answer: ChatAnswer): string {
  const body = answer.json as { description?: unknown } | undefined;
  return typeof body?.description === 'string' ? answerExcerpt(body.description) : answerExcerpt(answer.text);
}

/**
 * Telegram messages through the Bot API: POST `<apiBase>/bot<token>/sendMessage {chat_id, text, parse_mode: "HTML"}`,
 * the text escaped (renderTelegram) and split at TELEGRAM_MAX_TEXT; a retry resumes at the first part not accepted.
 * 429 is transient with `parameters.retry_after`; 408 and 5xx transient; any other 4xx permanent (400 chat not found,
 * 403 bot was blocked by the user, 401 a revoked token). The token is in the URL path: no error text, cause or log line
 * this sender produces contains it (every message is scrubbed of the token and the URL).
 */
export function createTelegramSender(options: TelegramSenderOptions = {}): ChannelSender<'telegram'> {
  const apiBase = (options.apiBase ?? DEFAULT_TELEGRAM_API_BASE).replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? DEFAULT_CHAT_TIMEOUT_MS;
  const ledger = createPartLedger();
  return {
    kind: 'telegram',
    async send(target, alerts, { summary, heldFor, deliveryId }) {
      if (!BOT_TOKEN_RE.test(target.bot_token)) {
        throw new DeliveryError('telegram bot_token is not a bot token (letters, digits, ":", "_", "-" only); not sending', false);
      }
      const url = `${apiBase}/bot${target.bot_token}/sendMessage`;
      const secrets = [target.bot_token, `bot${target.bot_token}`, encodeURIComponent(target.bot_token), ...urlSecretForms(url)];
      const parts = renderTelegram(alerts, { summary, heldFor });
      const ids = await ledger.send(`${deliveryId}:${target.chat_id}`, parts, async (text, i) => {
        const answer = await postChatJson({ service: 'telegram', url, body: { chat_id: target.chat_id, text, parse_mode: 'HTML' }, timeoutMs, secrets });
        const body = answer.json as { ok?: unknown; result?: { message_id?: unknown }; parameters?: { retry_after?: unknown } } | undefined;
        if (answer.status >= 200 && answer.status < 300 && body?.ok === true) {
          const id = body.result?.message_id;
          return typeof id === 'number' || typeof id === 'string' ? String(id) : `${deliveryId}-${i + 1}`;
        }
        const which = parts.length > 1 ? ` (message ${i + 1} of ${parts.length})` : '';
        const reason = `telegram answered HTTP ${answer.status}${which}: ${telegramReason(answer)}`;
        if (answer.status === 429) throw new DeliveryError(reason, true, { retryAfterMs: retryAfterSecondsMs(body?.parameters?.retry_after) });
        // A 2xx without ok:true is not Telegram's contract: something in between answered; worth another try.
        throw new DeliveryError(reason, answer.status === 408 || answer.status >= 500 || answer.status < 300);
      });
      return { messageId: ids.join(',') };
    },
    async close() {},
  };
}
