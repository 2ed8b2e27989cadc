import { z } from 'zod';
import { BOT_ID_RE, PairSchema } from '../../shared/contract/alert';
import type { Redis } from '../../shared/platform/redis';
import type { RedisKeys } from '../../shared/contract/redis-keys';

/** Most ticks one `/ticks` request returns. A worker polling every second writes 3,600 an hour. */
export const TICKS_MAX_LIMIT = 5000;
/** @defaultValue 1000 */
export const TICKS_DEFAULT_LIMIT = 1000;
/** Longest price, time or bot id read from a tick entry: a plain decimal has at most 61 characters. */
const TICK_FIELD_MAX_CHARS = 64;
/** When `since` is absent, the last hour (about what the capped stream keeps). */
export const TICKS_DEFAULT_WINDOW_MS = 60 * 60 * 1000;

/** A point in time given as ISO-8601 or as epoch milliseconds; parsed to epoch ms. */
const instant = z
  .string()
  .trim()
  .refine((s) => (/^\d{1,15}$/.test(s) ? true : /^\d{4}-\d{2}-\d{2}T/.test(s) && Number.isFinite(Date.parse(s))), 'an ISO-8601 time such as 2026-11-29T20:00:00Z, or epoch milliseconds')
  .transform((s) => (/^\d+$/.test(s) ? Number(s) : Date.parse(s)));

/** Query of `GET /ticks`. Each field's message completes "expected ...". */
export const TicksQuerySchema = z.object({
  pair: z.string().trim().toUpperCase().pipe(PairSchema),
  since: instant.optional(),
  limit: z
    .string()
    .trim()
    .regex(/^\d{1,6}$/, `an integer from 1 to ${TICKS_MAX_LIMIT}`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= TICKS_MAX_LIMIT, `an integer from 1 to ${TICKS_MAX_LIMIT}`)
    .optional(),
});

export interface TicksQuery {
  readonly pair: string;
  /** Epoch ms; ticks strictly older are left out. */
  readonly since: number;
  readonly limit: number;
}

/** One tick as `GET /ticks` answers it, read from the entry a worker wrote into `keys.ticks(pair)`; decimals stay exact strings. */
export interface Tick {
  /** ISO-8601 time of the fetch. */
  readonly at: string;
  readonly price: string;
  readonly ask?: string;
  readonly bid?: string;
  /** The bot that fetched it (snake_case, as every HTTP field; the stream entry's own field is `botId`). */
  readonly bot_id?: string;
}

export type TicksQueryResult = { ok: true; query: TicksQuery } | { ok: false; parameter: string; value: unknown; allowed: string };

/** Validates a raw query string object; on failure names the first bad parameter, its value and what is allowed. */
export function parseTicksQuery(raw: unknown, now = Date.now()): TicksQueryResult {
  const input = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  for (const [name, value] of Object.entries(input)) {
    // A repeated parameter arrives as an array: say so rather than guessing which one was meant.
    if (Array.isArray(value)) return { ok: false, parameter: name, value, allowed: 'a single value' };
  }
  const parsed = TicksQuerySchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const parameter = String(issue?.path[0] ?? 'query');
    const allowed = parameter === 'pair' && input.pair === undefined ? 'a pair such as BTC-USD (required)' : (issue?.message ?? 'a valid value');
    return { ok: false, parameter, value: input[parameter] ?? null, allowed };
  }
  return {
    ok: true,
    query: {
      pair: parsed.data.pair,
      since: parsed.data.since ?? now - TICKS_DEFAULT_WINDOW_MS,
      limit: parsed.data.limit ?? TICKS_DEFAULT_LIMIT,
    },
  };
}

function toIso(at: string | undefined, streamId: string): string {
  if (at && /^\d{1,15}$/.test(at)) return new Date(Number(at)).toISOString();
  if (at && Number.isFinite(Date.parse(at))) return new Date(Date.parse(at)).toISOString();
  // The stream id starts with the epoch ms it was added at: close enough when `at` is missing.
  return new Date(Number(streamId.split('-')[0])).toISOString();
}

/**
 * Reads the most recent `limit` ticks of a pair at or after `since`, oldest first.
 * Entry ids are XADD `*` ids, so their millisecond part bounds the range without scanning older entries.
 */
export async function readTicks(redis: Redis, keys: RedisKeys, query: TicksQuery): Promise<Tick[]> {
  const entries = await redis.xrevrange(keys.ticks(query.pair), '+', String(Math.max(0, Math.floor(query.since))), 'COUNT', query.limit);
  const ticks: Tick[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const [id, flat] = entries[i]!;
    const fields: Record<string, string> = {};
    for (let j = 0; j + 1 < flat.length; j += 2) fields[flat[j]!] = flat[j + 1]!;
    // A tick without a usable price cannot be drawn; skip it rather than fail the whole request. Fields longer than any
    // real price or bot id are dropped, so one hostile entry cannot bloat the answer.
    if (!fields.price || fields.price.length > TICK_FIELD_MAX_CHARS || !Number.isFinite(Number(fields.price))) continue;
    const short = (v: string | undefined) => (v && v.length <= TICK_FIELD_MAX_CHARS ? v : undefined);
    const ask = short(fields.ask);
    const bid = short(fields.bid);
    ticks.push({
      at: toIso(short(fields.at), id),
      price: fields.price,
      ...(ask ? { ask } : {}),
      ...(bid ? { bid } : {}),
      ...(fields.botId && BOT_ID_RE.test(fields.botId) ? { bot_id: fields.botId } : {}),
    });
  }
  return ticks;
}
