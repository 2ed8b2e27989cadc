import { serializeAlert, type AlertMessage } from '../shared/contract/alert';
import { describeError } from '../shared/platform/errors';
import type { Logger } from '../shared/platform/logger';
import type { Redis } from '../shared/platform/redis';
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
}

/** PUBLISH + XADD + SADD only while KEYS[1] holds ARGV[1]; 1 when published, 0 when the fencing token no longer matches. */
const FENCED_PUBLISH = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PUBLISH', KEYS[2], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'alert', ARGV[2])
redis.call('SADD', KEYS[4], ARGV[4])
return 1`;

/** The publish was refused because the bot's lease is held by another worker (or by nobody). */
class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  readonly permanent = true;
}

export function createAlertPublisher(deps: AlertPublisherDeps): AlertPublisher {
  const { redis, keys, logger } = deps;
  const retryMs = deps.retryMs ?? 500;
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

  const sendOne = async (alert: AlertMessage): Promise<void> => {
    const json = serializeAlert(alert);
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
          if (failing) logger.info({ queued: queue.length }, 'redis is back: publishing queued alerts');
          failing = false;
        } catch (err) {
          if ((err as { permanent?: boolean }).permanent) {
            queue.shift();
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
      while (queue.length > deps.queueMax) {
        const [oldest] = queue.splice(queue[0] === sending && queue.length > 1 ? 1 : 0, 1) as [AlertMessage];
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
