import { z } from 'zod';
import { DIRECTIONS, PAIR_RE, type Direction } from '../contract/alert';
import { BadRequestError } from './bad-request';
import { parseDuration as parseDurationText } from '../platform/duration';

/**
 * Parsing and validation of every query parameter the API and the CLI accept. One definition per parameter: how it is
 * parsed, what the 400 answer says is allowed, and how the OpenAPI document describes it. Nothing here touches SQL; the
 * values produced are handed to the queries as bound parameters.
 */

/** The orderings of `GET /alerts`. A leading "-" means descending; ties are broken by id in the same direction. */
export const ORDERINGS = ['-observed_at', 'observed_at', '-change_percent', 'change_percent'] as const;
export type Ordering = (typeof ORDERINGS)[number];

/** Most pairs one request may name (each becomes one index range scan). */
export const MAX_PAIRS = 50;
export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 1000;
/** Buckets one timeseries answer may hold. */
export const MAX_BUCKETS = 10_000;
/**
 * Longest range GET /stats (window, or since..until) and GET /stats/timeseries (since..until) may cover: an aggregate
 * reads every alert in its range, so its cost grows with the range, unlike the alert list which pages by keyset.
 */
export const MAX_STATS_RANGE_MS = 31 * 86_400_000;
export const MAX_STATS_RANGE = '31d';

/** A resolved instant: the exact ISO text handed to Postgres, and its epoch milliseconds for checks in JS. */
export interface Instant {
  readonly iso: string;
  readonly ms: number;
}

/** Filters shared by the alert list, the CSV export and the CLI. */
export interface AlertFilter {
  /** Empty: every pair. */
  readonly pairs: readonly string[];
  readonly direction?: Direction;
  /** Inclusive. */
  readonly since?: Instant;
  /** Exclusive. */
  readonly until?: Instant;
  /** Minimum absolute change percent, an exact decimal string. */
  readonly minChange?: string;
  /** true: only alerts a silence muted; false: only the others. */
  readonly silenced?: boolean;
  /** Only the alerts this silence muted (a lower-case UUID). */
  readonly silencedBy?: string;
}

/** Where a keyset page starts: strictly after this (key, id) in the given ordering. */
export interface PageCursor {
  readonly ordering: Ordering;
  /** observed_at as ISO text with microseconds, or change_percent as a decimal string. */
  readonly key: string;
  readonly id: string;
}

// ---------------------------------------------------------------------------------------------------------------------
// Values

const DAY_MS = 86_400_000;
/** Longest duration anywhere (windows, relative times, buckets): ten years is beyond any retention. */
export const MAX_DURATION_MS = 3660 * DAY_MS;

/** A duration in the one grammar (`20m`, `1h`, `7d`, `90s`, `500ms`, `2w`, `1h30m`) in milliseconds; null when it is not one, is zero or is too long. */
export function parseDuration(text: string): number | null {
  const ms = parseDurationText(text);
  return ms !== null && ms > 0 && ms <= MAX_DURATION_MS ? ms : null;
}

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2}))?$/i;
// Postgres timestamptz covers far more, but a year outside this is a typo, not a query.
const MIN_YEAR = 1970;
const MAX_YEAR = 9999;

/**
 * Parses an absolute ISO-8601 time (`2026-11-29`, `2026-11-29T19:45:00Z`, `...T19:45:00.123456+01:00`) or a relative one
 * (`20m`, `1h`, `7d`: that long before `now`). A date-time needs an offset (Z or +hh:mm): an analyst's "19:45" is
 * ambiguous. Returns null when the text is neither.
 */
export function parseInstant(text: string, now: number): Instant | null {
  const trimmed = text.trim();
  const relative = parseDuration(trimmed);
  if (relative !== null) {
    const ms = now - relative;
    return { iso: new Date(ms).toISOString(), ms };
  }
  const m = ISO_RE.exec(trimmed);
  if (!m) return null;
  const [, y, mo, d, hh, mi, ss] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  if (year < MIN_YEAR || year > MAX_YEAR || month < 1 || month > 12 || day < 1) return null;
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return null;
  if (hh !== undefined && (Number(hh) > 23 || Number(mi) > 59 || Number(ss ?? 0) > 59)) return null;
  const offset = m[8];
  if (offset && offset.toUpperCase() !== 'Z') {
    const digits = offset.replace(':', '');
    if (Number(digits.slice(1, 3)) > 14 || Number(digits.slice(3, 5)) > 59) return null;
  }
  // Date.parse wants the "T" and a colon in the offset; Postgres gets the text exactly as normalised here.
  const iso = hh === undefined ? `${y}-${mo}-${d}T00:00:00Z` : trimmed.replace(' ', 'T').replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? { iso, ms } : null;
}

/** Plain decimal that fits numeric(38,18). */
const DECIMAL_RE = /^\d{1,20}(\.\d{1,18})?$/;
const SIGNED_DECIMAL_RE = /^-?\d{1,20}(\.\d{1,18})?$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** observed_at as the queries render it (see alert-queries.ts): UTC, microseconds optional. */
const CURSOR_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

export function isUuid(text: string): boolean {
  return UUID_RE.test(text);
}

const CursorSchema = z
  .object({
    v: z.literal(1),
    o: z.enum(ORDERINGS),
    k: z.string().max(64),
    id: z.string().regex(UUID_RE),
  })
  .strict();

/** Encodes a page position as an opaque URL-safe token. */
export function encodeCursor(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify({ v: 1, o: cursor.ordering, k: cursor.key, id: cursor.id })).toString('base64url');
}

/** Decodes a token from `encodeCursor`; null for anything else (tampered, truncated, another ordering's key). */
export function decodeCursor(token: string): PageCursor | null {
  if (token.length > 512 || !/^[A-Za-z0-9_-]+$/.test(token)) return null;
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  const parsed = CursorSchema.safeParse(data);
  if (!parsed.success) return null;
  const { o, k, id } = parsed.data;
  const keyOk = o.endsWith('observed_at') ? CURSOR_TIME_RE.test(k) && Number.isFinite(Date.parse(k)) : SIGNED_DECIMAL_RE.test(k);
  return keyOk ? { ordering: o, key: k, id: id.toLowerCase() } : null;
}

// ---------------------------------------------------------------------------------------------------------------------
// Parameter definitions

type Raw = string | string[] | undefined;

interface ParseContext {
  readonly now: number;
}

/** One query parameter: how it is parsed, what is allowed (for the 400 answer) and how OpenAPI shows it. */
export interface ParamSpec<T> {
  readonly description: string;
  /** Said in the 400 answer: completes "expected ...". */
  readonly allowed: string | readonly string[];
  /**
   * JSON schema of one raw value (a string, as every query value arrives): the API validates requests with it and the
   * OpenAPI document shows it. `parse` checks the rest (ranges, relative times, cursors) with the same 400 answer.
   */
  readonly schema: Record<string, unknown>;
  /** True when the parameter may be repeated (`pair=A&pair=B`). */
  readonly repeatable?: boolean;
  /** Returns the value, or undefined when the text is not allowed. */
  parse(values: readonly string[], ctx: ParseContext): T | undefined;
}

function single<T>(spec: Omit<ParamSpec<T>, 'parse'> & { one(value: string, ctx: ParseContext): T | undefined }): ParamSpec<T> {
  return { ...spec, parse: (values, ctx) => (values.length === 1 ? spec.one(values[0] as string, ctx) : undefined) };
}

const TIME_ALLOWED = 'an ISO-8601 date or date-time with offset (2026-11-29, 2026-11-29T19:45:00Z) or a relative time such as 20m, 1h, 7d (that long ago)';

export const PARAMS = {
  pair: {
    description: 'Only these pairs: repeat the parameter or give a comma list (BTC-USD,ETH-USD). Case-insensitive.',
    allowed: `up to ${MAX_PAIRS} pairs such as BTC-USD (two currency codes of A-Z/0-9 joined by "-"), repeated or comma-separated`,
    schema: { type: 'string', example: 'BTC-USD,ETH-USD' },
    repeatable: true,
    parse(values: readonly string[]): string[] | undefined {
      const pairs = values.flatMap((v) => v.split(',')).map((p) => p.trim().toUpperCase()).filter(Boolean);
      const unique = [...new Set(pairs)];
      if (unique.length === 0 || unique.length > MAX_PAIRS || !unique.every((p) => PAIR_RE.test(p))) return undefined;
      return unique.sort();
    },
  } satisfies ParamSpec<string[]>,
  direction: single<Direction>({
    description: 'Only alerts in this direction.',
    allowed: DIRECTIONS,
    schema: { type: 'string', enum: [...DIRECTIONS] },
    one: (v) => ((DIRECTIONS as readonly string[]).includes(v) ? (v as Direction) : undefined),
  }),
  since: single<Instant>({
    description: 'Alerts observed at or after this time (ISO-8601 with offset, or relative: 20m, 1h, 7d ago).',
    allowed: TIME_ALLOWED,
    schema: { type: 'string', example: '2026-11-29T19:00:00Z' },
    one: (v, ctx) => parseInstant(v, ctx.now) ?? undefined,
  }),
  until: single<Instant>({
    description: 'Alerts observed strictly before this time (same forms as since).',
    allowed: TIME_ALLOWED,
    schema: { type: 'string', example: '2026-11-29T20:00:00Z' },
    one: (v, ctx) => parseInstant(v, ctx.now) ?? undefined,
  }),
  min_change: single<string>({
    description: 'Only alerts whose absolute change percent is at least this (0.5 means moves of 0.5 % or more either way).',
    allowed: 'a non-negative plain decimal percent such as 0.5 (at most 20 integer digits and 18 decimals)',
    schema: { type: 'string', pattern: DECIMAL_RE.source, example: '0.5' },
    one: (v) => (DECIMAL_RE.test(v.trim()) ? v.trim() : undefined),
  }),
  silenced: single<boolean>({
    description: 'true: only alerts whose notifications a silence muted (silenced_by set); false: only the others.',
    allowed: ['true', 'false'],
    schema: { type: 'string', enum: ['true', 'false'] },
    one: (v) => (v === 'true' ? true : v === 'false' ? false : undefined),
  }),
  silenced_by: single<string>({
    description: 'Only the alerts this silence muted (its id from GET /silences).',
    allowed: 'a silence id: a UUID such as 0b6f2f4e-3c1a-4d5e-9f00-1a2b3c4d5e6f',
    schema: { type: 'string', pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$', example: '0b6f2f4e-3c1a-4d5e-9f00-1a2b3c4d5e6f' },
    one: (v) => (UUID_RE.test(v) ? v.toLowerCase() : undefined),
  }),
  ordering: single<Ordering>({
    description: 'Sort order; a leading "-" means descending. Ties are broken by id.',
    allowed: ORDERINGS,
    schema: { type: 'string', enum: [...ORDERINGS], default: '-observed_at' },
    one: (v) => ((ORDERINGS as readonly string[]).includes(v) ? (v as Ordering) : undefined),
  }),
  limit: single<number>({
    description: `Page size, 1 to ${MAX_PAGE_LIMIT}.`,
    allowed: `an integer from 1 to ${MAX_PAGE_LIMIT}`,
    schema: { type: 'string', pattern: '^[1-9][0-9]{0,3}$', example: String(DEFAULT_PAGE_LIMIT), default: String(DEFAULT_PAGE_LIMIT) },
    one: (v) => (/^\d{1,4}$/.test(v) && Number(v) >= 1 && Number(v) <= MAX_PAGE_LIMIT ? Number(v) : undefined),
  }),
  cursor: single<PageCursor>({
    description: 'The next_cursor of the previous page (opaque). Send the same filters and ordering with it.',
    allowed: 'the next_cursor value of a previous page, unchanged',
    schema: { type: 'string', maxLength: 512, pattern: '^[A-Za-z0-9_-]+$' },
    one: (v) => decodeCursor(v) ?? undefined,
  }),
  window: single<number>({
    description: `Statistics over this long before now: 20m, 1h, 7d ... (instead of since/until), at most ${MAX_STATS_RANGE}. Default 20m.`,
    allowed: `a duration such as 90s, 20m, 1h, 7d, 2w (at most ${MAX_STATS_RANGE})`,
    schema: { type: 'string', example: '20m', default: '20m' },
    one: (v) => {
      const ms = parseDuration(v);
      return ms !== null && ms <= MAX_STATS_RANGE_MS ? ms : undefined;
    },
  }),
  bucket: single<number>({
    description: 'Bucket width of the timeseries: 1m, 5m, 1h, 1d ... (at least 1s).',
    allowed: 'a duration of at least 1s such as 1m, 5m, 1h, 1d',
    schema: { type: 'string', example: '1m', default: '1m' },
    one: (v) => {
      const ms = parseDuration(v);
      return ms !== null && ms >= 1000 && ms % 1000 === 0 ? ms : undefined;
    },
  }),
} as const;

export type ParamName = keyof typeof PARAMS;
type ParamValue<N extends ParamName> = (typeof PARAMS)[N] extends ParamSpec<infer T> ? T : never;
export type ParsedParams<N extends ParamName> = { [K in N]?: ParamValue<K> };

/**
 * Parses a query object (fastify's: each value a string or, when repeated, an array of strings) against the named
 * parameters. Unknown parameters, repeated single-valued ones and bad values throw `BadRequestError`.
 */
export function parseParams<N extends ParamName>(names: readonly N[], query: unknown, now: number): ParsedParams<N> {
  const raw = (query && typeof query === 'object' ? query : {}) as Record<string, Raw | unknown>;
  const allowedNames = names as readonly string[];
  for (const key of Object.keys(raw)) {
    if (!allowedNames.includes(key)) throw new BadRequestError(key, raw[key], allowedNames.length ? allowedNames : 'no query parameters');
  }
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const value = raw[name];
    if (value === undefined) continue;
    const spec = PARAMS[name] as ParamSpec<unknown>;
    const values = Array.isArray(value) ? value : [value];
    if (!values.every((v): v is string => typeof v === 'string') || values.length > MAX_PAIRS) {
      throw new BadRequestError(name, value, spec.allowed);
    }
    if (values.length > 1 && !spec.repeatable) throw new BadRequestError(name, value, `a single value: ${describeAllowed(spec.allowed)}`);
    const parsed = spec.parse(values, { now });
    if (parsed === undefined) throw new BadRequestError(name, value, spec.allowed);
    out[name] = parsed;
  }
  return out as ParsedParams<N>;
}

function describeAllowed(allowed: string | readonly string[]): string {
  return typeof allowed === 'string' ? allowed : `one of ${allowed.join(', ')}`;
}

/** Throws when both ends of a range are given and `until` is not after `since`. */
export function checkRange(since: Instant | undefined, until: Instant | undefined, untilRaw: unknown): void {
  if (since && until && until.ms <= since.ms) throw new BadRequestError('until', untilRaw, `a time after since (${since.iso})`);
}

/**
 * Throws when a statistics range is longer than MAX_STATS_RANGE_MS, naming `since` (the end that makes it long) or,
 * when since was not given, `until`.
 */
export function checkStatsSpan(sinceMs: number, untilMs: number, raw: Record<string, unknown>): void {
  if (untilMs - sinceMs <= MAX_STATS_RANGE_MS) return;
  const until = new Date(untilMs).toISOString();
  if (raw.since !== undefined) throw new BadRequestError('since', raw.since, `a time at most ${MAX_STATS_RANGE} before until (${until})`);
  throw new BadRequestError('until', raw.until, `a time at most ${MAX_STATS_RANGE} after since`);
}

/** Builds the alert filter from parsed parameters (shared by the list, the CSV export and the CLI). */
export function toAlertFilter(p: ParsedParams<'pair' | 'direction' | 'since' | 'until' | 'min_change' | 'silenced' | 'silenced_by'>, rawQuery: unknown): AlertFilter {
  const raw = rawQuery as Record<string, unknown> | undefined;
  checkRange(p.since, p.until, raw?.until);
  if (p.silenced === false && p.silenced_by !== undefined) throw new BadRequestError('silenced', raw?.silenced, 'true or no silenced parameter along with silenced_by (the alerts a silence muted are silenced)');
  return { pairs: p.pair ?? [], direction: p.direction, since: p.since, until: p.until, minChange: p.min_change, silenced: p.silenced, silencedBy: p.silenced_by };
}

/** Default window of GET /stats and `alerts stats`. */
export const DEFAULT_STATS_WINDOW = '20m';

/** A resolved statistics range. */
export interface StatsRange {
  readonly since: string;
  readonly until?: string;
  /** The window as the client wrote it, or null for since/until. */
  readonly window: string | null;
  /**
   * The same range in a form equal for every request meaning the same thing at any moment, for caches: the window in
   * ms (`60m` and `1h` alike), a relative time as its distance from now, an absolute time as its instant.
   */
  readonly key: string;
}

/** Cache-key part of one end of a range: relative times by their distance from now, absolute ones by their instant. */
export function instantKey(instant: Instant | undefined, raw: unknown): string {
  if (!instant) return 'now';
  if (typeof raw === 'string') {
    const relative = parseDuration(raw);
    if (relative !== null) return `-${relative}`;
  }
  // Microseconds beyond the millisecond are part of the instant Postgres compares against.
  const micros = /\.\d{3}(\d{1,3})/.exec(instant.iso)?.[1] ?? '';
  return `${instant.ms}${micros ? `.${micros}` : ''}`;
}

/**
 * The range statistics cover: `window` before now (default 20m), or since/until; never both, and at most
 * MAX_STATS_RANGE long (until defaults to now).
 */
export function resolveStatsRange(p: ParsedParams<'window' | 'since' | 'until'>, rawQuery: unknown, now: number): StatsRange {
  const raw = (rawQuery ?? {}) as Record<string, unknown>;
  if (p.window !== undefined && (p.since || p.until)) throw new BadRequestError('window', raw.window, 'either window or since/until, not both');
  checkRange(p.since, p.until, raw.until);
  if (p.since) {
    checkStatsSpan(p.since.ms, p.until?.ms ?? now, raw);
    return { since: p.since.iso, until: p.until?.iso, window: null, key: `${instantKey(p.since, raw.since)}..${instantKey(p.until, raw.until)}` };
  }
  const window = typeof raw.window === 'string' ? raw.window.trim() : DEFAULT_STATS_WINDOW;
  const windowMs = p.window ?? (parseDuration(DEFAULT_STATS_WINDOW) as number);
  return { since: new Date(now - windowMs).toISOString(), until: p.until?.iso, window, key: `w${windowMs}..${instantKey(p.until, raw.until)}` };
}

/** Parameters of `GET /alerts`. */
export const ALERT_LIST_PARAMS = ['pair', 'direction', 'since', 'until', 'min_change', 'silenced', 'silenced_by', 'ordering', 'limit', 'cursor'] as const satisfies readonly ParamName[];
/** Parameters of `GET /alerts.csv`: the list's filters and ordering, and no limit (every matching row is streamed). */
export const ALERT_CSV_PARAMS = ['pair', 'direction', 'since', 'until', 'min_change', 'silenced', 'silenced_by', 'ordering', 'cursor'] as const satisfies readonly ParamName[];
export const STATS_PARAMS = ['window', 'since', 'until', 'pair'] as const satisfies readonly ParamName[];
export const TIMESERIES_PARAMS = ['bucket', 'since', 'until', 'pair', 'direction'] as const satisfies readonly ParamName[];

/** OpenAPI `parameters` for a route's query string. */
export function openApiQueryParameters(names: readonly ParamName[]): Record<string, unknown>[] {
  return names.map((name) => {
    const spec = PARAMS[name] as ParamSpec<unknown>;
    return { name, in: 'query', required: false, description: spec.description, schema: spec.schema, ...(spec.repeatable ? { explode: true } : {}) };
  });
}
