import { config as loadDotenv } from 'dotenv';
import { ConfigError, describeError } from '../shared/platform/errors';
import { readBotStatus } from '../shared/contract/fleet-status';
import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis } from '../shared/platform/redis';
import { createRedisKeys } from '../shared/contract/redis-keys';
import { loadWorkerConfig } from '../shared/config/worker-config';

const HEALTHY = new Set(['ok', 'degraded']);

/**
 * `npm run worker:health`: the container health check. Reads the same configuration as the worker (BOT_ID, or PAIR) and
 * exits 0 only when that bot's heartbeat is fresh and its status is ok or degraded; 1 otherwise (2 on bad config),
 * printing why on one line.
 */
async function main(): Promise<number> {
  loadDotenv({ quiet: true });
  let config;
  try {
    config = loadWorkerConfig(process.env, process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.message : describeError(err)}\n`);
    return 2;
  }
  const logger = createLogger({ name: 'worker-health', level: 'silent' });
  const redis = createRedis(config.redisUrl, logger, {
    name: 'health',
    extra: { maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: () => null, enableOfflineQueue: true },
  });
  redis.on('error', () => undefined);
  try {
    const status = await readBotStatus(redis, createRedisKeys(config.redisKeyPrefix), config.botId);
    if (!status) {
      process.stdout.write(`unhealthy: bot ${config.botId} has never reported\n`);
      return 1;
    }
    const ageMs = Date.now() - Date.parse(status.heartbeatAt);
    if (status.stale) {
      process.stdout.write(`unhealthy: bot ${config.botId} last reported ${Math.round(ageMs / 1000)} s ago (expires after ${status.ttlMs} ms), status was ${status.status}\n`);
      return 1;
    }
    if (!HEALTHY.has(status.status)) {
      process.stdout.write(`unhealthy: bot ${config.botId} is ${status.status}${status.lastError ? `: ${status.lastError}` : ''}\n`);
      return 1;
    }
    process.stdout.write(`healthy: bot ${config.botId} is ${status.status}, last price ${status.lastPrice ?? 'none yet'}, heartbeat ${ageMs} ms ago\n`);
    return 0;
  } catch (err) {
    process.stdout.write(`unhealthy: cannot read the status from Redis: ${describeError(err)}\n`);
    return 1;
  } finally {
    await closeRedis(redis);
  }
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
