import { createHash } from 'node:crypto';
import { describeError } from '../../shared/platform/errors';
import { scrubSecrets } from '../../shared/platform/secrets';
import { DeliveryError } from './notifier';

/** How long a chat service may take to answer one request. @defaultValue 5000 */
export const DEFAULT_CHAT_TIMEOUT_MS = 5000;

/** A chat service's answer, its body already scrubbed of the secrets the request carried. */
export interface ChatAnswer {
  readonly status: number;
  readonly headers: Headers;
  /** The body (at most 64 KiB kept), secrets replaced by `***`. */
  readonly text: string;
  /** The body parsed as JSON, or undefined. */
  readonly json: unknown;
}

/**
 * The forms a secret-bearing URL can be echoed in: the whole URL, its path and query, and every long path segment (a
 * Slack or Discord webhook token, a Telegram bot token). Error texts are scrubbed of all of them.
 */
export function urlSecretForms(url: string, extra: readonly string[] = []): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [url, ...extra];
  }
  const { pathname, search } = parsed;
  const segments = pathname.split('/').filter((s) => s.length >= 16);
  const decoded = segments.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  return [url, `${pathname}${search}`, pathname.slice(1), search, ...segments, ...decoded, ...extra].filter((s) => s.length > 1);
}

/**
 * POSTs `body` as JSON. A URL that does not parse is a permanent DeliveryError; a network failure or a timeout is a
 * transient one whose message names the service and never the URL (its path carries the token). Any HTTP answer is
 * returned for the caller to classify. The DeliveryError's cause is a scrubbed copy, since whoever logs the error may
 * log its cause too.
 */
export async function postChatJson(request: { service: string; url: string; body: unknown; timeoutMs: number; secrets: readonly string[] }): Promise<ChatAnswer> {
  if (!URL.canParse(request.url)) throw new DeliveryError(`${request.service} URL is not a valid URL; not sending`, false);
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'tickwatch-master' },
      body: JSON.stringify(request.body),
      redirect: 'manual',
      signal: AbortSignal.timeout(request.timeoutMs),
    });
  } catch (err) {
    const timedOut = (err as Error).name === 'TimeoutError';
    const reason = timedOut ? `no answer within ${request.timeoutMs} ms` : scrubSecrets(describeError((err as { cause?: unknown }).cause ?? err), request.secrets);
    throw new DeliveryError(`${request.service} request failed: ${reason}`, true, { cause: new Error(reason) });
  }
  const raw = await response.text().catch(() => '');
  const text = scrubSecrets(raw.slice(0, 65_536), request.secrets);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** A short single-line excerpt of a service's answer for an error message. */
export function answerExcerpt(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}

/**
 * `Retry-After` in milliseconds: delay-seconds (RFC 9110; fractions accepted) or an HTTP date. Undefined when absent
 * or unreadable, so the caller falls back to its own backoff.
 */
export function retryAfterHeaderMs(value: string | null, now: () => number = Date.now): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return secondsToMs(Number(text));
  // An HTTP date names its month ("Wed, 21 Oct 2026 07:28:00 GMT"); Date.parse alone would read "-5" as a year.
  const at = /[A-Za-z]{3}/.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now());
}

/** A JSON `retry_after` in seconds (Discord's fractional one, Telegram's integer one) in milliseconds, or undefined. */
export function retryAfterSecondsMs(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? secondsToMs(value) : undefined;
}

/** Whole milliseconds, rounded up, without float noise (1.1 s is 1100 ms, not 1101: 1.1 * 1000 is 1100.0000000000002). */
function secondsToMs(seconds: number): number {
  return Math.ceil(Math.round(seconds * 1_000_000) / 1000);
}

/**
 * Sends a notification that was split into parts, remembering per delivery id which parts the service accepted, so a
 * retry of the same delivery (after a 429 on part 3, say) starts at the first part not yet sent, and a retry after
 * every part went out (the outbox could not record it) sends nothing again. The memory is this process's: after a
 * restart the parts go out again (at-least-once, like every channel).
 */
export interface PartLedger {
  /** Sends the parts not yet accepted for `deliveryId`, in order; resolves with every part's message id. */
  send<T>(deliveryId: string, parts: readonly T[], sendOne: (part: T, index: number) => Promise<string>): Promise<string[]>;
}

/** Deliveries remembered at most (oldest forgotten first). @defaultValue 1000 */
export function createPartLedger(maxEntries = 1000): PartLedger {
  const sent = new Map<string, { fingerprint: string; ids: string[] }>();
  return {
    async send(deliveryId, parts, sendOne) {
      const fingerprint = createHash('sha256').update(JSON.stringify(parts)).digest('base64');
      let entry = sent.get(deliveryId);
      // Different parts under the same id (other alerts, another render): nothing of it was sent yet.
      if (!entry || entry.fingerprint !== fingerprint) entry = { fingerprint, ids: [] };
      sent.delete(deliveryId);
      sent.set(deliveryId, entry);
      while (sent.size > maxEntries) sent.delete(sent.keys().next().value as string);
      for (let i = entry.ids.length; i < parts.length; i++) entry.ids.push(await sendOne(parts[i] as (typeof parts)[number], i));
      return [...entry.ids];
    },
  };
}
