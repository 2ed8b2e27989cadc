import { BOT_ID_RE } from '../contract/alert';
import { readBotStatus, readFleet, type FleetEntry } from '../contract/fleet-status';
import type { Redis } from '../platform/redis';
import type { RedisKeys } from '../contract/redis-keys';
import { BadRequestError } from './bad-request';

/**
 * The fleet as the API and the CLI show it: every bot's last heartbeat in the HTTP wire shape (snake_case), with the
 * retention that keeps bots gone long ago out, and the removal an operator asks for.
 */

/** Default FLEET_RETENTION: a bot gone for a day leaves the fleet table. */
export const DEFAULT_FLEET_RETENTION_MS = 24 * 3_600_000;

/** A bot as the API and the CLI show it: the heartbeat's fields in snake_case, absent values as null. */
export interface FleetItem {
  readonly bot_id: string;
  readonly pair: string;
  readonly status: string;
  readonly stale: boolean;
  readonly last_price: string | null;
  readonly last_fetch_at: string | null;
  readonly last_price_at: string | null;
  readonly reference_price: string | null;
  readonly consecutive_errors: number;
  readonly last_error: string | null;
  readonly started_at: string;
  readonly heartbeat_at: string;
  readonly ttl_ms: number;
  readonly rate_limited: boolean;
  readonly effective_interval_ms: number;
  /** `pair` or `list:<QUOTE>`: how the last price was fetched; null from older workers. */
  readonly fetch: string | null;
  /** Age of the last price when the bot read it, in ms; null from older workers. */
  readonly price_age_ms: number | null;
  readonly alerts_published: number;
  readonly alerts_dropped: number;
  readonly alerts_queued: number;
  /** Alerts the cooldown suppressed since the bot started; null from older workers. */
  readonly alerts_suppressed: number | null;
  /** Why the bot is exhausted or expired; null otherwise. */
  readonly status_reason: string | null;
  readonly config: Record<string, unknown>;
  /** The worker process that wrote the heartbeat (null from older workers). */
  readonly worker_id: string | null;
  /** `compose` (declared with PAIR) or `api` (a runtime bot held through a lease); null from older workers. */
  readonly source: string | null;
  readonly service: string | null;
  /** A runtime bot's settings version; null for a compose bot. */
  readonly bot_version: number | null;
}

export function toFleetItem(e: FleetEntry): FleetItem {
  return {
    bot_id: e.botId,
    pair: e.pair,
    status: e.status,
    stale: e.stale,
    last_price: e.lastPrice ?? null,
    last_fetch_at: e.lastFetchAt ?? null,
    last_price_at: e.lastPriceAt ?? null,
    reference_price: e.referencePrice ?? null,
    consecutive_errors: e.consecutiveErrors,
    last_error: e.lastError ?? null,
    started_at: e.startedAt,
    heartbeat_at: e.heartbeatAt,
    ttl_ms: e.ttlMs,
    rate_limited: e.rateLimited,
    effective_interval_ms: e.effectiveIntervalMs,
    fetch: e.fetch ?? null,
    price_age_ms: e.priceAgeMs ?? null,
    alerts_published: e.alertsPublished,
    alerts_dropped: e.alertsDropped,
    alerts_queued: e.alertsQueued,
    alerts_suppressed: e.alertsSuppressed ?? null,
    status_reason: e.statusReason ?? null,
    config: { ...e.config },
    worker_id: e.workerId ?? null,
    source: e.source ?? null,
    service: e.service ?? null,
    bot_version: e.botVersion ?? null,
  };
}

/**
 * Forgets a bot whose last heartbeat is still the one we judged (`heartbeatAt`), atomically: a bot that reported again
 * meanwhile keeps its entry.
 */
const FORGET_IF_UNCHANGED = `
local last = redis.call('HGET', KEYS[1], ARGV[1])
if not last then return 0 end
local ok, hash = pcall(cjson.decode, last)
if ok and type(hash) == 'table' and hash.heartbeatAt ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1`;

/** True when a bot is gone (stopped, or its heartbeat expired) and its last heartbeat is older than the retention. */
export function isPastRetention(entry: FleetEntry, now: number, retentionMs: number): boolean {
  return (entry.stale || entry.status === 'stopped') && now - Date.parse(entry.heartbeatAt) > retentionMs;
}

/**
 * Every bot's heartbeat, stale ones included, from Redis; bots past the retention are left out and removed from Redis,
 * so the fleet does not grow with every bot that ever ran.
 */
export async function readFleetItems(redis: Redis, keys: RedisKeys, now: number, retentionMs = DEFAULT_FLEET_RETENTION_MS): Promise<FleetItem[]> {
  const entries = await readFleet(redis, keys, now);
  const gone = entries.filter((e) => isPastRetention(e, now, retentionMs));
  await Promise.all(gone.map((e) => redis.eval(FORGET_IF_UNCHANGED, 2, keys.botsLastSeen, keys.botStatus(e.botId), e.botId, e.heartbeatAt)));
  return entries.filter((e) => !gone.includes(e)).map(toFleetItem);
}

/**
 * Removes a bot from the fleet now (its live status and last-seen copy). `removed` is false when no such bot reported;
 * `last` is the bot as the fleet showed it just before (null when its heartbeat could not be read).
 */
export async function removeBot(redis: Redis, keys: RedisKeys, botId: string, now = Date.now()): Promise<{ removed: boolean; last: FleetItem | null }> {
  const entry = await readBotStatus(redis, keys, botId, now);
  const results = await redis.multi().del(keys.botStatus(botId)).hdel(keys.botsLastSeen, botId).exec();
  const removed = (results ?? []).some(([err, n]) => !err && Number(n) > 0);
  return { removed, last: entry ? toFleetItem(entry) : null };
}

/** The 400 for a bot id that no worker could have (BOT_ID's own rule). */
export function checkBotId(botId: string, parameter = 'bot_id'): void {
  if (!BOT_ID_RE.test(botId)) throw new BadRequestError(parameter, botId, '1-64 characters: letters, digits, ".", "_", ":", "-"');
}

/**
 * Moves the last-seen copies an older version kept under `legacyBotsLastSeen` (before hash tags) into `botsLastSeen`,
 * keeping any newer copy already there, then deletes the old hash: the fleet table still shows the bots that have not
 * reported since the upgrade. Returns how many bots were moved; a no-op once done.
 */
export async function adoptLegacyLastSeen(redis: Redis, keys: RedisKeys): Promise<number> {
  if (keys.legacyBotsLastSeen === keys.botsLastSeen) return 0;
  const old = await redis.hgetall(keys.legacyBotsLastSeen);
  const botIds = Object.keys(old);
  // Field by field (HSETNX): a bot that reported to the new hash meanwhile keeps its newer copy.
  await Promise.all(botIds.map((botId) => redis.hsetnx(keys.botsLastSeen, botId, old[botId]!)));
  if (botIds.length > 0) await redis.del(keys.legacyBotsLastSeen);
  return botIds.length;
}
