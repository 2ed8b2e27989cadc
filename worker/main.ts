import { loadConfigForMain } from '../shared/platform/config';
import { describeError } from '../shared/platform/errors';
import { createLifecycle, exitOnSignals } from '../shared/platform/lifecycle';
import { createLogger } from '../shared/platform/logger';
import { closeRedis, createRedis } from '../shared/platform/redis';
import { loadWorkerConfig, WORKER_VARIABLES } from '../shared/config/worker-config';
import { createWorker } from './worker';

/** `npm run worker`: one bot watching one pair. Configuration from env and --flags (see shared/config/worker-config.ts). */
async function main(): Promise<void> {
  const config = loadConfigForMain('npm run worker', WORKER_VARIABLES, loadWorkerConfig);
  if (!config) return;
  const logger = createLogger({ name: 'worker', level: config.logLevel });
  const lifecycle = createLifecycle(logger);
  const redis = createRedis(config.redisUrl, logger, { name: 'worker', failFast: true });
  lifecycle.add('redis', () => closeRedis(redis));
  const worker = createWorker({ config, logger, redis });
  lifecycle.add('worker', () => worker.stop());
  // Long enough for the request in flight (up to its timeout), the bounded alert flush (5 s) and closing Redis.
  exitOnSignals(lifecycle, logger, config.tickerTimeoutMs + 10_000);
  await worker.start();
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed to start: ${describeError(err)}\n`);
  process.exit(1);
});
