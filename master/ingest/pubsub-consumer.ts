import { PAIR_RE, parseAlertMessage, type AlertMessage } from '../../shared/contract/alert';
import { describeError } from '../../shared/platform/errors';
import type { Logger } from '../../shared/platform/logger';
import { closeRedis, duplicateRedis, subscribeSharded, type Redis } from '../../shared/platform/redis';
import { createLoop, type Loop } from '../../shared/platform/loop';
import type { RedisKeys } from '../../shared/contract/redis-keys';
import type { AlertStore } from './alert-store';
import { backoffDelay, createSleeper } from '../../shared/platform/retry';
import type { DeadLetters } from './dead-letter';

export interface PubSubConsumerDeps {
  /** A regular connection; the consumer duplicates it for its subscriber connection. */
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly store: AlertStore;
  readonly deadLetters: DeadLetters;
  readonly logger: Logger;
  /** Pairs to subscribe to, or `*` for a pattern subscription over every pair. */
  readonly pairs: '*' | readonly string[];
  readonly batchMax: number;
  /** Alerts held in memory while Postgres is down; beyond it the oldest are dropped (and logged). @defaultValue 100000 */
  readonly bufferMax?: number;
  /** On a cluster with `*` (no patterns for sharded channels): how often the pairs set is re-read for new channels. @defaultValue 3000 */
  readonly pairsRefreshMs?: number;
}

export interface PubSubConsumer {
  /** Subscribes; resolves once the subscription is active. */
  start(): Promise<void>;
  /** Unsubscribes and commits what is buffered (one try if Postgres is down), then closes the subscriber connection. */
  stop(): Promise<void>;
}

/**
 * The original design: SUBSCRIBE to `alerts:<PAIR>` (or PSUBSCRIBE `alerts:*`). At-most-once: a message published while
 * this connection is down is never seen. ioredis re-subscribes by itself after a reconnect (`autoResubscribe`).
 * On a Redis Cluster the channels are sharded (SSUBSCRIBE, one per pair): sharded channels have no patterns, so `*`
 * subscribes to every member of the pairs set and re-reads it every `pairsRefreshMs`.
 * Messages are stored as they come: the first one at once, those arriving during a commit in the next batch.
 */
export function createPubSubConsumer(deps: PubSubConsumerDeps): PubSubConsumer {
  const log = deps.logger.child({ component: 'pubsub-consumer' });
  const bufferMax = deps.bufferMax ?? 100_000;
  const sleeper = createSleeper();
  const buffer: AlertMessage[] = [];
  let sub: Redis | undefined;
  let active = false;
  let flushing: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  let dropped = 0;
  let pairsLoop: Loop | undefined;
  const subscribedPairs = new Set<string>();

  function onMessage(channel: string, message: string): void {
    const parsed = parseAlertMessage(message);
    if (!parsed.ok) {
      deps.deadLetters.add({ reason: parsed.reason, source: 'pubsub', stream: channel, entryId: '', payload: message }).catch((err) => {
        log.error({ err: describeError(err), reason: parsed.reason, channel }, 'could not dead-letter an invalid message');
      });
      return;
    }
    buffer.push(parsed.alert);
    if (buffer.length > bufferMax) {
      buffer.shift();
      if (dropped++ === 0) log.error({ bufferMax }, 'alert buffer full while postgres is down; dropping the oldest alerts');
    }
    flushing ??= flush().finally(() => (flushing = undefined));
  }

  async function flush(): Promise<void> {
    let failures = 0;
    while (buffer.length > 0) {
      const batch = buffer.slice(0, deps.batchMax);
      try {
        const result = await deps.store.store(batch);
        buffer.splice(0, batch.length);
        failures = 0;
        for (const { alert, reason } of result.rejected) {
          await deps.deadLetters.add({ reason, source: 'pubsub', stream: deps.keys.alertChannel(alert.pair), entryId: '', payload: JSON.stringify(alert) }).catch((err) => {
            log.error({ err: describeError(err), alertId: alert.id }, 'could not dead-letter a rejected alert');
          });
        }
      } catch (err) {
        if (!active) {
          log.error({ err: describeError(err), lost: buffer.length }, 'stopping with alerts not stored (pubsub delivery keeps no copy)');
          buffer.length = 0;
          return;
        }
        failures += 1;
        await sleeper.sleep(backoffDelay(failures, 200, 5000));
      }
    }
    if (dropped > 0) {
      log.warn({ dropped }, 'alerts dropped while postgres was down');
      dropped = 0;
    }
  }

  return {
    async start() {
      active = true;
      const conn = duplicateRedis(deps.redis, 'pubsub', { subscriber: true });
      sub = conn;
      let down = false;
      conn.on('error', (err: unknown) => {
        if (!down) log.warn({ err: describeError(err) }, 'subscriber connection to redis lost; alerts published meanwhile are missed');
        down = true;
      });
      conn.on('ready', () => {
        if (down) log.info('subscriber connection to redis back; re-subscribed');
        down = false;
      });
      conn.on('message', (channel: string, message: string) => onMessage(channel, message));
      conn.on('smessage', (channel: string, message: string) => onMessage(channel, message));
      conn.on('pmessage', (_pattern: string, channel: string, message: string) => onMessage(channel, message));
      const subscribePairs = async (pairs: readonly string[]) => {
        const fresh = pairs.filter((p) => !subscribedPairs.has(p));
        await subscribeSharded(conn, fresh.map((p) => deps.keys.alertChannel(p)));
        for (const p of fresh) subscribedPairs.add(p);
      };
      if (deps.pairs !== '*') await subscribePairs(deps.pairs);
      else if (!conn.isCluster) await conn.psubscribe(deps.keys.alertChannelPattern);
      else {
        const readPairs = async () => subscribePairs((await deps.redis.smembers(deps.keys.pairsSet)).filter((p) => PAIR_RE.test(p)));
        await readPairs();
        pairsLoop = createLoop({
          round: async () => {
            await readPairs();
            return deps.pairsRefreshMs ?? 3000;
          },
          onError: (err, failures) => {
            if (failures === 1) log.warn({ err: describeError(err) }, 'cannot re-read the pairs set; new pairs are subscribed once it answers');
          },
        });
        pairsLoop.start();
      }
      log.info({ pairs: deps.pairs }, 'subscribed to alert channels (at-most-once delivery)');
    },
    stop() {
      stopping ??= (async () => {
        const conn = sub;
        sub = undefined;
        await pairsLoop?.stop();
        // Stop receiving first, then finish what was received.
        await closeRedis(conn);
        active = false;
        sleeper.wakeAll();
        await flushing;
      })();
      return stopping;
    },
  };
}
