import type { z } from 'zod';
import type { PriceField, ReferenceMode, Rule } from '../contract/alert';
import { WORKER_VARIABLES } from '../config/worker-config';
import { BadRequestError } from './bad-request';

/**
 * A runtime bot's settings as the API (POST/PATCH /bots) and the CLI (`bots add|set`) accept them. Each field is checked
 * by the worker's own variable schema (WORKER_VARIABLES), so a bot the API accepts is one a worker started with the same
 * values as env would accept, with the same limits and the same words in a refusal. Every refusal is a BadRequestError
 * naming the body field (`interval_ms`, not FETCH_INTERVAL_MS), the value as sent and what is allowed.
 */

/** The body field of each setting, and the worker variable whose schema checks it. */
const FIELD_VARIABLES = {
  bot_id: 'BOT_ID',
  pair: 'PAIR',
  interval_ms: 'FETCH_INTERVAL_MS',
  threshold_percent: 'OSCILLATION_PERCENT',
  price_field: 'PRICE_FIELD',
  reference_mode: 'REFERENCE_MODE',
  rule: 'RULE',
  window_ms: 'WINDOW_MS',
  pending_polls: 'PENDING_POLLS',
  cooldown_ms: 'COOLDOWN_MS',
  max_alerts: 'MAX_ALERTS',
  expires_at: 'EXPIRES_AT',
} as const satisfies Record<string, keyof typeof WORKER_VARIABLES>;
type SettingField = keyof typeof FIELD_VARIABLES;

/** The alert rule's settings (worker/rules.ts). */
export const RULE_FIELDS = ['rule', 'window_ms', 'pending_polls', 'cooldown_ms', 'max_alerts', 'expires_at'] as const;
/** Fields of POST /bots (and `bots add`). */
export const CREATE_FIELDS = ['pair', 'bot_id', 'interval_ms', 'threshold_percent', 'price_field', 'reference_mode', ...RULE_FIELDS] as const;
/** Fields of PATCH /bots/{bot_id} (and `bots set`): every setting but the identity, and `enabled`. */
export const PATCH_FIELDS = ['pair', 'interval_ms', 'threshold_percent', 'price_field', 'reference_mode', ...RULE_FIELDS, 'enabled'] as const;
/** Settings whose absence means something (no window, unlimited, never): null sets them back to it. */
const NULLABLE_FIELDS: ReadonlySet<string> = new Set(['window_ms', 'max_alerts', 'expires_at']);

/** The JSON type each field arrives as; interval_ms an integer, threshold_percent a decimal string (or a plain number). */
const JSON_TYPES: Record<SettingField | 'enabled', readonly string[]> = {
  bot_id: ['string'],
  pair: ['string'],
  interval_ms: ['number'],
  threshold_percent: ['string', 'number'],
  price_field: ['string'],
  reference_mode: ['string'],
  rule: ['string'],
  window_ms: ['number'],
  pending_polls: ['number'],
  cooldown_ms: ['number'],
  max_alerts: ['number'],
  expires_at: ['string'],
  enabled: ['boolean'],
};

const schemaOf = (field: SettingField) => WORKER_VARIABLES[FIELD_VARIABLES[field]].schema as z.ZodType<unknown, string>;

/** What a field allows, in the worker schema's own words (its message for a value nothing accepts). */
export function allowedFor(field: SettingField | 'enabled'): string {
  if (field === 'enabled') return 'true or false';
  const parsed = schemaOf(field).safeParse('\u0000');
  const allowed = parsed.success ? 'a valid value' : (parsed.error.issues[0]?.message ?? 'a valid value');
  return NULLABLE_FIELDS.has(field) ? `${allowed}, or null (${field === 'window_ms' ? 'none' : field === 'max_alerts' ? 'unlimited' : 'never'})` : allowed;
}

/** Defaults of a new bot: the worker's defaults. */
export const BOT_DEFAULTS = Object.freeze({
  interval_ms: Number(WORKER_VARIABLES.FETCH_INTERVAL_MS.default),
  threshold_percent: WORKER_VARIABLES.OSCILLATION_PERCENT.default,
  price_field: WORKER_VARIABLES.PRICE_FIELD.default as PriceField,
  reference_mode: WORKER_VARIABLES.REFERENCE_MODE.default as ReferenceMode,
  rule: WORKER_VARIABLES.RULE.default as Rule,
  window_ms: null,
  pending_polls: Number(WORKER_VARIABLES.PENDING_POLLS.default),
  cooldown_ms: Number(WORKER_VARIABLES.COOLDOWN_MS.default),
  max_alerts: null,
  expires_at: null,
});

export interface BotSettings {
  readonly pair: string;
  readonly interval_ms: number;
  readonly threshold_percent: string;
  readonly price_field: PriceField;
  readonly reference_mode: ReferenceMode;
  /** `reference` (today's rule) or `window`. */
  readonly rule: Rule;
  /** The window of `rule: window`, in ms; null otherwise. */
  readonly window_ms: number | null;
  readonly pending_polls: number;
  readonly cooldown_ms: number;
  /** null: unlimited. */
  readonly max_alerts: number | null;
  /** ISO-8601 UTC; null: never. */
  readonly expires_at: string | null;
}
export interface NewBot extends BotSettings {
  readonly bot_id: string;
}
export type BotPatch = Partial<BotSettings> & { readonly enabled?: boolean };

/** One field through the worker's schema; a BadRequestError naming the field on any refusal (wrong JSON type included). */
function parseField(field: SettingField | 'enabled', value: unknown): unknown {
  const allowed = allowedFor(field);
  if (value === null && NULLABLE_FIELDS.has(field)) return null;
  if (!JSON_TYPES[field].includes(typeof value)) throw new BadRequestError(field, value, allowed);
  if (field === 'enabled') return value;
  // Numbers reach the string schemas as their plain decimal text; 1e21 or 0.5 for an integer is refused by the schema.
  if (typeof value === 'number' && !Number.isFinite(value)) throw new BadRequestError(field, value, allowed);
  const parsed = schemaOf(field).safeParse(typeof value === 'number' ? String(value) : value);
  if (!parsed.success) throw new BadRequestError(field, value, allowed);
  return parsed.data;
}

/** A plain JSON object (not an array, not null); anything else is a 400 on the whole body. */
function asBody(body: unknown, fields: readonly string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequestError('body', body ?? null, `a JSON object with the fields ${fields.join(', ')}`);
  const record = body as Record<string, unknown>;
  // Own keys only: `__proto__` or `constructor` in the body are unknown fields like any other, never looked up.
  const unknown = Object.keys(record).filter((k) => !fields.includes(k));
  if (unknown.length > 0) throw new BadRequestError(unknown[0]!, record[unknown[0]!], fields);
  return record;
}

const has = (record: Record<string, unknown>, key: string) => Object.hasOwn(record, key) && record[key] !== undefined;

/** The settings of a new bot from a POST /bots body (or the CLI's flags): `pair` required, the rest defaulted. */
export function parseNewBot(body: unknown): NewBot {
  const record = asBody(body, CREATE_FIELDS);
  if (!has(record, 'pair')) throw new BadRequestError('pair', null, `required: ${allowedFor('pair')}`);
  const pair = parseField('pair', record.pair) as string;
  const field = <K extends keyof typeof BOT_DEFAULTS>(name: K) => (has(record, name) ? (parseField(name, record[name]) as (typeof BOT_DEFAULTS)[K] & {}) : BOT_DEFAULTS[name]);
  const bot: NewBot = {
    pair,
    bot_id: has(record, 'bot_id') ? (parseField('bot_id', record.bot_id) as string) : pair,
    interval_ms: has(record, 'interval_ms') ? (parseField('interval_ms', record.interval_ms) as number) : BOT_DEFAULTS.interval_ms,
    threshold_percent: has(record, 'threshold_percent') ? (parseField('threshold_percent', record.threshold_percent) as string) : BOT_DEFAULTS.threshold_percent,
    price_field: has(record, 'price_field') ? (parseField('price_field', record.price_field) as PriceField) : BOT_DEFAULTS.price_field,
    reference_mode: has(record, 'reference_mode') ? (parseField('reference_mode', record.reference_mode) as ReferenceMode) : BOT_DEFAULTS.reference_mode,
    rule: field('rule'),
    window_ms: has(record, 'window_ms') ? (parseField('window_ms', record.window_ms) as number | null) : null,
    pending_polls: field('pending_polls'),
    cooldown_ms: field('cooldown_ms'),
    max_alerts: has(record, 'max_alerts') ? (parseField('max_alerts', record.max_alerts) as number | null) : null,
    expires_at: has(record, 'expires_at') ? (parseField('expires_at', record.expires_at) as string | null) : null,
  };
  checkRule(bot);
  return bot;
}

/** The one rule across fields: a window needs its length. Checked on a new bot and on a bot after a change. */
export function checkRule(bot: Pick<BotSettings, 'rule' | 'window_ms'>): void {
  if (bot.rule === 'window' && bot.window_ms === null) throw new BadRequestError('window_ms', null, 'the length of the window in ms, from 1 to 86400000 (required with rule window), e.g. 60000');
}

/** The changes of a PATCH /bots/{bot_id} body (or the CLI's flags): at least one field. */
export function parseBotPatch(body: unknown): BotPatch {
  const record = asBody(body, PATCH_FIELDS);
  const patch: Record<string, unknown> = {};
  for (const field of PATCH_FIELDS) if (has(record, field)) patch[field] = parseField(field, record[field]);
  if (Object.keys(patch).length === 0) throw new BadRequestError('body', record, `at least one of ${PATCH_FIELDS.join(', ')}`);
  return patch as BotPatch;
}
