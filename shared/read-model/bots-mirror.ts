import type { Knex } from '../platform/db';
import type { Redis } from '../platform/redis';
import type { RedisKeys } from '../contract/redis-keys';
import { parseDesiredBot, serializeDesiredBot } from '../contract/bots';
import { toBotItem, toDesiredBot } from './bots-repository';

/**
 * The Redis mirror of the runtime bots (`keys.desiredBots`, see shared/contract/bots.ts), rewritten from the `bots`
 * table. It works from current state only: every runtime bot whose entry is missing, unreadable or at another version
 * is written, every entry without a runtime bot is removed, so running it again changes nothing and running it after
 * anything (a change, a lost hash, a Redis flush) converges on the table.
 *
 * Several writers (masters, the CLI) run it under one Postgres advisory lock held for the transaction: each run reads
 * the table after the previous one wrote Redis, so a run that read an older table can never overwrite a newer entry,
 * nor remove a bot created just after its read.
 */

/** Advisory lock key (per database) serialising mirror rewrites. */
const MIRROR_LOCK = 'tickwatch:bots-mirror';

export interface MirrorResult {
  /** Bot ids written (new or changed). */
  readonly written: readonly string[];
  /** Bot ids removed from the mirror. */
  readonly removed: readonly string[];
}

export async function reconcileDesiredBots(db: Knex, redis: Redis, keys: RedisKeys): Promise<MirrorResult> {
  return db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [MIRROR_LOCK]);
    // In id order: the mirror is written the same way every time, whatever order the table's rows are stored in.
    const rows = await trx('bots').select('*').where({ source: 'api' }).orderBy('bot_id');
    const bots = new Map(rows.map((r) => [r.bot_id as string, toDesiredBot(toBotItem(r))]));
    const mirrored = await redis.hgetall(keys.desiredBots);
    const written: string[] = [];
    const removed: string[] = [];
    const multi = redis.multi();
    for (const [botId, bot] of bots) {
      const current = mirrored[botId];
      const parsed = current === undefined ? null : parseDesiredBot(current);
      const text = serializeDesiredBot(bot);
      if (parsed?.ok && parsed.bot.version === bot.version && current === text) continue;
      multi.hset(keys.desiredBots, botId, text);
      written.push(botId);
    }
    for (const botId of Object.keys(mirrored)) {
      if (!bots.has(botId)) {
        multi.hdel(keys.desiredBots, botId);
        removed.push(botId);
      }
    }
    if (written.length + removed.length > 0) {
      const results = (await multi.exec()) ?? [];
      const failed = results.find(([err]) => err);
      if (failed) throw failed[0] as Error;
    } else {
      multi.discard();
    }
    return { written, removed };
  });
}

/**
 * Forgets what a bot's rule published (its `max_alerts` count and cooldown times, `keys.ruleState`): run after a bot is
 * created (a new bot with an old bot's id starts from nothing) and after it is deleted (nothing left behind).
 */
export async function forgetRuleState(redis: Redis, keys: RedisKeys, bot: { readonly pair: string; readonly bot_id: string }): Promise<void> {
  await redis.del(keys.ruleState(bot.pair, bot.bot_id));
}

/** Tells the bot's holder (and every idle worker) that it changed: they re-read the mirror at once. */
export async function announceBotChange(redis: Redis, keys: RedisKeys, botId: string): Promise<void> {
  await redis.publish(keys.botsChangedChannel, botId);
}
