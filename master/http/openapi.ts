import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { BOT_ID_RE, DIRECTIONS, PRICE_FIELDS, REFERENCE_MODES, RULES } from '../../shared/contract/alert';
import { BOT_STATUSES } from '../../shared/contract/fleet-status';
import { WIRE_ALERT_SCHEMA } from '../../shared/read-model/alert-wire';
import { MAX_PAIRS, PARAMS, type ParamName, type ParamSpec } from '../../shared/read-model/query-params';

/**
 * The route schemas and the OpenAPI 3 document built from them (`GET /openapi.json`, browsable at `/docs`). The schemas
 * are enforced, not only shown: fastify validates every querystring and path parameter with them (validation.ts turns a
 * refusal into the API's 400 body) and serialises every JSON answer with the response schema of its status code, so a
 * client gets exactly the documented fields. A field the code adds without adding it here never leaves the server:
 * http/wire-shape.test.ts compares what the code builds with these schemas.
 *
 * Naming: every field of every answer is snake_case (as the columns and query parameters are), on every interface
 * (REST, the dashboard's /events and /ticks, the webhook body). The one exception is the content of `config`, the bot's
 * settings snapshot, returned exactly as the alert message (or the heartbeat) carried it: its keys are camelCase.
 */

const decimal = (description: string) => ({ type: 'string', pattern: '^-?\\d+(\\.\\d+)?$', description });
const time = (description: string, nullable = false) => ({ type: nullable ? ['string', 'null'] : 'string', format: 'date-time', description });

/** The wire alert (shared/read-model/alert-wire.ts): the same shape on every interface. */
export const ALERT_SCHEMA = WIRE_ALERT_SCHEMA;

export const NOTIFICATION_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    receiver: { type: ['string', 'null'], description: 'the receiver it went to (null on rows from before receivers existed)' },
    kind: { type: 'string', enum: ['email', 'webhook', 'slack', 'discord', 'telegram'] },
    channel: { type: 'string', enum: ['email', 'webhook', 'slack', 'discord', 'telegram'], description: 'the same as kind (its earlier name)' },
    target: { type: 'string', description: 'recipient address (email), scheme and host (webhook, slack, discord), chat <id> (telegram): never a secret' },
    delivery_id: { type: ['string', 'null'], description: 'the message that carried it, the same on every retry (receivers dedupe on it); null before its first attempt' },
    held_for: { type: ['string', 'null'], enum: ['quiet_hours', 'email_cap', null], description: 'why it waited: the receiver\'s quiet hours or the hourly email cap; it then went out in one summary' },
    status: { type: 'string', enum: ['pending', 'sent', 'failed'] },
    attempts: { type: 'integer' },
    last_error: { type: ['string', 'null'] },
    held_back: { type: 'boolean', description: 'held back (quiet hours or the hourly email cap) and reported in a summary' },
    next_attempt_at: time('next delivery attempt (pending rows)', true),
    sent_at: time('when it was delivered', true),
    created_at: time('when the alert was stored with it', true),
  },
  required: ['id', 'receiver', 'kind', 'channel', 'target', 'delivery_id', 'held_for', 'status', 'attempts', 'last_error', 'held_back', 'next_attempt_at', 'sent_at', 'created_at'],
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

export const ERROR_SCHEMA = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } }, required: ['error', 'message'] } as const;

const PAIR_STATS_PROPERTIES = {
  count: { type: 'integer' },
  up: { type: 'integer' },
  down: { type: 'integer' },
  max_abs_change_percent: { type: ['string', 'null'], description: 'largest absolute change percent' },
  last_alert_at: time('latest observed_at', true),
} as const;
const PAIR_STATS_REQUIRED = ['count', 'up', 'down', 'max_abs_change_percent', 'last_alert_at'] as const;

export const STATS_SCHEMA = {
  type: 'object',
  properties: {
    since: time('start of the range (inclusive)'),
    until: time('end of the range (exclusive); null means "up to now"', true),
    window: { type: ['string', 'null'], example: '20m' },
    generated_at: time('when these figures were computed (they are cached for a couple of seconds)'),
    overall: { type: 'object', properties: PAIR_STATS_PROPERTIES, required: PAIR_STATS_REQUIRED },
    pairs: { type: 'array', items: { type: 'object', properties: { pair: { type: 'string' }, ...PAIR_STATS_PROPERTIES }, required: ['pair', ...PAIR_STATS_REQUIRED] } },
  },
  required: ['since', 'until', 'window', 'generated_at', 'overall', 'pairs'],
} as const;

export const TIMESERIES_SCHEMA = {
  type: 'object',
  properties: {
    bucket: { type: 'string', example: '1m' },
    since: time('start of the first bucket'),
    until: time('end of the range (exclusive)'),
    points: {
      type: 'array',
      items: {
        type: 'object',
        properties: { t: time('bucket start'), count: { type: 'integer' }, up: { type: 'integer' }, down: { type: 'integer' } },
        required: ['t', 'count', 'up', 'down'],
      },
    },
  },
  required: ['bucket', 'since', 'until', 'points'],
} as const;

/** Every field of a bot in GET /fleet (all always present; absent values are null). */
const FLEET_BOT_FIELDS = [
  'bot_id', 'pair', 'status', 'stale', 'last_price', 'last_fetch_at', 'last_price_at', 'reference_price', 'consecutive_errors', 'last_error',
  'started_at', 'heartbeat_at', 'ttl_ms', 'rate_limited', 'effective_interval_ms', 'alerts_published', 'alerts_dropped', 'alerts_queued', 'config',
  'worker_id', 'source', 'service', 'bot_version', 'fetch', 'price_age_ms', 'alerts_suppressed', 'status_reason',
] as const;

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
          fetch: { type: ['string', 'null'], description: 'how the last price was fetched: pair (its own endpoint) or list:<QUOTE> (the list shared by the bots quoted in QUOTE); null from older workers' },
          price_age_ms: { type: ['integer', 'null'], description: 'age of the last price when the bot read it (ms since its request was sent; 0 for its own request)' },
          alerts_published: { type: 'integer' },
          alerts_dropped: { type: 'integer' },
          alerts_queued: { type: 'integer' },
          alerts_suppressed: { type: ['integer', 'null'], description: 'alerts the cooldown suppressed (counted, not published) since the bot started; null from older workers' },
          status_reason: { type: ['string', 'null'], description: 'why the status is exhausted or expired (max_alerts published, expires_at passed); null otherwise' },
          config: { type: 'object', additionalProperties: true, description: "the bot's settings, exactly as its heartbeat carried them (camelCase keys)" },
          worker_id: { type: ['string', 'null'], description: 'the worker process (WORKER_ID) that wrote the heartbeat' },
          source: { type: ['string', 'null'], enum: ['compose', 'api', null], description: 'compose: declared in docker-compose.yml (PAIR); api: a runtime bot held through a lease' },
          service: { type: ['string', 'null'], description: "the compose service of the bot's worker, when it has one" },
          bot_version: { type: ['integer', 'null'], description: "a runtime bot's settings version the worker applies" },
        },
        required: [...FLEET_BOT_FIELDS],
      },
    },
  },
  required: ['generated_at', 'bots'],
} as const;

/**
 * The `querystring` schema of a route, validated by fastify and shown in the document: only these names (any other is a
 * 400 naming it), each one string, or for a repeatable parameter one string or a list of up to MAX_PAIRS.
 */
export function querySchema(names: readonly ParamName[]): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const name of names) {
    const spec = PARAMS[name] as ParamSpec<unknown>;
    properties[name] = spec.repeatable
      ? { description: spec.description, type: ['string', 'array'], items: spec.schema, maxItems: MAX_PAIRS, ...('example' in spec.schema ? { example: spec.schema.example } : {}) }
      : { description: spec.description, ...spec.schema };
  }
  return { type: 'object', properties, additionalProperties: false };
}

/** The path parameter `id` of a route: a UUID. */
export const ID_PARAMS_SCHEMA = {
  type: 'object',
  properties: { id: { type: 'string', format: 'uuid', pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' } },
  required: ['id'],
} as const;

/** Standard error answers every data route documents. */
export const ERROR_RESPONSES = {
  400: { ...BAD_REQUEST_SCHEMA, description: 'A bad parameter: the body names it, its value and what is allowed.' },
  401: { ...ERROR_SCHEMA, description: 'API_TOKEN is set and the request has no valid `Authorization: Bearer <token>`.' },
  503: {
    ...ERROR_SCHEMA,
    description:
      'Retry later: `query_timeout` (the query ran past API_STATEMENT_TIMEOUT_MS), `too_many_exports` (CSV_MAX_CONCURRENT exports are streaming; see Retry-After), or `unavailable` (Postgres or Redis unreachable).',
  },
} as const;

/** 403: the caller's token lacks the scope the request needs. */
export const FORBIDDEN_SCHEMA = {
  type: 'object',
  description: 'The token is valid but its scope does not allow this request (writes need the operator scope).',
  properties: { error: { type: 'string', const: 'forbidden' }, message: { type: 'string' }, required_scope: { type: 'string', enum: ['operator'] } },
  required: ['error', 'message', 'required_scope'],
} as const;

/** Answers of every write route besides ERROR_RESPONSES. */
export const WRITE_ERROR_RESPONSES = { 403: FORBIDDEN_SCHEMA } as const;

const botSettingProperties = {
  pair: { type: 'string', maxLength: 40, description: 'currency pair as Uphold names it, e.g. BTC-USD (case-insensitive on input)' },
  interval_ms: { type: 'integer', minimum: 100, maximum: 86_400_000, description: 'time between polls (ms)' },
  threshold_percent: { type: 'string', pattern: '^\\d{1,6}(\\.\\d{1,18})?$', description: 'alert when the price moves at least this percent (exact decimal, 0 < x <= 1000)' },
  price_field: { type: 'string', enum: [...PRICE_FIELDS] },
  reference_mode: { type: 'string', enum: [...REFERENCE_MODES] },
  rule: { type: 'string', enum: [...RULES], description: 'reference: a move from the reference price (reference_mode); window: a move from the lowest (up) or highest (down) price of the last window_ms' },
  window_ms: { type: ['integer', 'null'], minimum: 1, maximum: 86_400_000, description: 'the window of rule window (ms); required by it' },
  pending_polls: { type: 'integer', minimum: 1, maximum: 1000, description: 'alert only when the move holds on this many consecutive valid polls' },
  cooldown_ms: { type: 'integer', minimum: 0, maximum: 2_592_000_000, description: 'after an alert in a direction, alerts in that direction are suppressed (counted, not published) for this long' },
  max_alerts: { type: ['integer', 'null'], minimum: 1, maximum: 1_000_000_000, description: 'after this many published alerts the bot is exhausted and the master disables it (1: only once); null: unlimited' },
  expires_at: { type: ['string', 'null'], format: 'date-time', description: 'from this time the bot is expired and the master disables it; null: never' },
} as const;

/** A bot in the `bots` table: desired state of a runtime bot, or a compose-declared bot as its heartbeat reports it. */
export const BOT_SCHEMA = {
  type: 'object',
  properties: {
    bot_id: { type: 'string' },
    ...botSettingProperties,
    enabled: { type: 'boolean', description: 'false: paused (no worker polls it)' },
    source: { type: 'string', enum: ['api', 'compose'], description: 'api: a runtime bot the API owns; compose: declared in docker-compose.yml (read-only here)' },
    service: { type: ['string', 'null'], description: 'the compose service declaring a compose bot' },
    version: { type: 'integer', minimum: 1, description: 'grows by one on every change; alerts carry it' },
    created_at: time('when the bot was created'),
    updated_at: time('last change'),
    created_by: { type: 'string', description: 'actor: a token name, cli:<user>, compose:<service> or anonymous' },
    updated_by: { type: 'string' },
  },
  required: ['bot_id', 'pair', 'interval_ms', 'threshold_percent', 'price_field', 'reference_mode', 'rule', 'window_ms', 'pending_polls', 'cooldown_ms', 'max_alerts', 'expires_at', 'enabled', 'source', 'service', 'version', 'created_at', 'updated_at', 'created_by', 'updated_by'],
} as const;

const jsonThreshold = { ...botSettingProperties.threshold_percent, type: ['string', 'number'] };

/** POST /bots body. Checked again by the worker's own config schemas (shared/read-model/bot-settings.ts). */
export const BOT_CREATE_BODY_SCHEMA = {
  type: 'object',
  properties: {
    ...botSettingProperties,
    threshold_percent: { ...jsonThreshold, default: '0.01' },
    bot_id: { type: 'string', pattern: BOT_ID_RE.source, description: 'defaults to the pair' },
    interval_ms: { ...botSettingProperties.interval_ms, default: 5000 },
    price_field: { ...botSettingProperties.price_field, default: 'ask' },
    reference_mode: { ...botSettingProperties.reference_mode, default: 'last-alert' },
    rule: { ...botSettingProperties.rule, default: 'reference' },
    pending_polls: { ...botSettingProperties.pending_polls, default: 1 },
    cooldown_ms: { ...botSettingProperties.cooldown_ms, default: 0 },
  },
  required: ['pair'],
  additionalProperties: false,
} as const;

/** PATCH /bots/{bot_id} body: any setting, and `enabled`. */
export const BOT_PATCH_BODY_SCHEMA = {
  type: 'object',
  properties: { ...botSettingProperties, threshold_percent: jsonThreshold, enabled: { type: 'boolean' } },
  minProperties: 1,
  additionalProperties: false,
} as const;

export const BOT_ID_PARAMS_SCHEMA = {
  type: 'object',
  properties: { bot_id: { type: 'string', pattern: BOT_ID_RE.source } },
  required: ['bot_id'],
} as const;

/** Who holds a runtime bot's lease, or null. */
export const BOT_HOLDER_SCHEMA = {
  type: ['object', 'null'],
  properties: { worker_id: { type: 'string' }, generation: { type: 'integer', description: 'the lease generation (fencing token)' }, ttl_ms: { type: 'integer' } },
  required: ['worker_id', 'generation', 'ttl_ms'],
} as const;

export const AUDIT_ITEM_SCHEMA = {
  type: 'object',
  properties: {
    at: time('when the change committed'),
    actor: { type: 'string', description: 'a token name, cli:<user>, compose:<service> or anonymous (never a token)' },
    action: { type: 'string', enum: ['create', 'update', 'pause', 'resume', 'delete', 'compose-sync', 'fleet-remove', 'exhausted', 'expired'], description: 'exhausted / expired: the master (actor system) disabled a bot that used up max_alerts or passed expires_at' },
    bot_id: { type: 'string' },
    before: {
      anyOf: [BOT_SCHEMA, { type: 'object', additionalProperties: true }, { type: 'null' }],
      description: 'the bot before the change (null for a create); for fleet-remove, the heartbeat removed from the fleet (as GET /fleet showed it)',
    },
    after: { anyOf: [BOT_SCHEMA, { type: 'null' }], description: 'the bot after the change (null for a delete)' },
  },
  required: ['at', 'actor', 'action', 'bot_id', 'before', 'after'],
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
          'Alert history, statistics and fleet status. Every field is snake_case, on every interface (this API, the ' +
          "dashboard's /events and /ticks, the webhook body); the `config` snapshot is returned as the bot sent it " +
          '(camelCase keys). Decimals are strings. Any bad or unknown parameter answers 400 naming it. ' +
          'When API_TOKEN or API_TOKENS is set every endpoint but /health and /ready needs `Authorization: Bearer <token>`. ' +
          'Tokens have a scope: analyst (read everything) or operator (also the writes: POST/PATCH/DELETE /bots, DELETE /fleet, POST/DELETE /silences); ' +
          'a write without the operator scope answers 403 before anything changes. GET /me names the caller.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
