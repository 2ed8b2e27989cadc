import { z } from 'zod';
import { BotIdSchema, PairSchema, PRICE_FIELDS, REFERENCE_MODES, RULES, type PriceField, type ReferenceMode } from './alert';
import type { Cluster, Redis as Server } from 'ioredis';
import type { RedisKeys } from './redis-keys';

/** One Redis server or a Redis Cluster (the platform's `Redis`; the contract cannot import the platform). */
type Redis = Server | Cluster;

/**
 * Runtime bots: the desired state the master keeps in Postgres (`bots` table) and mirrors into Redis, so that generic
 * workers (started without PAIR) need only Redis to find a bot to watch.
 *
 * Mirror (key names in `redis-keys.ts`): the hash `keys.desiredBots` maps bot id -> `serializeDesiredBot(bot)`, one field per runtime bot (disabled ones
 * included, with `enabled: false`). The master rewrites it from Postgres on every change and in a reconcile loop, so it
 * converges on the table whatever was lost; workers only read it. After each change the master also publishes the bot id
 * on `keys.botsChangedChannel`, a nudge for holders to re-read at once (they re-read on every tick anyway).
 *
 * Ownership: a worker watches a bot only while it holds the bot's lease `keys.botLease(botId, pair)`, whose value is the
 * fencing token `<workerId>:<generation>` (generation from INCR on `keys.botLeaseGeneration(botId, pair)`, so it only
 * grows). Both keys carry the pair's hash tag: a bot moved to another pair is claimed afresh under the new pair's keys.
 */

/** A runtime bot's settings as every worker and the master agree on them. */
export const DesiredBotSchema = z.object({
  botId: BotIdSchema,
  pair: PairSchema,
  intervalMs: z.number().int().min(100).max(86_400_000),
  thresholdPercent: z.string().regex(/^(?:0|[1-9]\d*)(?:\.\d+)?$/),
  priceField: z.enum(PRICE_FIELDS),
  referenceMode: z.enum(REFERENCE_MODES),
  // The alert rule (worker/rules.ts); absent in entries of older masters, which meant the defaults.
  rule: z.enum(RULES).optional(),
  windowMs: z.number().int().positive().nullable().optional(),
  pendingPolls: z.number().int().positive().optional(),
  cooldownMs: z.number().int().nonnegative().optional(),
  /** null: unlimited. */
  maxAlerts: z.number().int().positive().nullable().optional(),
  /** ISO-8601 UTC; null: never. */
  expiresAt: z.string().datetime({ offset: false }).nullable().optional(),
  enabled: z.boolean(),
  /** Grows on every change of the bot; alerts carry the version they were evaluated with. */
  version: z.number().int().positive(),
});
export type DesiredBot = Readonly<z.infer<typeof DesiredBotSchema>> & { readonly priceField: PriceField; readonly referenceMode: ReferenceMode };

/** Largest desired-bot entry read back from Redis, in bytes (a real one is about 200). */
export const MAX_DESIRED_BOT_BYTES = 4096;

export function serializeDesiredBot(bot: DesiredBot): string {
  return JSON.stringify(DesiredBotSchema.parse(bot));
}

/** Never throws: a bad entry is `{ ok: false, reason }` naming what is wrong. */
export function parseDesiredBot(text: string): { ok: true; bot: DesiredBot } | { ok: false; reason: string } {
  if (text.length > MAX_DESIRED_BOT_BYTES) return { ok: false, reason: `entry is ${text.length} bytes, more than ${MAX_DESIRED_BOT_BYTES}` };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const parsed = DesiredBotSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, reason: `${issue.path.join('.') || 'entry'}: ${issue.message}` };
  }
  return { ok: true, bot: parsed.data };
}

/** Who holds a runtime bot's lease right now. */
export interface BotHolder {
  readonly workerId: string;
  readonly generation: number;
  /** Time left on the lease; the holder renews it long before it runs out. */
  readonly ttlMs: number;
}

/** The fencing token a lease holds: `<workerId>:<generation>`. */
export function leaseToken(workerId: string, generation: number): string {
  return `${workerId}:${generation}`;
}

/** Splits a fencing token at its last `:` (a worker id may contain `:`); null when it is not one. */
export function parseLeaseToken(token: string): { workerId: string; generation: number } | null {
  const at = token.lastIndexOf(':');
  if (at <= 0) return null;
  const generation = Number(token.slice(at + 1));
  if (!Number.isSafeInteger(generation) || generation <= 0) return null;
  return { workerId: token.slice(0, at), generation };
}

/** The current holder of a bot's lease, or null when no worker holds it (never claimed, released or expired). */
export async function readBotHolder(redis: Redis, keys: RedisKeys, botId: string, pair: string): Promise<BotHolder | null> {
  const key = keys.botLease(botId, pair);
  const results = await redis.multi().get(key).pttl(key).exec();
  if (!results) throw new Error('MULTI was discarded');
  const [getErr, token] = results[0] ?? [null, null];
  const [ttlErr, ttl] = results[1] ?? [null, null];
  if (getErr) throw getErr;
  if (ttlErr) throw ttlErr;
  if (typeof token !== 'string') return null;
  const parsed = parseLeaseToken(token);
  const ttlMs = Number(ttl);
  if (!parsed || !(ttlMs > 0)) return null;
  return { ...parsed, ttlMs };
}
