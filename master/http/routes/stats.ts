import type { FastifyPluginAsync } from 'fastify';
import type { AlertQueries, StatsResult, TimeseriesPoint } from '../../../shared/read-model/alert-queries';
import { BadRequestError } from '../../../shared/read-model/bad-request';
import { ERROR_RESPONSES, STATS_SCHEMA, TIMESERIES_SCHEMA, querySchema } from '../openapi';
import { checkRange, MAX_BUCKETS, parseParams, resolveStatsRange, STATS_PARAMS, TIMESERIES_PARAMS } from '../../../shared/read-model/query-params';
import { createTtlCache } from '../../../shared/read-model/ttl-cache';

export interface StatsRoutesOptions {
  readonly queries: AlertQueries;
  readonly now: () => number;
  /** How long a computed answer is reused for identical queries. @defaultValue 2000 */
  readonly cacheTtlMs?: number;
}

const DEFAULT_TIMESERIES_SPAN_MS = 60 * 60_000;

/** Cache key from the validated raw parameters: "window=20m" is one entry for every client polling it. */
function cacheKey(query: unknown): string {
  const q = (query ?? {}) as Record<string, string | string[]>;
  return JSON.stringify(
    Object.keys(q)
      .sort()
      .map((k) => [k, Array.isArray(q[k]) ? [...(q[k] as string[])].sort() : q[k]]),
  );
}

interface StatsAnswer extends StatsResult {
  readonly since: string;
  readonly until: string | null;
  readonly window: string | null;
  readonly generated_at: string;
}

interface TimeseriesAnswer {
  readonly bucket: string;
  readonly since: string;
  readonly until: string;
  readonly points: TimeseriesPoint[];
}

/** GET /stats and GET /stats/timeseries, each behind a short in-process cache so many pollers cost one query. */
export const statsRoutes: FastifyPluginAsync<StatsRoutesOptions> = async (app, { queries, now, cacheTtlMs = 2000 }) => {
  // The serialised body is cached, not the object: a hit costs a lookup, not a JSON.stringify per poller.
  const statsCache = createTtlCache<string>({ ttlMs: cacheTtlMs });
  const seriesCache = createTtlCache<string>({ ttlMs: cacheTtlMs });
  const JSON_TYPE = 'application/json; charset=utf-8';

  app.get(
    '/stats',
    {
      schema: {
        summary: 'Alert counts per pair and overall over a window (default 20m) or since/until',
        querystring: querySchema(STATS_PARAMS),
        response: { 200: STATS_SCHEMA, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      const t = now();
      const p = parseParams(STATS_PARAMS, req.query, t);
      const range = resolveStatsRange(p, req.query, t);
      const body = await statsCache.get(cacheKey(req.query), async () => {
        const result = await queries.stats({ since: range.since, until: range.until, pairs: p.pair ?? [] });
        const answer: StatsAnswer = { since: range.since, until: range.until ?? null, window: range.window, generated_at: new Date(t).toISOString(), ...result };
        return JSON.stringify(answer);
      });
      return reply.type(JSON_TYPE).send(body);
    },
  );

  app.get(
    '/stats/timeseries',
    {
      schema: {
        summary: 'Alerts per time bucket (zero-filled), for charts; default the last hour in 1m buckets',
        querystring: querySchema(TIMESERIES_PARAMS),
        response: { 200: TIMESERIES_SCHEMA, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      const t = now();
      const p = parseParams(TIMESERIES_PARAMS, req.query, t);
      const raw = req.query as Record<string, unknown>;
      checkRange(p.since, p.until, raw.until);
      const bucketMs = p.bucket ?? 60_000;
      const untilMs = p.until?.ms ?? t;
      const sinceMs = p.since?.ms ?? untilMs - DEFAULT_TIMESERIES_SPAN_MS;
      if (sinceMs >= untilMs) throw new BadRequestError('since', raw.since, `a time before until (${new Date(untilMs).toISOString()})`);
      const buckets = Math.ceil((untilMs - (Math.floor(sinceMs / bucketMs) * bucketMs)) / bucketMs);
      if (buckets > MAX_BUCKETS) {
        throw new BadRequestError('bucket', raw.bucket ?? '1m', `a bucket wide enough for at most ${MAX_BUCKETS} buckets between since and until (this asks for ${buckets})`);
      }
      const body = await seriesCache.get(cacheKey(req.query), async () => {
        const since = p.since?.iso ?? new Date(sinceMs).toISOString();
        const until = p.until?.iso ?? new Date(untilMs).toISOString();
        const points = await queries.timeseries({ since, until, bucketMs, pairs: p.pair ?? [], direction: p.direction });
        const bucket = typeof raw.bucket === 'string' ? raw.bucket.trim() : '1m';
        const answer: TimeseriesAnswer = { bucket, since: points[0]?.t ?? since, until, points };
        return JSON.stringify(answer);
      });
      return reply.type(JSON_TYPE).send(body);
    },
  );
};
