import type { Knex } from '../../shared/platform/db';
import { describeError } from '../../shared/platform/errors';
import type { Logger } from '../../shared/platform/logger';
import { createLoop } from '../../shared/platform/loop';
import type { Redis } from '../../shared/platform/redis';
import type { RedisKeys } from '../../shared/contract/redis-keys';
import { readFleet } from '../../shared/contract/fleet-status';
import { parseNewBot } from '../../shared/read-model/bot-settings';
import { announceBotChange, reconcileDesiredBots } from '../../shared/read-model/bots-mirror';
import type { BotsRepository } from '../../shared/read-model/bots-repository';

/**
 * The master's control-plane loop. Every BOTS_RECONCILE_MS it
 * 1. records compose bots: every live heartbeat whose source is `compose` gets (or keeps up to date) a `bots` row with
 *    source `compose` and its compose service, so the API shows it and refuses to change it; a compose row whose bot
 *    the fleet no longer lists (past FLEET_RETENTION, or removed with DELETE /fleet) is deleted;
 * 2. disables the runtime bots whose rule is done (actor `system`, audit action `exhausted` or `expired`): an enabled bot
 *    whose `expires_at` has passed, or whose rule state in Redis (`keys.ruleState`, written by the worker's publish
 *    script) counts `max_alerts` published alerts. Only at the version that finished: a bot changed meanwhile is judged
 *    again next round;
 * 3. rewrites the Redis mirror of the runtime bots from the table (bots-mirror.ts): new and changed entries written,
 *    vanished ones removed, and announces the bots it disabled.
 * Both steps work from current state and are idempotent, so any number of masters may run the loop at once (the
 * mirror rewrite is serialised by an advisory lock; the compose upsert by the row's primary key).
 *
 * `afterChange` is what the API calls once a change committed: one rewrite now, then the bot id on the change channel.
 */
export interface BotsReconciler {
  start(): void;
  /** Memoized; waits for the round in flight. */
  stop(): Promise<void>;
  /** Rewrites the mirror now and announces `botId`; never throws (the loop converges anyway), logs instead. */
  afterChange(botId: string): Promise<void>;
  /** One full round (compose upsert and mirror), for tests and the CLI's sake. */
  reconcileOnce(): Promise<void>;
}

export interface BotsReconcilerDeps {
  readonly db: Knex;
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly repository: BotsRepository;
  readonly logger: Logger;
  /** @defaultValue 2000 */
  readonly periodMs?: number;
  readonly now?: () => number;
}

/** Heartbeat fields of a generic-fleet worker (added to BotStatus alongside this loop; optional in older heartbeats). */
interface HeartbeatIdentity {
  readonly source?: string;
  readonly service?: string;
}

export function createBotsReconciler(deps: BotsReconcilerDeps): BotsReconciler {
  const { db, redis, keys, repository } = deps;
  const logger = deps.logger.child({ component: 'bots-reconciler' });
  const now = deps.now ?? Date.now;
  /** Compose bots whose heartbeat carried settings the worker schema refuses: warned about once each. */
  const warned = new Set<string>();

  async function recordComposeBots(): Promise<void> {
    const fleet = await readFleet(redis, keys, now());
    // A compose bot the fleet has forgotten (gone past FLEET_RETENTION, or removed with DELETE /fleet) leaves the table.
    const reported = new Set(fleet.map((e) => e.botId));
    for (const bot of await repository.list({ source: 'compose' })) {
      if (reported.has(bot.bot_id)) continue;
      if (await repository.removeCompose(bot.bot_id, `compose:${bot.service ?? bot.bot_id}`)) logger.info({ botId: bot.bot_id, service: bot.service }, 'compose bot left the fleet; removed from the bots table');
    }
    for (const entry of fleet) {
      const identity = entry as typeof entry & HeartbeatIdentity;
      if (identity.source !== 'compose' || entry.stale || entry.status === 'stopped') continue;
      let settings;
      try {
        settings = parseNewBot({
          bot_id: entry.config.botId,
          pair: entry.config.pair,
          interval_ms: entry.config.intervalMs,
          threshold_percent: entry.config.thresholdPercent,
          price_field: entry.config.priceField,
          reference_mode: entry.config.referenceMode,
          // Absent from the snapshot: the defaults (and from older workers: they had no rule settings).
          ...(entry.config.rule !== undefined ? { rule: entry.config.rule } : {}),
          ...(entry.config.windowMs !== undefined ? { window_ms: entry.config.windowMs } : {}),
          ...(entry.config.pendingPolls !== undefined ? { pending_polls: entry.config.pendingPolls } : {}),
          ...(entry.config.cooldownMs !== undefined ? { cooldown_ms: entry.config.cooldownMs } : {}),
          ...(entry.config.maxAlerts !== undefined ? { max_alerts: entry.config.maxAlerts } : {}),
          ...(entry.config.expiresAt !== undefined ? { expires_at: entry.config.expiresAt } : {}),
        });
      } catch (err) {
        if (!warned.has(entry.botId)) logger.warn({ botId: entry.botId, err: describeError(err) }, 'compose bot heartbeat carries settings the bots table refuses; not recorded');
        warned.add(entry.botId);
        continue;
      }
      const service = typeof identity.service === 'string' && identity.service !== '' ? identity.service : null;
      const result = await repository.upsertCompose({ ...settings, service }, `compose:${service ?? entry.botId}`);
      if (result === 'created' || result === 'updated') logger.info({ botId: entry.botId, service, result }, 'compose bot recorded');
      if (result === 'conflict' && !warned.has(entry.botId)) {
        warned.add(entry.botId);
        logger.warn({ botId: entry.botId, service }, 'a compose worker reports a bot id that a runtime bot has: the runtime bot keeps it; rename one of them');
      }
    }
  }

  /** The runtime bots that are done, disabled; returns their ids. */
  async function disableFinishedBots(): Promise<string[]> {
    const at = now();
    const disabled: string[] = [];
    for (const bot of await repository.list({ source: 'api' })) {
      if (!bot.enabled) continue;
      let reason: 'exhausted' | 'expired' | null = null;
      if (bot.max_alerts !== null) {
        const published = Number(await redis.hget(keys.ruleState(bot.pair, bot.bot_id), 'published'));
        if (Number.isSafeInteger(published) && published >= bot.max_alerts) reason = 'exhausted';
      }
      if (reason === null && bot.expires_at !== null && Date.parse(bot.expires_at) <= at) reason = 'expired';
      if (reason === null) continue;
      const after = await repository.finish(bot.bot_id, reason, bot.version);
      if (!after) continue;
      disabled.push(bot.bot_id);
      logger.info({ botId: bot.bot_id, reason, maxAlerts: bot.max_alerts, expiresAt: bot.expires_at, version: after.version }, reason === 'exhausted' ? 'bot exhausted its max_alerts: disabled' : 'bot expired: disabled');
    }
    return disabled;
  }

  async function round(): Promise<void> {
    await recordComposeBots();
    const disabled = await disableFinishedBots();
    const { written, removed } = await reconcileDesiredBots(db, redis, keys);
    if (written.length + removed.length > 0) logger.debug({ written, removed }, 'bots mirror rewritten');
    for (const botId of disabled) await announceBotChange(redis, keys, botId);
  }

  const loop = createLoop({
    round: async () => {
      await round();
      return deps.periodMs ?? 2000;
    },
    onError: (err, failures) => {
      if (failures === 1) logger.warn({ err: describeError(err) }, 'bots reconcile failed; retrying with backoff');
    },
    onRecover: () => logger.info('bots reconcile recovered'),
  });

  return {
    start: () => loop.start(),
    stop: () => loop.stop(),
    reconcileOnce: round,
    async afterChange(botId) {
      try {
        await reconcileDesiredBots(db, redis, keys);
        await announceBotChange(redis, keys, botId);
      } catch (err) {
        logger.warn({ botId, err: describeError(err) }, 'bots mirror not rewritten after a change; the reconcile loop will');
      }
    },
  };
}
