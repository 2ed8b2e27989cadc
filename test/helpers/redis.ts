import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { closeRedis, deleteKeysWithPrefix } from '../../shared/platform/redis';
import { createRedisKeys, type RedisKeys } from '../../shared/contract/redis-keys';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestRedis {
  readonly url: string;
  readonly prefix: string;
  readonly keys: RedisKeys;
  /** A plain client for assertions. */
  readonly redis: Redis;
  /** Deletes every key under this file's prefix and closes the client; safe to call twice. */
  cleanup(): Promise<void>;
}

/**
 * Isolates one test file (or one bench section) on a shared Redis with a random key (and channel) prefix.
 * @param options.url @defaultValue TEST_REDIS_URL
 * @param options.label starts the prefix, e.g. "bench" @defaultValue "t"
 */
export async function createTestRedis(options: { url?: string; label?: string } = {}): Promise<TestRedis> {
  const url = options.url ?? TEST_REDIS_URL;
  const prefix = `${options.label ?? 't'}${randomBytes(5).toString('hex')}:`;
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  let cleaned: Promise<void> | undefined;
  return {
    url,
    prefix,
    keys: createRedisKeys(prefix),
    redis,
    cleanup() {
      cleaned ??= (async () => {
        try {
          await deleteKeysWithPrefix(redis, prefix);
        } finally {
          // Closed even when the delete failed; closeRedis quits (disconnect alone leaves ioredis's reconnect timer
          // behind and jest cannot exit) and falls back to disconnect when Redis does not answer.
          await closeRedis(redis);
        }
      })();
      return cleaned;
    },
  };
}
