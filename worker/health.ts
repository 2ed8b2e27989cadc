import { config as loadDotenv } from 'dotenv';
import { ConfigError, describeError } from '../shared/platform/errors';
import { readBotStatus } from '../shared/contract/fleet-status';
import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis, scanKeys } from '../shared/platform/redis';
import { createRedisKeys } from '../shared/contract/redis-keys';
import { defaultWorkerId, loadWorkerStartup, type WorkerBaseConfig } from '../shared/config/worker-config';
import type { Redis } from '../shared/platform/redis';
import { sizeProblem } from '../shared/contract/alert';

// A bot whose rule is done (exhausted, expired) is healthy: restarting it would change nothing.
const HEALTHY = new Set(['ok', 'degraded', 'exhausted', 'expired']);

/**
 * `npm run worker:health`: the container health check. Reads the same configuration as the worker. A pinned worker
 * (PAIR set): exits 0 only when its bot's heartbeat (BOT_ID, or PAIR) is fresh and ok or degraded. A generic worker (no
 * PAIR): exits 0 while its own heartbeat `worker:<WORKER_ID>` is fresh, idle or holding a bot (without WORKER_ID: any
 * worker of this host, `worker:<hostname>-*`, since the default id holds the worker's pid). 1 otherwise (2 on bad
 * config), printing why on one line.
 */
async function main(): Promise<number> {
  loadDotenv({ quiet: true });
  let startup;
  try {
    startup = loadWorkerStartup(process.env, process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.message : describeError(err)}\n`);
    return 2;
  }
  const config = startup.pinned ?? startup.base;
  const logger = createLogger({ name: 'worker-health', level: 'silent' });
  const redis = createRedis({ url: config.redisUrl, clusterNodes: config.redisClusterNodes }, logger, {
    name: 'health',
    extra: { maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: () => null, enableOfflineQueue: true },
  });
  redis.on('error', () => undefined);
  try {
    if (!startup.pinned) return await checkGenericWorker(redis, startup.base, startup.base.workerId !== defaultWorkerId());
    const pinned = startup.pinned;
    const status = await readBotStatus(redis, createRedisKeys(pinned.redisKeyPrefix), pinned.botId);
    if (!status) {
      process.stdout.write(`unhealthy: bot ${pinned.botId} has never reported\n`);
      return 1;
    }
    const ageMs = Date.now() - Date.parse(status.heartbeatAt);
    if (status.stale) {
      process.stdout.write(`unhealthy: bot ${pinned.botId} last reported ${Math.round(ageMs / 1000)} s ago (expires after ${status.ttlMs} ms), status was ${status.status}\n`);
      return 1;
    }
    if (!HEALTHY.has(status.status)) {
      process.stdout.write(`unhealthy: bot ${pinned.botId} is ${status.status}${status.lastError ? `: ${status.lastError}` : ''}\n`);
      return 1;
    }
    process.stdout.write(`healthy: bot ${pinned.botId} is ${status.status}, last price ${status.lastPrice ?? 'none yet'}, heartbeat ${ageMs} ms ago\n`);
    return 0;
  } catch (err) {
    process.stdout.write(`unhealthy: cannot read the status from Redis: ${describeError(err)}\n`);
    return 1;
  } finally {
    await closeRedis(redis);
  }
}

/** Healthy while the worker's own heartbeat is fresh: it is alive, idle or holding a bot. */
async function checkGenericWorker(redis: Redis, base: WorkerBaseConfig, idGiven: boolean): Promise<number> {
  const keys = createRedisKeys(base.redisKeyPrefix);
  let found: string[];
  if (idGiven) {
    found = [keys.workerHeartbeat(base.workerId)];
  } else {
    // The default id ends with the worker's pid, which this process cannot know: any worker of this host counts.
    const pattern = keys.workerHeartbeat(`${defaultWorkerId().replace(/-\d+$/, '')}-*`).replace(/[[\]?]/g, '\\$&');
    found = await scanKeys(redis, pattern, 100);
  }
  // One MGET: every heartbeat carries the `{fleet}` tag, so on a cluster they share a slot.
  const values = found.length > 0 ? await redis.mget(...found) : [];
  const live = values.filter((v): v is string => typeof v === 'string' && sizeProblem(v, 4096, 'heartbeat') === null);
  if (live.length === 0) {
    process.stdout.write(`unhealthy: ${idGiven ? `worker ${base.workerId} has no fresh heartbeat` : 'no worker of this host has a fresh heartbeat (set WORKER_ID to check one)'}\n`);
    return 1;
  }
  const described = live.map((v) => {
    try {
      const hb = JSON.parse(v) as { workerId?: unknown; state?: unknown; botId?: unknown };
      return `worker ${String(hb.workerId)} is ${hb.state === 'holding' ? `holding bot ${String(hb.botId)}` : 'idle'}`;
    } catch {
      return 'a worker is alive';
    }
  });
  process.stdout.write(`healthy: ${described.join('; ')}\n`);
  return 0;
}

const timer = setTimeout(() => {
  process.stdout.write('unhealthy: health check timed out after 5 s\n');
  process.exit(1);
}, 5000);
timer.unref();
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stdout.write(`unhealthy: ${describeError(err)}\n`);
    process.exit(1);
  },
);
