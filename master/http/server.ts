import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { isDatabaseUnreachable, isStatementTimeout, type Knex } from '../../shared/platform/db';
import { describeError } from '../../shared/platform/errors';
import type { Logger } from '../../shared/platform/logger';
import type { Redis } from '../../shared/platform/redis';
import type { RedisKeys } from '../../shared/contract/redis-keys';
import type { MasterMetrics } from '../metrics';
import { dashboardPlugin } from '../dashboard/plugin';
import { createAlertQueries } from '../../shared/read-model/alert-queries';
import type { ReplicaReads } from '../../shared/read-model/replica-reads';
import { registerAuth } from './auth';
import { createEventTickets } from './event-tickets';
import { BASE_SECURITY_HEADERS, registerSecurityHeaders } from './security-headers';
import { BadRequestError } from '../../shared/read-model/bad-request';
import { createHttpMetricsHook } from './http-metrics';
import { registerOpenApi } from './openapi';
import { API_AJV_OPTIONS, isValidationError, requestBadRequest, validationBadRequest } from './validation';
import { alertRoutes } from './routes/alerts';
import { auditRoutes } from './routes/audit';
import { receiverRoutes } from './routes/receivers';
import { createReceiversRepository } from '../../shared/read-model/receivers-repository';
import { botRoutes } from './routes/bots';
import { createBotsRepository, type BotsRepository } from '../../shared/read-model/bots-repository';
import { announceBotChange, reconcileDesiredBots } from '../../shared/read-model/bots-mirror';
import type { ApiTokenEntry } from '../../shared/config/master-config';
import { fleetRoutes } from './routes/fleet';
import { statsRoutes } from './routes/stats';
import { silenceRoutes } from './routes/silences';
import { createSilencesRepository } from '../../shared/read-model/silences-repository';
import { systemRoutes } from './routes/system';

/** What the HTTP API needs; the master builds these and passes them in. */
export interface ApiDeps {
  /** The API's pool on the primary (DATABASE_URL): every write, and every read of what the API writes. */
  readonly db: Knex;
  /**
   * Alert reads (lists, details, stats, time series, CSV) on the read replica, falling back to `db`
   * (DATABASE_READ_URL). @defaultValue none: alert reads go to `db` too
   */
  readonly replicaReads?: ReplicaReads;
  /** A regular (non-subscriber) connection. */
  readonly redis: Redis;
  /** Used to create dedicated subscriber connections (`redis.duplicate()`) for live feeds. */
  readonly keys: RedisKeys;
  readonly metrics: MasterMetrics;
  readonly logger: Logger;
  /** When set, every endpoint but /health and /ready needs `Authorization: Bearer <token>`. */
  readonly apiToken?: string;
  /** Named tokens with scopes (API_TOKENS); with apiToken, the accepted tokens. */
  readonly apiTokens?: readonly ApiTokenEntry[];
  /** The bots table; created over `db` when absent. */
  readonly botsRepository?: BotsRepository;
  /**
   * Runs after each committed bot change: rewrites the Redis mirror and announces the bot id (the master passes its
   * reconciler's). @defaultValue a mirror rewrite and announcement over `db` and `redis`, errors logged
   */
  readonly afterBotChange?: (botId: string) => Promise<void>;
  /** Wrong tokens or tickets one address may present per window before it gets 429 (see auth.ts). @defaultValue 10 */
  readonly authMaxFailures?: number;
  /** @defaultValue 60000 */
  readonly authFailureWindowMs?: number;
  /** How long a live-feed ticket from POST /events/ticket stays valid (ms). @defaultValue 60000 */
  readonly eventsTicketTtlMs?: number;
  /** Open /events connections (EVENTS_MAX_CLIENTS); beyond it 503. @defaultValue 100 */
  readonly eventsMaxClients?: number;
  /** How long GET /stats answers are reused for identical queries (ms). @defaultValue 2000 */
  readonly statsCacheTtlMs?: number;
  /** CSV exports streamed at once (CSV_MAX_CONCURRENT); beyond it 503 with Retry-After. @defaultValue 2 */
  readonly csvMaxConcurrent?: number;
  /** Longest one CSV export may stream (CSV_TIMEOUT_MS). @defaultValue 300000 */
  readonly csvTimeoutMs?: number;
  /** A stopped or expired bot leaves GET /fleet once its last heartbeat is this old (FLEET_RETENTION, ms). @defaultValue 24h */
  readonly fleetRetentionMs?: number;
  /** Clock for relative times and staleness (tests pin it). @defaultValue Date.now */
  readonly now?: () => number;
}

/** Postgres/Redis unreachable: the request was fine, the service is not (503, so clients and balancers retry). */
function isUnavailable(err: unknown): boolean {
  return isDatabaseUnreachable(err) || /Connection is closed/i.test((err as { message?: string } | null)?.message ?? '');
}

/**
 * Builds the analysts' HTTP API (and the dashboard). Stateless: any number of masters can serve it.
 * Not listening yet: the caller decides host and port (`app.listen`) or injects requests in tests (`app.inject`).
 */
export async function createApiServer(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'api' }) as unknown as FastifyBaseLogger,
    // Per-request lines would drown the log at dashboard polling rates; durations go to /metrics instead.
    logController: new LogController({ disableRequestLogging: true }),
    // Route schemas are enforced: requests validated as sent (no coercion, unknown parameters refused), see validation.ts.
    ajv: API_AJV_OPTIONS,
    // A malformed percent-escape in the path is refused by the router before any hook: answer it in our 400 shape.
    frameworkErrors: (err, req, res) => {
      const reply = (res as unknown as FastifyReply).headers(BASE_SECURITY_HEADERS);
      if (err.code === 'FST_ERR_BAD_URL') {
        return reply.code(400).send(new BadRequestError('url', req.url, 'a path with well-formed percent-escapes').toJSON());
      }
      return reply.send(err);
    },
  }) as unknown as FastifyInstance;
  const now = deps.now ?? Date.now;
  const queries = deps.replicaReads?.queries ?? createAlertQueries(deps.db);

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof BadRequestError) return reply.code(400).send(err.toJSON());
    if (isValidationError(err)) return reply.code(400).send(validationBadRequest(err, req).toJSON());
    const status = err.statusCode ?? 500;
    if (status === 400) return reply.code(400).send(requestBadRequest(err).toJSON());
    if (status >= 400 && status < 500) {
      // fastify's own refusals (malformed URL, oversized header, bad content type): still a client error, said in JSON.
      return reply.code(status).send({ error: status === 400 ? 'bad_request' : 'client_error', message: err.message });
    }
    if (isStatementTimeout(err)) {
      req.log.warn({ route: req.routeOptions.url }, 'query cancelled by the statement timeout');
      return reply.code(503).send({ error: 'query_timeout', message: 'the query took longer than the API allows (API_STATEMENT_TIMEOUT_MS); narrow the range or filters, or retry shortly' });
    }
    if (isUnavailable(err)) {
      req.log.warn({ err: describeError(err), route: req.routeOptions.url }, 'dependency unavailable');
      return reply.code(503).send({ error: 'unavailable', message: 'the database or Redis is unreachable; retry shortly' });
    }
    req.log.error({ err: describeError(err), route: req.routeOptions.url }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` }));

  // Headers first, so every answer carries them, the auth hook's 401 and 429 included.
  await registerSecurityHeaders(app);
  const eventTickets = createEventTickets({ redis: deps.redis, keys: deps.keys, ttlMs: deps.eventsTicketTtlMs, now });
  await registerAuth(app, { token: deps.apiToken, tokens: deps.apiTokens, tickets: eventTickets, maxFailures: deps.authMaxFailures, windowMs: deps.authFailureWindowMs });
  app.addHook('onResponse', createHttpMetricsHook(deps.metrics));

  await registerOpenApi(app);
  await app.register(async (api) => {
    // Each route's schemas validate its parameters and serialise its answers (openapi.ts, validation.ts).
    await api.register(systemRoutes, { db: deps.db, redis: deps.redis, metrics: deps.metrics, replica: deps.replicaReads });
    await api.register(alertRoutes, { queries, now, csvMaxConcurrent: deps.csvMaxConcurrent, csvTimeoutMs: deps.csvTimeoutMs });
    await api.register(statsRoutes, { queries, now, cacheTtlMs: deps.statsCacheTtlMs });
    const botsRepository = deps.botsRepository ?? createBotsRepository(deps.db);
    await api.register(fleetRoutes, {
      redis: deps.redis,
      keys: deps.keys,
      now,
      retentionMs: deps.fleetRetentionMs,
      recordRemoval: (botId, actor, removed) => botsRepository.recordFleetRemoval(botId, actor, removed),
    });
    const afterBotChange =
      deps.afterBotChange ??
      (async (botId: string) => {
        try {
          await reconcileDesiredBots(deps.db, deps.redis, deps.keys);
          await announceBotChange(deps.redis, deps.keys, botId);
        } catch (err) {
          app.log.warn({ botId, err: describeError(err) }, 'bots mirror not rewritten after a change');
        }
      });
    await api.register(botRoutes, { repository: botsRepository, redis: deps.redis, keys: deps.keys, now, afterChange: afterBotChange });
    await api.register(auditRoutes, { repository: botsRepository });
    await api.register(receiverRoutes, { repository: createReceiversRepository(deps.db), now });
    await api.register(silenceRoutes, { repository: createSilencesRepository(deps.db), now });
  });
  await app.register(dashboardPlugin, { ...deps, eventTickets, sseMaxClients: deps.eventsMaxClients });

  return app;
}
