import type { FastifyPluginAsync } from 'fastify';
import type { Knex } from '../../../shared/platform/db';
import { describeError } from '../../../shared/platform/errors';
import type { Redis } from '../../../shared/platform/redis';
import type { MasterMetrics } from '../../metrics';
import { withTimeout } from '../../../shared/platform/retry';

export interface SystemRoutesOptions {
  readonly db: Knex;
  readonly redis: Redis;
  readonly metrics: MasterMetrics;
  /** Longest a readiness probe waits for each dependency. @defaultValue 2000 */
  readonly readyTimeoutMs?: number;
}

const HEALTH_SCHEMA = { type: 'object', properties: { status: { type: 'string', const: 'ok' } }, required: ['status'] } as const;
const READY_SCHEMA = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'not ready'] },
    postgres: { type: 'string', description: '"ok", or "down: <reason>"' },
    redis: { type: 'string', description: '"ok", or "down: <reason>"' },
  },
  required: ['status', 'postgres', 'redis'],
} as const;

/** GET /health (the process is up), GET /ready (Postgres and Redis answer), GET /metrics (Prometheus). */
export const systemRoutes: FastifyPluginAsync<SystemRoutesOptions> = async (app, { db, redis, metrics, readyTimeoutMs = 2000 }) => {
  app.get(
    '/health',
    { schema: { summary: 'Liveness: the process is up (no token needed)', security: [], response: { 200: HEALTH_SCHEMA } } },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/ready',
    { schema: { summary: 'Readiness: Postgres and Redis reachable; 503 otherwise (no token needed)', security: [], response: { 200: READY_SCHEMA, 503: READY_SCHEMA } } },
    async (_req, reply) => {
      const [postgres, redisCheck] = await Promise.allSettled([
        withTimeout(db.raw('SELECT 1'), readyTimeoutMs, 'postgres'),
        withTimeout(redis.ping(), readyTimeoutMs, 'redis'),
      ]);
      const state = (r: PromiseSettledResult<unknown>) => (r.status === 'fulfilled' ? 'ok' : `down: ${describeError(r.reason)}`);
      const ready = postgres.status === 'fulfilled' && redisCheck.status === 'fulfilled';
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', postgres: state(postgres), redis: state(redisCheck) });
    },
  );

  app.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format)' } }, async (_req, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
};
