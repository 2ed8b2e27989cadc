import type { FastifyPluginAsync } from 'fastify';
import type { Knex } from '../../../shared/platform/db';
import { describeError } from '../../../shared/platform/errors';
import type { Redis } from '../../../shared/platform/redis';
import type { MasterMetrics } from '../../metrics';
import { withTimeout } from '../../../shared/platform/retry';
import type { ReplicaReads } from '../../../shared/read-model/replica-reads';

export interface SystemRoutesOptions {
  readonly db: Knex;
  readonly redis: Redis;
  readonly metrics: MasterMetrics;
  /** The read replica (DATABASE_READ_URL), reported by /ready when configured. */
  readonly replica?: ReplicaReads;
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
    replica: {
      type: 'object',
      description:
        'Only with DATABASE_READ_URL. Never makes the master not ready: while the replica is down (or lags past DATABASE_READ_MAX_LAG) alert reads are served by the primary, which reads_from says.',
      properties: {
        status: { type: 'string', description: '"ok", or "down: <reason>"' },
        reads_from: { type: 'string', enum: ['replica', 'primary'] },
        in_recovery: { type: ['boolean', 'null'], description: 'false: DATABASE_READ_URL is not a standby' },
        replay_paused: { type: ['boolean', 'null'] },
        lag_ms: { type: ['integer', 'null'], description: '0 when caught up; else the age of the newest replayed transaction' },
        lag_bytes: { type: ['integer', 'null'], description: "WAL bytes the primary wrote that the replica has not replayed" },
      },
      required: ['status', 'reads_from', 'in_recovery', 'replay_paused', 'lag_ms', 'lag_bytes'],
    },
  },
  required: ['status', 'postgres', 'redis'],
} as const;

/** GET /health (the process is up), GET /ready (Postgres and Redis answer; the read replica reported), GET /metrics (Prometheus). */
export const systemRoutes: FastifyPluginAsync<SystemRoutesOptions> = async (app, { db, redis, metrics, replica, readyTimeoutMs = 2000 }) => {
  app.get(
    '/health',
    { schema: { summary: 'Liveness: the process is up (no token needed)', security: [], response: { 200: HEALTH_SCHEMA } } },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/ready',
    { schema: { summary: 'Readiness: Postgres and Redis reachable; 503 otherwise (no token needed)', security: [], response: { 200: READY_SCHEMA, 503: READY_SCHEMA } } },
    async (_req, reply) => {
      const [postgres, redisCheck, replicaReport] = await Promise.allSettled([
        withTimeout(db.raw('SELECT 1'), readyTimeoutMs, 'postgres'),
        withTimeout(redis.ping(), readyTimeoutMs, 'redis'),
        // Never rejects: a replica that is down is reported as such (check() has its own deadline).
        replica?.check(readyTimeoutMs),
      ]);
      const state = (r: PromiseSettledResult<unknown>) => (r.status === 'fulfilled' ? 'ok' : `down: ${describeError(r.reason)}`);
      // The replica is left out on purpose: every master shares it, so failing readiness for it would take every master
      // out of the balancer for a dependency whose reads the primary serves meanwhile.
      const ready = postgres.status === 'fulfilled' && redisCheck.status === 'fulfilled';
      return reply.code(ready ? 200 : 503).send({
        status: ready ? 'ready' : 'not ready',
        postgres: state(postgres),
        redis: state(redisCheck),
        ...(replicaReport.status === 'fulfilled' && replicaReport.value && { replica: replicaReport.value }),
      });
    },
  );

  app.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format)' } }, async (_req, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
};
