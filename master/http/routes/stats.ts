import type { FastifyPluginAsync } from 'fastify';
import type { AlertQueries, StatsResult, TimeseriesPoint } from '../../../shared/read-model/alert-queries';
import { BadRequestError } from '../../../shared/read-model/bad-request';
import { ERROR_RESPONSES, STATS_SCHEMA, TIMESERIES_SCHEMA, querySchema } from '../openapi';
import { LRUCache } from 'lru-cache';
import {
  checkRange,
  checkStatsSpan,
  instantKey,
  MAX_BUCKETS,
  parseParams,
  resolveStatsRange,
  STATS_PARAMS,
  TIMESERIES_PARAMS,
} from '../../../shared/read-model/query-params';

export interface StatsRoutesOptions {
  readonly queries: AlertQueries;
  readonly now: () => number;
  /** How long a computed answer is reused for identical queries. @defaultValue 2000 */
  readonly cacheTtlMs?: number;
  /** Most answers kept per endpoint (least recently used go first). @defaultValue 1000 */
  readonly cacheMaxEntries?: number;
}

const DEFAULT_TIMESERIES_SPAN_MS = 60 * 60_000;

/**
 * A short-lived cache of answers in one process: entries live `ttlMs`; concurrent misses for one key share a single
 * query (lru-cache's fetch coalescing: no stampede on the database when a popular entry expires); a failed query is not
 * kept; beyond `max` entries the least recently used go. Per process on purpose: masters stay stateless, and a couple of
 * seconds of staleness is what a dashboard polling every few seconds sees anyway.
 */
function createAnswerCache<V extends object>(ttlMs: number, max: number) {
  const cache = new LRUCache<string, V, () => Promise<V>>({ max, ttl: ttlMs, fetchMethod: (_key, _stale, { context }) => context() });
  return async (key: string, compute: () => Promise<V>): Promise<V> => {
    const value = await cache.fetch(key, { context: compute });
    // fetch answers undefined only when the fetch is aborted (eviction while in flight): compute this one directly.
    return value ?? compute();
  };
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

/** What is cached: everything of an answer that does not depend on how the client spelled the same query. */
type CachedStats = Omit<StatsAnswer, 'window'>;
type CachedSeries = Omit<TimeseriesAnswer, 'bucket'>;

/**
 * GET /stats and GET /stats/timeseries, each behind a short in-process cache so many pollers cost one query. The cache
 * key is the effective query (`window=60m` and `window=1h` are one entry), and ranges are capped (MAX_STATS_RANGE), so
 * no spelling of a query reads more than a month of alerts.
 */
export const statsRoutes: FastifyPluginAsync<StatsRoutesOptions> = async (app, { queries, now, cacheTtlMs = 2000, cacheMaxEntries = 1000 }) => {
  const statsCache = createAnswerCache<CachedStats>(cacheTtlMs, cacheMaxEntries);
  const seriesCache = createAnswerCache<CachedSeries>(cacheTtlMs, cacheMaxEntries);

  app.get(
    '/stats',
    {
      schema: {
        summary: 'Alert counts per pair and overall over a window (default 20m) or since/until, at most 31d either way',
        querystring: querySchema(STATS_PARAMS),
        response: { 200: STATS_SCHEMA, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      const t = now();
      const p = parseParams(STATS_PARAMS, req.query, t);
      const range = resolveStatsRange(p, req.query, t);
      const pairs = p.pair ?? [];
      const cached = await statsCache(`${range.key}|${pairs.join(',')}`, async () => {
        const result = await queries.stats({ since: range.since, until: range.until, pairs });
        return { since: range.since, until: range.until ?? null, generated_at: new Date(t).toISOString(), ...result };
      });
      const { since, until, generated_at, ...counts } = cached;
      const answer: StatsAnswer = { since, until, window: range.window, generated_at, ...counts };
      // Serialised by the route's response schema: exactly the documented fields.
      return reply.send(answer);
    },
  );

  app.get(
    '/stats/timeseries',
    {
      schema: {
        summary: 'Alerts per time bucket (zero-filled), for charts; default the last hour in 1m buckets; since..until at most 31d and 10,000 buckets',
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
      checkStatsSpan(sinceMs, untilMs, raw);
      const buckets = Math.ceil((untilMs - (Math.floor(sinceMs / bucketMs) * bucketMs)) / bucketMs);
      if (buckets > MAX_BUCKETS) {
        throw new BadRequestError('bucket', raw.bucket ?? '1m', `a bucket wide enough for at most ${MAX_BUCKETS} buckets between since and until (this asks for ${buckets})`);
      }
      const pairs = p.pair ?? [];
      // No since: the default span before until, so the key is until's plus that span.
      const sinceKey = p.since ? instantKey(p.since, raw.since) : `span${DEFAULT_TIMESERIES_SPAN_MS}`;
      const key = [bucketMs, sinceKey, instantKey(p.until, raw.until), pairs.join(','), p.direction ?? ''].join('|');
      const cached = await seriesCache(key, async () => {
        const since = p.since?.iso ?? new Date(sinceMs).toISOString();
        const until = p.until?.iso ?? new Date(untilMs).toISOString();
        const points = await queries.timeseries({ since, until, bucketMs, pairs, direction: p.direction });
        return { since: points[0]?.t ?? since, until, points };
      });
      const bucket = typeof raw.bucket === 'string' ? raw.bucket.trim() : '1m';
      const answer: TimeseriesAnswer = { bucket, ...cached };
      // Serialised by the route's response schema: exactly the documented fields.
      return reply.send(answer);
    },
  );
};
