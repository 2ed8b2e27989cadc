import { leaseToken, parseDesiredBot, readBotHolder, type DesiredBot } from '../shared/contract/bots';
import type { Redis } from '../shared/platform/redis';
import type { RedisKeys } from '../shared/contract/redis-keys';

/**
 * Leases on runtime bots: a worker watches a bot only while `keys.botLease(botId, pair)` holds its fencing token
 * `<workerId>:<generation>`. Every operation is one Lua script, so claim, renew and release are atomic against each other
 * and against the fenced publish (`publisher.ts`).
 */

/** Who holds a bot now (re-exported from the contract, where the master reads it too). */
export { readBotHolder as readHolder };

/** A lease this worker holds. */
export interface LeaseGrant {
  readonly botId: string;
  /** The pair the bot had when claimed: its lease keys carry this pair's hash tag. */
  readonly pair: string;
  readonly token: string;
  readonly generation: number;
}

/**
 * Lease time to live for a bot polled every `intervalMs`: two intervals, at least 10 s. A spare worker re-checking every
 * second then polls a bot whose holder died within max(2 x interval, 10 s) + about 1 s, inside max(3 x interval, 15 s).
 */
export function leaseTtlMs(intervalMs: number): number {
  return Math.max(2 * intervalMs, 10_000);
}

/**
 * How long before the lease could expire the holder stops on its own when it cannot renew: long enough for a ticker
 * request started just before to end (its timeout) plus 1 s, at most half the TTL.
 */
export function leaseSafetyMarginMs(ttlMs: number, tickerTimeoutMs: number): number {
  return Math.min(tickerTimeoutMs + 1000, Math.floor(ttlMs / 2));
}

/**
 * KEYS[1] lease, KEYS[2] generation counter (one slot: both carry the pair's tag); ARGV[1] worker id, ARGV[2] TTL ms.
 * Claims a bot that nobody holds; returns the new generation, or nil.
 */
const CLAIM = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local generation = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. generation, 'NX', 'PX', ARGV[2])
return generation`;

/** PEXPIRE only while the lease still holds the caller's token (ARGV[1]); 1 when renewed. */
const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

/** DEL only while the lease still holds the caller's token; 1 when released. */
const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`;

/**
 * Claims `botId` for `workerId` if it is enabled in the mirror and free; null when it is not. The mirror (a hash of its
 * own) and the lease (in the bot's pair's slot) cannot share a script on a cluster, so the entry is read before the
 * claim and again after it: a bot paused, removed or moved to another pair meanwhile is released at once, never polled.
 */
export async function claimLease(redis: Redis, keys: RedisKeys, botId: string, workerId: string, ttlMs: number): Promise<LeaseGrant | null> {
  const before = await readEnabled(redis, keys, botId);
  if (!before) return null;
  const generation = await redis.eval(CLAIM, 2, keys.botLease(botId, before.pair), keys.botLeaseGeneration(botId, before.pair), workerId, String(ttlMs));
  if (generation === null || generation === undefined) return null;
  const n = Number(generation);
  const grant: LeaseGrant = { botId, pair: before.pair, token: leaseToken(workerId, n), generation: n };
  const after = await readEnabled(redis, keys, botId).catch(() => null);
  if (after?.pair !== before.pair) {
    await releaseLease(redis, keys, grant).catch(() => undefined);
    return null;
  }
  return grant;
}

/** The bot's mirror entry when it is there, readable and enabled; null otherwise. */
async function readEnabled(redis: Redis, keys: RedisKeys, botId: string): Promise<DesiredBot | null> {
  const text = await redis.hget(keys.desiredBots, botId);
  if (text === null) return null;
  const parsed = parseDesiredBot(text);
  return parsed.ok && parsed.bot.enabled && parsed.bot.botId === botId ? parsed.bot : null;
}

/** Extends the lease to `ttlMs` from now; false when the lease is no longer ours (expired, or another worker's). */
export async function renewLease(redis: Redis, keys: RedisKeys, grant: LeaseGrant, ttlMs: number): Promise<boolean> {
  return Number(await redis.eval(RENEW, 1, keys.botLease(grant.botId, grant.pair), grant.token, String(ttlMs))) === 1;
}

/** Gives the lease up; false when it was not ours any more (nothing is deleted then). */
export async function releaseLease(redis: Redis, keys: RedisKeys, grant: LeaseGrant): Promise<boolean> {
  return Number(await redis.eval(RELEASE, 1, keys.botLease(grant.botId, grant.pair), grant.token)) === 1;
}
