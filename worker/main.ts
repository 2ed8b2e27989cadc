import { loadConfigForMain } from '../shared/platform/config';
import { describeError } from '../shared/platform/errors';
import { createLifecycle, exitOnSignals } from '../shared/platform/lifecycle';
import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis } from '../shared/platform/redis';
import { createRedisKeys } from '../shared/contract/redis-keys';
import { loadWorkerStartup, WORKER_VARIABLES } from '../shared/config/worker-config';
import { createGenericWorker } from './generic-worker';
import { createWorker } from './worker';

/**
 * `npm run worker`: with PAIR, one bot watching that pair (source compose); without it, a generic worker that claims a
 * runtime bot from the master's desired state. Configuration from env and --flags (see shared/config/worker-config.ts).
 */
async function main(): Promise<void> {
  const startup = loadConfigForMain('npm run worker', WORKER_VARIABLES, loadWorkerStartup);
  if (!startup) return;
  const { base, pinned } = startup;
  const logger = createLogger({ name: 'worker', level: base.logLevel });
  const lifecycle = createLifecycle(logger);
  const target = { url: base.redisUrl, clusterNodes: base.redisClusterNodes };
  const redis = createRedis(target, logger, { name: 'worker', failFast: true });
  lifecycle.add('redis', () => closeRedis(redis));
  // Long enough for the request in flight (up to its timeout), the bounded alert flush (5 s) and closing Redis.
  exitOnSignals(lifecycle, logger, base.tickerTimeoutMs + 10_000);
  if (pinned) {
    const worker = createWorker({ config: pinned, logger: logger.child({ workerId: base.workerId }), redis });
    lifecycle.add('worker', () => worker.stop());
    await worker.start();
    return;
  }
  const subscriber = createRedis(target, logger, { name: 'worker-nudges' });
  lifecycle.add('redis (nudges)', () => closeRedis(subscriber));
  const generic = createGenericWorker({ base, logger, redis, subscriber, keys: createRedisKeys(base.redisKeyPrefix) });
  lifecycle.add('generic worker', () => generic.stop());
  generic.start();
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed to start: ${describeError(err)}\n`);
  process.exit(1);
});
