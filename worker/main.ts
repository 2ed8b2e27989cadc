import { config as loadDotenv } from 'dotenv';
import { describeVariables } from '../shared/config';
import { ConfigError, describeError } from '../shared/errors';
import { createLifecycle, exitOnSignals } from '../shared/lifecycle';
import { createLogger } from '../shared/logger';
import { closeRedis, createRedis } from '../shared/redis';
import { loadWorkerConfig, WORKER_VARIABLES, type WorkerConfig } from '../shared/worker-config';
import { createWorker } from './worker';

/** `npm run worker`: one bot watching one pair. Configuration from env and --flags (see shared/worker-config.ts). */
async function main(): Promise<void> {
  loadDotenv({ quiet: true });
  const argv = process.argv.slice(2);
  if (argv.includes('--help')) {
    process.stdout.write(`Usage: npm run worker -- [--flag value ...]\n\n${describeVariables(WORKER_VARIABLES)}\n`);
    return;
  }
  let config: WorkerConfig;
  try {
    config = loadWorkerConfig(process.env, argv);
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.message : describeError(err)}\n`);
    process.exit(2);
  }
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
