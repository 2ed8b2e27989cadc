import { IANAZone } from 'luxon';
import { z } from 'zod';
import { DIRECTIONS, PAIR_RE, type Direction } from '../contract/alert';
import { UNSIGNED_DECIMAL_RE } from '../contract/decimal';
import { HIDDEN, urlSchemeAndHost } from '../platform/secrets';
import { BadRequestError } from './bad-request';

/**
 * Receivers: who gets which alerts and how. This module is the pure part shared by the master (routing, delivery), the
 * API (POST/PATCH /receivers) and the CLI: the kinds and their targets, the checks of a receiver's settings (every
 * refusal a BadRequestError naming the body field, e.g. `target.url` or `quiet_hours.tz`), and the masking of the
 * secrets a target carries. The table is in receivers-repository.ts.
 */

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
export type ReceiverTarget = ReceiverTargets[ReceiverKind];

/** Which alerts a receiver gets: every condition given must hold; an empty match takes every alert. */
export interface ReceiverMatch {
  /** Upper case, as alerts carry them. */
  readonly pairs?: readonly string[];
  readonly directions?: readonly Direction[];
  /** Exact decimal text: |change_percent| >= min_change. */
  readonly min_change?: string;
}

/** A daily period (local wall-clock times in an IANA zone) during which notifications are held; may cross midnight. */
export interface QuietHours {
  /** "HH:MM", 24-hour. */
  readonly start: string;
  /** "HH:MM", 24-hour; before `start` when the period crosses midnight. */
  readonly end: string;
  /** IANA zone, e.g. Europe/Lisbon. */
  readonly tz: string;
}

/** A receiver's settings as POST /receivers takes them (after the checks and defaults). */
export interface ReceiverSettings {
  readonly name: string;
  readonly kind: ReceiverKind;
  readonly target: ReceiverTarget;
  readonly match: ReceiverMatch;
  readonly quiet_hours: QuietHours | null;
  readonly digest_seconds: number;
  readonly group_wait_ms: number;
}
export type ReceiverPatch = Partial<Omit<ReceiverSettings, 'name'>>;

export const RECEIVER_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
/** Names of the receivers the master builds from its configuration (MAIL_TO, WEBHOOK_URL); the API cannot take them. */
export const CONFIG_RECEIVER_NAMES = ['default', 'default-webhook'] as const;

export const CREATE_RECEIVER_FIELDS = ['name', 'kind', 'target', 'match', 'quiet_hours', 'digest_seconds', 'group_wait_ms'] as const;
export const PATCH_RECEIVER_FIELDS = ['kind', 'target', 'match', 'quiet_hours', 'digest_seconds', 'group_wait_ms'] as const;

const EMAIL_RE = /^[^\s@,<>"]{1,64}@[^\s@,<>"]{1,255}$/;
const TELEGRAM_TOKEN_RE = /^\d{1,20}:[A-Za-z0-9_-]{20,100}$/;
const TELEGRAM_CHAT_RE = /^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$/;
const HHMM_RE = /^([01]\d|2[0-3]):[0-5]\d$/;

/** What each field allows, in the words of a 400 answer. */
export const RECEIVER_ALLOWED = {
  name: `1-64 characters: letters, digits, ".", "_", "-" (not ${CONFIG_RECEIVER_NAMES.join(' or ')}: those are the receivers built from MAIL_TO and WEBHOOK_URL)`,
  kind: `one of ${RECEIVER_KINDS.join(', ')}`,
  target: 'an object: email {to}, webhook {url, secret?}, slack {url}, discord {url}, telegram {bot_token, chat_id}',
  'target.to': 'one email address such as alice@example.com',
  'target.url': 'an http:// or https:// URL',
  'target.secret': 'a string of 8 to 512 characters (the X-Tickwatch-Signature key)',
  'target.bot_token': 'a Telegram bot token such as 123456789:AAH... (digits, ":", then 20-100 letters, digits, "_", "-")',
  'target.chat_id': 'a Telegram chat id (an integer, negative for groups) or a channel @username',
  match: 'an object with any of pairs, directions, min_change',
  'match.pairs': 'a non-empty list of up to 100 pairs such as BTC-USD',
  'match.directions': 'a non-empty list of up, down',
  'match.min_change': 'a plain decimal >= 0 such as "1" or "0.5" (absolute change percent at least this)',
  quiet_hours: 'null, or an object {start: "HH:MM", end: "HH:MM", tz: IANA zone} with start and end different',
  'quiet_hours.start': 'a 24-hour time "HH:MM" such as "22:00"',
  'quiet_hours.end': 'a 24-hour time "HH:MM" such as "07:00", different from start',
  'quiet_hours.tz': 'an IANA time zone such as Europe/Lisbon or UTC',
  digest_seconds: 'an integer from 0 to 86400',
  group_wait_ms: 'an integer from 0 to 3600000',
} as const;
type Field = keyof typeof RECEIVER_ALLOWED;

const refuse = (field: Field, value: unknown): never => {
  throw new BadRequestError(field, value, RECEIVER_ALLOWED[field]);
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function httpUrl(field: Field, value: unknown): string {
  if (typeof value !== 'string' || value.length > 2048) return refuse(field, value);
  try {
    const url = new URL(value);
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.host === '') return refuse(field, value);
    return value;
  } catch {
    return refuse(field, value);
  }
}

/** The zod shapes of the targets; the field checks above give each refusal its words. */
const TARGET_KEYS: Record<ReceiverKind, readonly string[]> = {
  email: ['to'],
  webhook: ['url', 'secret'],
  slack: ['url'],
  discord: ['url'],
  telegram: ['bot_token', 'chat_id'],
};

const targetSchemas = {
  email: z.object({ to: z.string().regex(EMAIL_RE) }).strict(),
  webhook: z.object({ url: z.string(), secret: z.string().min(8).max(512).optional() }).strict(),
  slack: z.object({ url: z.string() }).strict(),
  discord: z.object({ url: z.string() }).strict(),
  telegram: z.object({ bot_token: z.string().regex(TELEGRAM_TOKEN_RE), chat_id: z.string().regex(TELEGRAM_CHAT_RE) }).strict(),
} satisfies Record<ReceiverKind, z.ZodType>;

/** A kind's target, checked: a 400 names the field (`target.url`), never quoting a secret it was sent. */
export function parseTarget(kind: ReceiverKind, value: unknown): ReceiverTarget {
  if (!isObject(value)) return refuse('target', value === undefined ? undefined : typeof value);
  const unknown = Object.keys(value).find((k) => !TARGET_KEYS[kind].includes(k));
  if (unknown !== undefined) throw new BadRequestError(`target.${unknown}`, '(not shown)', TARGET_KEYS[kind].map((k) => `target.${k}`));
  // A Telegram chat id is an integer in Telegram's own API: take it as a number too.
  const input = kind === 'telegram' && typeof value.chat_id === 'number' && Number.isSafeInteger(value.chat_id) ? { ...value, chat_id: String(value.chat_id) } : value;
  const parsed = targetSchemas[kind].safeParse(input);
  if (!parsed.success) {
    const key = String(parsed.error.issues[0]?.path[0] ?? TARGET_KEYS[kind][0]);
    const field = `target.${key}` as Field;
    // Secrets and secret-bearing URLs are never echoed back; the non-secret fields are.
    const shown = key === 'to' || key === 'chat_id' ? input[key] : '(not shown)';
    return refuse(field in RECEIVER_ALLOWED ? field : 'target', shown);
  }
  const target = parsed.data as Record<string, unknown>;
  if ('url' in target) {
    try {
      httpUrl('target.url', target.url);
    } catch {
      return refuse('target.url', urlSchemeAndHost(String(target.url)) ?? '(not shown)');
    }
  }
  return target as unknown as ReceiverTarget;
}

export function parseMatch(value: unknown): ReceiverMatch {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) return refuse('match', value);
  const unknown = Object.keys(value).find((k) => !['pairs', 'directions', 'min_change'].includes(k));
  if (unknown !== undefined) throw new BadRequestError(`match.${unknown}`, value[unknown], ['match.pairs', 'match.directions', 'match.min_change']);
  const match: { pairs?: string[]; directions?: Direction[]; min_change?: string } = {};
  if (value.pairs !== undefined) {
    const pairs = value.pairs;
    if (!Array.isArray(pairs) || pairs.length === 0 || pairs.length > 100 || !pairs.every((p) => typeof p === 'string' && PAIR_RE.test(p.toUpperCase()))) refuse('match.pairs', pairs);
    match.pairs = [...new Set((pairs as string[]).map((p) => p.toUpperCase()))];
  }
  if (value.directions !== undefined) {
    const d = value.directions;
    if (!Array.isArray(d) || d.length === 0 || !d.every((x) => (DIRECTIONS as readonly unknown[]).includes(x))) refuse('match.directions', d);
    match.directions = [...new Set(d as Direction[])];
  }
  if (value.min_change !== undefined) {
    const m = value.min_change;
    const text = typeof m === 'number' && Number.isFinite(m) && m >= 0 ? String(m) : m;
    if (typeof text !== 'string' || !UNSIGNED_DECIMAL_RE.test(text)) refuse('match.min_change', m);
    match.min_change = text as string;
  }
  return match;
}

export function parseQuietHours(value: unknown): QuietHours | null {
  if (value === undefined || value === null) return null;
  if (!isObject(value)) return refuse('quiet_hours', value);
  const unknown = Object.keys(value).find((k) => !['start', 'end', 'tz'].includes(k));
  if (unknown !== undefined) throw new BadRequestError(`quiet_hours.${unknown}`, value[unknown], ['quiet_hours.start', 'quiet_hours.end', 'quiet_hours.tz']);
  const { start, end, tz } = value;
  if (typeof start !== 'string' || !HHMM_RE.test(start)) refuse('quiet_hours.start', start);
  if (typeof end !== 'string' || !HHMM_RE.test(end) || end === start) refuse('quiet_hours.end', end);
  if (typeof tz !== 'string' || tz.length > 64 || !IANAZone.isValidZone(tz)) refuse('quiet_hours.tz', tz);
  return { start: start as string, end: end as string, tz: tz as string };
}

function integer(field: 'digest_seconds' | 'group_wait_ms', value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) return refuse(field, value);
  return value;
}

function parseKind(value: unknown): ReceiverKind {
  if (typeof value !== 'string' || !(RECEIVER_KINDS as readonly string[]).includes(value)) return refuse('kind', value);
  return value as ReceiverKind;
}

function checkFields(body: unknown, fields: readonly string[]): Record<string, unknown> {
  if (!isObject(body)) throw new BadRequestError('body', body === undefined ? null : typeof body, 'a JSON object');
  const unknown = Object.keys(body).find((k) => !fields.includes(k));
  if (unknown !== undefined) throw new BadRequestError(unknown, body[unknown], [...fields]);
  return body;
}

export function parseReceiverName(value: unknown): string {
  if (typeof value !== 'string' || !RECEIVER_NAME_RE.test(value) || (CONFIG_RECEIVER_NAMES as readonly string[]).includes(value)) return refuse('name', value);
  return value;
}

/** POST /receivers (and `alerts receivers add`): checked, with defaults (match everything, no quiet hours, no wait). */
export function parseNewReceiver(body: unknown): ReceiverSettings {
  const b = checkFields(body, CREATE_RECEIVER_FIELDS);
  const name = parseReceiverName(b.name);
  const kind = parseKind(b.kind);
  return {
    name,
    kind,
    target: parseTarget(kind, b.target),
    match: parseMatch(b.match),
    quiet_hours: parseQuietHours(b.quiet_hours),
    digest_seconds: b.digest_seconds === undefined ? 0 : integer('digest_seconds', b.digest_seconds, 86_400),
    group_wait_ms: b.group_wait_ms === undefined ? 0 : integer('group_wait_ms', b.group_wait_ms, 3_600_000),
  };
}

/**
 * PATCH /receivers/{name}: any field but the name. A new `kind` needs its `target`; a `target` alone is checked against
 * the receiver's current kind. `quiet_hours: null` removes them; `match: {}` (or null) matches everything again.
 */
export function parseReceiverPatch(body: unknown, currentKind: ReceiverKind): ReceiverPatch {
  const b = checkFields(body, PATCH_RECEIVER_FIELDS);
  const patch: { -readonly [K in keyof ReceiverPatch]: ReceiverPatch[K] } = {};
  const kind = b.kind === undefined ? currentKind : parseKind(b.kind);
  if (b.kind !== undefined) {
    if (b.target === undefined && kind !== currentKind) return refuse('target', undefined);
    patch.kind = kind;
  }
  if (b.target !== undefined) patch.target = parseTarget(kind, b.target);
  if (b.match !== undefined) patch.match = parseMatch(b.match);
  if (b.quiet_hours !== undefined) patch.quiet_hours = parseQuietHours(b.quiet_hours);
  if (b.digest_seconds !== undefined) patch.digest_seconds = integer('digest_seconds', b.digest_seconds, 86_400);
  if (b.group_wait_ms !== undefined) patch.group_wait_ms = integer('group_wait_ms', b.group_wait_ms, 3_600_000);
  return patch;
}

/** A URL as it may be shown: scheme and host, the rest (a Slack or Discord URL's path is its secret) hidden. */
function maskedUrl(url: string): string {
  const origin = urlSchemeAndHost(url);
  return origin === null ? HIDDEN : `${origin}/${HIDDEN}`;
}

/**
 * A target as GET /receivers shows it: email addresses and Telegram chat ids as they are; URL paths and queries, webhook
 * signing keys and bot tokens replaced by "(hidden)" (a Telegram token keeps its public bot id before the ":").
 */
export function maskTarget(kind: ReceiverKind, target: ReceiverTarget): Record<string, string> {
  const t = target as Record<string, string | undefined>;
  switch (kind) {
    case 'email':
      return { to: String(t.to) };
    case 'webhook':
      return t.secret === undefined ? { url: maskedUrl(String(t.url)) } : { url: maskedUrl(String(t.url)), secret: HIDDEN };
    case 'slack':
    case 'discord':
      return { url: maskedUrl(String(t.url)) };
    case 'telegram':
      return { bot_token: `${String(t.bot_token).split(':')[0]}:${HIDDEN}`, chat_id: String(t.chat_id) };
  }
}

/** Every secret string a target carries (for scrubbing a remote party's answer and error texts). */
export function targetSecrets(kind: ReceiverKind, target: ReceiverTarget): string[] {
  const t = target as Record<string, string | undefined>;
  const out: string[] = [];
  if (t.url) {
    try {
      const { pathname, search } = new URL(t.url);
      out.push(t.url, `${pathname}${search}`, pathname.length > 1 ? pathname.slice(1) : '', search);
    } catch {
      out.push(t.url);
    }
  }
  if (t.secret) out.push(t.secret);
  if (t.bot_token) out.push(t.bot_token, String(t.bot_token).split(':')[1] ?? '');
  return out.filter((s) => s.length >= 4);
}

/**
 * The part of a target safe to store in an outbox row and show with an alert's deliveries: the address, the URL's
 * scheme and host, the chat id. Also what one (receiver, target) delivery lane is keyed by.
 */
export function targetLabel(kind: ReceiverKind, target: ReceiverTarget): string {
  const t = target as Record<string, string | undefined>;
  if (kind === 'email') return String(t.to);
  if (kind === 'telegram') return `chat ${String(t.chat_id)}`;
  return urlSchemeAndHost(String(t.url)) ?? HIDDEN;
}
