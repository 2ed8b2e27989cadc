import type { FastifyReply, FastifyRequest } from 'fastify';
import type { MasterMetrics } from '../metrics';

/**
 * `onResponse` hook recording every request's duration in the `tickwatch_http_request_duration_seconds` histogram.
 * The route label is the matched pattern (`/alerts/:id`), or `unmatched`: raw URLs would give one series per id.
 */
export function createHttpMetricsHook(metrics: MasterMetrics): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (req, reply) => {
    metrics.httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  };
}
