import IORedis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from './logger';
import { describeError } from './errors';
import { backoffDelay, withTimeout } from './retry';

/**
 * A connection to one Redis server, or to a Redis Cluster. Every service gets it from `createRedis`; code that must act
 * differently on a cluster (no cross-slot commands, SPUBLISH, WAIT, one blocking read per stream) checks `isCluster`.
 */
export type Redis = IORedis | Cluster;
export type { Cluster };

/**
 * Where Redis is: `url` (REDIS_URL) alone is one server; `clusterNodes` (REDIS_CLUSTER_NODES, `host:port`) switches to
 * Redis Cluster, with the username and password of `url` used on every node.
 */
export interface RedisTarget {
  readonly url: string;
  readonly clusterNodes?: readonly string[];
}

export interface RedisConnectionOptions {
  readonly name: string;
  /** Disables the offline queue: commands fail at once while disconnected (callers keep their own queue). */
  readonly failFast?: boolean;
  /** Per-connection options (for a cluster: of each node connection). */
  readonly extra?: RedisOptions;
}

/**
 * A Redis connection with a bounded, jittered reconnect backoff, and state changes logged once each. With cluster nodes
 * it is an ioredis Cluster: it follows MOVED/ASK redirections and re-reads the slot map after a failover by itself.
 */
export function createRedis(target: string | RedisTarget, logger: Logger, options: RedisConnectionOptions): Redis {
  const { url, clusterNodes = [] } = typeof target === 'string' ? { url: target } : target;
  const log = logger.child({ redis: options.name });
  const perConnection: RedisOptions = {
    lazyConnect: false,
    connectionName: `tickwatch-${options.name}`,
    enableOfflineQueue: !options.failFast,
    maxRetriesPerRequest: options.failFast ? 0 : null,
    retryStrategy: (times) => backoffDelay(times, 200, 2000),
    ...options.extra,
  };
  const redis = clusterNodes.length > 0 ? new Cluster(clusterNodes.map(parseNode), clusterOptions(url, perConnection)) : new IORedis(url, perConnection);
  watchState(redis, log);
  return redis;
}

function clusterOptions(url: string, perConnection: RedisOptions): ClusterOptions {
  const parsed = new URL(url);
  const { retryStrategy, enableOfflineQueue, ...nodeOptions } = perConnection;
  return {
    enableOfflineQueue,
    clusterRetryStrategy: (times) => (retryStrategy ? (retryStrategy(times) ?? null) : backoffDelay(times, 200, 2000)),
    // While a failover is under way the cluster answers CLUSTERDOWN / TRYAGAIN, or MOVED once it is over: ioredis
    // retries those after these delays (with the slot map re-read) rather than handing the error to the caller.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 2000,
    redisOptions: {
      ...nodeOptions,
      ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
      ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    },
  };
}

/** `host:port` as REDIS_CLUSTER_NODES lists it (validated by the config loaders). */
function parseNode(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(':');
  return { host: node.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(node.slice(at + 1)) };
}

function watchState(redis: Redis, log: Logger): void {
  let state: 'connecting' | 'ready' | 'down' = 'connecting';
  redis.on('ready', () => {
    if (state !== 'ready') log.info(state === 'down' ? 'redis reconnected' : 'redis connected');
    state = 'ready';
  });
  redis.on('error', (err: unknown) => {
    if (state !== 'down') log.warn({ err: describeError(err) }, 'redis unavailable; reconnecting');
    state = 'down';
  });
  redis.on('end', () => log.debug('redis connection ended'));
}

/**
 * A dedicated connection with the same target and options: for a subscriber or for blocking reads, which must never
 * share the regular connection. `subscriber` turns on ioredis' sharded subscribers on a cluster (SSUBSCRIBE goes to the
 * node owning the channel's slot, and follows it through a failover).
 */
export function duplicateRedis(redis: Redis, name: string, options: { subscriber?: boolean } = {}): Redis {
  if (redis instanceof Cluster) {
    const connectionName = `${redis.options.redisOptions?.connectionName ?? 'tickwatch'}-${name}`;
    return redis.duplicate([], { redisOptions: { ...redis.options.redisOptions, connectionName }, ...(options.subscriber ? { shardedSubscribers: true } : {}) });
  }
  return redis.duplicate({ connectionName: `${redis.options.connectionName ?? 'tickwatch'}-${name}` });
}

/**
 * Publishes on an alert channel (`alerts:<PAIR>`, the stored-alerts feed): SPUBLISH on a cluster (the message reaches
 * the subscribers of the channel's shard, who SSUBSCRIBE, rather than being broadcast to every node), PUBLISH on a
 * single Redis.
 */
export async function publishSharded(redis: Redis, channel: string, message: string): Promise<number> {
  return Number(redis instanceof Cluster ? await redis.spublish(channel, message) : await redis.publish(channel, message));
}

/**
 * Subscribes to alert channels: SSUBSCRIBE on a cluster (a connection from `duplicateRedis(..., { subscriber: true })`;
 * messages arrive as `smessage`), SUBSCRIBE otherwise (`message`).
 */
export async function subscribeSharded(subscriber: Redis, channels: readonly string[]): Promise<void> {
  if (channels.length === 0) return;
  // One SSUBSCRIBE per channel: channels of different slots cannot share one.
  if (subscriber instanceof Cluster) for (const channel of channels) await subscriber.ssubscribe(channel);
  else await subscriber.subscribe(...channels);
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

/**
 * Runs `each` on every primary of a cluster, or on the one server: SCAN and other per-node commands see only the keys
 * of the node they are sent to.
 */
export async function forEachPrimary(redis: Redis, each: (node: IORedis) => Promise<void>): Promise<void> {
  if (redis instanceof Cluster) {
    for (const node of redis.nodes('master')) await each(node);
    return;
  }
  await each(redis);
}

/** Every key matching `pattern` (SCAN per primary, never KEYS), at most `limit`. */
export async function scanKeys(redis: Redis, pattern: string, limit = Infinity): Promise<string[]> {
  const found: string[] = [];
  await forEachPrimary(redis, async (node) => {
    let cursor = '0';
    if (found.length >= limit) return;
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0' && found.length < limit);
  });
  return found;
}

/**
 * Deletes every key that starts with `prefix` (SCAN + UNLINK per primary, never KEYS; one key per UNLINK on a cluster,
 * where keys of different slots cannot share a command). For tests and tools that own a prefix.
 */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<void> {
  if (prefix === '') throw new Error('refusing to delete every key: the prefix is empty');
  await forEachPrimary(redis, async (node) => {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (found.length === 0) continue;
      if (redis instanceof Cluster) await Promise.all(found.map((key) => node.unlink(key)));
      else await node.unlink(...found);
    } while (cursor !== '0');
  });
}
