import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './wait';

/**
 * Local stand-ins for Slack incoming webhooks, Discord webhooks and the Telegram Bot API: real HTTP servers that check
 * what the real services check (paths and tokens, JSON bodies, the documented size limits, Telegram's HTML) and answer
 * the way they answer, successes and errors alike. Tests can queue answers (a 429 with its retry hint, an error) that
 * are served to the next requests instead. Every request is recorded with the answer it got.
 */

/** One answer, as it goes on the wire. */
export interface ChatAnswer {
  readonly status: number;
  readonly headers?: Record<string, string>;
  /** A string goes as text/plain, anything else as JSON; undefined: no body (204). */
  readonly body?: unknown;
  /** Wait this long before answering (to provoke a client timeout). */
  readonly delayMs?: number;
}

export interface ChatRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly json: unknown;
  /** The status this server answered. */
  readonly status: number;
  /** What it answered (the JSON or text body). */
  readonly answer: unknown;
}

export interface ChatServer {
  /** Every request, in arrival order. */
  readonly requests: ChatRequest[];
  /** Serves these answers to the next requests, in order, instead of the contract's own answer (null: the contract's own). */
  queue(...answers: (ChatAnswer | null)[]): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<ChatRequest[]>;
  stop(): Promise<void>;
}

async function startRecordingServer(handle: (request: { method: string; path: string; body: string; json: unknown }) => ChatAnswer): Promise<ChatServer & { port: number }> {
  const requests: ChatRequest[] = [];
  const queued: (ChatAnswer | null)[] = [];
  const delayed = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const request = { method: req.method ?? '', path: req.url ?? '', body, json };
      const answer = queued.shift() ?? handle(request);
      const reply = () => {
        requests.push({ ...request, headers: req.headers, status: answer.status, answer: answer.body });
        const headers: Record<string, string> = { ...answer.headers };
        if (answer.body === undefined) {
          res.writeHead(answer.status, headers).end();
          return;
        }
        const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
        headers['content-type'] ??= typeof answer.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
        res.writeHead(answer.status, headers).end(text);
      };
      if (answer.delayMs) {
        const timer = setTimeout(() => {
          delayed.delete(timer);
          reply();
        }, answer.delayMs);
        delayed.add(timer);
      } else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    requests,
    queue: (...answers) => void queued.push(...answers),
    waitForRequests(count, timeoutMs = 10_000) {
      return waitFor(`${count} request(s)`, () => (requests.length >= count ? requests.slice() : null), { timeoutMs });
    },
    async stop() {
      for (const timer of delayed) clearTimeout(timer);
      delayed.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const token = (bytes: number) => randomBytes(bytes).toString('base64url');
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------------------------- Slack

export const SLACK_LIMITS = { blocks: 50, sectionText: 3000 } as const;

export interface SlackServer extends ChatServer {
  /** http://127.0.0.1:<port>/services/T.../B.../<token>: the incoming webhook's URL (its path is the secret). */
  readonly url: string;
  readonly token: string;
  /** The bodies Slack accepted ("ok"), in order. */
  readonly messages: { text?: string; blocks?: unknown[] }[];
}

/** Slack's answer to a rate-limited webhook: 429 with `Retry-After` in seconds. */
export const slackRateLimited = (seconds: number): ChatAnswer => ({ status: 429, headers: { 'retry-after': String(seconds) }, body: 'rate_limited' });
/** One of Slack's error answers: a status and its error code as the text body (`invalid_payload`, `no_service`, ...). */
export const slackError = (status: number, code: string): ChatAnswer => ({ status, body: code });

function slackBlocksProblem(blocks: unknown): string | null {
  if (!Array.isArray(blocks)) return 'invalid_blocks_format';
  if (blocks.length > SLACK_LIMITS.blocks) return 'invalid_blocks';
  for (const block of blocks) {
    if (!isObject(block) || typeof block.type !== 'string') return 'invalid_blocks';
    if (block.type === 'section') {
      const text = block.text;
      if (!isObject(text) || (text.type !== 'mrkdwn' && text.type !== 'plain_text') || typeof text.text !== 'string') return 'invalid_blocks';
      if (text.text.length === 0 || text.text.length > SLACK_LIMITS.sectionText) return 'invalid_blocks';
    } else if (block.type === 'context') {
      if (!Array.isArray(block.elements) || block.elements.length === 0 || block.elements.length > 10) return 'invalid_blocks';
    } else if (!['header', 'divider', 'image', 'actions', 'rich_text'].includes(block.type)) {
      return 'invalid_blocks';
    }
  }
  return null;
}

/** A Slack incoming webhook: JSON with `text` or `blocks` (within Slack's block limits), answered `ok`. */
export async function startSlackServer(): Promise<SlackServer> {
  const secret = token(18);
  const hookPath = `/services/T0LOCAL01/B0LOCAL01/${secret}`;
  const messages: SlackServer['messages'] = [];
  const base = await startRecordingServer(({ method, path, json }) => {
    if (method !== 'POST' || path !== hookPath) return slackError(404, 'no_service');
    if (!isObject(json)) return slackError(400, 'invalid_payload');
    const hasText = typeof json.text === 'string' && json.text.length > 0;
    const hasBlocks = Array.isArray(json.blocks) && json.blocks.length > 0;
    if (!hasText && !hasBlocks) return slackError(400, 'no_text');
    if (json.blocks !== undefined) {
      const problem = slackBlocksProblem(json.blocks);
      if (problem) return slackError(400, problem);
    }
    messages.push(json as SlackServer['messages'][number]);
    return { status: 200, body: 'ok' };
  });
  return { ...base, url: `http://127.0.0.1:${base.port}${hookPath}`, token: secret, messages };
}

// -------------------------------------------------------------------------------------------------------------- Discord

export const DISCORD_LIMITS = { content: 2000, embeds: 10, title: 256, description: 4096, total: 6000 } as const;

export interface DiscordServer extends ChatServer {
  /** http://127.0.0.1:<port>/api/webhooks/<id>/<token> */
  readonly url: string;
  readonly token: string;
  /** The messages Discord accepted, with the id it gave each. */
  readonly messages: { id: string; content?: string; embeds?: Record<string, unknown>[]; allowed_mentions?: unknown }[];
}

/** Discord's rate-limit answer: 429, JSON `retry_after` in (fractional) seconds, and a whole-second Retry-After header. */
export const discordRateLimited = (seconds: number): ChatAnswer => ({
  status: 429,
  headers: { 'retry-after': String(Math.ceil(seconds)), 'x-ratelimit-scope': 'user' },
  body: { message: 'You are being rate limited.', retry_after: seconds, global: false },
});

const formError = (errors: Record<string, unknown>): ChatAnswer => ({ status: 400, body: { code: 50035, errors, message: 'Invalid Form Body' } });
const maxLength = (n: number) => ({ _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: `Must be ${n} or fewer in length.` }] });

function discordBodyProblem(json: Record<string, unknown>): ChatAnswer | null {
  const content = json.content;
  const embeds = json.embeds;
  if (content !== undefined && typeof content !== 'string') return formError({ content: { _errors: [{ code: 'STRING_TYPE_CONVERT', message: 'Could not interpret as string.' }] } });
  if (embeds !== undefined && !Array.isArray(embeds)) return formError({ embeds: { _errors: [{ code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' }] } });
  const list = (embeds ?? []) as unknown[];
  if ((content ?? '').length === 0 && list.length === 0) return { status: 400, body: { message: 'Cannot send an empty message', code: 50006 } };
  if (typeof content === 'string' && content.length > DISCORD_LIMITS.content) return formError({ content: maxLength(DISCORD_LIMITS.content) });
  if (list.length > DISCORD_LIMITS.embeds) return formError({ embeds: maxLength(DISCORD_LIMITS.embeds) });
  let total = 0;
  for (const [i, embed] of list.entries()) {
    if (!isObject(embed)) return formError({ embeds: { [i]: { _errors: [{ code: 'DICT_TYPE_CONVERT', message: 'Only dictionaries may be used in a DictType' }] } } });
    const title = typeof embed.title === 'string' ? embed.title : '';
    const description = typeof embed.description === 'string' ? embed.description : '';
    if (title.length > DISCORD_LIMITS.title) return formError({ embeds: { [i]: { title: maxLength(DISCORD_LIMITS.title) } } });
    if (description.length > DISCORD_LIMITS.description) return formError({ embeds: { [i]: { description: maxLength(DISCORD_LIMITS.description) } } });
    if (embed.timestamp !== undefined && (typeof embed.timestamp !== 'string' || Number.isNaN(Date.parse(embed.timestamp)))) {
      return formError({ embeds: { [i]: { timestamp: { _errors: [{ code: 'DATE_TIME_TYPE_PARSE', message: 'Could not parse timestamp.' }] } } } });
    }
    const footer = isObject(embed.footer) && typeof embed.footer.text === 'string' ? embed.footer.text.length : 0;
    const author = isObject(embed.author) && typeof embed.author.name === 'string' ? embed.author.name.length : 0;
    const fields = Array.isArray(embed.fields) ? embed.fields.reduce((n: number, f: unknown) => n + (isObject(f) ? String(f.name ?? '').length + String(f.value ?? '').length : 0), 0) : 0;
    total += title.length + description.length + footer + author + fields;
  }
  if (total > DISCORD_LIMITS.total) return formError({ embeds: { _errors: [{ code: 'MAX_EMBED_SIZE_EXCEEDED', message: `Embed size exceeds maximum size of ${DISCORD_LIMITS.total}` }] } });
  return null;
}

/** A Discord webhook: validates the token and Discord's limits; 204, or 200 with the message when `?wait=true`. */
export async function startDiscordServer(): Promise<DiscordServer> {
  const webhookId = '1180000000000000001';
  const secret = token(51);
  const messages: DiscordServer['messages'] = [];
  let snowflake = 1_190_000_000_000_000_000n;
  const base = await startRecordingServer(({ method, path, json }) => {
    const url = new URL(path, 'http://discord.local');
    const match = /^\/api\/webhooks\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (method !== 'POST' || !match || match[1] !== webhookId) return { status: 404, body: { message: 'Unknown Webhook', code: 10015 } };
    if (match[2] !== secret) return { status: 401, body: { message: 'Invalid Webhook Token', code: 50027 } };
    if (!isObject(json)) return { status: 400, body: { code: 50109, message: 'The request body contains invalid JSON.' } };
    const problem = discordBodyProblem(json);
    if (problem) return problem;
    snowflake += 1n;
    const message = { id: String(snowflake), content: json.content as string | undefined, embeds: json.embeds as Record<string, unknown>[] | undefined, allowed_mentions: json.allowed_mentions };
    messages.push(message);
    if (url.searchParams.get('wait') !== 'true') return { status: 204 };
    return { status: 200, body: { id: message.id, type: 0, channel_id: '1180000000000000002', webhook_id: webhookId, content: message.content ?? '', embeds: message.embeds ?? [], timestamp: new Date().toISOString() } };
  });
  return { ...base, url: `http://127.0.0.1:${base.port}/api/webhooks/${webhookId}/${secret}`, token: secret, messages };
}

// ------------------------------------------------------------------------------------------------------------- Telegram

export const TELEGRAM_MAX_TEXT = 4096;
/** The tags Telegram's HTML parse mode accepts (https://core.telegram.org/bots/api#html-style). */
export const TELEGRAM_TAGS = ['b', 'strong', 'i', 'em', 'u', 'ins', 's', 'strike', 'del', 'span', 'tg-spoiler', 'a', 'tg-emoji', 'code', 'pre', 'blockquote'] as const;

export interface TelegramServer extends ChatServer {
  /** http://127.0.0.1:<port>: TELEGRAM_API_BASE. */
  readonly apiBase: string;
  /** The one bot token this Bot API knows. */
  readonly botToken: string;
  /** A chat the bot may write to. */
  readonly chatId: string;
  /** A chat whose user blocked the bot (403). */
  readonly blockedChatId: string;
  /** Accepted messages: the HTML as sent, and its text after entity parsing (what the user sees). */
  readonly messages: { chatId: string; html: string; text: string; messageId: number }[];
}

const telegramError = (code: number, description: string, parameters?: Record<string, unknown>): ChatAnswer => ({
  status: code,
  body: { ok: false, error_code: code, description, ...(parameters ? { parameters } : {}) },
});
/** The Bot API's flood-control answer: 429 with `parameters.retry_after` in seconds. */
export const telegramRateLimited = (seconds: number): ChatAnswer => telegramError(429, `Too Many Requests: retry after ${seconds}`, { retry_after: seconds });

/**
 * Telegram's HTML parse mode, strictly: only its tags (span only as class="tg-spoiler", a with href), properly nested,
 * and every `<`, `>`, `&` outside a tag part of an entity (`&lt;`, `&gt;`, `&amp;`, `&quot;` or numeric). Returns the
 * text a user would see, or the Bot API's "can't parse entities" reason.
 */
export function parseTelegramHtml(html: string): { text: string } | { error: string } {
  const stack: string[] = [];
  let text = '';
  const at = (i: number) => `at byte offset ${Buffer.byteLength(html.slice(0, i))}`;
  for (let i = 0; i < html.length; ) {
    const ch = html[i]!;
    if (ch === '<') {
      const close = html.indexOf('>', i);
      if (close < 0) return { error: `Can't parse entities: unclosed start tag ${at(i)}` };
      const inner = html.slice(i + 1, close);
      const end = inner.startsWith('/');
      const m = /^\/?([a-z-]+)(\s[^]*)?$/i.exec(inner);
      if (!m) return { error: `Can't parse entities: unsupported start tag "${inner}" ${at(i)}` };
      const name = m[1]!.toLowerCase();
      if (!(TELEGRAM_TAGS as readonly string[]).includes(name)) return { error: `Can't parse entities: unsupported start tag "${name}" ${at(i)}` };
      if (end) {
        if (stack.pop() !== name) return { error: `Can't parse entities: unexpected end tag ${at(i)}` };
      } else {
        const attrs = (m[2] ?? '').trim();
        if (name === 'span' && !/^class\s*=\s*"tg-spoiler"$/.test(attrs)) return { error: `Can't parse entities: tag "span" must have class "tg-spoiler" ${at(i)}` };
        if (name === 'a' && !/^href\s*=\s*"[^"]*"$/.test(attrs)) return { error: `Can't parse entities: tag "a" needs an href ${at(i)}` };
        if (!['span', 'a', 'pre', 'code', 'tg-emoji', 'blockquote'].includes(name) && attrs !== '') return { error: `Can't parse entities: tag "${name}" takes no attributes ${at(i)}` };
        stack.push(name);
      }
      i = close + 1;
    } else if (ch === '&') {
      const m = /^&(lt|gt|amp|quot|#\d{1,7}|#x[0-9a-f]{1,6});/i.exec(html.slice(i, i + 12));
      if (!m) return { error: `Can't parse entities: character entity expected ${at(i)}` };
      const name = m[1]!.toLowerCase();
      text += name === 'lt' ? '<' : name === 'gt' ? '>' : name === 'amp' ? '&' : name === 'quot' ? '"' : String.fromCodePoint(name.startsWith('#x') ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10));
      i += m[0].length;
    } else if (ch === '>') {
      return { error: `Can't parse entities: unexpected ">" ${at(i)}` };
    } else {
      text += ch;
      i += 1;
    }
  }
  if (stack.length > 0) return { error: `Can't parse entities: can't find end tag corresponding to start tag "${stack[stack.length - 1]}"` };
  return { text };
}

/** The Bot API's sendMessage: token, chat, text length (after entity parsing) and HTML checked as Telegram does. */
export async function startTelegramServer(): Promise<TelegramServer> {
  const botToken = `7000000001:${token(26).slice(0, 35)}`;
  const chatId = '424242';
  const blockedChatId = '131313';
  const messages: TelegramServer['messages'] = [];
  let messageId = 100;
  const base = await startRecordingServer(({ method, path, json }) => {
    const match = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(path);
    if (!match) return telegramError(404, 'Not Found');
    if (match[1] !== botToken) return telegramError(401, 'Unauthorized');
    if (match[2] !== 'sendMessage') return telegramError(404, 'Not Found: method not found');
    if (method !== 'POST' || !isObject(json)) return telegramError(400, 'Bad Request: message text is empty');
    const chat = typeof json.chat_id === 'number' || typeof json.chat_id === 'string' ? String(json.chat_id) : '';
    if (chat === '') return telegramError(400, 'Bad Request: chat_id is empty');
    if (chat === blockedChatId) return telegramError(403, 'Forbidden: bot was blocked by the user');
    if (chat !== chatId) return telegramError(400, 'Bad Request: chat not found');
    if (typeof json.text !== 'string' || json.text.trim() === '') return telegramError(400, 'Bad Request: message text is empty');
    let text = json.text;
    if (json.parse_mode !== undefined) {
      if (json.parse_mode !== 'HTML') return telegramError(400, `Bad Request: unsupported parse_mode ${JSON.stringify(json.parse_mode)} (this stand-in speaks HTML)`);
      const parsed = parseTelegramHtml(json.text);
      if ('error' in parsed) return telegramError(400, `Bad Request: ${parsed.error}`);
      text = parsed.text;
    }
    if (text.length > TELEGRAM_MAX_TEXT) return telegramError(400, 'Bad Request: message is too long');
    messageId += 1;
    messages.push({ chatId: chat, html: json.text, text, messageId });
    return { status: 200, body: { ok: true, result: { message_id: messageId, date: Math.floor(Date.now() / 1000), chat: { id: Number(chat), type: 'private' }, text } } };
  });
  return { ...base, apiBase: `http://127.0.0.1:${base.port}`, botToken, chatId, blockedChatId, messages };
}
