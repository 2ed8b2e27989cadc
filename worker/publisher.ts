import { serializeAlert, type AlertMessage } from '../shared/contract/alert';
import { describeError } from '../shared/platform/errors';
import type { Logger } from '../shared/platform/logger';
import { publishSharded, type Redis } from '../shared/platform/redis';
import type { RedisKeys } from '../shared/contract/redis-keys';

/**
 * Publishes alerts without ever blocking the poll loop. Each alert goes out in ONE MULTI (a fenced Lua script for a runtime bot, see `fence`): PUBLISH on `alerts:<PAIR>`
 * (live subscribers), XADD to `stream:alerts:<PAIR>` (durable catch-up, field `alert`, trimmed `MAXLEN ~`), and SADD of
 * the pair to the pairs set (so a master consuming every pair finds the stream).
 *
 * While Redis is unreachable, alerts wait in a bounded in-memory FIFO and go out in order when it is back. A full queue
 * drops its oldest alert, logged (with the id) and counted. Use it with a fail-fast connection (no offline queue): a
 * command against a down Redis fails at once, and the queue here is the only buffer.
 *
 * Delivery is at least once: if the connection drops after Redis applied a MULTI but before the reply arrived, the
 * alert is sent again. Consumers deduplicate on `id` (the master does).
 *
 * On a Redis Cluster the pair's keys share one slot, but the channel `alerts:<PAIR>` (public, untagged) and the pairs
 * set do not: the XADD (fenced by the same script) goes alone to the stream's primary, followed on that connection by
 * `WAIT <waitReplicas> <waitMs>`. Replication is asynchronous, so an XADD only a primary has can vanish in a failover:
 * the alert counts as published only once `waitReplicas` replicas have it, and stays queued (retried) otherwise. Then
 * SPUBLISH on the channel (at-most-once, as PUBLISH is) and SADD of the pair.
 */
export interface AlertPublisher {
  /** Queues an alert and starts draining. Returns at once. */
  publish(alert: AlertMessage): void;
  /** Waits until the queue is empty or `timeoutMs` passes; resolves with the alerts still unpublished. */
  flush(timeoutMs: number): Promise<number>;
  stats(): PublisherStats;
  /** Stops retrying. Queued alerts are not sent after this (flush first). */
  close(): void;
}

export interface PublisherStats {
  readonly published: number;
  readonly dropped: number;
  readonly queued: number;
}

export interface AlertPublisherDeps {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly streamMaxLen: number;
  readonly queueMax: number;
  readonly logger: Logger;
  /** Retry period while Redis is down (a reconnect also triggers a retry at once). @defaultValue 500 */
  readonly retryMs?: number;
  /**
   * A runtime bot's lease: each alert is published only while the lease key still holds this fencing token, checked in
   * the same script that publishes (a worker that lost its lease can never publish beside the new holder).
   */
  readonly fence?: { readonly leaseKey: string; readonly token: string };
  /**
   * On a cluster: replicas that must have the XADD before the alert counts as published (REDIS_WAIT_REPLICAS; 0 skips
   * WAIT). Unused on a single Redis. @defaultValue 1
   */
  readonly waitReplicas?: number;
  /** On a cluster: how long WAIT waits for them (REDIS_WAIT_MS). @defaultValue 500 */
  readonly waitMs?: number;
  /** Told each published alert and how long its publish took (from `publish()`: queueing and retries included), for measurements. */
  readonly onPublished?: (alert: AlertMessage, ms: number) => void;
  /**
   * Told each alert the bot's rule state in Redis refused (see GUARDED_PUBLISH): `exhausted` (max_alerts published
   * already, e.g. by this bot before a restart) or `cooldown` (its direction alerted within cooldown_ms). Not published,
   * not counted as dropped: the rule says it is no alert.
   */
  readonly onRuleRefused?: (alert: AlertMessage, reason: 'exhausted' | 'cooldown') => void;
}

/** PUBLISH + XADD + SADD only while KEYS[1] holds ARGV[1]; 1 when published, 0 when the fencing token no longer matches. */
const FENCED_PUBLISH = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PUBLISH', KEYS[2], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'alert', ARGV[2])
redis.call('SADD', KEYS[4], ARGV[4])
return 1`;

/**
 * Cluster: the XADD alone (KEYS all in the pair's slot: KEYS[1] the lease or the stream, KEYS[2] the stream, KEYS[3]
 * the bot's rule state). Fenced when ARGV[4] = '1' (KEYS[1] must hold ARGV[1], else 0); guarded like GUARDED_PUBLISH
 * when ARGV[5] = '1' (else 2 or 3), recording alert id ARGV[10] in the rule state: a retry after a short WAIT finds its
 * own alert there and answers 1 without adding it or counting it again (the stream and the state share a primary, so
 * a failover keeps or loses both).
 */
const CLUSTER_XADD = `
if ARGV[4] == '1' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[5] == '1' then
  if redis.call('HGET', KEYS[3], 'lastId') == ARGV[10] then return 1 end
  local max = tonumber(ARGV[6])
  if max > 0 and tonumber(redis.call('HGET', KEYS[3], 'published') or '0') >= max then return 2 end
  local at = tonumber(ARGV[9])
  local cooldown = tonumber(ARGV[7])
  local last = redis.call('HGET', KEYS[3], ARGV[8])
  if cooldown > 0 and last and at < tonumber(last) + cooldown then return 3 end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'alert', ARGV[2])
if ARGV[5] == '1' then
  redis.call('HINCRBY', KEYS[3], 'published', 1)
  redis.call('HSET', KEYS[3], ARGV[8], ARGV[9], 'lastId', ARGV[10])
end
return 1`;

/**
 * An alert of a bot with max_alerts or cooldown_ms (its config snapshot carries them): PUBLISH + XADD + SADD and the
 * bot's rule state (KEYS[5], `published` +1, `lastUp`/`lastDown` = observation time) in one script, and only while
 * (ARGV[5] = '1': fenced) KEYS[1] holds ARGV[1] (else 0), fewer than ARGV[6] alerts were published (0: unlimited; else
 * 2) and the direction ARGV[8] last alerted at least ARGV[7] ms before ARGV[9] (else 3). So "only once" holds across
 * restarts and lease handovers whatever the worker remembered. The alert id ARGV[10] is recorded too: a resend after a
 * lost reply finds it and answers 1 without publishing or counting it twice.
 */
const GUARDED_PUBLISH = `
if ARGV[5] == '1' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[5], 'lastId') == ARGV[10] then return 1 end
local max = tonumber(ARGV[6])
if max > 0 and tonumber(redis.call('HGET', KEYS[5], 'published') or '0') >= max then return 2 end
local field = ARGV[8]
local at = tonumber(ARGV[9])
local cooldown = tonumber(ARGV[7])
local last = redis.call('HGET', KEYS[5], field)
if cooldown > 0 and last and at < tonumber(last) + cooldown then return 3 end
redis.call('PUBLISH', KEYS[2], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'alert', ARGV[2])
redis.call('SADD', KEYS[4], ARGV[4])
redis.call('HINCRBY', KEYS[5], 'published', 1)
redis.call('HSET', KEYS[5], field, ARGV[9], 'lastId', ARGV[10])
return 1`;

/** The bot's rule state refused the alert (GUARDED_PUBLISH answered 2 or 3). */
class RuleRefusedError extends Error {
  override readonly name = 'RuleRefusedError';
  readonly permanent = true;
  constructor(readonly reason: 'exhausted' | 'cooldown') {
    super(`the bot's rule state refused the alert: ${reason}`);
  }
}

/** The publish was refused because the bot's lease is held by another worker (or by nobody). */
class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  readonly permanent = true;
}

export function createAlertPublisher(deps: AlertPublisherDeps): AlertPublisher {
  const { redis, keys, logger } = deps;
  const retryMs = deps.retryMs ?? 500;
  const waitReplicas = deps.waitReplicas ?? 1;
  const waitMs = deps.waitMs ?? 500;
  /** Alert id -> when it was handed over: the latency reported counts the wait in the queue and every retry. */
  const queuedAt = new Map<string, number>();
  const queue: AlertMessage[] = [];
  let published = 0;
  let dropped = 0;
  let draining = false;
  let closed = false;
  let failing = false;
  let retryTimer: NodeJS.Timeout | undefined;
  /** The alert whose MULTI is on the wire: an overflow never drops it (it may already be published). */
  let sending: AlertMessage | undefined;
  const idleWaiters = new Set<() => void>();

  const notifyIdle = () => {
    if (queue.length > 0) return;
    for (const resolve of idleWaiters) resolve();
    idleWaiters.clear();
  };

  const scheduleRetry = () => {
    if (closed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void drain();
    }, retryMs);
  };

  /** Cluster: the XADD on the stream's primary, then WAIT on that same connection (one pipeline, one round trip). */
  const sendToCluster = async (alert: AlertMessage, json: string): Promise<void> => {
    const stream = keys.alertStream(alert.pair);
    const fence = deps.fence;
    const { maxAlerts, cooldownMs } = alert.config;
    const guarded = maxAlerts !== undefined || cooldownMs !== undefined;
    const pipeline = redis.pipeline();
    if (fence || guarded) {
      pipeline.eval(CLUSTER_XADD, 3, fence?.leaseKey ?? stream, stream, keys.ruleState(alert.pair, alert.botId),
        fence?.token ?? '', json, String(deps.streamMaxLen), fence ? '1' : '0', guarded ? '1' : '0', String(maxAlerts ?? 0), String(cooldownMs ?? 0),
        alert.direction === 'up' ? 'lastUp' : 'lastDown', String(Date.parse(alert.observedAt)), alert.id);
    } else {
      pipeline.xadd(stream, 'MAXLEN', '~', String(deps.streamMaxLen), '*', 'alert', json);
    }
    if (waitReplicas > 0) pipeline.call('WAIT', String(waitReplicas), String(waitMs));
    const [results] = await Promise.all([pipeline.exec(), redis.sadd(keys.pairsSet, alert.pair)]);
    if (!results) throw new Error('pipeline was discarded');
    const [[addErr, added], waited] = results as [[Error | null, unknown], [Error | null, unknown]?];
    if (addErr) throw addErr;
    if (fence && Number(added) === 0) throw new LeaseLostError(`the bot's lease no longer holds ${fence.token}`);
    if (Number(added) === 2) throw new RuleRefusedError('exhausted');
    if (Number(added) === 3) throw new RuleRefusedError('cooldown');
    if (waited) {
      const [waitErr, acked] = waited;
      if (waitErr) throw waitErr;
      // Kept queued: the next try adds the alert again (the master stores it once, by id) until a replica has it.
      if (Number(acked) < waitReplicas) throw new Error(`only ${Number(acked)} of ${waitReplicas} replicas acknowledged the alert within ${waitMs} ms`);
    }
    await publishSharded(redis, keys.alertChannel(alert.pair), json).catch((err: unknown) =>
      logger.warn({ alertId: alert.id, err: describeError(err) }, 'alert stored in its stream but not published on its channel (pub/sub is at-most-once)'),
    );
  };

  const sendGuarded = async (alert: AlertMessage, json: string, maxAlerts: number, cooldownMs: number): Promise<void> => {
    const fence = deps.fence;
    const field = alert.direction === 'up' ? 'lastUp' : 'lastDown';
    const done = Number(
      await redis.eval(GUARDED_PUBLISH, 5, fence?.leaseKey ?? keys.alertStream(alert.pair), keys.alertChannel(alert.pair), keys.alertStream(alert.pair), keys.pairsSet, keys.ruleState(alert.pair, alert.botId),
        fence?.token ?? '', json, String(deps.streamMaxLen), alert.pair, fence ? '1' : '0', String(maxAlerts), String(cooldownMs), field, String(Date.parse(alert.observedAt)), alert.id),
    );
    if (done === 0) throw new LeaseLostError(`the bot's lease no longer holds ${fence?.token ?? ''}`);
    if (done === 2) throw new RuleRefusedError('exhausted');
    if (done === 3) throw new RuleRefusedError('cooldown');
  };

  const sendOne = async (alert: AlertMessage): Promise<void> => {
    const json = serializeAlert(alert);
    const { maxAlerts, cooldownMs } = alert.config;
    if (redis.isCluster) return sendToCluster(alert, json);
    if (maxAlerts !== undefined || cooldownMs !== undefined) return sendGuarded(alert, json, maxAlerts ?? 0, cooldownMs ?? 0);
    if (deps.fence) {
      const { leaseKey, token } = deps.fence;
      const done = await redis.eval(FENCED_PUBLISH, 4, leaseKey, keys.alertChannel(alert.pair), keys.alertStream(alert.pair), keys.pairsSet, token, json, String(deps.streamMaxLen), alert.pair);
      if (Number(done) !== 1) throw new LeaseLostError(`the bot's lease no longer holds ${token}`);
      return;
    }
    const results = await redis
      .multi()
      .publish(keys.alertChannel(alert.pair), json)
      .xadd(keys.alertStream(alert.pair), 'MAXLEN', '~', String(deps.streamMaxLen), '*', 'alert', json)
      .sadd(keys.pairsSet, alert.pair)
      .exec();
    if (results === null) throw new Error('MULTI was discarded');
    const failed = results.find(([err]) => err);
    if (failed?.[0]) {
      // Redis took the transaction but rejected a command in it (e.g. a key of the wrong type): retrying cannot help.
      throw Object.assign(failed[0], { permanent: true });
    }
  };

  const drain = async (): Promise<void> => {
    if (draining || closed) return;
    draining = true;
    try {
      while (queue.length > 0 && !closed) {
        const alert = queue[0]!;
        sending = alert;
        try {
          await sendOne(alert);
          queue.shift();
          published++;
          const publishMs = Date.now() - (queuedAt.get(alert.id) ?? Date.now());
          queuedAt.delete(alert.id);
          logger.debug({ alertId: alert.id, publishMs }, 'alert published');
          deps.onPublished?.(alert, publishMs);
          if (failing) logger.info({ queued: queue.length }, 'redis is back: publishing queued alerts');
          failing = false;
        } catch (err) {
          if ((err as { permanent?: boolean }).permanent) {
            queue.shift();
            queuedAt.delete(alert.id);
            if (err instanceof RuleRefusedError) {
              logger.info({ alertId: alert.id, reason: err.reason }, 'the bot rule state refused the alert (published by an earlier run): not published');
              deps.onRuleRefused?.(alert, err.reason);
              continue;
            }
            dropped++;
            if (err instanceof LeaseLostError) logger.warn({ alertId: alert.id, reason: err.message }, 'lease lost: alert not published (another worker may hold the bot now); dropped');
            else logger.error({ alertId: alert.id, err: describeError(err) }, 'redis rejected the alert; dropped');
            continue;
          }
          if (!failing) logger.warn({ queued: queue.length, err: describeError(err) }, 'cannot publish alerts; queueing them until redis is back');
          failing = true;
          scheduleRetry();
          return;
        }
      }
    } finally {
      sending = undefined;
      draining = false;
      notifyIdle();
    }
  };

  const onReady = () => void drain();
  redis.on('ready', onReady);

  return {
    publish(alert) {
      if (closed) {
        dropped++;
        logger.error({ alertId: alert.id }, 'alert raised after the publisher closed; dropped');
        return;
      }
      queue.push(alert);
      queuedAt.set(alert.id, Date.now());
      while (queue.length > deps.queueMax) {
        const [oldest] = queue.splice(queue[0] === sending && queue.length > 1 ? 1 : 0, 1) as [AlertMessage];
        queuedAt.delete(oldest.id);
        dropped++;
        logger.warn({ alertId: oldest.id, observedAt: oldest.observedAt, dropped, queueMax: deps.queueMax }, 'alert queue full: dropped the oldest alert');
      }
      void drain();
    },
    async flush(timeoutMs) {
      if (queue.length === 0 && !draining) return 0;
      void drain();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          idleWaiters.delete(done);
          resolve();
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        idleWaiters.add(done);
      });
      return queue.length;
    },
    stats() {
      return { published, dropped, queued: queue.length };
    },
    close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = undefined;
      redis.off('ready', onReady);
      notifyIdle();
    },
  };
}
