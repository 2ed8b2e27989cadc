import { parseDesiredBot, type DesiredBot } from '../shared/contract/bots';
import type { RedisKeys } from '../shared/contract/redis-keys';
import { runtimeBotConfig, type WorkerBaseConfig } from '../shared/config/worker-config';
import { describeError } from '../shared/platform/errors';
import type { Logger } from '../shared/platform/logger';
import type { Redis } from '../shared/platform/redis';
import { createSleeper, withTimeout } from '../shared/platform/retry';
import { claimLease, leaseSafetyMarginMs, leaseTtlMs, releaseLease, renewLease, type LeaseGrant } from './bot-lease';
import { createWorker, type Worker, type WorkerDeps } from './worker';

export interface GenericWorkerDeps {
  readonly base: WorkerBaseConfig;
  readonly logger: Logger;
  /** A fail-fast connection, as for `createWorker`. */
  readonly redis: Redis;
  /** A connection of its own for the change nudges (SUBSCRIBE); without it the worker only re-checks on its period. */
  readonly subscriber?: Redis;
  readonly keys: RedisKeys;
  /** Period of the claim re-check while idle, and of lease renewal and settings re-read while holding. @defaultValue 1000 */
  readonly periodMs?: number;
  /** Lease time to live for a bot's interval. @defaultValue leaseTtlMs */
  readonly leaseTtlMs?: (intervalMs: number) => number;
  /** Worker heartbeat (`worker:<workerId>`) time to live. @defaultValue 10000 */
  readonly heartbeatTtlMs?: number;
  /** Passed on to each bot's `createWorker` (tests shorten waits). */
  readonly botDeps?: Partial<Omit<WorkerDeps, 'config' | 'logger' | 'redis' | 'keys' | 'hold'>>;
  /** @defaultValue Date.now */
  readonly now?: () => number;
}

export interface GenericWorker {
  start(): void;
  /** Stops the bot it holds (in-flight request, flush, final heartbeat), releases the lease, removes its heartbeat. */
  stop(): Promise<void>;
  /** The bot held now, if any. */
  holding(): { botId: string; generation: number; version: number } | null;
}

interface Held {
  readonly grant: LeaseGrant;
  bot: DesiredBot;
  runner: Worker;
  /** TTL of the last successful renew (the deadline is computed from it). */
  ttlMs: number;
  /** TTL the next renew sets (after an interval change); the deadline follows only once Redis has it. */
  wantTtlMs: number;
  /** When the last successful renew (or the claim) was sent: the lease runs at least `ttlMs` from then. */
  renewedAt: number;
  /** Bad mirror entry already logged (once until it changes). */
  badEntry?: string;
}

/**
 * A worker started without PAIR: claims one enabled runtime bot that no live worker holds, watches it with the same
 * `createWorker` a pinned worker uses, and gives it up when the bot is paused or deleted (or on stop), then claims again.
 *
 * One loop, every `periodMs` (sooner on a nudge): idle, it reads the mirror (HGETALL), checks which enabled bots have no
 * lease (one EXISTS each, pipelined) and tries to claim one (atomic script). Holding, it renews the lease (compare and
 * PEXPIRE) and re-reads its bot's entry (HGET): a new version is handed to the bot, applied at its next tick.
 *
 * Never two workers on one bot: the bot may act (poll, publish) only until `renewedAt + ttl - margin`, a local deadline
 * that passes before the lease can expire in Redis; its publishes are fenced on the token as well.
 */
export function createGenericWorker(deps: GenericWorkerDeps): GenericWorker {
  const { base, redis, keys } = deps;
  const log = deps.logger.child({ workerId: base.workerId });
  const periodMs = deps.periodMs ?? 1000;
  const ttlFor = deps.leaseTtlMs ?? leaseTtlMs;
  const heartbeatTtlMs = deps.heartbeatTtlMs ?? 10_000;
  const now = deps.now ?? Date.now;
  const sleeper = createSleeper();
  /** Bounds each Redis round trip of the loop: a hung Redis must not hold the loop past a lease deadline. */
  const commandTimeoutMs = Math.min(1000, periodMs);
  let held: Held | undefined;
  let active = false;
  let loop: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  let redisFailing = false;

  const onNudge = (channel: string, message: string) => {
    if (channel !== keys.botsChangedChannel) return;
    // Idle: a bot may have appeared. Holding: only a change of our own bot matters.
    if (!held || message === held.grant.botId) sleeper.wakeAll();
  };

  const writeHeartbeat = async () => {
    const value = JSON.stringify({ workerId: base.workerId, state: held ? 'holding' : 'idle', ...(held ? { botId: held.grant.botId } : {}), at: new Date().toISOString() });
    await redis.set(keys.workerHeartbeat(base.workerId), value, 'PX', heartbeatTtlMs);
  };

  const deadlineOf = (h: Held) => h.renewedAt + h.ttlMs - leaseSafetyMarginMs(h.ttlMs, base.tickerTimeoutMs);

  const startBot = (grant: LeaseGrant, bot: DesiredBot, renewedAt: number): Held => {
    const ttlMs = ttlFor(bot.intervalMs);
    const entry: Partial<Held> = { grant, bot, ttlMs, wantTtlMs: ttlMs, renewedAt };
    const runner = createWorker({
      ...deps.botDeps,
      config: runtimeBotConfig(base, bot),
      logger: deps.logger.child({ workerId: base.workerId }),
      redis,
      keys,
      hold: {
        version: bot.version,
        leaseKey: keys.botLease(grant.botId, grant.pair),
        token: grant.token,
        generation: grant.generation,
        valid: () => now() < deadlineOf(entry as Held),
      },
    });
    entry.runner = runner;
    void runner.start().catch((err: unknown) => log.error({ botId: bot.botId, err: describeError(err) }, 'bot failed to start'));
    return entry as Held;
  };

  /** Idle: one pass over the mirror; claims the first free enabled bot (starting at a random one, to spread claims). */
  const tryClaim = async (): Promise<void> => {
    const entries = await withTimeout(redis.hgetall(keys.desiredBots), commandTimeoutMs, 'Redis (read the desired bots)');
    const enabled: DesiredBot[] = [];
    for (const [field, text] of Object.entries(entries)) {
      const parsed = parseDesiredBot(text);
      if (parsed.ok && parsed.bot.enabled && parsed.bot.botId === field) enabled.push(parsed.bot);
    }
    if (enabled.length === 0) return;
    // One EXISTS per lease (they live in their pairs' slots, so on a cluster no single command can check them all).
    const leases = await withTimeout(Promise.all(enabled.map((bot) => redis.exists(keys.botLease(bot.botId, bot.pair)))), commandTimeoutMs, 'Redis (check the leases)');
    const free = enabled.filter((_, i) => leases[i] === 0);
    if (free.length === 0) return;
    const offset = Math.floor(Math.random() * free.length);
    for (let i = 0; i < free.length && active; i++) {
      const bot = free[(offset + i) % free.length]!;
      const ttlMs = ttlFor(bot.intervalMs);
      const claimSentAt = now();
      const grant = await withTimeout(claimLease(redis, keys, bot.botId, base.workerId, ttlMs), commandTimeoutMs, 'Redis (claim a lease)');
      if (!grant) continue;
      if (!active) {
        await releaseLease(redis, keys, grant).catch(() => undefined);
        return;
      }
      log.info({ botId: bot.botId, pair: bot.pair, version: bot.version, leaseGeneration: grant.generation, leaseTtlMs: ttlMs }, 'claimed a runtime bot');
      held = startBot(grant, bot, claimSentAt);
      return;
    }
  };

  /** Stops the bot held and, unless the lease is lost already, releases it; the worker is idle afterwards. */
  const giveUp = async (why: string, leaseLost = false): Promise<void> => {
    const h = held;
    if (!h) return;
    await h.runner.stop({ leaseLost });
    if (!leaseLost) {
      const released = await withTimeout(releaseLease(redis, keys, h.grant), commandTimeoutMs, 'Redis (release the lease)').catch((err: unknown) => {
        log.warn({ botId: h.grant.botId, err: describeError(err) }, 'lease not released; it expires on its own');
        return false;
      });
      log.info({ botId: h.grant.botId, why, released }, 'gave up the runtime bot');
    } else {
      log.warn({ botId: h.grant.botId, why }, 'lost the lease of the runtime bot: stopped watching it');
    }
    held = undefined;
  };

  /** Holding: renew, re-read the entry, and act on what changed. */
  const keep = async (h: Held): Promise<void> => {
    const sentAt = now();
    let renewed: boolean;
    let text: string | null;
    try {
      [renewed, text] = await withTimeout(
        Promise.all([renewLease(redis, keys, h.grant, h.wantTtlMs), redis.hget(keys.desiredBots, h.grant.botId)]),
        commandTimeoutMs,
        'Redis (renew the lease)',
      );
    } catch (err) {
      if (now() >= deadlineOf(h)) return giveUp(`cannot renew the lease (${describeError(err)}) and its deadline passed`, true);
      throw err;
    }
    if (!renewed) return giveUp('the lease holds another token', true);
    h.renewedAt = sentAt;
    h.ttlMs = h.wantTtlMs;
    if (text === null) return giveUp('the bot was deleted');
    const read = parseDesiredBot(text);
    const parsed = read.ok && read.bot.botId !== h.grant.botId ? { ok: false as const, reason: `entry names bot ${read.bot.botId}` } : read;
    if (!parsed.ok) {
      if (h.badEntry !== parsed.reason) log.warn({ botId: h.grant.botId, reason: parsed.reason }, 'unreadable desired-bot entry: keeping the current settings');
      h.badEntry = parsed.reason;
      return;
    }
    h.badEntry = undefined;
    const bot = parsed.bot;
    if (!bot.enabled) return giveUp('the bot was paused');
    if (bot.version === h.bot.version) return;
    if (bot.pair !== h.bot.pair) {
      // A new pair is a new ticker, channel and stream, and the lease lives in the pair's slot (the fenced publish checks
      // it beside the stream): the bot is released here and claimed afresh under the new pair's lease, by whichever
      // worker claims first, with a fresh reference.
      return giveUp(`the bot moved to ${bot.pair}: claimed again under that pair's lease`);
    }
    h.wantTtlMs = ttlFor(bot.intervalMs);
    h.ttlMs = Math.min(h.ttlMs, h.wantTtlMs);
    h.bot = bot;
    h.runner.reconfigure(runtimeBotConfig(base, bot), bot.version);
    log.info({ botId: bot.botId, version: bot.version }, 'new settings for the runtime bot: applied at its next tick');
  };

  const run = async (): Promise<void> => {
    while (active) {
      try {
        if (held) await keep(held);
        else await tryClaim();
        await withTimeout(writeHeartbeat(), commandTimeoutMs, 'Redis (worker heartbeat)');
        if (redisFailing) log.info('redis answers again');
        redisFailing = false;
      } catch (err) {
        if (!redisFailing) log.warn({ err: describeError(err), holding: held?.grant.botId }, 'cannot reach redis; retrying every period');
        else log.debug({ err: describeError(err) }, 'redis still unreachable');
        redisFailing = true;
      }
      if (!active) break;
      // Re-checked just before the deadline too, so a bot never acts past it even between two periods.
      const untilDeadline = held ? deadlineOf(held) - now() : Infinity;
      await sleeper.sleep(Math.max(0, Math.min(periodMs, untilDeadline)));
    }
  };

  return {
    start() {
      if (active) return;
      active = true;
      deps.subscriber?.on('message', onNudge);
      deps.subscriber?.subscribe(keys.botsChangedChannel).catch((err: unknown) => log.warn({ err: describeError(err) }, 'not subscribed to bot changes; re-checking every period only'));
      log.info({ periodMs }, 'generic worker started: looking for a runtime bot');
      loop = run();
    },
    stop() {
      stopping ??= (async () => {
        active = false;
        sleeper.wakeAll();
        deps.subscriber?.off('message', onNudge);
        await loop;
        await giveUp('the worker is stopping');
        await withTimeout(redis.del(keys.workerHeartbeat(base.workerId)), 1000, 'Redis (worker heartbeat)').catch(() => undefined);
        log.info('generic worker stopped');
      })();
      return stopping;
    },
    holding() {
      return held ? { botId: held.grant.botId, generation: held.grant.generation, version: held.bot.version } : null;
    },
  };
}
