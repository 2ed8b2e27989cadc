import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance } from 'axios';
import { describeError } from '../shared/platform/errors';
import { selectPrice } from './detector';
import { listEntriesFor, type ListEntries } from './ticker-list';

/**
 * What one ticker request came to. The client never throws: every failure is classified, with a reason an operator
 * can read in the logs and the fleet status.
 */
export type TickerOutcome =
  /** A valid quote: both ask and bid are positive plain decimal strings. */
  | { readonly kind: 'price'; readonly ask: string; readonly bid: string; readonly fetchedAt: Date }
  /** Network error, timeout or 5xx: worth retrying with backoff. */
  | { readonly kind: 'transient'; readonly reason: string; readonly fetchedAt: Date }
  /** 429: wait at least `retryAfterMs` before the next request. */
  | { readonly kind: 'rate-limited'; readonly retryAfterMs: number; readonly reason: string; readonly fetchedAt: Date }
  /** 404 not_found: the pair does not exist (a configuration error, not a transient one). */
  | { readonly kind: 'invalid-pair'; readonly reason: string; readonly fetchedAt: Date }
  /** An answer that is not a quote: not JSON, an array, missing/zero/negative/non-numeric prices, other 4xx. */
  | { readonly kind: 'bad-answer'; readonly reason: string; readonly fetchedAt: Date };

/** What one list request (`GET ${baseUrl}/<CURRENCY>`) came to: the entries quoted in that currency, or a failure. */
export type ListOutcome =
  | { readonly kind: 'list'; readonly entries: ListEntries; readonly fetchedAt: Date }
  | Exclude<TickerOutcome, { kind: 'price' }>;

export interface TickerClient {
  fetchQuote(): Promise<TickerOutcome>;
  /**
   * `GET ${baseUrl}/<currency>`: every rate relative to `currency`. Never throws; a 404 is `invalid-pair` (the ticker has
   * no list for it), a body that is not a JSON array is `bad-answer`.
   */
  fetchList(currency: string): Promise<ListOutcome>;
  /** Closes idle keep-alive sockets. */
  close(): void;
}

export interface TickerClientDeps {
  /** e.g. https://api.uphold.com/v0/ticker (no trailing slash) */
  readonly baseUrl: string;
  readonly pair: string;
  /**
   * Deadline of one whole request, from connecting to the last byte of the body. A server that trickles its answer
   * (headers, then a byte now and then) is cut off here too, not only one that goes silent.
   */
  readonly timeoutMs: number;
  /** Tells this worker's requests apart at the ticker (and in the simulator's request log). @defaultValue "tickwatch-worker" */
  readonly userAgent?: string;
  /** Used when a 429 has no usable Retry-After. @defaultValue 30000 */
  readonly defaultRetryAfterMs?: number;
  /** Retry-After values above this are capped (a broken header must not stop a bot for a day). @defaultValue 3600000 */
  readonly maxRetryAfterMs?: number;
  readonly now?: () => Date;
  /** Largest list body accepted (Uphold's USD list is tens of KiB). @defaultValue 4000000 */
  readonly maxListBytes?: number;
}

/** Parses Retry-After: delay-seconds or an HTTP date. Returns null when absent or unusable. */
export function parseRetryAfter(header: unknown, now: Date): number | null {
  if (typeof header !== 'string' || header.trim() === '') return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - now.getTime());
}

/** GETs `${baseUrl}/${pair}` (and, for the shared list, `${baseUrl}/<CURRENCY>`) with axios and classifies the answer. */
export function createTickerClient(deps: TickerClientDeps): TickerClient {
  const now = deps.now ?? (() => new Date());
  const defaultRetryAfterMs = deps.defaultRetryAfterMs ?? 30_000;
  const maxRetryAfterMs = deps.maxRetryAfterMs ?? 3_600_000;
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const client: AxiosInstance = axios.create({
    // Idle limit; the total deadline is the AbortSignal given to each request below.
    timeout: deps.timeoutMs,
    httpAgent,
    httpsAgent,
    // The body is classified here, not by axios: keep it as text and accept every status.
    responseType: 'text',
    transformResponse: [(data: unknown) => data],
    validateStatus: () => true,
    maxRedirects: 0,
    maxContentLength: 1_000_000,
    headers: { accept: 'application/json', 'user-agent': deps.userAgent ?? 'tickwatch-worker' },
  });
  const url = `${deps.baseUrl}/${encodeURIComponent(deps.pair)}`;
  const maxListBytes = deps.maxListBytes ?? 4_000_000;

  type Answer = { ok: true; status: number; body: string; headers: Record<string, unknown> } | { ok: false; outcome: Extract<TickerOutcome, { kind: 'transient' }> };

  async function request(target: string, fetchedAt: Date, maxContentLength: number): Promise<Answer> {
    try {
      // axios' `timeout` only fires while the socket is idle: the signal bounds the request as a whole.
      const res = await client.get<string>(target, { signal: AbortSignal.timeout(deps.timeoutMs), maxContentLength });
      return { ok: true, status: res.status, body: typeof res.data === 'string' ? res.data : String(res.data), headers: res.headers as Record<string, unknown> };
    } catch (err) {
      const code = (err as { code?: string }).code;
      const timedOut = code === 'ECONNABORTED' || code === 'ETIMEDOUT' || axios.isCancel(err);
      const reason = timedOut ? `timed out after ${deps.timeoutMs} ms` : `network error: ${describeError(err)}`;
      return { ok: false, outcome: { kind: 'transient', reason, fetchedAt } };
    }
  }

  /** The failure a non-2xx status means, or null for a 2xx answer. */
  function classifyStatus(answer: Extract<Answer, { ok: true }>, fetchedAt: Date, notFound: string): Exclude<TickerOutcome, { kind: 'price' }> | null {
    const { status, body, headers } = answer;
    const errorCode = readErrorCode(body);
    if (status === 429) {
      const given = parseRetryAfter(headers['retry-after'], fetchedAt);
      const retryAfterMs = Math.min(given ?? defaultRetryAfterMs, maxRetryAfterMs);
      return {
        kind: 'rate-limited',
        retryAfterMs,
        reason: `429 ${errorCode ?? 'too_many_requests'}, Retry-After ${given === null ? `missing (waiting ${retryAfterMs} ms)` : `${retryAfterMs} ms`}`,
        fetchedAt,
      };
    }
    if (status === 404) return { kind: 'invalid-pair', reason: `404 ${errorCode ?? 'not found'}: ${notFound}`, fetchedAt };
    if (status >= 500) return { kind: 'transient', reason: `${status} ${errorCode ?? 'server error'}`, fetchedAt };
    if (status < 200 || status >= 300) return { kind: 'bad-answer', reason: `unexpected status ${status}${errorCode ? ` ${errorCode}` : ''}`, fetchedAt };
    return null;
  }

  async function fetchQuote(): Promise<TickerOutcome> {
    const fetchedAt = now();
    const answer = await request(url, fetchedAt, 1_000_000);
    if (!answer.ok) return answer.outcome;
    const failed = classifyStatus(answer, fetchedAt, `the ticker does not know pair ${deps.pair}`);
    if (failed) return failed;
    const { body } = answer;
    let data: unknown;
    try {
      data = JSON.parse(body);
    } catch {
      return { kind: 'bad-answer', reason: `body is not JSON: ${JSON.stringify(body.slice(0, 60))}`, fetchedAt };
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      return { kind: 'bad-answer', reason: `body is ${Array.isArray(data) ? 'an array' : typeof data === 'object' ? 'null' : `a ${typeof data}`}, not a ticker object`, fetchedAt };
    }
    const quote = data as { ask: unknown; bid: unknown };
    // Both sides must be valid whichever the bot watches: a half-broken quote is not trusted.
    const checked = selectPrice(quote, 'ask');
    if (!checked.ok) return { kind: 'bad-answer', reason: checked.reason, fetchedAt };
    return { kind: 'price', ask: quote.ask as string, bid: quote.bid as string, fetchedAt };
  }

  async function fetchList(currency: string): Promise<ListOutcome> {
    const fetchedAt = now();
    const answer = await request(`${deps.baseUrl}/${encodeURIComponent(currency)}`, fetchedAt, maxListBytes);
    if (!answer.ok) return answer.outcome;
    const failed = classifyStatus(answer, fetchedAt, `the ticker has no list for ${currency}`);
    if (failed) return failed;
    let data: unknown;
    try {
      data = JSON.parse(answer.body);
    } catch {
      return { kind: 'bad-answer', reason: `list body is not JSON: ${JSON.stringify(answer.body.slice(0, 60))}`, fetchedAt };
    }
    const parsed = listEntriesFor(data, currency);
    if (!parsed.ok) return { kind: 'bad-answer', reason: parsed.reason, fetchedAt };
    return { kind: 'list', entries: parsed.entries, fetchedAt };
  }

  return {
    async fetchQuote() {
      try {
        return await fetchQuote();
      } catch (err) {
        // Defensive: nothing above should throw, but the poll loop must never see an exception.
        return { kind: 'transient', reason: `unexpected client error: ${describeError(err)}`, fetchedAt: now() };
      }
    },
    async fetchList(currency) {
      try {
        return await fetchList(currency);
      } catch (err) {
        return { kind: 'transient', reason: `unexpected client error: ${describeError(err)}`, fetchedAt: now() };
      }
    },
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

function readErrorCode(body: string): string | null {
  try {
    const parsed = JSON.parse(body) as { code?: unknown };
    return typeof parsed?.code === 'string' ? parsed.code.slice(0, 60) : null;
  } catch {
    return null;
  }
}
