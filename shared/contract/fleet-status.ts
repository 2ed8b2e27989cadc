import { z } from 'zod';
import type { Cluster, Redis as Server } from 'ioredis';
import type { RedisKeys } from './redis-keys';
import { BotConfigSnapshotSchema, sizeProblem, type BotConfigSnapshot } from './alert';

/** One Redis server or a Redis Cluster (the platform's `Redis`; the contract cannot import the platform). */
type Redis = Server | Cluster;

/** `exhausted` / `expired`: the bot's rule is done (max_alerts published, expires_at passed); it no longer polls nor alerts. */
export const BOT_STATUSES = ['ok', 'degraded', 'unhealthy', 'invalid-pair', 'stopped', 'exhausted', 'expired'] as const;
export type BotState = (typeof BOT_STATUSES)[number];

/** A bot's heartbeat, as the worker writes it into the hash `bot:<botId>` (every field a string in Redis). */
export interface BotStatus {
  readonly botId: string;
  readonly pair: string;
  readonly status: BotState;
  /** Last valid price, exact decimal string; absent before the first one. */
  readonly lastPrice?: string;
  /** ISO time of the last fetch attempt. */
  readonly lastFetchAt?: string;
  /** ISO time of the last valid price. */
  readonly lastPriceAt?: string;
  readonly referencePrice?: string;
  readonly consecutiveErrors: number;
  readonly lastError?: string;
  readonly startedAt: string;
  /** ISO time this heartbeat was written. */
  readonly heartbeatAt: string;
  /** The heartbeat counts as expired after this many ms (the hash TTL). */
  readonly ttlMs: number;
  /** True while the shared ticker budget slows this bot below its configured rate. */
  readonly rateLimited: boolean;
  /** Effective poll interval right now (ms), which rises above config.intervalMs when the budget is short. */
  readonly effectiveIntervalMs: number;
  /** How the last price was fetched: `pair` (its own endpoint) or `list:<QUOTE>` (the shared list). Absent from older workers. */
  readonly fetch?: string;
  /** Age of the last price when the bot read it (ms since its request was sent; 0 for its own request). */
  readonly priceAgeMs?: number;
  readonly alertsPublished: number;
  readonly alertsDropped: number;
  readonly alertsQueued: number;
  /** Alerts the cooldown suppressed (counted, not published) since the bot started. Absent from older workers. */
  readonly alertsSuppressed?: number;
  /** Why the status is `exhausted` or `expired`, in words (e.g. "published 1 of max_alerts 1"). */
  readonly statusReason?: string;
  readonly config: BotConfigSnapshot;
  /** The worker process (WORKER_ID) that wrote this heartbeat. Absent in heartbeats of older workers. */
  readonly workerId?: string;
  /** `compose` for a bot a worker was started with (PAIR set), `api` for a runtime bot held through a lease. */
  readonly source?: BotSource;
  /** The compose service that declares the worker (COMPOSE_SERVICE), when set. */
  readonly service?: string;
  /** A runtime bot's version the worker is applying. */
  readonly botVersion?: number;
  /** The generation of the lease the worker holds the runtime bot under (the number in its fencing token). */
  readonly leaseGeneration?: number;
}

export const BOT_SOURCES = ['compose', 'api'] as const;
export type BotSource = (typeof BOT_SOURCES)[number];

/**
 * Largest heartbeat read back from Redis (the JSON copy in `bots:last-seen`, or the `config` field), in bytes. A real one
 * is under 2 KiB; a larger value is treated as unreadable and never parsed.
 */
export const BOT_STATUS_MAX_BYTES = 16 * 1024;

const optionalString = z.string().optional().transform((s) => (s === '' ? undefined : s));
const BotStatusHashSchema = z.object({
  botId: z.string(),
  pair: z.string(),
  status: z.enum(BOT_STATUSES),
  lastPrice: optionalString,
  lastFetchAt: optionalString,
  lastPriceAt: optionalString,
  referencePrice: optionalString,
  consecutiveErrors: z.coerce.number().int().nonnegative(),
  lastError: optionalString,
  startedAt: z.string(),
  heartbeatAt: z.string(),
  ttlMs: z.coerce.number().int().positive(),
  rateLimited: z.enum(['true', 'false']).transform((s) => s === 'true'),
  effectiveIntervalMs: z.coerce.number().int().positive(),
  // Informational: an odd value is dropped rather than hiding the whole heartbeat.
  fetch: z.string().regex(/^(pair|list:[A-Z0-9]{1,16})$/).optional().catch(undefined),
  priceAgeMs: z.coerce.number().int().nonnegative().optional().catch(undefined),
  alertsPublished: z.coerce.number().int().nonnegative(),
  alertsDropped: z.coerce.number().int().nonnegative(),
  alertsQueued: z.coerce.number().int().nonnegative(),
  alertsSuppressed: z.coerce.number().int().nonnegative().optional().catch(undefined),
  statusReason: optionalString,
  config: z.string().transform((s, ctx) => {
    const oversized = sizeProblem(s, BOT_STATUS_MAX_BYTES, 'config');
    if (oversized) {
      ctx.addIssue({ code: 'custom', message: oversized });
      return z.NEVER;
    }
    try {
      return BotConfigSnapshotSchema.parse(JSON.parse(s));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'config is not a bot config snapshot' });
      return z.NEVER;
    }
  }),
  workerId: optionalString,
  source: z.enum(BOT_SOURCES).optional(),
  service: optionalString,
  botVersion: z.coerce.number().int().positive().optional(),
  leaseGeneration: z.coerce.number().int().positive().optional(),
});

function toHash(status: BotStatus): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(status)) {
    if (v === undefined) continue;
    out[k] = k === 'config' ? JSON.stringify(v) : String(v);
  }
  return out;
}

function fromHash(hash: Record<string, string>): BotStatus | null {
  const parsed = BotStatusHashSchema.safeParse(hash);
  return parsed.success ? (parsed.data as BotStatus) : null;
}

/** Writes a heartbeat: the live hash (expiring after `status.ttlMs`) and the never-expiring last-seen copy. */
export async function writeBotStatus(redis: Redis, keys: RedisKeys, status: BotStatus): Promise<void> {
  const key = keys.botStatus(status.botId);
  const hash = toHash(status);
  await redis
    .multi()
    .del(key)
    .hset(key, hash)
    .pexpire(key, status.ttlMs)
    .hset(keys.botsLastSeen, status.botId, JSON.stringify(hash))
    .exec();
}

/** A bot as the fleet table shows it: its last heartbeat, and `stale` when that heartbeat expired. */
export interface FleetEntry extends BotStatus {
  readonly stale: boolean;
}

/** Reads one bot's status; null if it never reported. */
export async function readBotStatus(redis: Redis, keys: RedisKeys, botId: string, now = Date.now()): Promise<FleetEntry | null> {
  const live = await redis.hgetall(keys.botStatus(botId));
  const liveStatus = Object.keys(live).length > 0 ? fromHash(live) : null;
  if (liveStatus) return { ...liveStatus, stale: now - Date.parse(liveStatus.heartbeatAt) > liveStatus.ttlMs };
  const last = await redis.hget(keys.botsLastSeen, botId);
  if (!last || sizeProblem(last, BOT_STATUS_MAX_BYTES, 'heartbeat')) return null;
  try {
    const status = fromHash(JSON.parse(last) as Record<string, string>);
    return status ? { ...status, stale: true } : null;
  } catch {
    return null;
  }
}

/** Every bot that ever reported on this Redis (prefix), sorted by pair then botId. */
export async function readFleet(redis: Redis, keys: RedisKeys, now = Date.now()): Promise<FleetEntry[]> {
  const botIds = await redis.hkeys(keys.botsLastSeen);
  const entries = await Promise.all(botIds.map((id) => readBotStatus(redis, keys, id, now)));
  return entries
    .filter((e): e is FleetEntry => e !== null)
    .sort((a, b) => a.pair.localeCompare(b.pair) || a.botId.localeCompare(b.botId));
}
