import { Decimal } from '../contract/decimal';
import { DIRECTIONS, type Direction } from '../contract/alert';
import { ALERT_COLUMNS } from './alert-table';

/**
 * The alert as every HTTP interface shows it to a client: `GET /alerts` and `/alerts/{id}` (and the CLI's JSON), the
 * dashboard's live feed `/events`, and the webhook body. One shape, snake_case, decimals and times as strings:
 *
 *   - decimals exactly as the `alerts` table renders them (numeric(38,18), trailing zeros removed: "50000.12"),
 *   - times ISO-8601 UTC with milliseconds, or microseconds when the time has them ("2026-11-29T12:00:00.123Z"),
 *   - `config`: the bot's settings snapshot exactly as the alert message carried it, keys and all (the contract's
 *     camelCase: `botId`, `intervalMs`, ...). It is the bot's own document, not a field list of ours, so no interface
 *     renames it.
 *
 * The internal Redis message (shared/contract/alert.ts, camelCase, v1) is not an HTTP interface and stays as it is;
 * `toWireAlert` is the one mapping from it (or from a stored alert) to this shape.
 */

export interface WireAlert {
  readonly id: string;
  readonly bot_id: string;
  readonly pair: string;
  readonly direction: Direction;
  /** Exact decimal strings, trailing zeros removed ("50000.12"). */
  readonly price: string;
  readonly reference_price: string;
  /** Signed: negative for down moves. */
  readonly change_percent: string;
  readonly threshold_percent: string;
  /** ISO-8601 UTC; milliseconds, or microseconds when the time has them. */
  readonly observed_at: string;
  /** The bot's settings snapshot, exactly as in the alert message (its keys are the contract's camelCase). */
  readonly config: Record<string, unknown>;
  /**
   * When the master stored it. Null only on the live feed `/events`: the stored-alert announcement carries the alert
   * message, not the row (`GET /alerts/{id}` has the time).
   */
  readonly received_at: string | null;
  /**
   * The silence that muted the alert's notifications (its id), or null. Set when the alert is stored; null on the live
   * feed `/events` (the announcement carries the alert message, not the row) and in notifications (a silenced alert gets none).
   */
  readonly silenced_by: string | null;
}

/** The fields of a wire alert, in the order the API, the CSV header and the OpenAPI document list them: the table's columns. */
export const WIRE_ALERT_FIELDS: readonly (keyof WireAlert)[] = ALERT_COLUMNS;

/** An alert inside the master: the contract message (no receivedAt) or a stored alert (Dates, padded decimals). */
export interface InternalAlert {
  readonly id: string;
  readonly botId: string;
  readonly pair: string;
  readonly direction: Direction;
  readonly price: string;
  readonly referencePrice: string;
  readonly changePercent: string;
  readonly thresholdPercent: string;
  readonly observedAt: string | Date;
  readonly config: object;
  readonly receivedAt?: string | Date | null;
  readonly silencedBy?: string | null;
}

/** The alerts table's scale: numeric(38,18). */
const SCALE = 18;
const PLAIN_DECIMAL_RE = /^-?(0|[1-9]\d*)(\.\d{1,18})?$/;

/**
 * A decimal as Postgres' `trim_scale(x::numeric(38,18))::text` renders it: rounded half away from zero to 18 places,
 * no leading or trailing zeros. The plain case (what the workers and the table produce) is string work only.
 */
export function wireDecimal(value: string): string {
  if (PLAIN_DECIMAL_RE.test(value)) {
    return value.includes('.') ? value.replace(/0+$/, '').replace(/\.$/, '') : value;
  }
  return new Decimal(value).toDecimalPlaces(SCALE, Decimal.ROUND_HALF_UP).toFixed();
}

const ISO_FRACTION_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{4,})Z$/;

/**
 * A time as the API renders a stored one: ISO-8601 UTC, milliseconds, or microseconds when there are any (digits past
 * the microsecond are cut, as the table cannot hold them).
 */
export function wireTime(value: string | Date): string {
  if (value instanceof Date) return value.toISOString();
  const fine = ISO_FRACTION_RE.exec(value);
  if (fine) {
    const micros = (fine[2] as string).slice(0, 6).padEnd(6, '0');
    return micros.endsWith('000') ? `${fine[1]}.${micros.slice(0, 3)}Z` : `${fine[1]}.${micros}Z`;
  }
  return new Date(value).toISOString();
}

/** The one mapping from an alert inside the master to the wire alert. */
export function toWireAlert(alert: InternalAlert): WireAlert {
  return {
    id: alert.id,
    bot_id: alert.botId,
    pair: alert.pair,
    direction: alert.direction,
    price: wireDecimal(alert.price),
    reference_price: wireDecimal(alert.referencePrice),
    change_percent: wireDecimal(alert.changePercent),
    threshold_percent: wireDecimal(alert.thresholdPercent),
    observed_at: wireTime(alert.observedAt),
    config: { ...(alert.config as Record<string, unknown>) },
    received_at: alert.receivedAt === undefined || alert.receivedAt === null ? null : wireTime(alert.receivedAt),
    silenced_by: alert.silencedBy ?? null,
  };
}

const decimal = (description: string) => ({ type: 'string', pattern: '^-?\\d+(\\.\\d+)?$', description }) as const;
const time = (description: string) => ({ type: 'string', format: 'date-time', description }) as const;

/**
 * JSON schema of the wire alert: the API's response schema (fastify serialises answers with it, so a field missing here
 * never reaches a client) and the OpenAPI document's. `received_at` is a string in every REST answer; see `WireAlert`.
 */
export const WIRE_ALERT_SCHEMA = {
  type: 'object',
  description: 'A stored alert. Decimals are exact strings with trailing zeros removed; times are ISO-8601 UTC.',
  properties: {
    id: { type: 'string', format: 'uuid' },
    bot_id: { type: 'string' },
    pair: { type: 'string', example: 'BTC-USD' },
    direction: { type: 'string', enum: [...DIRECTIONS] },
    price: decimal('the observed price'),
    reference_price: decimal('the price the move was measured against'),
    change_percent: decimal('(price - reference) / reference * 100; negative for down moves'),
    threshold_percent: decimal('the bot threshold that was crossed'),
    observed_at: time('when the worker fetched the price'),
    config: {
      type: 'object',
      additionalProperties: true,
      description: "the bot's settings snapshot, exactly as the alert message carried it (its keys are camelCase: botId, intervalMs, thresholdPercent, ...)",
    },
    received_at: time('when the master stored it'),
    silenced_by: {
      type: ['string', 'null'],
      format: 'uuid',
      description: 'the silence that muted its notifications (GET /silences), or null; the alert is stored and listed either way',
    },
  },
  required: [...WIRE_ALERT_FIELDS],
} as const;
