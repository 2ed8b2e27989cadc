import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { DIRECTIONS } from '../../shared/contract/alert';
import { BOT_STATUSES } from '../../shared/contract/fleet-status';
import { openApiQueryParameters, PARAMS, type ParamName, type ParamSpec } from '../../shared/read-model/query-params';

/**
 * The OpenAPI 3 document (`GET /openapi.json`, browsable at `/docs`). Route schemas are documentation: requests are
 * validated by query-params.ts (so a bad value gets the API's own 400 body) and answers are serialised as they are.
 *
 * Naming: every field of every answer is snake_case (as the columns and query parameters are). The one exception is
 * `config`, the bot's settings snapshot, which is returned verbatim as the alert message carried it (camelCase keys).
 */

const decimal = (description: string) => ({ type: 'string', pattern: '^-?\\d+(\\.\\d+)?$', description });
const time = (description: string, nullable = false) => ({ type: nullable ? ['string', 'null'] : 'string', format: 'date-time', description });

export const ALERT_SCHEMA = {
  type: 'object',
  description: 'A stored alert. Decimals are exact strings with trailing zeros removed; times are ISO-8601 UTC.',
  properties: {
    id: { type: 'string', format: 'uuid' },
    bot_id: { type: 'string' },
    pair: { type: 'string', example: 'BTC-USD' },
    direction: { type: 'string', enum: [...DIRECTIONS] },
    price: decimal('the observed price'),
    reference_price: decimal('the price the move was measured against'),
    change_percent: decimal('(price - reference) / reference * 100; negative for down moves'),
    threshold_percent: decimal('the bot threshold that was crossed'),
    observed_at: time('when the worker fetched the price'),
    config: { type: 'object', additionalProperties: true, description: "the bot's settings snapshot, verbatim from the alert message (camelCase keys)" },
    received_at: time('when the master stored it'),
  },
  required: ['id', 'bot_id', 'pair', 'direction', 'price', 'reference_price', 'change_percent', 'threshold_percent', 'observed_at', 'config', 'received_at'],
} as const;

export const NOTIFICATION_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    channel: { type: 'string', enum: ['email', 'webhook'] },
    target: { type: 'string', description: 'recipient address (email) or receiver origin (webhook)' },
    status: { type: 'string', enum: ['pending', 'sent', 'failed'] },
    attempts: { type: 'integer' },
    last_error: { type: ['string', 'null'] },
    held_back: { type: 'boolean', description: 'held back by the hourly email cap and reported in a summary mail' },
    next_attempt_at: time('next delivery attempt (pending rows)', true),
    sent_at: time('when it was delivered', true),
    created_at: time('when the alert was stored with it', true),
  },
} as const;

export const BAD_REQUEST_SCHEMA = {
  type: 'object',
  description: 'A parameter cannot be served.',
  properties: {
    error: { type: 'string', const: 'bad_request' },
    parameter: { type: 'string', description: 'the parameter at fault' },
    value: { description: 'what was sent' },
    allowed: { description: 'what is allowed: a sentence, or the list of allowed values or parameter names' },
    message: { type: 'string' },
  },
  required: ['error', 'parameter', 'allowed'],
} as const;

const ERROR_SCHEMA = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;

const PAIR_STATS_PROPERTIES = {
  count: { type: 'integer' },
  up: { type: 'integer' },
  down: { type: 'integer' },
  max_abs_change_percent: { type: ['string', 'null'], description: 'largest absolute change percent' },
  last_alert_at: time('latest observed_at', true),
} as const;

export const STATS_SCHEMA = {
  type: 'object',
  properties: {
    since: time('start of the range (inclusive)'),
    until: time('end of the range (exclusive); null means "up to now"', true),
    window: { type: ['string', 'null'], example: '20m' },
    generated_at: time('when these figures were computed (they are cached for a couple of seconds)'),
    overall: { type: 'object', properties: PAIR_STATS_PROPERTIES },
    pairs: { type: 'array', items: { type: 'object', properties: { pair: { type: 'string' }, ...PAIR_STATS_PROPERTIES } } },
  },
} as const;

export const TIMESERIES_SCHEMA = {
  type: 'object',
  properties: {
    bucket: { type: 'string', example: '1m' },
    since: time('start of the first bucket'),
    until: time('end of the range (exclusive)'),
    points: {
      type: 'array',
      items: { type: 'object', properties: { t: time('bucket start'), count: { type: 'integer' }, up: { type: 'integer' }, down: { type: 'integer' } } },
    },
  },
} as const;

export const FLEET_SCHEMA = {
  type: 'object',
  properties: {
    generated_at: time('when the heartbeats were read'),
    bots: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          bot_id: { type: 'string' },
          pair: { type: 'string' },
          status: { type: 'string', enum: [...BOT_STATUSES] },
          stale: { type: 'boolean', description: 'true when the heartbeat expired: the bot is probably down' },
          last_price: { type: ['string', 'null'] },
          last_fetch_at: time('last ticker fetch attempt', true),
          last_price_at: time('last valid price', true),
          reference_price: { type: ['string', 'null'] },
          consecutive_errors: { type: 'integer' },
          last_error: { type: ['string', 'null'] },
          started_at: time('bot start'),
          heartbeat_at: time('last heartbeat'),
          ttl_ms: { type: 'integer' },
          rate_limited: { type: 'boolean' },
          effective_interval_ms: { type: 'integer' },
          alerts_published: { type: 'integer' },
          alerts_dropped: { type: 'integer' },
          alerts_queued: { type: 'integer' },
          config: { type: 'object', additionalProperties: true },
        },
      },
    },
  },
} as const;

/** The `querystring` schema of a route, for the document only. */
export function querySchema(names: readonly ParamName[]): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const p of openApiQueryParameters(names)) {
    const spec = PARAMS[p.name as ParamName] as ParamSpec<unknown>;
    properties[p.name as string] = { description: spec.description, ...spec.schema };
  }
  return { type: 'object', properties, additionalProperties: false };
}

/** Standard error answers every data route documents. */
export const ERROR_RESPONSES = {
  400: { ...BAD_REQUEST_SCHEMA, description: 'A bad parameter: the body names it, its value and what is allowed.' },
  401: { ...ERROR_SCHEMA, description: 'API_TOKEN is set and the request has no valid `Authorization: Bearer <token>`.' },
} as const;

/** Registers the document generator and the UI. Must run before the routes are registered (it collects them). */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Tickwatch analysts API',
        version: '1.0.0',
        description:
          'Alert history, statistics and fleet status. Every field is snake_case except the verbatim `config` snapshot ' +
          '(camelCase, as in the alert message). Decimals are strings. Any bad parameter answers 400 naming it. ' +
          'When API_TOKEN is set every endpoint but /health and /ready needs `Authorization: Bearer <token>`.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
