import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { SIGNED_DECIMAL_RE, UNSIGNED_DECIMAL_RE } from './decimal';

/**
 * The alert contract: the one message every worker publishes and every consumer reads.
 * Published as JSON on the pub/sub channel `alerts:<PAIR>` and appended, in the same MULTI, to the durable stream
 * `stream:alerts:<PAIR>` (field `alert`, the same JSON). See `redis-keys.ts` for the names.
 */
export const ALERT_VERSION = 1 as const;

/** Uphold pair names: two currency codes joined by a hyphen, e.g. `BTC-USD`. Upper case letters and digits. */
export const PAIR_RE = /^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$/;
export const PairSchema = z.string().regex(PAIR_RE, 'a pair such as BTC-USD (two currency codes, A-Z/0-9, joined by "-")');

/** Bot identifiers name a bot in alerts, keys and the fleet table. */
export const BOT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
export const BotIdSchema = z.string().regex(BOT_ID_RE, '1-64 characters: letters, digits, ".", "_", ":", "-"');

export const PRICE_FIELDS = ['ask', 'bid', 'mid'] as const;
export type PriceField = (typeof PRICE_FIELDS)[number];
export const REFERENCE_MODES = ['first', 'last-alert'] as const;
export type ReferenceMode = (typeof REFERENCE_MODES)[number];
/** `reference`: a move from the reference price (REFERENCE_MODE); `window`: a move within the trailing window. */
export const RULES = ['reference', 'window'] as const;
export type Rule = (typeof RULES)[number];
export const DIRECTIONS = ['up', 'down'] as const;
export type Direction = (typeof DIRECTIONS)[number];

const positiveDecimal = z
  .string()
  .regex(UNSIGNED_DECIMAL_RE, 'a plain positive decimal string')
  .refine((s) => /[1-9]/.test(s), 'a decimal greater than zero');
const signedDecimal = z.string().regex(SIGNED_DECIMAL_RE, 'a plain signed decimal string');

/** Snapshot of the settings of the bot that raised an alert. */
export const BotConfigSnapshotSchema = z.object({
  botId: BotIdSchema,
  pair: PairSchema,
  intervalMs: z.number().int().positive(),
  thresholdPercent: positiveDecimal,
  priceField: z.enum(PRICE_FIELDS),
  referenceMode: z.enum(REFERENCE_MODES),
  tickerBaseUrl: z.string().url(),
  /** A runtime bot's version these settings are (absent for a compose-declared bot, and in older messages). */
  botVersion: z.number().int().positive().optional(),
  // The alert rule's settings, present only where they differ from the defaults (older messages have none of them).
  /** @defaultValue "reference" */
  rule: z.enum(RULES).optional(),
  windowMs: z.number().int().positive().optional(),
  /** @defaultValue 1 */
  pendingPolls: z.number().int().positive().optional(),
  /** @defaultValue 0 */
  cooldownMs: z.number().int().nonnegative().optional(),
  /** Absent: unlimited. */
  maxAlerts: z.number().int().positive().optional(),
  /** ISO-8601 UTC; absent: never. */
  expiresAt: z.string().datetime({ offset: false }).optional(),
});
export type BotConfigSnapshot = z.infer<typeof BotConfigSnapshotSchema>;

export const AlertMessageSchema = z
  .object({
    version: z.literal(ALERT_VERSION),
    /** UUID, unique per alert: the idempotency key downstream. */
    id: z.string().uuid(),
    botId: BotIdSchema,
    pair: PairSchema,
    direction: z.enum(DIRECTIONS),
    /** The observed price, exact as computed from the ticker's decimal strings. */
    price: positiveDecimal,
    /** The reference the move was measured against. */
    referencePrice: positiveDecimal,
    /** (price - reference) / reference * 100, signed, 18 decimal places. */
    changePercent: signedDecimal,
    thresholdPercent: positiveDecimal,
    /** ISO-8601 UTC time the price was fetched. */
    observedAt: z.string().datetime({ offset: false }),
    config: BotConfigSnapshotSchema,
  })
  .strict()
  .superRefine((alert, ctx) => {
    if (alert.config.pair !== alert.pair) ctx.addIssue({ code: 'custom', path: ['config', 'pair'], message: 'must equal pair' });
    if (alert.config.botId !== alert.botId) ctx.addIssue({ code: 'custom', path: ['config', 'botId'], message: 'must equal botId' });
    const negative = alert.changePercent.startsWith('-');
    if ((alert.direction === 'down') !== negative) {
      ctx.addIssue({ code: 'custom', path: ['direction'], message: 'must agree with the sign of changePercent' });
    }
  });
export type AlertMessage = z.infer<typeof AlertMessageSchema>;

export type AlertParseResult = { ok: true; alert: AlertMessage } | { ok: false; reason: string };

/**
 * Largest alert message read from Redis, in bytes. A real alert is under 1 KiB; anything larger is refused before
 * JSON.parse sees it, so one hostile entry cannot make a consumer parse megabytes.
 */
export const ALERT_MESSAGE_MAX_BYTES = 16 * 1024;
/** Largest batch announcement (a JSON array of stored alerts): 10 000 alerts (INGEST_BATCH_MAX at most) of 3 KiB. */
export const ALERT_BATCH_MAX_BYTES = 30 * 1024 * 1024;

/** The one size check before parsing anything read from Redis: null when `raw` fits in `maxBytes`, else the reason. */
export function sizeProblem(raw: string | Buffer, maxBytes: number, what: string): string | null {
  // UTF-8 takes at most 3 bytes per UTF-16 unit: short strings skip the byte count.
  if (typeof raw === 'string' && raw.length * 3 <= maxBytes) return null;
  const bytes = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
  return bytes > maxBytes ? `${what} of ${bytes} bytes is over the ${maxBytes}-byte limit` : null;
}

/**
 * Parses a raw message (a JSON string or Buffer) against the contract. Messages over ALERT_MESSAGE_MAX_BYTES are refused
 * unparsed. Never throws: a bad message yields a reason that
 * names the offending field, fit for a dead-letter entry.
 */
export function parseAlertMessage(raw: string | Buffer): AlertParseResult {
  const oversized = sizeProblem(raw, ALERT_MESSAGE_MAX_BYTES, 'an alert message');
  if (oversized) return { ok: false, reason: oversized };
  let data: unknown;
  try {
    data = JSON.parse(raw.toString());
  } catch (err) {
    return { ok: false, reason: `not valid JSON: ${(err as Error).message}` };
  }
  const result = AlertMessageSchema.safeParse(data);
  if (result.success) return { ok: true, alert: result.data };
  return { ok: false, reason: contractViolation(result.error) };
}

/** Serialises an alert for the wire. The single place alerts are turned into bytes. */
export function serializeAlert(alert: AlertMessage): string {
  return JSON.stringify(alert);
}

/**
 * Serialises the alerts of one committed batch as one message (a JSON array of contract alerts): the master announces a
 * batch with one PUBLISH, not one per alert (which cost a sixth of its ingest CPU).
 */
export function serializeAlertBatch(alerts: readonly AlertMessage[]): string {
  return JSON.stringify(alerts);
}

/**
 * Parses a batch message: a JSON array of alerts, or a single alert object (as older masters announced them). Checks each
 * alert against the contract on its own: one bad element is reported by its index and never hides the others.
 */
export function parseAlertBatch(raw: string | Buffer): { alerts: AlertMessage[]; errors: string[] } {
  const oversized = sizeProblem(raw, ALERT_BATCH_MAX_BYTES, 'a batch message');
  if (oversized) return { alerts: [], errors: [oversized] };
  let data: unknown;
  try {
    data = JSON.parse(raw.toString());
  } catch (err) {
    return { alerts: [], errors: [`not valid JSON: ${(err as Error).message}`] };
  }
  const items = Array.isArray(data) ? data : [data];
  const alerts: AlertMessage[] = [];
  const errors: string[] = [];
  items.forEach((item, index) => {
    const result = AlertMessageSchema.safeParse(item);
    if (result.success) alerts.push(result.data);
    else errors.push(`${Array.isArray(data) ? `[${index}] ` : ''}${contractViolation(result.error)}`);
  });
  return { alerts, errors };
}

function contractViolation(error: z.ZodError): string {
  const reason = error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(message)'}: ${issue.message}`)
    .join('; ');
  return `breaks the alert contract v${ALERT_VERSION}: ${reason}`;
}

export function newAlertId(): string {
  return randomUUID();
}

/** What a detector's alert decision carries: the move it saw. */
export interface AlertMove {
  readonly direction: Direction;
  readonly price: string;
  readonly referencePrice: string;
  readonly changePercent: string;
}

/** The message a bot publishes for a move it saw at `observedAt`, under a fresh id. The one alert builder. */
export function buildAlertMessage(move: AlertMove, config: BotConfigSnapshot, observedAt: Date): AlertMessage {
  return {
    version: ALERT_VERSION,
    id: newAlertId(),
    botId: config.botId,
    pair: config.pair,
    direction: move.direction,
    price: move.price,
    referencePrice: move.referencePrice,
    changePercent: move.changePercent,
    thresholdPercent: config.thresholdPercent,
    observedAt: observedAt.toISOString(),
    config,
  };
}
