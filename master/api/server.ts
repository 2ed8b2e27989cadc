import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Knex } from '../../shared/db';
import type { Logger } from '../../shared/logger';
import type { Redis } from '../../shared/redis';
import type { RedisKeys } from '../../shared/redis-keys';
import type { MasterMetrics } from '../metrics';
import { dashboardPlugin } from '../dashboard/plugin';

/** What the HTTP API needs; the master builds these and passes them in. */
export interface ApiDeps {
  readonly db: Knex;
  /** A regular (non-subscriber) connection. */
  readonly redis: Redis;
  /** Used to create dedicated subscriber connections (`redis.duplicate()`) for live feeds. */
  readonly keys: RedisKeys;
  readonly metrics: MasterMetrics;
  readonly logger: Logger;
  /** When set, every endpoint but /health and /ready needs `Authorization: Bearer <token>`. */
  readonly apiToken?: string;
}

/**
 * Builds the analysts' HTTP API (and the dashboard). Stateless: any number of masters can serve it.
 * Not listening yet: the caller decides host and port (`app.listen`) or injects requests in tests (`app.inject`).
 */
export async function createApiServer(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'api' }) as unknown as FastifyBaseLogger,
    disableRequestLogging: true,
  }) as unknown as FastifyInstance;

  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/ready', async (_req, reply) => {
    const checks = await Promise.allSettled([deps.db.raw('SELECT 1'), deps.redis.ping()]);
    const [postgres, redis] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : `down: ${String((c as PromiseRejectedResult).reason?.message ?? c)}`));
    const ready = postgres === 'ok' && redis === 'ok';
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', postgres, redis });
  });

  await app.register(dashboardPlugin, deps);

  return app;
}
