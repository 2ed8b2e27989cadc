import { startService, type ServiceProcess } from '../test/helpers/process';

import type { SectionContext } from './context';
import type { BenchDatabase, BenchRedis } from './resources';

export { REPO_ROOT } from '../test/helpers/process';

export type BenchProcess = ServiceProcess;

/**
 * Runs one of our entry points as a real process with its output in a file (see `StartOptions.outputFile`): `node
 * --import tsx <entry>.ts` as `npm run` does, or with `compiled: true` the `tsc` output `node dist/<entry>.js`.
 */
export function spawnEntry(entry: string, env: Record<string, string>, options: { compiled?: boolean; args?: string[]; nodeArgs?: string[] } = {}): BenchProcess {
  return startService(entry, env, options.args, { compiled: options.compiled, nodeArgs: options.nodeArgs, outputFile: true, baseEnv: { NODE_ENV: 'production' } });
}

/** The real master process (stream delivery, log notifications, API on a free port) over a section's database and prefix. */
export function startBenchMaster(ctx: SectionContext, db: BenchDatabase, r: BenchRedis, env: Record<string, string> = {}): BenchProcess {
  return spawnEntry('master/main.ts', {
    DATABASE_URL: db.url,
    REDIS_URL: ctx.targets.redisUrl,
    REDIS_KEY_PREFIX: r.prefix,
    DELIVERY: 'stream',
    MASTER_PAIRS: '*',
    NOTIFY: 'log',
    API_HOST: '127.0.0.1',
    API_PORT: '0',
    LOG_LEVEL: 'info',
    ...env,
  }, { nodeArgs: process.env.BENCH_MASTER_NODE_ARGS?.split(' ').filter(Boolean) });
}
