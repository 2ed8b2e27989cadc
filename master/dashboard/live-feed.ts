import type { Logger } from '../../shared/platform/logger';
import type { Redis } from '../../shared/platform/redis';
import { closeRedis, duplicateRedis, subscribeSharded } from '../../shared/platform/redis';
import type { RedisKeys } from '../../shared/contract/redis-keys';
import { describeError } from '../../shared/platform/errors';
import { parseAlertBatch, type AlertMessage } from '../../shared/contract/alert';
import { toWireAlert } from '../../shared/read-model/alert-wire';

/** One open `/events` response's view of the feed. */
export interface LiveFeedListener {
  /**
   * Each stored alert, checked against the contract once for all listeners, with its JSON: the wire alert of
   * `GET /alerts` (alert-wire.ts; received_at null, as the announcement does not carry it), serialised once.
   */
  alert(alert: AlertMessage, json: string): void;
  /**
   * The subscription came back after Redis was unreachable: alerts stored meanwhile were not seen, so the browser should
   * fetch the latest ones again.
   */
  resync(): void;
}

/**
 * One Redis subscription per server, fanned out to every browser connected to `/events`.
 * A subscriber connection cannot run other commands, so it is a dedicated duplicate of the regular connection (SSUBSCRIBE on a cluster),
 * opened on the first listener (an API that nobody watches live never holds one) and closed by `close()`.
 */
export interface LiveFeed {
  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: LiveFeedListener): () => void;
  /** Resolves once the subscription is active (after the first `subscribe`); rejects if Redis refused it. */
  ready(): Promise<void>;
  /** Drops every listener and closes the subscriber connection. Idempotent. */
  close(): Promise<void>;
}

export interface LiveFeedDeps {
  /** A regular connection; the feed duplicates it for subscribing. */
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly logger: Logger;
}

export function createLiveFeed(deps: LiveFeedDeps): LiveFeed {
  const log = deps.logger.child({ component: 'dashboard-live-feed' });
  const channel = deps.keys.storedAlertsChannel;
  const listeners = new Set<LiveFeedListener>();
  let subscriber: Redis | undefined;
  let subscribed: Promise<void> | undefined;
  let closing: Promise<void> | undefined;

  const start = (): Promise<void> => {
    if (subscribed) return subscribed;
    const sub = duplicateRedis(deps.redis, 'dashboard-sub', { subscriber: true });
    subscriber = sub;
    // ioredis re-subscribes by itself after a reconnect (autoResubscribe); errors are logged, never thrown.
    let down = false;
    sub.on('error', (err: unknown) => {
      if (!down) log.warn({ err: describeError(err) }, 'live feed subscriber lost Redis; reconnecting');
      down = true;
    });
    // A quick Redis restart may reconnect without any error event: the closed connection alone means messages were missed.
    sub.on('close', () => {
      if (!closing && !down) log.warn('live feed subscriber lost Redis; reconnecting');
      down = true;
    });
    sub.on('ready', () => {
      if (!down) return;
      down = false;
      log.info('live feed subscriber reconnected');
      for (const listener of listeners) listener.resync();
    });
    const onMessage = (from: string, message: string) => {
      if (from !== channel) return;
      // A committed batch's new alerts (a JSON array; a single alert object is accepted too).
      const { alerts, errors } = parseAlertBatch(message);
      // Browsers only ever see contract-valid alerts; a bad message is the publisher's bug, so say which field.
      for (const reason of errors) log.warn({ channel, reason }, 'ignored a stored-alert message that breaks the contract');
      for (const alert of alerts) {
        const json = JSON.stringify(toWireAlert(alert));
        for (const listener of listeners) {
          try {
            listener.alert(alert, json);
          } catch (err) {
            log.warn({ err: describeError(err) }, 'live feed listener failed');
          }
        }
      }
    };
    sub.on('message', onMessage);
    sub.on('smessage', onMessage);
    const attempt = subscribeSharded(sub, [channel]).then(() => {
      log.debug({ channel }, 'live feed subscribed');
    });
    subscribed = attempt;
    // A failed subscribe is reported through ready() to the clients waiting now; the next client starts afresh.
    attempt.catch((err: unknown) => {
      log.warn({ err: describeError(err) }, 'live feed could not subscribe');
      if (subscribed === attempt) {
        subscribed = undefined;
        subscriber = undefined;
        void closeRedis(sub);
      }
    });
    return attempt;
  };

  return {
    subscribe(listener) {
      if (closing) return () => undefined;
      listeners.add(listener);
      void start().catch(() => undefined);
      return () => {
        listeners.delete(listener);
      };
    },
    ready() {
      return subscribed ?? Promise.resolve();
    },
    close() {
      closing ??= (async () => {
        listeners.clear();
        if (subscriber) await closeRedis(subscriber);
      })();
      return closing;
    },
  };
}
