import Redis, { type RedisOptions } from 'ioredis';
import type { Logger } from './logger';
import { describeError } from './errors';
import { backoffDelay, withTimeout } from './retry';

export type { Redis };

/**
 * A Redis connection with a bounded, jittered reconnect backoff, and state changes logged once each.
 * `failFast` disables the offline queue: commands fail at once while disconnected (callers keep their own queue).
 */
export function createRedis(url: string, logger: Logger, options: { name: string; failFast?: boolean; extra?: RedisOptions }): Redis {
  const log = logger.child({ redis: options.name });
  const redis = new Redis(url, {
    lazyConnect: false,
    connectionName: `tickwatch-${options.name}`,
    enableOfflineQueue: !options.failFast,
    maxRetriesPerRequest: options.failFast ? 0 : null,
    retryStrategy: (times) => backoffDelay(times, 200, 2000),
    ...options.extra,
  });
  let state: 'connecting' | 'ready' | 'down' = 'connecting';
  redis.on('ready', () => {
    if (state !== 'ready') log.info(state === 'down' ? 'redis reconnected' : 'redis connected');
    state = 'ready';
  });
  redis.on('error', (err) => {
    if (state !== 'down') log.warn({ err: describeError(err) }, 'redis unavailable; reconnecting');
    state = 'down';
  });
  redis.on('end', () => log.debug('redis connection ended'));
  return redis;
}

/**
 * Closes a connection politely, falling back to disconnect when Redis is unreachable. Safe on a connection never
 * created (undefined), so teardown after a set-up that failed half way does not throw.
 */
export async function closeRedis(redis: Redis | undefined): Promise<void> {
  if (!redis || redis.status === 'end') return;
  try {
    await withTimeout(redis.quit(), 1000, 'Redis QUIT');
  } catch {
    redis.disconnect();
  }
}

/** Deletes every key that starts with `prefix` (SCAN + UNLINK, never KEYS). For tests and tools that own a prefix. */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<void> {
  if (prefix === '') throw new Error('refusing to delete every key: the prefix is empty');
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (found.length) await redis.unlink(...found);
  } while (cursor !== '0');
}
